package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
)

func TestParseShares(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []uint32
		err  string
	}{
		{"0.7,0.3", []uint32{7, 3}, ""},
		{"1", []uint32{1}, ""},
		{"3, 1", []uint32{3, 1}, ""},
		{"0.25,0.25,0.5", []uint32{1, 1, 2}, ""},
		{"0.333,0.667", []uint32{333, 667}, ""},
		{"2,4,6", []uint32{1, 2, 3}, ""},
		{"", nil, "give 1 to 16"},
		{"1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", nil, "give 1 to 16"},
		{"0.5,0", nil, `entry 2 "0": want a positive`},
		{"-1,2", nil, "entry 1"},
		{"1/2,1", nil, "entry 1"},
		{"1e3,1", nil, "entry 1"},
		{"x", nil, "entry 1"},
		{"0.0000000001,1", nil, "too fine-grained"},
	} {
		got, err := parseShares(tc.in)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: %v, want %q", tc.in, err, tc.err)
		case tc.err == "" && (err != nil || len(got) != len(tc.want)):
			t.Errorf("%q: %v %v, want %v", tc.in, got, err, tc.want)
		case tc.err == "":
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("%q: %v, want %v", tc.in, got, tc.want)
				}
			}
		}
	}
}

func TestMechanismSharesFromASpec(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want []uint32
		ok   bool
	}{
		{[]float64{0.7, 0.3}, []uint32{7, 3}, true},
		{[]float64{1.0 / 3, 2.0 / 3}, []uint32{333333, 666667}, true},
		{[]float64{0.5, 0.25, 0.25}, []uint32{2, 1, 1}, true},
		{[]float64{0.9999999, 0.0000001}, []uint32{1000000, 1}, true},
		{nil, nil, false},
		{[]float64{0.5, 0}, nil, false},
		{make([]float64, 17), nil, false},
	} {
		got, err := mechanismShares(tc.in)
		if (err == nil) != tc.ok || len(got) != len(tc.want) {
			t.Errorf("%v: %v %v", tc.in, got, err)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("%v: %v, want %v", tc.in, got, tc.want)
			}
		}
	}
}

