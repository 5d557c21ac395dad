package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestTakePercent(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint16
		ok   bool
	}{
		{"0", 0, true}, {"18", 11796, true}, {"9.5", 6226, true}, {"9.5%", 6226, true}, {"100", 65535, true},
		{"0.01", 7, true}, {" 12.25 ", 8028, true},
		{"9.555", 0, false}, {"-1", 0, false}, {"100.01", 0, false}, {"abc", 0, false}, {"1e1", 0, false}, {"1/2", 0, false}, {"", 0, false},
	} {
		got, err := parseTakePercent(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("%q: %d, %v; want %d (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
	// Every percentage with two decimals survives the trip through u16.
	for centi := 0; centi <= 10000; centi++ {
		s := fmt.Sprintf("%d.%02d", centi/100, centi%100)
		take, err := parseTakePercent(s)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if got := takePercent(take); got != s+"%" {
			t.Fatalf("%s%% -> %d -> %s", s, take, got)
		}
	}
	if got := sharePercent(1, 3); got != "33.33%" {
		t.Errorf("share %s", got)
	}
	if got := sharePercent(5, 0); got != "0.00%" {
		t.Errorf("share of nothing %s", got)
	}
	if got := returnOn(500_000_000_000, 2_000_000_000); got != 1_000_000_000 {
		t.Errorf("500 tokens at 2 per 1000: %d", got)
	}
}

// delegate set-take, get-take, list and mine against a chain: the take
// lowered and read back in text and JSON, a raise inside take_rate_limit
// refused with the chain's named error, bad takes refused before any
// password, and after an epoch the list and a nominator's view.
func TestDelegateTakesAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--wallet", "nom", "--password-file", pw)
	url := runningChain(t, c, home)
	std := []string{"--home", home, "--chain", url}
	key := append(std, "--password-file", pw)
	run := func(args ...string) result { t.Helper(); return c.ok(append(args, std...)...) }
	sign := func(args ...string) result { t.Helper(); return c.ok(append(args, key...)...) }
	sign("subnets", "create", "--name", "alpha")
	sign("subnets", "register", "--netuid", "1")
	sign("stake", "add", "--amount", "10")
	hotkey := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout).Hotkeys[0].Address

	// Not a delegate yet.
	if r := c.fail(exitFailure, append([]string{"delegate", "get-take", "--hotkey", hotkey}, std...)...); !strings.Contains(r.stderr, "is not a delegate") {
		t.Fatalf("get-take of a non-delegate: %s", r.stderr)
	}
	if r := c.fail(exitFailure, append([]string{"delegate", "set-take", "--take", "5"}, key...)...); !strings.Contains(r.stderr, "not_delegate") {
		t.Fatalf("set-take of a non-delegate: %s", r.stderr)
	}
	sign("delegate")
	got := decode[takeOut](t, run("delegate", "get-take", "--json").stdout)
	if got.Take != 11796 || got.TakePercent != "18.00%" || got.MaxTake != 11796 || got.MinTake != 0 || got.TakeRaisedAt == 0 || got.NextTakeRaise != got.TakeRaisedAt+1000 || got.Hotkey != hotkey {
		t.Fatalf("get-take after opening: %+v", got)
	}

	// Lower: at once.
	if r := sign("delegate", "set-take", "--take", "9.5"); !strings.Contains(r.stdout, "take_decreased") {
		t.Fatalf("set-take: %s", r.stdout)
	}
	if r := run("delegate", "get-take", "--hotkey", hotkey); !strings.Contains(r.stdout, "9.50% (6226 of 65535)") || !strings.Contains(r.stdout, "0.00% to 18.00%") {
		t.Fatalf("get-take text: %s", r.stdout)
	}
	// Raise inside take_rate_limit (1000 blocks on a dev chain): refused.
	if r := c.fail(exitFailure, append([]string{"delegate", "set-take", "--take", "18"}, key...)...); !strings.Contains(r.stderr, "take_rate_limit_exceeded") {
		t.Fatalf("raise: %s", r.stderr)
	}
	if r := c.fail(exitFailure, append([]string{"delegate", "set-take", "--take-raw", "11797"}, key...)...); !strings.Contains(r.stderr, "invalid_take") {
		t.Fatalf("above max_take: %s", r.stderr)
	}
	if g := decode[takeOut](t, run("delegate", "get-take", "--json").stdout); g.Take != 6226 || g.TakeRaisedAt != got.TakeRaisedAt {
		t.Fatalf("after refusals: %+v", g)
	}
	// Bad takes: usage errors before any password.
	for _, bad := range [][]string{{}, {"--take", "9.555"}, {"--take", "abc"}, {"--take", "101"}, {"--take", "5", "--take-raw", "5"}, {"--take-raw", "70000"}, {"--take-raw", "-1"}} {
		c.fail(exitUsage, append(append([]string{"delegate", "set-take"}, bad...), std...)...)
	}

	if r := run("delegate", "mine", "--wallet", "nom"); !strings.Contains(r.stdout, "no stake on any delegate") {
		t.Fatalf("mine without delegations: %s", r.stdout)
	}
	if r := run("delegate", "mine", "--wallet", "nom", "--json"); !strings.Contains(r.stdout, `"delegations": []`) {
		t.Fatalf("mine --json without delegations: %s", r.stdout)
	}
	// A nominator stakes on the delegate.
	c.ok(append([]string{"faucet", "--wallet", "nom"}, key...)...)
	c.ok(append([]string{"stake", "add", "--wallet", "nom", "--hotkey", hotkey, "--amount", "30"}, key...)...)
	deadline := time.Now().Add(60 * time.Second)
	var list []delegateOut
	for {
		list = decode[[]delegateOut](t, run("delegate", "list", "--json").stdout)
		if len(list) == 1 && list[0].ReturnEpochs > 0 && list[0].TotalStake > 40_000_000_000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no epoch paid after the nomination: %+v", list)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if d := list[0]; d.Hotkey != hotkey || d.Take != 6226 || d.TakePercent != "9.50%" || d.Nominators != 2 || d.ReturnPer1000 == 0 {
		t.Fatalf("list --json: %+v", d)
	}
	if r := run("delegate", "list"); !strings.Contains(r.stdout, "RETURN/1000") || !strings.Contains(r.stdout, "9.50%") || !strings.Contains(r.stdout, hotkey) {
		t.Fatalf("list: %s", r.stdout)
	}
	// Text in tokens, --raw in base units.
	column := func(out string, i int) string {
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) > i && f[0] == hotkey {
				return f[i]
			}
		}
		t.Fatalf("no row for %s: %s", hotkey, out)
		return ""
	}
	if v, err := strconv.ParseUint(column(run("delegate", "list", "--raw").stdout, 2), 10, 64); err != nil || v < 40_000_000_000 {
		t.Fatalf("list --raw total stake %d %v", v, err)
	}
	if v, err := strconv.ParseFloat(column(run("delegate", "list").stdout, 2), 64); err != nil || v < 40 || v > 1e6 {
		t.Fatalf("list total stake %v %v", v, err)
	}
	mine := decode[struct {
		Coldkey     string          `json:"coldkey"`
		Delegations []delegationOut `json:"delegations"`
	}](t, run("delegate", "mine", "--wallet", "nom", "--json").stdout)
	if len(mine.Delegations) != 1 {
		t.Fatalf("mine --json: %+v", mine)
	}
	if d := mine.Delegations[0]; d.Hotkey != hotkey || d.Stake < 30_000_000_000 || d.Stake >= d.TotalStake || d.Take != 6226 || d.SharePercent == "100.00%" || d.ReturnOnStake != returnOn(d.Stake, d.ReturnPer1000) {
		t.Fatalf("mine --json: %+v", d)
	}
	if r := run("delegate", "mine", "--wallet", "nom"); !strings.Contains(r.stdout, hotkey) || !strings.Contains(r.stdout, "9.50%") || !strings.Contains(r.stdout, "YOUR STAKE") {
		t.Fatalf("mine: %s", r.stdout)
	}
	// The owner staked on its own delegate too.
	owner := decode[struct {
		Delegations []delegationOut `json:"delegations"`
	}](t, run("delegate", "mine", "--wallet", "default", "--json").stdout)
	if len(owner.Delegations) != 1 || owner.Delegations[0].Stake < 10_000_000_000 {
		t.Fatalf("the owner's mine: %+v", owner)
	}
}
