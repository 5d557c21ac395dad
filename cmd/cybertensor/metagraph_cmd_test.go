package main

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
)

// Bad --fields, --full, --lite combinations are refused in one sentence,
// with exit 2, before the chain is asked.
func TestMetagraphBadInput(t *testing.T) {
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--fields", "uid,bogus"}, `--fields: unknown metagraph field "bogus"; valid fields: uids, hotkeys, coldkeys, stake, ranks`},
		{[]string{"--fields", ""}, "--fields is empty"},
		{[]string{"--full", "--lite"}, "give one of --fields, --full and --lite"},
		{[]string{"--full", "--fields", "stake"}, "give one of --fields, --full and --lite"},
	} {
		r := c.fail(exitUsage, append([]string{"--home", home, "metagraph", "--netuid", "1", "--chain", "http://127.0.0.1:1"}, tc.args...)...)
		if !strings.Contains(r.stderr, tc.want) || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%v: %q, want %q", tc.args, r.stderr, tc.want)
		}
	}
}

// metagraph against a chain (whose epochs also pay into stake): lite by default, chosen columns only in text
// and JSON, --raw amounts, and --block answering a past block after the
// stake changed; a block the node does not have is refused clearly.
func TestMetagraphAgainstAChain(t *testing.T) {
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
	c.ok(append([]string{"stake", "add", "--amount", "100"}, key...)...)
	metagraph := func(args ...string) result {
		return c.ok(append(append([]string{"metagraph", "--netuid", "1"}, std...), args...)...)
	}

	lite := decode[chain.Metagraph](t, metagraph("--json").stdout)
	// An epoch may already have paid into the stake on a slow machine.
	if lite.N != 1 || lite.Stake[0] < 100*1e9 || lite.Weights != nil || lite.Commitments != nil || !reflect.DeepEqual(lite.Fields, chain.LiteMetagraphFields.Names()) {
		t.Fatalf("lite by default: %+v", lite)
	}
	before := metagraph("--fields", "uid,stake", "--json").stdout
	var cols map[string]json.RawMessage
	if err := json.Unmarshal([]byte(before), &cols); err != nil || len(cols) != 8 || cols["emission_per_block"] == nil || cols["emission_percent"] == nil || cols["incentive"] != nil || strings.Join(strings.Fields(string(cols["fields"])), "") != `["uids","stake"]` {
		t.Fatalf("chosen columns only: %s", before)
	}
	pinned := decode[chain.Metagraph](t, before)
	if r := metagraph("--fields", "uid,incentive"); !strings.Contains(r.stdout, "INCENTIVE") || strings.Contains(r.stdout, "STAKE") || strings.Contains(r.stdout, "HOTKEY") {
		t.Fatalf("text of two columns: %s", r.stdout)
	}
	if r := metagraph("--fields", "stake", "--raw", "--block", strconv.FormatUint(pinned.Block, 10)); !strings.Contains(r.stdout, strconv.FormatUint(pinned.Stake[0], 10)) {
		t.Fatalf("--raw: %s, want %d", r.stdout, pinned.Stake[0])
	}
	if r := metagraph("--full", "--json"); !strings.Contains(r.stdout, `"weights"`) || !strings.Contains(r.stdout, `"bonds"`) {
		t.Fatalf("--full: %s", r.stdout)
	}

	c.ok(append([]string{"stake", "add", "--amount", "50"}, key...)...)
	if now := decode[chain.Metagraph](t, metagraph("--fields", "stake", "--json").stdout); now.Stake[0] < pinned.Stake[0]+50*1e9 || now.Block <= pinned.Block {
		t.Fatalf("after staking: %+v", now)
	}
	block := strconv.FormatUint(pinned.Block, 10)
	if again := metagraph("--fields", "uid,stake", "--json", "--block", block).stdout; again != before {
		t.Fatalf("--block %s:\n%s\nwant\n%s", block, again, before)
	}
	if r := metagraph("--block", block, "--raw"); !strings.Contains(r.stdout, "at block "+block+":") || !strings.Contains(r.stdout, " "+strconv.FormatUint(pinned.Stake[0], 10)+" ") {
		t.Fatalf("--block text: %s", r.stdout)
	}
	r := c.fail(exitFailure, append([]string{"metagraph", "--netuid", "1", "--block", "99999999"}, std...)...)
	if !strings.Contains(r.stderr, "block 99999999 is ahead of the latest block") {
		t.Fatalf("future block: %s", r.stderr)
	}
}
