package main

import (
	"math/big"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
)

func TestParseChildren(t *testing.T) {
	const a, b = "ct1nx5j6ghs6tx9cvt7elnwtkdsd3pfpcy00mzu2r", "ct1nku7j2x62xrqvxzk3rsdp7lfyk703mr76taley"
	for _, tc := range []struct {
		name  string
		flags []string
		want  []uint64 // nil for an error
	}{
		{"percent", []string{a + ":50%"}, []uint64{1 << 63}},
		{"fraction", []string{a + ":0.25"}, []uint64{chain.ProportionOne/4 + 1}},
		{"all", []string{a + ":100%"}, []uint64{chain.ProportionOne}},
		{"two summing to 100%", []string{a + ":60%", b + ":0.4"}, []uint64{scale(ratOf(t, "0.6"), chain.ProportionOne), scale(ratOf(t, "0.4"), chain.ProportionOne)}},
		{"none", nil, nil},
		{"zero", []string{a + ":0%"}, nil},
		{"above 100%", []string{a + ":101%"}, nil},
		{"sum above 100%", []string{a + ":60%", b + ":50%"}, nil},
		{"twice", []string{a + ":10%", a + ":20%"}, nil},
		{"no share", []string{a}, nil},
		{"bad address", []string{"ct1nope:10%"}, nil},
		{"bad share", []string{a + ":half"}, nil},
		{"negative", []string{a + ":-0.1"}, nil},
		{"six", []string{a + ":1%", a + ":1%", a + ":1%", a + ":1%", a + ":1%", a + ":1%"}, nil},
	} {
		got, err := parseChildren(tc.flags)
		if tc.want == nil {
			if err == nil {
				t.Errorf("%s: accepted %+v", tc.name, got)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) {
			t.Errorf("%s: %+v %v", tc.name, got, err)
			continue
		}
		for i := range got {
			if got[i].Proportion != tc.want[i] {
				t.Errorf("%s: child %d proportion %d, want %d", tc.name, i, got[i].Proportion, tc.want[i])
			}
		}
	}
	if p := percentOf(1<<63, chain.ProportionOne); p != "50%" {
		t.Errorf("50%% prints as %s", p)
	}
	if p := percentOf(11796, 65535); p != "17.9995%" {
		t.Errorf("max_childkey_take prints as %s", p)
	}
}

func ratOf(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, err := parseShare(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// children set, get, revoke and take set|get against a chain: the change
// pending until children_cooldown, then applied (the child's parents and
// effective stake), JSON and text, --raw amounts, a take above
// max_childkey_take refused with the chain's named error, and bad flags
// refused before any password.
func TestChildrenAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new-hotkey", "--wallet", "default", "--hotkey", "second", "--password-file", pw)
	url := runningChain(t, c, home)
	std := []string{"--home", home, "--chain", url}
	key := append(std, "--password-file", pw)
	c.ok(append([]string{"subnets", "create", "--name", "alpha"}, key...)...)
	c.ok(append([]string{"subnets", "register", "--netuid", "1"}, key...)...)
	c.ok(append([]string{"subnets", "register", "--netuid", "1", "--hotkey", "second"}, key...)...)
	c.ok(append([]string{"stake", "add", "--amount", "10"}, key...)...)
	hotkeys := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout).Hotkeys
	var parent, second string
	for _, h := range hotkeys {
		if h.Name == "second" {
			second = h.Address
		} else {
			parent = h.Address
		}
	}

	get := func(args ...string) childrenOut {
		t.Helper()
		return decode[childrenOut](t, c.ok(append(append([]string{"children", "get", "--netuid", "1", "--json"}, args...), std...)...).stdout)
	}
	// waitApplied polls until the hotkey has no pending change.
	waitApplied := func(hotkey string) childrenOut {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			o := get("--hotkey", hotkey)
			if o.Pending == nil {
				return o
			}
			if time.Now().After(deadline) {
				t.Fatalf("change pending past the deadline: %+v", o)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	if o := get(); len(o.Children) != 0 || o.Pending != nil || o.Hotkey != parent {
		t.Fatalf("before: %+v", o)
	}
	r := c.ok(append([]string{"children", "set", "--netuid", "1", "--child", second + ":50%", "--json"}, key...)...)
	out := decode[txOutcome](t, r.stdout)
	if len(out.Events) == 0 {
		t.Fatalf("set --json: %s", r.stdout)
	}
	pending := get()
	if pending.Pending == nil || len(pending.Pending.Children) != 1 || pending.Pending.Children[0].Hotkey != second || pending.Pending.Children[0].Percent != "50%" || pending.Pending.ApplyAt <= out.Height {
		t.Fatalf("pending: %+v (set at %d)", pending, out.Height)
	}
	if r := c.ok(append([]string{"children", "get", "--netuid", "1"}, std...)...); !strings.Contains(r.stdout, "applies at block") {
		t.Fatalf("get text while pending:\n%s", r.stdout)
	}
	applied := waitApplied(parent)
	if len(applied.Children) != 1 || applied.Children[0].Proportion != 1<<63 || applied.EffectiveStake != applied.Stake-applied.Stake/2 {
		t.Fatalf("applied: %+v", applied)
	}
	child := get("--hotkey", "second")
	if len(child.Parents) != 1 || child.Parents[0].Hotkey != parent || child.EffectiveStake != child.Stake+applied.Stake/2 {
		t.Fatalf("child: %+v", child)
	}
	if r := c.ok(append([]string{"children", "get", "--netuid", "1", "--hotkey", second}, std...)...); !strings.Contains(r.stdout, parent) || !regexpLine(r.stdout, "effective", "stake") {
		t.Fatalf("child text:\n%s", r.stdout)
	}
	raw := c.ok(append([]string{"children", "get", "--netuid", "1", "--hotkey", second, "--raw"}, std...)...).stdout
	if !strings.Contains(raw, " "+strconv.FormatUint(child.EffectiveStake, 10)) {
		t.Fatalf("get --raw does not print %d:\n%s", child.EffectiveStake, raw)
	}

	// The child's take.
	c.ok(append([]string{"children", "take", "set", "--netuid", "1", "--hotkey", "second", "--take", "10%"}, key...)...)
	take := decode[childrenOut](t, c.ok(append([]string{"children", "take", "get", "--netuid", "1", "--hotkey", second, "--json"}, std...)...).stdout)
	if take.ChildkeyTake != 6554 || take.ChildkeyTakePercent != "10.0008%" {
		t.Fatalf("take: %+v", take)
	}
	r = c.fail(exitFailure, append([]string{"children", "take", "set", "--netuid", "1", "--hotkey", "second", "--take", "0.19"}, key...)...)
	if !strings.Contains(r.stderr, "invalid_childkey_take") {
		t.Fatalf("take above the maximum: %s", r.stderr)
	}

	// Revoke: pending, then no children.
	c.ok(append([]string{"children", "revoke", "--netuid", "1"}, key...)...)
	if o := get(); o.Pending == nil || len(o.Pending.Children) != 0 {
		t.Fatalf("revoke pending: %+v", o)
	}
	if o := waitApplied(parent); len(o.Children) != 0 || o.EffectiveStake != o.Stake {
		t.Fatalf("revoked: %+v", o)
	}

	// Bad flags are usage errors.
	for _, bad := range [][]string{{}, {"--child", "ct1nope:10%"}, {"--child", second + ":0"}, {"--child", second + ":150%"}, {"--child", second}} {
		c.fail(exitUsage, append(append([]string{"children", "set", "--netuid", "1"}, bad...), key...)...)
	}
	c.fail(exitUsage, append([]string{"children", "take", "set", "--netuid", "1", "--take", "x"}, key...)...)
}
