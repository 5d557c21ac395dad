package scoring

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// specInput mirrors the spec's input JSON (shared/spec/epoch.md §2).
type specInput struct {
	Block    uint64 `json:"block"`
	Emission uint64 `json:"emission"`
	Params   struct {
		Kappa                uint64  `json:"kappa"`
		BondsMovingAverage   uint64  `json:"bonds_moving_average"`
		BondsPenalty         *uint64 `json:"bonds_penalty"`
		ActivityCutoff       uint64  `json:"activity_cutoff"`
		MaxAllowedValidators uint64  `json:"max_allowed_validators"`
	} `json:"params"`
	Neurons []struct {
		Stake           uint64 `json:"stake"`
		LastUpdate      uint64 `json:"last_update"`
		RegisteredAt    uint64 `json:"registered_at"`
		ValidatorPermit bool   `json:"validator_permit"`
	} `json:"neurons"`
	Weights map[string]map[string]uint16 `json:"weights"`
	Bonds   map[string]map[string]uint16 `json:"bonds"`
}

type specOutput struct {
	Active, ValidatorPermit                                       []bool
	Ranks, Trust, Consensus, Incentive, Dividends, ValidatorTrust []float64
	Emission, ServerEmission, ValidatorEmission                   []uint64
	Bonds                                                         map[string]map[string]uint16
}

