package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/wallet"
)

// leaves returns every runnable command of the tree by its path without
// the root, e.g. "wallet balance".
func leaves(t *testing.T) map[string]*cobra.Command {
	t.Helper()
	a := &app{env: env{stdin: strings.NewReader(""), stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, getenv: func(string) string { return "" }}, epoch: chain.NewYumaEpoch()}
	out := map[string]*cobra.Command{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Runnable() && c.HasParent() {
			out[strings.TrimPrefix(c.CommandPath(), "cybertensor ")] = c
		}
	}
	walk(a.rootCommand())
	return out
}

// takesKeys says whether a command opens a wallet: it reads a password,
// names a hotkey, or names a wallet (the wallet commands' old --name).
func takesKeys(path string, c *cobra.Command) bool {
	f := c.Flags()
	if f.Lookup("password-file") != nil || f.Lookup("hotkey") != nil || f.Lookup("wallet") != nil {
		return true
	}
	return strings.HasPrefix(path, "wallet ") && f.Lookup("name") != nil
}

// Every command that opens a wallet takes it as --wallet (and the wallet
// commands still take their old --name), every one that uses a hotkey
// takes --hotkey (#20 "One CLI").
func TestEveryKeyCommandTakesWalletAndHotkey(t *testing.T) {
	// Commands that sign with the coldkey only, or read a wallet's public
	// side, have no hotkey to choose.
	coldOnly := map[string]bool{
		"wallet new": false, "wallet regen-coldkey": true, "wallet list": true, "wallet balance": true, "wallet transfer": true,
		"subnets create": true, "subnets set-hyperparam": true, "stake show": true, "faucet": true, "delegate mine": true,
		"wallet set-identity": true, "wallet get-identity": true, "subnets set-identity": true,
		"stake move": true, "wallet overview": true, "wallet inspect": true,
		"subnets mechanisms set": true, "subnets set-spec": true,
	}
	for path, c := range leaves(t) {
		if !takesKeys(path, c) {
			continue
		}
		if c.Flags().Lookup("wallet") == nil {
			t.Errorf("%s opens a wallet but has no --wallet", path)
			continue
		}
		if c.Flags().Lookup("hotkey") == nil && !coldOnly[path] {
			t.Errorf("%s uses a hotkey but has no --hotkey", path)
		}
		if strings.HasPrefix(path, "wallet ") {
			if err := c.ParseFlags([]string{"--name", "bob"}); err != nil {
				t.Errorf("%s --name (the old spelling): %v", path, err)
			} else if got := c.Flags().Lookup("wallet").Value.String(); got != "bob" {
				t.Errorf("%s --name bob: --wallet is %q", path, got)
			}
		}
	}
}

// A command finds its bad flags before it asks for a password (#20 "flags
// checked before any password prompt"): each case has one bad flag and
// everything else valid, with a wallet whose coldkey and hotkey are
// encrypted; the terminal must not be read.
func TestFlagsCheckedBeforePasswordPrompt(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c := newCLI(t)
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw, "--encrypt-hotkey")
	badChain := []string{"--chain", "ftp://127.0.0.1:1"}
	cases := map[string][]string{
		"wallet new":             {"--wallet", "w2", "--words", "13"},
		"wallet new-hotkey":      {"--hotkey", "h2", "--encrypt", "--words", "13"},
		"wallet regen-coldkey":   {"--mnemonic", "not words", "--force"},
		"wallet regen-hotkey":    {"--mnemonic", "not words", "--encrypt", "--force"},
		"wallet sign":            {"--coldkey"},
		"wallet transfer":        {"--to", "ct1nope", "--amount", "1"},
		"wallet balance":         badChain,
		"subnets create":         []string{"--builtin", "nope"},
		"subnets register":       badChain,
		"subnets set-hyperparam": {"--name", "warp", "--value", "1"},
		"stake add":              {"--amount", "-1"},
		"stake remove":           {"--amount", "x"},
		"stake show":             badChain,
		"delegate":               {"--take", "101"},
		"delegate set-take":      {"--take", "101"},
		"delegate get-take":      badChain,
		"delegate mine":          badChain,
		"stake move":             {"--from", "default", "--to", "default", "--amount", "1"},
		"stake transfer":         {"--to", "nowallet", "--amount", "1"},
		"wallet swap-hotkey":     {"--new-hotkey", "bad/name"},
		"wallet overview":        badChain,
		"wallet inspect":         badChain,
		"faucet":                 badChain,
		"weights set":            {"--uids", "1,2", "--weights", "1"},
		"commitments set":        {"--data", "x", "--data-hex", "78"},
		"commitments get":        badChain,
		"wallet set-identity":    {"--display-name", strings.Repeat("n", 65)},
		"wallet get-identity":    {"--address", "ct1nope"},
		"subnets set-identity":   {"--display-name", "a", "--url", strings.Repeat("u", 257)},
		"weights commit":         {"--uids", "1", "--weights", "1", "--salt", "zz"},
		"weights reveal":         {"--uids", "1", "--weights", "1"},
		"miner run":              {"--bootstrap", "nope"},
		"validator run":          {"--sample", "-1"},
		"gateway":                {"--keys", "k", "--retries", "-1"},
		"knowledge publish":      {"--text", "x", "--link", "notacid"},
		"knowledge serve":        {"--peer", "nope"},
		"knowledge get":          {"notacid"},
		"root register":          badChain,
		"root weights":           {"--netuids", "0,1", "--weights", "1,1"},
		"root get-weights":       badChain,
		"children set":           {"--child", "ct1nope:50%"},
		"children revoke":        badChain,
		"children get":           badChain,
		"children take set":      {"--take", "half"},
		"children take get":      badChain,
		"subnets mechanisms set": {"--shares", "0.5,0"},
		"subnets set-spec":       {"--builtin", "nope"},
		"model train":            {"--data", "x", "--out", "y", "--order", "9"},
		"model eval":             {"--model", "x", "--data", "y", "--peer", "nope"},
	}
	var missing []string
	for path, cmd := range leaves(t) {
		// wallet list and show and validator scores read no key (the
		// last reads the hotkey's state folder only): nothing to prompt for.
		if takesKeys(path, cmd) && cases[path] == nil && path != "wallet list" && path != "wallet show" && path != "validator scores" {
			missing = append(missing, path)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("no bad-flag case for %v", missing)
	}
	for path, extra := range cases {
		t.Run(strings.ReplaceAll(path, " ", "_"), func(t *testing.T) {
			asked := false
			var out, errb bytes.Buffer
			e := env{
				stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
				getenv:   func(string) string { return "" },
				userHome: func() (string, error) { return "", errors.New("none") },
				terminal: func() ([]byte, error) { asked = true; return []byte("pw"), nil },
			}
			args := append(append([]string{"--home", home}, strings.Fields(path)...), extra...)
			code := run(context.Background(), args, e)
			if asked {
				t.Errorf("%v asked for a password before finding its bad flag (exit %d: %s)", args, code, errb.String())
			}
			if code != exitUsage {
				t.Errorf("%v: exit %d, want %d: %s", args, code, exitUsage, errb.String())
			}
		})
	}
}

