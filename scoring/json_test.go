package scoring

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The examples through the JSON contract: parse, run, print, read back.
func TestJSONExamples(t *testing.T) {
	files, _ := filepath.Glob("testdata/epoch/*.in.json")
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		in, err := ParseInput(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		b, err := out.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, _ := out.MarshalJSON()
		if !bytes.Equal(b, again) {
			t.Fatal("output bytes differ between two encodings")
		}
		var got, want specOutput
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("output is not valid JSON: %v\n%s", err, b)
		}
		wantRaw, _ := os.ReadFile(strings.TrimSuffix(f, ".in.json") + ".out.json")
		json.Unmarshal(wantRaw, &want)
		// Compare the printed output to the expected one.
		n := len(want.Active)
		for i := range n {
			for _, pair := range [][2][]float64{{got.Ranks, want.Ranks}, {got.Trust, want.Trust}, {got.Dividends, want.Dividends}, {got.Incentive, want.Incentive}, {got.Consensus, want.Consensus}, {got.ValidatorTrust, want.ValidatorTrust}} {
				if d := pair[0][i] - pair[1][i]; d > 1e-6 || d < -1e-6 {
					t.Errorf("%s: uid %d printed %v, want %v", f, i, pair[0][i], pair[1][i])
				}
			}
		}
		if len(got.Bonds) != len(want.Bonds) {
			t.Errorf("%s: bonds rows %v, want %v", f, got.Bonds, want.Bonds)
		}
	}
}

func TestParseInputErrorsNameTheField(t *testing.T) {
	base := `{"block": 10, "emission": 100, "params": {"kappa": 32767, "bonds_moving_average": 900000, "activity_cutoff": 5, "max_allowed_validators": 1},
	 "neurons": [{"uid": 0, "stake": 1, "last_update": 1, "registered_at": 0, "validator_permit": true},
	             {"uid": 1, "stake": 2, "last_update": 1, "registered_at": 0, "validator_permit": false}],
	 "weights": {"0": {"1": 5}}, "bonds": {"0": {"1": 7}}}`
	if _, err := ParseInput([]byte(base)); err != nil {
		t.Fatalf("base input: %v", err)
	}
	cases := []struct{ name, old, new, field string }{
		{"not json", base, `{"block": `, "not a JSON object"},
		{"array", base, `[1, 2]`, "not a JSON object"},
		{"missing block", `"block": 10, `, ``, "block: missing"},
		{"negative", `"block": 10`, `"block": -10`, "block: -10 is negative"},
		{"fractional", `"emission": 100`, `"emission": 100.5`, "emission: 100.5 is not an integer"},
		{"exponent", `"emission": 100`, `"emission": 1e2`, "emission: 1e2 is not an integer"},
		{"string", `"emission": 100`, `"emission": "100"`, "emission: want an integer"},
		{"emission too large", `"emission": 100`, `"emission": 9223372036854775808`, "emission: 9223372036854775808 is out of range"},
		{"kappa", `"kappa": 32767`, `"kappa": 65536`, "params.kappa: 65536 is out of range"},
		{"bonds penalty", `"kappa": 32767`, `"kappa": 32767, "bonds_penalty": 70000`, "params.bonds_penalty"},
		{"bma", `"bonds_moving_average": 900000`, `"bonds_moving_average": 1000001`, "params.bonds_moving_average"},
		{"missing param", `"activity_cutoff": 5, `, ``, "params.activity_cutoff: missing"},
		{"params not object", `"params": {"kappa": 32767, "bonds_moving_average": 900000, "activity_cutoff": 5, "max_allowed_validators": 1}`, `"params": 3`, "params: want an object"},
		{"uid not dense", `{"uid": 1, "stake": 2`, `{"uid": 5, "stake": 2`, "neurons[1].uid: uids must be dense 0..n-1 in order"},
		{"negative stake", `"stake": 2`, `"stake": -2`, "neurons[1].stake: -2 is negative"},
		{"stake sum", `"stake": 2`, `"stake": 9223372036854775807`, "neurons[1].stake: the sum of stakes exceeds"},
		{"permit type", `"validator_permit": false`, `"validator_permit": 0`, "neurons[1].validator_permit: want true or false"},
		{"missing permit", `, "validator_permit": false`, ``, "neurons[1].validator_permit: missing"},
		{"neurons not array", `"neurons": [`, `"neurons": 5, "x": [`, "neurons: want an array"},
		{"weight too big", `{"1": 5}`, `{"1": 65536}`, `weights["0"]["1"]: 65536 is out of range 0..65535`},
		{"weight key leading zero", `{"1": 5}`, `{"01": 5}`, `weights["0"]["01"]: key "01" is not a uid`},
		{"weight key signed", `{"1": 5}`, `{"+1": 5}`, `key "+1" is not a uid`},
		{"weight key out of range", `{"1": 5}`, `{"2": 5}`, `weights["0"]["2"]: uid 2 out of range 0..1`},
		{"weight row key", `"weights": {"0"`, `"weights": {"7"`, `weights["7"]: uid 7 out of range`},
		{"bond value negative", `{"1": 7}`, `{"1": -7}`, `bonds["0"]["1"]: -7 is negative`},
		{"bonds not object", `"bonds": {"0": {"1": 7}}`, `"bonds": [1]`, `bonds: want an object`},
	}
	for _, tc := range cases {
		input := strings.Replace(base, tc.old, tc.new, 1)
		if input == base && tc.old != base {
			t.Fatalf("%s: fixture did not change", tc.name)
		}
		_, err := ParseInput([]byte(input))
		if err == nil || !errors.Is(err, ErrInvalidInput) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err %v, want one naming %q", tc.name, err, tc.field)
		}
	}
	// Optional fields and unknown fields.
	in, err := ParseInput([]byte(`{"block": 1, "emission": 0, "params": {"kappa": 0, "bonds_moving_average": 0, "activity_cutoff": 0, "max_allowed_validators": 0}, "neurons": [], "extra": [1]}`))
	if err != nil || in.Params.BondsPenalty != 65535 || len(in.Neurons) != 0 {
		t.Fatalf("minimal input: %+v %v", in, err)
	}
	out, err := Epoch(in)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := out.MarshalJSON(); !json.Valid(b) {
		t.Fatalf("empty subnet output: %s", b)
	}
}