// subnets mechanisms set|get, weights set|show --mechanism, metagraph
// --mechanism and subnets set-spec against a chain: text and JSON, the
// pending change until the boundary, refusals by the chain (a stranger, a
// mechanism the subnet does not run) and bad flags refused before any
// transaction.
func TestMechanismsAndSetSpecAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--wallet", "bob", "--password-file", pw)
	url := runningChain(t, c, home)
	std := []string{"--home", home, "--chain", url}
	key := append(std, "--password-file", pw)
	bob := append(key, "--wallet", "bob")
	args := func(base []string, a ...string) []string { return append(a, base...) }
	c.ok(args(key, "subnets", "create", "--name", "alpha")...)

	// Bad flags: usage errors before anything is sent.
	for _, bad := range [][]string{{"--shares", "0.5,0"}, {"--shares", ""}, {"--shares", "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1"}} {
		if r := c.fail(exitUsage, args(key, append([]string{"subnets", "mechanisms", "set", "--netuid", "1"}, bad...)...)...); !strings.Contains(r.stderr, "--shares") {
			t.Fatalf("%v: %s", bad, r.stderr)
		}
	}
	if r := c.fail(exitFailure, args(bob, "subnets", "mechanisms", "set", "--netuid", "1", "--shares", "1,1")...); !strings.Contains(r.stderr, "not_subnet_owner") {
		t.Fatalf("a stranger: %s", r.stderr)
	}
	r := c.ok(args(key, "subnets", "mechanisms", "set", "--netuid", "1", "--shares", "0.7,0.3")...)
	if !strings.Contains(r.stdout, "2 mechanisms (70.00%, 30.00%) take effect at block") {
		t.Fatalf("set: %s", r.stdout)
	}
	got := decode[mechanismsOut](t, c.ok(args(std, "subnets", "mechanisms", "get", "--netuid", "1", "--json")...).stdout)
	// Pending until the boundary (unless the boundary came between).
	if (got.PendingShares != nil) == (got.Count() == 2) || (got.PendingShares != nil && got.EffectiveBlock == 0) {
		t.Fatalf("get after set: %+v", got)
	}
	deadline := time.Now().Add(60 * time.Second)
	for got.Count() != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("mechanisms never applied: %+v", got)
		}
		time.Sleep(50 * time.Millisecond)
		got = decode[mechanismsOut](t, c.ok(args(std, "subnets", "mechanisms", "get", "--netuid", "1", "--json")...).stdout)
	}
	if got.Shares[0] != 7 || got.Shares[1] != 3 || got.Percent[0] != 70 || got.PendingShares != nil || len(got.Incentive) != 2 {
		t.Fatalf("applied: %+v", got)
	}
	r = c.ok(args(std, "subnets", "mechanisms", "get", "--netuid", "1")...)
	if !strings.Contains(r.stdout, "runs 2 mechanism(s)") || !regexpLine(r.stdout, "1", "3") {
		t.Fatalf("get: %s", r.stdout)
	}

	// Weights on mechanism 1 (a self weight needs no permit); mechanism 2
	// is refused by the chain.
	c.ok(args(key, "subnets", "register", "--netuid", "1")...)
	c.ok(args(key, "weights", "set", "--netuid", "1", "--uids", "0", "--weights", "1", "--mechanism", "1")...)
	if r := c.fail(exitFailure, args(key, "weights", "set", "--netuid", "1", "--uids", "0", "--weights", "1", "--mechanism", "2")...); !strings.Contains(r.stderr, "mechanism_does_not_exist") {
		t.Fatalf("mechanism 2: %s", r.stderr)
	}
	rows := decode[[][]chain.Entry](t, c.ok(args(std, "weights", "show", "--netuid", "1", "--mechanism", "1", "--json")...).stdout)
	if len(rows) != 1 || len(rows[0]) != 1 || rows[0][0].UID != 0 {
		t.Fatalf("weights show --mechanism 1: %v", rows)
	}
	if rows := decode[[][]chain.Entry](t, c.ok(args(std, "weights", "show", "--netuid", "1", "--json")...).stdout); len(rows) != 1 || len(rows[0]) != 0 {
		t.Fatalf("weights show (mechanism 0): %v", rows)
	}

	// The metagraph: a section per mechanism, or one mechanism's column.
	if r := c.ok(args(std, "metagraph", "--netuid", "1")...); !strings.Contains(r.stdout, "incentive per mechanism:") || !strings.Contains(r.stdout, "M1") {
		t.Fatalf("metagraph: %s", r.stdout)
	}
	m := decode[map[string]any](t, c.ok(args(std, "metagraph", "--netuid", "1", "--mechanism", "1", "--json")...).stdout)
	if m["mechanism"] != float64(1) || m["incentive"] == nil || m["mechanism_incentive"] != nil {
		t.Fatalf("metagraph --mechanism 1 --json: %v", m)
	}
	if r := c.ok(args(std, "metagraph", "--netuid", "1", "--mechanism", "0", "--fields", "uid")...); !strings.Contains(r.stdout, "INCENTIVE") || !strings.Contains(r.stdout, "mechanism 0's") {
		t.Fatalf("metagraph --mechanism 0: %s", r.stdout)
	}
	if r := c.fail(exitUsage, args(std, "metagraph", "--netuid", "1", "--mechanism", "2")...); !strings.Contains(r.stderr, "runs 2 mechanism(s), 0 to 1") {
		t.Fatalf("metagraph --mechanism 2: %s", r.stderr)
	}

	// set-spec: refused without a spec, for a stranger; pending, then the
	// subnet's spec; its text in the library.
	if r := c.fail(exitUsage, args(key, "subnets", "set-spec", "1")...); !strings.Contains(r.stderr, "--spec FILE") {
		t.Fatalf("no spec: %s", r.stderr)
	}
	if r := c.fail(exitUsage, args(key, "subnets", "set-spec", "x", "--builtin", "qa")...); !strings.Contains(r.stderr, "netuid") {
		t.Fatalf("bad netuid: %s", r.stderr)
	}
	if r := c.fail(exitFailure, args(bob, "subnets", "set-spec", "1", "--builtin", "qa")...); !strings.Contains(r.stderr, "only its owner") {
		t.Fatalf("a stranger: %s", r.stderr)
	}
	out := decode[setSpecOut](t, c.ok(args(key, "subnets", "set-spec", "1", "--builtin", "qa", "--json")...).stdout)
	if out.Netuid != 1 || len(out.SpecHash) != 64 || out.EffectiveBlock <= out.Height || out.CID == "" {
		t.Fatalf("set-spec --json: %+v", out)
	}
	// The built-in spec has one mechanism: set-spec sent that too.
	if len(out.Mechanisms) != 1 {
		t.Fatalf("set-spec of a one-mechanism spec on a two-mechanism subnet sent %v", out.Mechanisms)
	}
	deadline = time.Now().Add(60 * time.Second)
	for {
		subs := decode[[]chain.SubnetInfo](t, c.ok(args(std, "subnets", "list", "--json")...).stdout)
		s := subs[1]
		if s.PendingSpecHash == nil && len(s.SpecHash) == 32 {
			if s.SpecEffectiveBlock != out.EffectiveBlock {
				t.Fatalf("applied at %d, announced %d", s.SpecEffectiveBlock, out.EffectiveBlock)
			}
			break
		}
		if s.SpecEffectiveBlock != out.EffectiveBlock || len(s.PendingSpecHash) != 32 {
			t.Fatalf("pending: %+v", s)
		}
		if time.Now().After(deadline) {
			t.Fatalf("spec never applied: %+v", s)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := c.ok(args(std, "subnets", "spec", "1")...); !strings.Contains(r.stdout, "name:") {
		t.Fatalf("subnets spec after set-spec: %s", r.stdout)
	}
	if got := decode[mechanismsOut](t, c.ok(args(std, "subnets", "mechanisms", "get", "--netuid", "1", "--json")...).stdout); got.Count() != 1 {
		t.Fatalf("mechanisms after the one-mechanism spec applied: %+v", got)
	}
	// Again: the same mechanisms, so only the spec is sent.
	r = c.ok(args(key, "subnets", "set-spec", "1", "--builtin", "qa")...)
	if !strings.Contains(r.stdout, "becomes subnet 1's spec at block") || strings.Contains(r.stdout, "mechanism") {
		t.Fatalf("set-spec: %s", r.stdout)
	}

	// subnets create --spec with mechanisms: sends their shares once the
	// subnet is open.
	spec := writeFile(t, dir, "multi.yaml", `version: 2
name: multi
synapses: [text.generate]
mechanisms:
  - {name: quality, share: 0.7, tasks: {source: knowledge}, reward: '1.0'}
  - {name: speed, share: 0.3, tasks: {source: knowledge}, reward: 'latency_score(latency_ms, timeout_ms)'}
query: {every: 1, timeout: 1s}
alpha: 0.5
weights_every: 3
`)
	r = c.ok(args(key, "subnets", "create", "--spec", spec)...)
	if !strings.Contains(r.stderr, "2 mechanisms (70.00%, 30.00%) take effect at block") {
		t.Fatalf("create with mechanisms: %s", r.stderr)
	}
	got = decode[mechanismsOut](t, c.ok(args(std, "subnets", "mechanisms", "get", "--netuid", "2", "--json")...).stdout)
	shares := got.Shares
	if got.PendingShares != nil {
		shares = got.PendingShares
	}
	if len(shares) != 2 || shares[0] != 7 || shares[1] != 3 {
		t.Fatalf("the new subnet's mechanisms: %+v", got)
	}
}