// jsonCases runs every command that has --json with it, against a chain,
// and returns what each printed.
func jsonCommands() map[string][]string {
	return map[string][]string{
		"wallet list":            nil,
		"wallet show":            nil,
		"wallet new-hotkey":      {"--hotkey", "extra"},
		"wallet sign":            {"--message", "hi"},
		"wallet balance":         nil,
		"wallet transfer":        {"--to", "ADDR", "--amount", "1"},
		"subnets list":           nil,
		"subnets hyperparams":    {"--netuid", "1"},
		"subnets create":         {"--builtin", "qa"},
		"subnets spec":           {"--netuid", "2"},
		"subnets register":       {"--netuid", "1", "--hotkey", "second"},
		"subnets set-hyperparam": {"--netuid", "1", "--name", "burn", "--value", "0.5"},
		"stake add":              {"--amount", "10"},
		"stake remove":           {"--amount", "1"},
		"stake show":             nil,
		"stake move":             {"--from", "default", "--to", "mover", "--amount", "1"},
		"stake transfer":         {"--to", wallet.Address{0x42}.String(), "--amount", "1"},
		"wallet swap-hotkey":     {"--hotkey", "second", "--new-hotkey", "third"},
		"wallet overview":        nil,
		"wallet inspect":         nil,
		"delegate":               nil,
		"delegate get-take":      nil,
		"delegate list":          nil,
		"delegate mine":          nil,
		"delegate set-take":      {"--take", "9"},
		"weights set":            {"--uids", "0", "--weights", "1"},
		"weights show":           {"--netuid", "1"},
		"metagraph":              {"--netuid", "1"},
		"commitments set":        {"--netuid", "1", "--data", "endpoint"},
		"commitments get":        {"--netuid", "1"},
		"commitments list":       {"--netuid", "1"},
		"wallet set-identity":    {"--display-name", "tester"},
		"wallet get-identity":    nil,
		"subnets set-identity":   {"--netuid", "1", "--display-name", "alpha"},
		"subnets get-identity":   {"--netuid", "1"},
		"chain status":           nil,
		"faucet":                 nil,
		"knowledge ls":           nil,
		"knowledge search":       {"anything", "--local"},
		"knowledge gc":           nil,
		"root get-weights":       nil,
		"root list":              nil,
		"root register":          nil,
		"root weights":           {"--netuids", "1", "--weights", "1"},
		"subnets burn-cost":      {"--netuid", "1"},
		"subnets lock-cost":      nil,
	}
}

