package scoring

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func TestScoresMovingAverageAndReset(t *testing.T) {
	s, err := NewScores(0.5)
	if err != nil {
		t.Fatal(err)
	}
	s.Update(2, "alice", 1)
	s.Update(2, "alice", 1)
	if v := s.Values()[2]; v != 0.75 {
		t.Fatalf("average %v, want 0.75", v)
	}
	// A new hotkey on the uid starts over.
	s.Update(2, "bob", 1)
	if v := s.Values()[2]; v != 0.5 || s.Holder(2) != "bob" {
		t.Fatalf("after replacement %v %q", v, s.Holder(2))
	}
	if err := s.Update(1, "x", math.NaN()); !errors.Is(err, ErrNonFinite) {
		t.Fatalf("NaN accepted: %v", err)
	}
	if err := s.Update(1, "x", math.Inf(1)); !errors.Is(err, ErrNonFinite) {
		t.Fatal("Inf accepted")
	}
	for _, a := range []float64{0, -1, 1.5, math.NaN()} {
		if _, err := NewScores(a); err == nil {
			t.Errorf("alpha %v accepted", a)
		}
	}
}

// A table survives Entries → RestoreScores exactly, and keeps averaging
// as if it had never been saved; bad entries are refused.
func TestScoresRestore(t *testing.T) {
	s, _ := NewScores(0.3)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		uid := uint16(rng.IntN(40))
		s.Update(uid, fmt.Sprintf("hot-%d", uid%7), rng.Float64())
	}
	r, err := RestoreScores(0.3, s.Entries())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(r.Values(), s.Values()) {
		t.Fatalf("restored %v, want %v", r.Values(), s.Values())
	}
	s.Update(3, "hot-3", 1)
	r.Update(3, "hot-3", 1)
	if !slices.Equal(r.Values(), s.Values()) || r.Holder(3) != s.Holder(3) {
		t.Fatal("restored table averages differently")
	}
	for name, bad := range map[string][]ScoreEntry{
		"twice":     {{UID: 1, Holder: "a", Value: 0.1}, {UID: 1, Holder: "b", Value: 0.2}},
		"no holder": {{UID: 1, Value: 0.1}},
		"NaN":       {{UID: 1, Holder: "a", Value: math.NaN()}},
		"Inf":       {{UID: 1, Holder: "a", Value: math.Inf(-1)}},
	} {
		if _, err := RestoreScores(0.3, bad); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	if _, err := RestoreScores(0, nil); err == nil {
		t.Error("alpha 0 accepted")
	}
}

func TestNormalizeMaxWeight(t *testing.T) {
	cases := []struct {
		x     []float64
		limit float64
		want  []float64
	}{
		{[]float64{1, 1, 2}, 1, []float64{0.25, 0.25, 0.5}},
		{[]float64{8, 1, 1}, 0.5, []float64{0.5, 0.25, 0.25}},
		{[]float64{0, 0}, 0.5, []float64{0.5, 0.5}},
		{[]float64{5, 1}, 0.4, []float64{0.5, 0.5}}, // n·limit <= 1... 0.8 < 1: uniform
		{[]float64{10, 9, 1, 0}, 0.4, []float64{0.4, 0.4, 0.2, 0}},
	}
	for _, tc := range cases {
		got := NormalizeMaxWeight(tc.x, tc.limit)
		for i := range got {
			if math.Abs(got[i]-tc.want[i]) > 1e-12 {
				t.Errorf("%v limit %v: %v, want %v", tc.x, tc.limit, got, tc.want)
				break
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 1))
	for range 500 {
		n := 1 + r.IntN(50)
		x := make([]float64, n)
		for i := range x {
			x[i] = r.Float64() * float64(r.IntN(3))
		}
		limit := 0.01 + r.Float64()
		y := NormalizeMaxWeight(x, limit)
		var sum, max float64
		positive := 0
		for i, v := range y {
			sum += v
			max = math.Max(max, v)
			if x[i] > 0 {
				positive++
			}
		}
		// The cap is reachable when the positive entries can share it.
		if math.Abs(sum-1) > 1e-9 || (float64(positive)*limit > 1 && max > limit+1e-9) {
			t.Fatalf("x %v limit %v: sum %v max %v", x, limit, sum, max)
		}
	}
}

func TestProcessFollowsBittensorRules(t *testing.T) {
	// Positive scores only, normalized.
	u, w := Process([]float64{0, 2, math.NaN(), 6, -1}, 1, 1)
	if len(u) != 2 || u[0] != 1 || u[1] != 3 || math.Abs(w[0]-0.25) > 1e-12 {
		t.Fatalf("%v %v", u, w)
	}
	// No positive score: uniform over all.
	u, w = Process([]float64{0, 0, 0, 0}, 1, 1)
	if len(u) != 4 || w[2] != 0.25 {
		t.Fatalf("%v %v", u, w)
	}
	// Fewer positive than min_allowed: every uid gets a floor.
	u, w = Process([]float64{0, 1, 0, 0}, 3, 1)
	if len(u) != 4 || w[0] <= 0 || w[1] < 0.99 {
		t.Fatalf("%v %v", u, w)
	}
}

// ToU16 and FromU16 round trip: the chain's form gives back the
// normalized weights within 1/65535 of the largest.
func TestU16RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(2, 2))
	for range 500 {
		n := 1 + r.IntN(100)
		uids := make([]uint16, n)
		w := make([]float64, n)
		var sum float64
		for i := range w {
			uids[i] = uint16(i)
			w[i] = r.Float64()
			sum += w[i]
		}
		u, v, err := ToU16(uids, w)
		if err != nil {
			t.Fatal(err)
		}
		var max uint16
		for _, x := range v {
			max = max16(max, x)
		}
		if max != 65535 {
			t.Fatalf("largest value %d", max)
		}
		back := FromU16(n, u, v)
		for i := range back {
			if math.Abs(back[i]-w[i]/sum) > 2.0/65535 {
				t.Fatalf("uid %d: %v, want %v", i, back[i], w[i]/sum)
			}
		}
	}
	if _, _, err := ToU16([]uint16{1}, []float64{-1}); err == nil {
		t.Error("negative weight accepted")
	}
	if u, v, _ := ToU16([]uint16{1, 2}, []float64{0, 0}); u != nil || v != nil {
		t.Error("all-zero weights produced entries")
	}
}

func max16(a, b uint16) uint16 {
	if a > b {
		return a
	}
	return b
}

// LegalWeights always produces what the chain's max_weight_limit accepts.
func TestLegalWeightsPassChainLimit(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 3))
	for range 300 {
		n := 2 + r.IntN(64)
		scores := make([]float64, n)
		for i := range scores {
			scores[i] = math.Pow(r.Float64(), 4) * 100
		}
		limit := uint16(65535/n + 1 + r.IntN(65535-65535/n-1))
		u, v, err := LegalWeights(scores, 1+r.IntN(n), limit)
		if err != nil {
			t.Fatal(err)
		}
		if !ChainAcceptsMax(v, limit) || len(u) != len(v) {
			t.Fatalf("limit %d: values %v rejected", limit, v)
		}
	}
}
