package main

import (
	"path/filepath"
	"strings"
	"testing"
)

type overviewJSON struct {
	Coldkey string
	Balance uint64
	Hotkeys []struct {
		Name          string
		Hotkey        string
		Delegate      bool
		OwnStake      uint64 `json:"own_stake"`
		TotalStake    uint64 `json:"total_stake"`
		Registrations []struct {
			Netuid     uint16
			UID        uint16
			Stake      uint64
			LastUpdate uint64 `json:"last_update"`
		}
	}
}

type inspectJSON struct {
	Coldkey    string
	Balance    uint64
	TotalStake uint64 `json:"total_stake"`
	Stakes     []struct {
		Name     string
		Own      bool
		Hotkey   string
		Owner    string
		Delegate bool
		Take     uint16
		Stake    uint64
		Netuids  []uint16
	}
}

// stake move, stake transfer, wallet swap-hotkey, overview and inspect
// against a chain: text, --raw and --json, the fee and the new address
// printed, refusals named by the chain, bad input refused as usage.
func TestStakeMovesAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--wallet", "bob", "--password-file", pw)
	c.ok("--home", home, "wallet", "new-hotkey", "--hotkey", "h2")
	url := runningChain(t, c, home)
	std := []string{"--home", home, "--chain", url}
	key := append(std, "--password-file", pw)
	cmd := func(args ...string) []string { return append(args, key...) }
	read := func(args ...string) []string { return append(args, std...) }
	c.ok(cmd("subnets", "create", "--name", "alpha")...)
	// No epoch pays emission into stake while the test counts it.
	c.ok(cmd("subnets", "set-hyperparam", "--netuid", "1", "--name", "tempo", "--value", "65535")...)
	c.ok(cmd("subnets", "register", "--netuid", "1")...)
	c.ok(cmd("subnets", "register", "--netuid", "1", "--hotkey", "h2")...)
	c.ok(cmd("stake", "add", "--amount", "10")...)
	show := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout)
	bob := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--wallet", "bob", "--json").stdout)
	def, h2 := show.Hotkeys[0].Address, show.Hotkeys[1].Address
	if show.Hotkeys[0].Name != "default" || show.Hotkeys[1].Name != "h2" {
		t.Fatalf("wallet %+v", show.Hotkeys)
	}

	// stake move: by names, in tokens; --raw in base units.
	if r := c.ok(cmd("stake", "move", "--from", "default", "--to", "h2", "--amount", "4")...); !strings.Contains(r.stdout, "stake_moved") || !strings.Contains(r.stdout, "amount=4 ") {
		t.Fatalf("stake move: %s", r.stdout)
	}
	if r := c.ok(cmd("stake", "move", "--from", h2, "--to", def, "--amount", "0.5", "--raw")...); !strings.Contains(r.stdout, "amount=500000000") {
		t.Fatalf("stake move --raw: %s", r.stdout)
	}
	in := decode[inspectJSON](t, c.ok(read("wallet", "inspect", "--json")...).stdout)
	if in.TotalStake != 10e9 || len(in.Stakes) != 2 {
		t.Fatalf("inspect --json: %+v", in)
	}
	for _, s := range in.Stakes {
		want := map[string]uint64{def: 6.5e9, h2: 3.5e9}[s.Hotkey]
		if s.Stake != want || !s.Own || s.Owner != show.Coldkey.Address || s.Name == "" || len(s.Netuids) != 1 || s.Netuids[0] != 1 {
			t.Fatalf("inspect row %+v, want stake %d", s, want)
		}
	}

	// stake transfer to another wallet by name, once the hotkey is a
	// delegate; the receiver's inspect shows another's delegate.
	r := c.fail(exitFailure, cmd("stake", "transfer", "--to", "bob", "--amount", "1")...)
	if !strings.Contains(r.stderr, "non_associated_coldkey") {
		t.Fatalf("transfer on a non-delegate: %s", r.stderr)
	}
	c.ok(cmd("delegate", "--take", "10")...)
	if r := c.ok(cmd("stake", "transfer", "--to", "bob", "--amount", "1")...); !strings.Contains(r.stdout, "stake_transferred") {
		t.Fatalf("stake transfer: %s", r.stdout)
	}
	bi := decode[inspectJSON](t, c.ok(read("wallet", "inspect", "--wallet", "bob", "--json")...).stdout)
	if bi.Coldkey != bob.Coldkey.Address || bi.TotalStake != 1e9 || len(bi.Stakes) != 1 || bi.Stakes[0].Own || bi.Stakes[0].Name != "" || bi.Stakes[0].Hotkey != def || !bi.Stakes[0].Delegate || bi.Stakes[0].Take != 6554 {
		t.Fatalf("bob's inspect: %+v", bi)
	}
	if r := c.ok(read("wallet", "inspect", "--wallet", "bob")...); !regexpLine(r.stdout, "-", def) || !strings.Contains(r.stdout, "10.00%") || !strings.Contains(r.stdout, show.Coldkey.Address) {
		t.Fatalf("bob's inspect text: %s", r.stdout)
	}
	if r := c.ok(read("wallet", "inspect")...); !strings.Contains(r.stdout, "you") || !strings.Contains(r.stdout, "staked 9") {
		t.Fatalf("inspect text: %s", r.stdout)
	}

	// wallet overview: each hotkey's uid, stake and last update.
	ov := decode[overviewJSON](t, c.ok(read("wallet", "overview", "--json")...).stdout)
	if ov.Coldkey != show.Coldkey.Address || len(ov.Hotkeys) != 2 {
		t.Fatalf("overview --json: %+v", ov)
	}
	for _, h := range ov.Hotkeys {
		uid := map[string]uint16{"default": 0, "h2": 1}[h.Name]
		if len(h.Registrations) != 1 || h.Registrations[0].Netuid != 1 || h.Registrations[0].UID != uid || h.Registrations[0].Stake != h.TotalStake || h.Registrations[0].LastUpdate == 0 {
			t.Fatalf("overview hotkey %+v", h)
		}
	}
	if r := c.ok(read("wallet", "overview", "--raw")...); !regexpLine(r.stdout, "h2", h2) || !strings.Contains(r.stdout, "3500000000") {
		t.Fatalf("overview --raw: %s", r.stdout)
	}
	before := decode[struct{ Balance uint64 }](t, c.ok(read("wallet", "balance", "--json")...).stdout).Balance

	// wallet swap-hotkey creates the new hotkey, prints the fee and the
	// new address; the old name is left with nothing.
	r = c.ok(cmd("wallet", "swap-hotkey", "--hotkey", "default", "--new-hotkey", "fresh")...)
	show = decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout)
	var fresh string
	for _, h := range show.Hotkeys {
		if h.Name == "fresh" {
			fresh = h.Address
		}
	}
	if fresh == "" || !strings.Contains(r.stdout, "fee of 0.1 tokens") || !strings.Contains(r.stdout, "new hotkey "+fresh) || !strings.Contains(r.stdout, "mnemonic (shown once)") || !strings.Contains(r.stdout, "hotkey_swapped") {
		t.Fatalf("swap-hotkey: %s", r.stdout)
	}
	after := decode[struct{ Balance uint64 }](t, c.ok(read("wallet", "balance", "--json")...).stdout).Balance
	if after != before-1e8 {
		t.Fatalf("balance %d after the swap, was %d", after, before)
	}
	ov = decode[overviewJSON](t, c.ok(read("wallet", "overview", "--json")...).stdout)
	for _, h := range ov.Hotkeys {
		switch h.Name {
		case "default":
			if h.Hotkey != def || len(h.Registrations) != 0 || h.TotalStake != 0 {
				t.Fatalf("the old hotkey keeps %+v", h)
			}
		case "fresh":
			if len(h.Registrations) != 1 || h.Registrations[0].UID != 0 || h.OwnStake != 5.5e9 || h.TotalStake != 6.5e9 || !h.Delegate {
				t.Fatalf("the new hotkey %+v", h)
			}
		}
	}
	if bi := decode[inspectJSON](t, c.ok(read("wallet", "inspect", "--wallet", "bob", "--json")...).stdout); len(bi.Stakes) != 1 || bi.Stakes[0].Hotkey != fresh {
		t.Fatalf("bob's stake after the swap: %+v", bi)
	}

	// --json, to an existing hotkey of the wallet, in base units.
	c.ok("--home", home, "wallet", "new-hotkey", "--hotkey", "h3")
	type swapJSON struct {
		OldHotkey string `json:"old_hotkey"`
		NewHotkey string `json:"new_hotkey"`
		NewName   string `json:"new_name"`
		Created   bool
		Mnemonic  string
		Fee       uint64
		Tx        struct{ Height uint64 }
	}
	sj := decode[swapJSON](t, c.ok(cmd("wallet", "swap-hotkey", "--hotkey", "h2", "--new-hotkey", "h3", "--json")...).stdout)
	if sj.OldHotkey != h2 || sj.NewName != "h3" || sj.Created || sj.Mnemonic != "" || sj.Fee != 1e8 || sj.Tx.Height == 0 || sj.NewHotkey == "" {
		t.Fatalf("swap-hotkey --json: %+v", sj)
	}

	// Refused by the chain, naming the rule.
	r = c.fail(exitFailure, cmd("wallet", "swap-hotkey", "--hotkey", "fresh", "--new-hotkey", "h3")...)
	if !strings.Contains(r.stderr, "new_hotkey_in_use") {
		t.Fatalf("swap to a used hotkey: %s", r.stderr)
	}
	r = c.fail(exitFailure, cmd("stake", "move", "--from", "fresh", "--to", "h3", "--amount", "1000")...)
	if !strings.Contains(r.stderr, "not_enough_stake") {
		t.Fatalf("move too much: %s", r.stderr)
	}

	// Bad input is a usage error.
	for _, bad := range [][]string{
		{"stake", "move", "--from", "fresh", "--to", "h3", "--amount", "0"},
		{"stake", "move", "--from", "fresh", "--to", "fresh", "--amount", "1"},
		{"stake", "move", "--from", "nosuch", "--to", "h3", "--amount", "1"},
		{"stake", "transfer", "--hotkey", "fresh", "--to", "default", "--amount", "1"},
		{"stake", "transfer", "--hotkey", "fresh", "--to", "nowallet", "--amount", "1"},
		{"stake", "transfer", "--hotkey", "fresh", "--to", "bob", "--amount", "x"},
		{"wallet", "swap-hotkey", "--hotkey", "fresh", "--new-hotkey", "fresh"},
		{"wallet", "swap-hotkey", "--hotkey", "fresh", "--new-hotkey", "bad/name"},
	} {
		c.fail(exitUsage, cmd(bad...)...)
	}
}