// FuzzParseInput: arbitrary bytes never panic; accepted inputs run an
// epoch whose outputs have n entries, pay at most the emission, and have
// incentive and dividends summing to 1 or 0.
func FuzzParseInput(f *testing.F) {
	files, _ := filepath.Glob("testdata/epoch/*.in.json")
	for _, p := range files {
		b, _ := os.ReadFile(p)
		f.Add(b)
	}
	f.Add([]byte(`{"block":1,"emission":5,"params":{"kappa":0,"bonds_moving_average":0,"activity_cutoff":0,"max_allowed_validators":0},"neurons":[{"uid":0,"stake":0,"last_update":0,"registered_at":0,"validator_permit":true}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := ParseInput(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if len(in.Neurons) > 512 {
			return
		}
		out, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		n := len(in.Neurons)
		if len(out.Ranks) != n || len(out.Emission) != n || len(out.Bonds) != n {
			t.Fatal("output lengths")
		}
		var paid uint64
		for i := range n {
			paid += out.ServerEmission[i] + out.ValidatorEmission[i]
		}
		if paid > in.Emission {
			t.Fatalf("paid %d of %d", paid, in.Emission)
		}
		for _, v := range [][]Fixed{out.Incentive, out.Dividends} {
			var s Fixed
			for _, x := range v {
				s += x
			}
			if s != 0 && (s > One || One-s > Fixed(n+1)*8) {
				t.Fatalf("sums to %v", s.Float64())
			}
		}
		if _, err := out.MarshalJSON(); err != nil {
			t.Fatal(err)
		}
	})
}