// Every --json prints one JSON document, and text output gives token
// amounts in tokens, --raw in base units (#20 "One CLI").
func TestJSONAndAmountsAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	cases := jsonCommands()
	// Commands whose --json is tested elsewhere or needs what this test
	// does not set up (a commit-reveal subnet, a swarm, a mnemonic, a
	// whole localnet).
	elsewhere := []string{"wallet new", "wallet regen-coldkey", "wallet regen-hotkey", "wallet verify", "weights commit", "weights reveal", "knowledge publish", "localnet",
		"validator scores"} // TestValidatorScores: it needs a validator's state
	// TestChildrenAgainstAChain: children need a second registered hotkey.
	elsewhere = append(elsewhere, "children set", "children revoke", "children get", "children take set", "children take get")
	// TestGatewayKeysCommands and TestGatewayUsageCommand: no chain.
	elsewhere = append(elsewhere, "gateway keys add", "gateway keys list", "gateway keys revoke", "gateway usage")
	// TestMechanismsAndSetSpecAgainstAChain: mechanisms apply at an epoch.
	elsewhere = append(elsewhere, "subnets mechanisms set", "subnets mechanisms get", "subnets set-spec")
	// TestModelCommands: no chain.
	elsewhere = append(elsewhere, "model train", "model eval", "model inspect")
	for path, c := range leaves(t) {
		if _, ok := cases[path]; c.Flags().Lookup("json") != nil && !ok && !slices.Contains(elsewhere, path) {
			t.Errorf("%s has --json but no case here", path)
		}
		if (path == "miner run" || path == "validator run") && c.Flags().Lookup("json") != nil {
			t.Errorf("%s has a --json it does not honour", path)
		}
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--wallet", "default", "--password-file", pw)
	url := runningChain(t, c, home)
	std := []string{"--home", home, "--chain", url, "--password-file", pw}
	run := func(path string, args ...string) result {
		t.Helper()
		full := append(strings.Fields(path), args...)
		// Flags a command does not have are left out.
		cmd := leaves(t)[path]
		for i := 0; i < len(std); i += 2 {
			if std[i] == "--home" || cmd.Flags().Lookup(strings.TrimPrefix(std[i], "--")) != nil {
				full = append(full, std[i], std[i+1])
			}
		}
		return c.ok(full...)
	}
	cold := decode[infoJSON](t, run("wallet show", "--json").stdout).Coldkey.Address
	run("wallet new-hotkey", "--hotkey", "second")
	run("subnets create", "--name", "alpha")
	run("subnets register", "--netuid", "1")
	// stake move's destination.
	run("wallet new-hotkey", "--hotkey", "mover")
	run("subnets register", "--netuid", "1", "--hotkey", "mover")
	// Before the JSON cases, which run in name order: get before set.
	run("commitments set", "--netuid", "1", "--data", "first")
	run("wallet set-identity", "--display-name", "first")
	run("subnets set-identity", "--netuid", "1", "--display-name", "first")

	// Text: tokens.
	if r := run("wallet transfer", "--to", cold, "--amount", "2.5"); !strings.Contains(r.stdout, "amount=2.5") {
		t.Errorf("transfer prints the amount in base units:\n%s", r.stdout)
	}
	if r := run("wallet transfer", "--to", cold, "--amount", "2.5", "--raw"); !strings.Contains(r.stdout, "amount=2500000000") {
		t.Errorf("transfer --raw:\n%s", r.stdout)
	}
	run("subnets set-hyperparam", "--netuid", "1", "--name", "burn", "--value", "0.25")
	if r := run("subnets hyperparams", "--netuid", "1"); !regexpLine(r.stdout, "burn", "0.25") {
		t.Errorf("hyperparams after setting burn to 0.25 tokens:\n%s", r.stdout)
	}
	if r := run("subnets hyperparams", "--netuid", "1", "--raw"); !regexpLine(r.stdout, "burn", "250000000") {
		t.Errorf("hyperparams --raw:\n%s", r.stdout)
	}
	run("subnets set-hyperparam", "--netuid", "1", "--name", "burn", "--value", "300000000", "--raw")
	if r := run("subnets hyperparams", "--netuid", "1"); !regexpLine(r.stdout, "burn", "0.3") {
		t.Errorf("hyperparams after setting burn to 300000000 base units:\n%s", r.stdout)
	}
	// A rejection says tokens too, and says it once.
	r := c.fail(exitFailure, "--home", home, "wallet", "transfer", "--to", cold, "--amount", "100000000", "--chain", url, "--password-file", pw)
	if !strings.Contains(r.stderr, "tokens") || strings.Count(r.stderr, "insufficient_balance") != 1 {
		t.Errorf("overdraft: %s", r.stderr)
	}

	// JSON: every command prints one document.
	names := make([]string, 0, len(cases))
	for n := range cases {
		names = append(names, n)
	}
	sort.Strings(names) // subnets create (netuid 2) before subnets spec
	for _, path := range names {
		args := slices.Clone(cases[path])
		for i, a := range args {
			if a == "ADDR" {
				args[i] = cold
			}
		}
		r := run(path, append(args, "--json")...)
		if !json.Valid([]byte(r.stdout)) {
			t.Errorf("%s --json printed no JSON:\n%s", path, r.stdout)
		}
	}
}

// regexpLine says whether a table row starts with name and has value as
// its next column.
func regexpLine(out, name, value string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == name && f[1] == value {
			return true
		}
	}
	return false
}
