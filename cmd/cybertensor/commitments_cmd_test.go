package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
)

func TestCommitmentDataParse(t *testing.T) {
	const cidV1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	for _, tc := range []struct {
		name string
		d    commitmentData
		want string // "" for an error
	}{
		{"text", commitmentData{text: "https://model.example/v2"}, "https://model.example/v2"},
		{"hex", commitmentData{hex: "00ff10"}, "\x00\xff\x10"},
		{"cid", commitmentData{cid: cidV1}, cidV1},
		{"cid v0 kept in its own form", commitmentData{cid: "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"}, "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"},
		{"none", commitmentData{}, ""},
		{"two", commitmentData{text: "a", hex: "61"}, ""},
		{"bad hex", commitmentData{hex: "zz"}, ""},
		{"bad cid", commitmentData{cid: "notacid"}, ""},
		{"512 bytes", commitmentData{text: strings.Repeat("a", chain.MaxCommitmentLen)}, strings.Repeat("a", chain.MaxCommitmentLen)},
		{"513 bytes", commitmentData{text: strings.Repeat("a", chain.MaxCommitmentLen+1)}, ""},
		{"513 bytes of hex", commitmentData{hex: strings.Repeat("ab", chain.MaxCommitmentLen+1)}, ""},
	} {
		got, err := tc.d.parse()
		if tc.want == "" {
			if err == nil {
				t.Errorf("%s: accepted %q", tc.name, got)
			}
			continue
		}
		if err != nil || !bytes.Equal(got, []byte(tc.want)) {
			t.Errorf("%s: %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// commitments set, get and list against a chain: text and JSON, the full
// metagraph's commitments, a rate-limited second commitment refused with
// the chain's named error, and bad data refused before any password.
func TestCommitmentsAgainstAChain(t *testing.T) {
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
	c.ok(append([]string{"subnets", "create", "--name", "alpha"}, key...)...)
	c.ok(append([]string{"subnets", "register", "--netuid", "1"}, key...)...)
	hotkey := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout).Hotkeys[0].Address

	// Nothing committed yet.
	c.fail(exitFailure, append([]string{"commitments", "get", "--netuid", "1"}, std...)...)
	if r := c.ok(append([]string{"commitments", "list", "--netuid", "1", "--json"}, std...)...); strings.TrimSpace(r.stdout) != "[]" {
		t.Fatalf("empty list: %s", r.stdout)
	}

	const cidV1 = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	r := c.ok(append([]string{"commitments", "set", "--netuid", "1", "--cid", cidV1}, key...)...)
	if !strings.Contains(r.stdout, "commitment_set") {
		t.Fatalf("set: %s", r.stdout)
	}
	got := decode[commitmentOut](t, c.ok(append([]string{"commitments", "get", "--netuid", "1", "--hotkey", hotkey, "--json"}, std...)...).stdout)
	if got.Text != cidV1 || got.Hotkey != hotkey || got.UID != 0 || got.Block == 0 {
		t.Fatalf("get --json: %+v", got)
	}
	if r := c.ok(append([]string{"commitments", "get", "--netuid", "1"}, std...)...); !regexpLine(r.stdout, "data", cidV1) {
		t.Fatalf("get (the wallet's hotkey): %s", r.stdout)
	}
	list := decode[[]commitmentOut](t, c.ok(append([]string{"commitments", "list", "--netuid", "1", "--json"}, std...)...).stdout)
	if len(list) != 1 || list[0] != got {
		t.Fatalf("list --json: %+v", list)
	}
	if r := c.ok(append([]string{"commitments", "list", "--netuid", "1"}, std...)...); !strings.Contains(r.stdout, cidV1) || !strings.Contains(r.stdout, hotkey) {
		t.Fatalf("list: %s", r.stdout)
	}
	if r := c.ok(append([]string{"metagraph", "--netuid", "1", "--full"}, std...)...); !strings.Contains(r.stdout, "commitments:") || !strings.Contains(r.stdout, cidV1) {
		t.Fatalf("metagraph: %s", r.stdout)
	}
	if r := c.ok(append([]string{"metagraph", "--netuid", "1", "--lite"}, std...)...); strings.Contains(r.stdout, cidV1) {
		t.Fatalf("metagraph --lite shows commitments: %s", r.stdout)
	}
	full := decode[chain.Metagraph](t, c.ok(append([]string{"metagraph", "--netuid", "1", "--full", "--json"}, std...)...).stdout)
	if len(full.Commitments) != 1 || string(full.Commitments[0].Data) != cidV1 {
		t.Fatalf("metagraph --json commitments: %+v", full.Commitments)
	}

	// Bytes that are not text show as hex.
	c.ok(append([]string{"commitments", "set", "--netuid", "1", "--data-hex", "00ff"}, key...)...)
	if r := c.ok(append([]string{"commitments", "get", "--netuid", "1"}, std...)...); !regexpLine(r.stdout, "data", "0x00ff") {
		t.Fatalf("get binary: %s", r.stdout)
	}

	// The owner sets a rate limit: the next commitment is refused, naming
	// the rule, and the old one stays.
	c.ok(append([]string{"subnets", "set-hyperparam", "--netuid", "1", "--name", "commitment_rate_limit", "--value", "1000"}, key...)...)
	r = c.fail(exitFailure, append([]string{"commitments", "set", "--netuid", "1", "--data", "too soon"}, key...)...)
	if !strings.Contains(r.stderr, "commitment_rate_limit_exceeded") {
		t.Fatalf("rate limit: %s", r.stderr)
	}
	if g := decode[commitmentOut](t, c.ok(append([]string{"commitments", "get", "--netuid", "1", "--json"}, std...)...).stdout); g.Hex != "00ff" {
		t.Fatalf("after a refusal: %+v", g)
	}

	// Bad data is a usage error.
	for _, bad := range [][]string{{}, {"--data", "a", "--cid", cidV1}, {"--data-hex", "zz"}, {"--cid", "notacid"}, {"--data", strings.Repeat("x", 513)}} {
		c.fail(exitUsage, append(append([]string{"commitments", "set", "--netuid", "1"}, bad...), key...)...)
	}
}