func (o *specOutput) UnmarshalJSON(b []byte) error {
	var raw struct {
		Active            []bool                       `json:"active"`
		ValidatorPermit   []bool                       `json:"validator_permit"`
		Ranks             []float64                    `json:"ranks"`
		Trust             []float64                    `json:"trust"`
		Consensus         []float64                    `json:"consensus"`
		Incentive         []float64                    `json:"incentive"`
		Dividends         []float64                    `json:"dividends"`
		ValidatorTrust    []float64                    `json:"validator_trust"`
		Emission          []uint64                     `json:"emission"`
		ServerEmission    []uint64                     `json:"server_emission"`
		ValidatorEmission []uint64                     `json:"validator_emission"`
		Bonds             map[string]map[string]uint16 `json:"bonds"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*o = specOutput{raw.Active, raw.ValidatorPermit, raw.Ranks, raw.Trust, raw.Consensus, raw.Incentive, raw.Dividends, raw.ValidatorTrust,
		raw.Emission, raw.ServerEmission, raw.ValidatorEmission, raw.Bonds}
	return nil
}

func sparseRows(n int, m map[string]map[string]uint16) [][]Entry {
	rows := make([][]Entry, n)
	for is, row := range m {
		i, _ := strconv.Atoi(is)
		for js, v := range row {
			j, _ := strconv.Atoi(js)
			rows[i] = append(rows[i], Entry{UID: uint16(j), Value: v})
		}
		sort.Slice(rows[i], func(p, q int) bool { return rows[i][p].UID < rows[i][q].UID })
	}
	return rows
}

func (si *specInput) epochInput() *Input {
	in := &Input{Block: si.Block, Emission: si.Emission, Params: Params{Kappa: si.Params.Kappa, BondsMovingAverage: si.Params.BondsMovingAverage,
		BondsPenalty: 65535, ActivityCutoff: si.Params.ActivityCutoff, MaxAllowedValidators: si.Params.MaxAllowedValidators}}
	if si.Params.BondsPenalty != nil {
		in.Params.BondsPenalty = *si.Params.BondsPenalty
	}
	in.Weights, in.Bonds = sparseRows(len(si.Neurons), si.Weights), sparseRows(len(si.Neurons), si.Bonds)
	for _, nr := range si.Neurons {
		in.Neurons = append(in.Neurons, Neuron{Stake: nr.Stake, LastUpdate: nr.LastUpdate, RegisteredAt: nr.RegisteredAt, ValidatorPermit: nr.ValidatorPermit})
	}
	return in
}

func fxFloat(x Fixed) float64 { return x.Float64() }

// conforms checks y against the expected output within the spec's
// tolerance (§6).
func conforms(t *testing.T, name string, emission uint64, y *Output, want *specOutput) {
	t.Helper()
	n := len(want.Active)
	real := map[string][2][]float64{}
	add := func(field string, got []Fixed, w []float64) {
		g := make([]float64, len(got))
		for i, x := range got {
			g[i] = fxFloat(x)
		}
		real[field] = [2][]float64{g, w}
	}
	add("ranks", y.Ranks, want.Ranks)
	add("trust", y.Trust, want.Trust)
	add("consensus", y.Consensus, want.Consensus)
	add("incentive", y.Incentive, want.Incentive)
	add("dividends", y.Dividends, want.Dividends)
	add("validator_trust", y.ValidatorTrust, want.ValidatorTrust)
	for field, gw := range real {
		for i := range n {
			if math.Abs(gw[0][i]-gw[1][i]) > 1e-6 {
				t.Errorf("%s: %s[%d] = %.12f, want %.12f", name, field, i, gw[0][i], gw[1][i])
			}
		}
	}
	tol := max(2, float64(emission)*1e-6)
	for field, gw := range map[string][2][]uint64{"emission": {y.Emission, want.Emission}, "server_emission": {y.ServerEmission, want.ServerEmission}, "validator_emission": {y.ValidatorEmission, want.ValidatorEmission}} {
		for i := range n {
			if math.Abs(float64(gw[0][i])-float64(gw[1][i])) > tol {
				t.Errorf("%s: %s[%d] = %d, want %d", name, field, i, gw[0][i], gw[1][i])
			}
		}
	}
	for i := range n {
		if y.Active[i] != want.Active[i] || y.ValidatorPermit[i] != want.ValidatorPermit[i] {
			t.Errorf("%s: uid %d active %v permit %v, want %v %v", name, i, y.Active[i], y.ValidatorPermit[i], want.Active[i], want.ValidatorPermit[i])
		}
	}
	wantBonds := sparseRows(n, want.Bonds)
	for i := range n {
		got := map[uint16]int{}
		for _, e := range y.Bonds[i] {
			got[e.UID] = int(e.Value)
		}
		exp := map[uint16]int{}
		for _, e := range wantBonds[i] {
			exp[e.UID] = int(e.Value)
		}
		for _, m := range []map[uint16]int{got, exp} {
			for j := range m {
				if d := got[j] - exp[j]; d > 1 || d < -1 {
					t.Errorf("%s: bonds[%d][%d] = %d, want %d", name, i, j, got[j], exp[j])
				}
			}
		}
	}
}

func TestYumaSpecExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/epoch/*.in.json")
	if len(files) < 2 {
		t.Fatalf("spec examples missing: %v", files)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".in.json")
		raw, _ := os.ReadFile(f)
		var si specInput
		if err := json.Unmarshal(raw, &si); err != nil {
			t.Fatal(err)
		}
		outRaw, _ := os.ReadFile(strings.TrimSuffix(f, ".in.json") + ".out.json")
		var want specOutput
		if err := json.Unmarshal(outRaw, &want); err != nil {
			t.Fatal(err)
		}
		y, err := Epoch(si.epochInput())
		if err != nil {
			t.Fatal(err)
		}
		conforms(t, name, si.Emission, y, &want)
	}
}

// referenceEpoch is a direct float64 reading of the spec, dense, written
// for testing only.
func referenceEpoch(in *Input) *specOutput {
	n := len(in.Neurons)
	nr := in.Neurons
	p := in.Params
	normalize := func(v []float64) {
		var s float64
		for _, x := range v {
			s += x
		}
		if s == 0 {
			return
		}
		for i := range v {
			v[i] /= s
		}
	}
	colNorm := func(m [][]float64) {
		for j := range n {
			var s float64
			for i := range n {
				s += m[i][j]
			}
			if s == 0 {
				continue
			}
			for i := range n {
				m[i][j] /= s
			}
		}
	}
	mat := func() [][]float64 {
		m := make([][]float64, n)
		for i := range m {
			m[i] = make([]float64, n)
		}
		return m
	}
	A := make([]bool, n)
	for i, x := range nr {
		A[i] = !(float64(x.LastUpdate)+float64(p.ActivityCutoff) < float64(in.Block))
	}
	s := make([]float64, n)
	for i, x := range nr {
		s[i] = float64(x.Stake)
	}
	normalize(s)
	P2 := make([]bool, n)
	if uint64(n) <= p.MaxAllowedValidators {
		for i := range P2 {
			P2[i] = true
		}
	} else {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		sort.Slice(order, func(a, b int) bool {
			if nr[order[a]].Stake != nr[order[b]].Stake {
				return nr[order[a]].Stake < nr[order[b]].Stake
			}
			return order[a] < order[b]
		})
		for _, i := range order[uint64(n)-p.MaxAllowedValidators:] {
			P2[i] = true
		}
	}
	a := make([]float64, n)
	for i := range a {
		if A[i] && nr[i].ValidatorPermit {
			a[i] = s[i]
		}
	}
	normalize(a)
	W := mat()
	for i, x := range nr {
		for _, e := range rowOf(in.Weights, i) {
			j := int(e.UID)
			if x.ValidatorPermit && i != j && x.LastUpdate > nr[j].RegisteredAt {
				W[i][j] = float64(e.Value)
			}
		}
		normalize(W[i])
	}
	Q := make([]float64, n)
	for i := range n {
		for j := range n {
			Q[j] += W[i][j] * a[i]
		}
	}
	C := make([]float64, n)
	m := 1 - float64(p.Kappa)/65535
	for j := range n {
		type v struct{ w, st float64 }
		var vs []v
		for i := range n {
			if a[i] > 0 {
				vs = append(vs, v{W[i][j], a[i]})
			}
		}
		if len(vs) == 0 {
			continue
		}
		sort.Slice(vs, func(p, q int) bool { return vs[p].w < vs[q].w })
		found := false
		var cum float64
		for p := 0; p < len(vs); {
			w := vs[p].w
			for p < len(vs) && vs[p].w == w {
				cum += vs[p].st
				p++
			}
			if cum > m {
				C[j], found = w, true
				break
			}
		}
		if !found {
			C[j] = vs[len(vs)-1].w
		}
	}
	Wc := mat()
	out := &specOutput{Active: A, ValidatorPermit: P2, ValidatorTrust: make([]float64, n), Trust: make([]float64, n)}
	r := make([]float64, n)
	for i := range n {
		for j := range n {
			Wc[i][j] = math.Min(W[i][j], C[j])
			out.ValidatorTrust[i] += Wc[i][j]
			r[j] += Wc[i][j] * a[i]
		}
	}
	for j := range n {
		if Q[j] != 0 {
			out.Trust[j] = r[j] / Q[j]
		}
	}
	normalize(r)
	out.Ranks, out.Incentive, out.Consensus = r, r, C
	B := mat()
	for i, x := range nr {
		for _, e := range rowOf(in.Bonds, i) {
			if x.LastUpdate > nr[e.UID].RegisteredAt {
				B[i][e.UID] = float64(e.Value)
			}
		}
	}
	colNorm(B)
	rho := float64(p.BondsPenalty) / 65535
	dB := mat()
	for i := range n {
		for j := range n {
			h := (1-rho)*W[i][j] + rho*Wc[i][j]
			if h > 0 {
				dB[i][j] = h * a[i]
			}
		}
	}
	colNorm(dB)
	alpha := 1 - float64(p.BondsMovingAverage)/1e6
	M := mat()
	for i := range n {
		for j := range n {
			M[i][j] = alpha*dB[i][j] + (1-alpha)*B[i][j]
		}
	}
	colNorm(M)
	D := make([]float64, n)
	for i := range n {
		for j := range n {
			D[i] += M[i][j] * r[j]
		}
	}
	normalize(D)
	out.Dividends = D
	var sigma float64
	for i := range n {
		sigma += r[i] + D[i]
	}
	E := float64(in.Emission)
	out.Emission, out.ServerEmission, out.ValidatorEmission = make([]uint64, n), make([]uint64, n), make([]uint64, n)
	var sa float64
	for _, x := range a {
		sa += x
	}
	for i := range n {
		var sg, dl, c float64
		switch {
		case sigma > 0:
			sg, dl, c = r[i]/sigma, D[i]/sigma, (r[i]+D[i])/sigma
		case sa > 0:
			dl, c = a[i], a[i]
		default:
			dl, c = s[i], s[i]
		}
		out.ServerEmission[i], out.ValidatorEmission[i], out.Emission[i] = uint64(sg*E), uint64(dl*E), uint64(c*E)
	}
	out.Bonds = map[string]map[string]uint16{}
	colMax := make([]float64, n)
	for i := range n {
		for j := range n {
			colMax[j] = math.Max(colMax[j], M[i][j])
		}
	}
	for i, x := range nr {
		row := map[string]uint16{}
		switch {
		case P2[i]:
			for j := range n {
				if colMax[j] > 0 && M[i][j] > 0 {
					if q := uint16(M[i][j] / colMax[j] * 65535); q > 0 {
						row[strconv.Itoa(j)] = q
					}
				}
			}
		case x.ValidatorPermit:
		default:
			for _, e := range rowOf(in.Bonds, i) {
				row[strconv.Itoa(int(e.UID))] = e.Value
			}
		}
		out.Bonds[strconv.Itoa(i)] = row
	}
	return out
}

// randomEpochInput builds a random subnet; distinct stakes avoid the
// permit-boundary ties the spec excludes from conformance.
func randomEpochInput(r *rand.Rand, n int) *Input {
	in := &Input{
		Block: 10_000, Emission: uint64(r.Int64N(1 << 40)),
		Params: Params{Kappa: uint64(r.IntN(65536)), BondsMovingAverage: uint64(r.IntN(1_000_001)),
			BondsPenalty: uint64(r.IntN(65536)), ActivityCutoff: uint64(r.IntN(10_000)), MaxAllowedValidators: uint64(1 + r.IntN(n))},
		Weights: make([][]Entry, n), Bonds: make([][]Entry, n),
	}
	if r.IntN(3) == 0 {
		in.Params.BondsPenalty = 65535
	}
	used := map[uint64]bool{}
	for i := range n {
		nr := Neuron{LastUpdate: uint64(r.IntN(10_001)), RegisteredAt: uint64(r.IntN(9_000)), ValidatorPermit: r.IntN(2) == 0}
		if r.IntN(4) != 0 {
			for {
				st := uint64(1 + r.Int64N(1<<40))
				if !used[st] {
					used[st] = true
					nr.Stake = st
					break
				}
			}
		}
		for j := range n {
			if r.IntN(3) == 0 {
				in.Weights[i] = append(in.Weights[i], Entry{UID: uint16(j), Value: uint16(1 + r.IntN(65535))})
			}
			if r.IntN(4) == 0 {
				in.Bonds[i] = append(in.Bonds[i], Entry{UID: uint16(j), Value: uint16(1 + r.IntN(65535))})
			}
		}
		in.Neurons = append(in.Neurons, nr)
	}
	return in
}

// nearThreshold reports inputs whose consensus sits within rounding
// distance of a κ boundary, which the spec excludes from conformance.
func nearThreshold(in *Input) bool {
	n := len(in.Neurons)
	m := 1 - float64(in.Params.Kappa)/65535
	s := make([]float64, n)
	var tot float64
	for i, x := range in.Neurons {
		if x.ValidatorPermit && !(x.LastUpdate+in.Params.ActivityCutoff < in.Block) {
			s[i] = float64(x.Stake)
			tot += s[i]
		}
	}
	if tot == 0 {
		return false
	}
	// Stake prefix sums in stake order, and single stakes, approximate the
	// sums a column's sorted votes can reach.
	for i := range s {
		s[i] /= tot
	}
	sort.Float64s(s)
	var cum float64
	for _, x := range s {
		cum += x
		if math.Abs(cum-m) < 1e-9 || math.Abs(x-m) < 1e-9 {
			return true
		}
	}
	return false
}

func TestYumaMatchesFloatReference(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	runs := 400
	if testing.Short() {
		runs = 100
	}
	compared := 0
	defer func() {
		if compared < runs*9/10 {
			t.Errorf("only %d of %d random inputs compared", compared, runs)
		}
	}()
	for run := range runs {
		in := randomEpochInput(r, 1+r.IntN(24))
		if nearThreshold(in) {
			continue
		}
		compared++
		want := referenceEpoch(in)
		y, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		conforms(t, "random run "+strconv.Itoa(run), in.Emission, y, want)
		if t.Failed() {
			b, _ := json.Marshal(in)
			t.Fatalf("input: %s", b)
		}
	}
}

func TestYumaInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 22))
	for range 200 {
		in := randomEpochInput(r, 1+r.IntN(16))
		y, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		for name, v := range map[string][]Fixed{"incentive": y.Incentive, "dividends": y.Dividends} {
			var sum Fixed
			for _, x := range v {
				sum += x
			}
			if sum != 0 && math.Abs(fxFloat(sum)-1) > 1e-9 {
				t.Fatalf("%s sums to %v", name, fxFloat(sum))
			}
		}
		var total uint64
		for i := range y.Emission {
			total += y.ServerEmission[i] + y.ValidatorEmission[i]
		}
		if total > in.Emission {
			t.Fatalf("paid %d of %d", total, in.Emission)
		}
	}
}
