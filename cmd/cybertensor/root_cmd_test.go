package main

import (
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
)

// Prices and the root network against a chain: burn-cost and lock-cost
// quote, --max-burn one base unit below the quote and --max-lock below the
// cost are refused with the chain's named error, and at the quote pay; a root
// member's weights 0.25/0.75 become exactly 25% and 75% of block emission
// in subnets list and the metagraph header; bad input is a usage error.
func TestRootAndPricesAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	url := runningChain(t, c, home)
	std := []string{"--home", home, "--chain", url}
	key := append(std, "--password-file", pw)
	args := func(base []string, extra ...string) []string { return append(append([]string(nil), extra...), base...) }
	hotkey := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout).Hotkeys[0].Address

	// Lock cost.
	c.ok(args(key, "subnets", "create", "--name", "alpha")...)
	lc := decode[chain.LockCost](t, c.ok(args(std, "subnets", "lock-cost", "--json")...).stdout)
	if lc.Amount == 0 || lc.Subnets != 1 || lc.LastLock == 0 {
		t.Fatalf("lock-cost --json: %+v", lc)
	}
	if r := c.ok(args(std, "subnets", "lock-cost", "--raw")...); !regexpLine(r.stdout, "min_lock_cost", "1000000000") {
		t.Fatalf("lock-cost --raw:\n%s", r.stdout)
	}
	// The cost decays a little each block until inclusion, so the exact
	// boundary is chain's test; here the limit is the minimum, far below.
	r := c.fail(exitFailure, args(key, "subnets", "create", "--name", "beta", "--max-lock", chain.FormatTokens(lc.MinLockCost))...)
	if !strings.Contains(r.stderr, "lock_above_limit") {
		t.Fatalf("--max-lock below the cost: %s", r.stderr)
	}
	c.ok(args(key, "subnets", "create", "--name", "beta", "--max-lock", chain.FormatTokens(lc.Amount))...)

	// Burn cost.
	bc := decode[chain.BurnCost](t, c.ok(args(std, "subnets", "burn-cost", "--netuid", "1", "--json")...).stdout)
	if bc.Netuid != 1 || bc.Burn == 0 || bc.NextAdjustmentBlock <= bc.Block {
		t.Fatalf("burn-cost --json: %+v", bc)
	}
	if r := c.ok(args(std, "subnets", "burn-cost", "--netuid", "1")...); !regexpLine(r.stdout, "burn", chain.FormatTokens(bc.Burn)) {
		t.Fatalf("burn-cost:\n%s", r.stdout)
	}
	r = c.fail(exitFailure, args(key, "subnets", "register", "--netuid", "1", "--max-burn", chain.FormatTokens(bc.Burn-1))...)
	if !strings.Contains(r.stderr, "burn_above_limit") {
		t.Fatalf("--max-burn below the burn: %s", r.stderr)
	}
	c.ok(args(key, "subnets", "register", "--netuid", "1", "--max-burn", chain.FormatTokens(bc.Burn))...)

	// Root.
	if members := decode[[]rootMember](t, c.ok(args(std, "root", "list", "--json")...).stdout); len(members) != 0 {
		t.Fatalf("root list before anyone joined: %+v", members)
	}
	c.ok(args(key, "root", "register")...)
	c.ok(args(key, "stake", "add", "--amount", "10")...)
	c.ok(args(key, "root", "weights", "--netuids", "1,2", "--weights", "0.25,0.75")...)
	members := decode[[]rootMember](t, c.ok(args(std, "root", "list", "--json")...).stdout)
	// At least the 10 tokens staked: an epoch may have paid the hotkey
	// since (the chain runs on its own clock).
	if len(members) != 1 || members[0].Hotkey != hotkey || members[0].Stake < 10*chain.BaseUnitsPerToken || len(members[0].Weights) != 2 {
		t.Fatalf("root list --json: %+v", members)
	}
	// The table shows the hotkey with at least its 10 tokens (an epoch may
	// have paid it more by now).
	if r := c.ok(args(std, "root", "list")...); !rootListShows(r.stdout, hotkey, 10) {
		t.Fatalf("root list:\n%s", r.stdout)
	}
	got := decode[[]rootMember](t, c.ok(args(std, "root", "get-weights", "--hotkey", hotkey, "--json")...).stdout)
	if len(got) != 1 || got[0].Weights[0] != (rootWeight{Netuid: 1, Value: 21845, Share: 0.25}) || got[0].Weights[1] != (rootWeight{Netuid: 2, Value: 65535, Share: 0.75}) {
		t.Fatalf("root get-weights --json: %+v", got)
	}
	if r := c.ok(args(std, "root", "get-weights")...); !strings.Contains(r.stdout, "1:0.2500 2:0.7500") {
		t.Fatalf("root get-weights:\n%s", r.stdout)
	}
	c.ok("--home", home, "wallet", "new-hotkey", "--hotkey", "second")
	r = c.fail(exitFailure, args(std, "root", "get-weights", "--hotkey", "second")...)
	if !strings.Contains(r.stderr, "is not on the root network") {
		t.Fatalf("get-weights of a non-member: %s", r.stderr)
	}

	// The next root epoch splits emission 25/75.
	deadline := time.Now().Add(30 * time.Second)
	for {
		subs := decode[[]subnetOut](t, c.ok(args(std, "subnets", "list", "--json")...).stdout)
		if len(subs) == 3 && subs[1].EmissionPercent == 25 && subs[2].EmissionPercent == 75 && subs[2].EmissionPerBlock == 750_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("emission shares never became 25%%/75%%: %+v", subs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := c.ok(args(std, "subnets", "list")...); !strings.Contains(r.stdout, "25.00%") || !strings.Contains(r.stdout, "75.00%") {
		t.Fatalf("subnets list:\n%s", r.stdout)
	}
	if r := c.ok(args(std, "metagraph", "--netuid", "2", "--raw")...); !strings.Contains(r.stdout, "emission 75.00% of block emission (750000000 per block)") {
		t.Fatalf("metagraph header:\n%s", r.stdout)
	}
	m := decode[struct {
		chain.Metagraph
		EmissionPercent float64 `json:"emission_percent"`
	}](t, c.ok(args(std, "metagraph", "--netuid", "1", "--json")...).stdout)
	if m.N != 1 || m.EmissionPerBlock != 250_000_000 || math.Abs(m.EmissionPercent-25) > 1e-9 {
		t.Fatalf("metagraph --json: %+v", m)
	}

	// Bad input: usage errors, before any password.
	for _, bad := range [][]string{
		{"root", "weights", "--netuids", "0,1", "--weights", "1,1"},
		{"root", "weights", "--netuids", "1,2", "--weights", "1"},
		{"root", "weights", "--netuids", "1", "--weights", "0"},
		{"subnets", "register", "--max-burn", "-1"},
		{"subnets", "register", "--max-burn", "0"},
		{"subnets", "register", "--pow", "--max-burn", "1"},
		{"subnets", "create", "--name", "x", "--max-lock", "lots"},
		{"subnets", "burn-cost", "--netuid", "0"},
	} {
		c.fail(exitUsage, args(key, bad...)...)
	}
}

// rootListShows reports whether root list's table has a row for hotkey
// whose STAKE is at least min tokens.
func rootListShows(table, hotkey string, min float64) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= 4 && f[1] == hotkey {
			stake, err := strconv.ParseFloat(strings.ReplaceAll(f[3], ",", ""), 64)
			return err == nil && stake >= min
		}
	}
	return false
}
