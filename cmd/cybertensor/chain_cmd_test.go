package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/subnet"
)

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// runningChain starts "chain run" in the background on a fresh node and
// returns its RPC URL.
func runningChain(t *testing.T, c *cli, home string, extra ...string) string {
	return runningChainWith(t, c, home, chaintest.StakeEpoch, extra...)
}

// runningChainWith is runningChain with a chosen epoch function.
func runningChainWith(t *testing.T, c *cli, home string, epoch chain.EpochFunc, extra ...string) string {
	t.Helper()
	url, _ := runningChainLogs(t, c, home, epoch, extra...)
	return url
}

// minerAndValidatorChain makes the wallets "default" (the subnet owner), "m"
// and "v" in home, with password file pw, and runs a chain with Yuma epochs
// that funds m and v; it returns its RPC URL.
func minerAndValidatorChain(t *testing.T, c *cli, home, pw string) string {
	t.Helper()
	for _, w := range []string{"default", "m", "v"} {
		c.ok("--home", home, "wallet", "new", "--name", w, "--password-file", pw)
	}
	fund := func(name string) string {
		return decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--name", name, "--json").stdout).Coldkey.Address + "=100000"
	}
	return runningChainWith(t, c, home, chain.YumaEpoch, "--fund", fund("m"), "--fund", fund("v"))
}

// runningChainLogs is runningChainWith that also returns what the node
// logs (at the default level).
func runningChainLogs(t *testing.T, c *cli, home string, epoch chain.EpochFunc, extra ...string) (string, *syncBuffer) {
	t.Helper()
	rpcPort := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", rpcPort)
	nodeHome := filepath.Join(chaintest.RemovableDir(t), "node")
	args := append([]string{"--home", home, "chain", "init", "--node-home", nodeHome,
		"--rpc", fmt.Sprintf("tcp://127.0.0.1:%d", rpcPort), "--p2p", fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
		"--block-time", "50ms"}, extra...)
	r := c.ok(args...)
	if !strings.Contains(r.stdout, "Created chain") {
		t.Fatalf("chain init: %s", r.stdout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"--home", home, "chain", "run", "--node-home", nodeHome}, env{
			stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			getenv: func(k string) string { return c.environ[k] }, userHome: func() (string, error) { return "", errors.New("none") },
		}, func(a *app) { a.epoch = epoch })
	}()
	t.Cleanup(func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("chain run exited %d: %s", code, errb.String())
		}
		// What CometBFT's stray goroutines write later, with the node's
		// directory removed under them, is not the node's log.
		errb.freeze()
	})
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "running") {
		if time.Now().After(deadline) {
			t.Fatalf("chain did not start: %s %s", out.String(), errb.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	return url, &errb
}

type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	frozen bool
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frozen {
		return len(p), nil
	}
	return s.b.Write(p)
}

// freeze makes the buffer drop what is written from now on.
func (s *syncBuffer) freeze() {
	s.mu.Lock()
	s.frozen = true
	s.mu.Unlock()
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestChainCommandsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--name", "bob", "--password-file", pw)
	bob := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--name", "bob", "--json").stdout)
	url := runningChain(t, c, home, "--fund", bob.Coldkey.Address+"=1000")
	ch := []string{"--chain", url}
	run := func(args ...string) result {
		return c.ok(append(append([]string{"--home", home}, args...), ch...)...)
	}
	fail := func(code int, args ...string) result {
		return c.fail(code, append(append([]string{"--home", home}, args...), ch...)...)
	}

	if r := run("wallet", "balance", "--name", "bob"); !strings.Contains(r.stdout, " 1000\n") {
		t.Fatalf("bob's balance: %q", r.stdout)
	}
	r := run("wallet", "transfer", "--name", "bob", "--to", decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--json").stdout).Coldkey.Address, "--amount", "2.5", "--password-file", pw)
	if !strings.Contains(r.stdout, "included in block") || !strings.Contains(r.stdout, "transfer") {
		t.Fatalf("transfer: %s", r.stdout)
	}
	if r := run("wallet", "balance", "--name", "bob", "--json"); !strings.Contains(r.stdout, `"balance": 997500000000`) {
		t.Fatalf("balance after transfer: %s", r.stdout)
	}
	// Too much: the chain's rule is named and nothing changes.
	r = fail(exitFailure, "wallet", "transfer", "--name", "bob", "--to", bob.Coldkey.Address, "--amount", "5000", "--password-file", pw)
	if !strings.Contains(r.stderr, "insufficient_balance") {
		t.Fatalf("overdraft: %s", r.stderr)
	}
	fail(exitUsage, "wallet", "transfer", "--name", "bob", "--to", "nope", "--amount", "1", "--password-file", pw)
	fail(exitUsage, "wallet", "transfer", "--name", "bob", "--to", bob.Coldkey.Address, "--amount", "1.0000000001", "--password-file", pw)

	run("subnets", "create", "--name", "alpha", "--password-file", pw)
	if r := run("subnets", "list"); !strings.Contains(r.stdout, "alpha") {
		t.Fatalf("subnets list: %s", r.stdout)
	}
	run("subnets", "register", "--netuid", "1", "--password-file", pw)
	run("stake", "add", "--amount", "100", "--password-file", pw)
	if r := run("stake", "show"); !strings.Contains(r.stdout, "YOUR STAKE") || !strings.Contains(r.stdout, "default") {
		t.Fatalf("stake show: %s", r.stdout)
	}
	// Epochs may already have paid emission on top of the 100 staked.
	shown := decode[struct {
		Hotkeys []struct{ Stake uint64 } `json:"hotkeys"`
	}](t, run("stake", "show", "--json").stdout)
	if len(shown.Hotkeys) != 1 || shown.Hotkeys[0].Stake < 100*baseUnitsPerToken {
		t.Fatalf("stake show --json: %+v", shown)
	}
	// Four "stake add" at once, each with a client of its own as four
	// processes have: all land (#20: the node's raw "tx already exists in
	// cache", bad_sequence).
	results := make([]result, 4)
	var wg sync.WaitGroup
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.run("--home", home, "stake", "add", "--amount", "1", "--password-file", pw, "--chain", url)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("parallel stake add %d: exit %d: %s", i, r.code, r.stderr)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	after := decode[struct {
		Hotkeys []struct{ Stake uint64 } `json:"hotkeys"`
	}](t, run("stake", "show", "--json").stdout)
	if after.Hotkeys[0].Stake < shown.Hotkeys[0].Stake+4*baseUnitsPerToken {
		t.Fatalf("stake %d after four stake adds of 1 on %d", after.Hotkeys[0].Stake, shown.Hotkeys[0].Stake)
	}
	run("delegate", "--take", "0.1", "--password-file", pw)
	run("weights", "set", "--netuid", "1", "--uids", "0", "--weights", "1")
	run("subnets", "set-hyperparam", "--netuid", "1", "--name", "tempo", "--value", "3", "--password-file", pw)
	if r := run("subnets", "hyperparams", "--netuid", "1"); !strings.Contains(r.stdout, "tempo") {
		t.Fatalf("hyperparams: %s", r.stdout)
	}
	r = fail(exitFailure, "--home", home, "subnets", "register", "--netuid", "1", "--password-file", pw)
	// Said once, on one line (#20: "already_registered: … (already_registered: …)").
	if strings.Count(r.stderr, "already_registered") != 1 || strings.Count(r.stderr, "\n") != 1 {
		t.Fatalf("double registration: %s", r.stderr)
	}
	// The metagraph changes across epochs: the staked validator earns.
	deadline := time.Now().Add(60 * time.Second)
	for {
		m := decode[chain.Metagraph](t, run("metagraph", "--netuid", "1", "--json").stdout)
		if m.N == 1 && m.Emission[0] > 0 && m.Stake[0] > 100*baseUnitsPerToken {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no emission: %+v", m)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r := run("metagraph", "--netuid", "1"); !strings.Contains(r.stdout, "DIVIDENDS") {
		t.Fatalf("metagraph table: %s", r.stdout)
	}
	run("faucet", "--wallet", "bob", "--password-file", pw)
	if r := run("weights", "show", "--netuid", "1"); !strings.Contains(r.stdout, "0:65535") {
		t.Fatalf("weights show: %s", r.stdout)
	}
	// Subnets opened from a spec: an invalid spec is refused with its line
	// and changes nothing; a valid one's hash is on chain and its text is
	// printed back from the knowledge library.
	bad := writeFile(t, t.TempDir(), "bad.yaml", "name: x\nsynapses: [text.dance]\n")
	r = fail(exitUsage, "subnets", "create", "--spec", bad, "--password-file", pw)
	if !strings.Contains(r.stderr, "spec line 2") || !strings.Contains(r.stderr, `unknown synapse "text.dance"`) {
		t.Fatalf("invalid spec: %s", r.stderr)
	}
	// So is a valid spec whose dataset is missing (#20 bug 8).
	trivia, err := os.ReadFile("../../examples/trivia/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	r = fail(exitUsage, "subnets", "create", "--spec", writeFile(t, t.TempDir(), "spec.yaml", string(trivia)), "--password-file", pw)
	if !strings.Contains(r.stderr, "questions.jsonl: no such file") {
		t.Fatalf("a spec without its dataset: %s", r.stderr)
	}
	if r := run("subnets", "list"); strings.Count(r.stdout, "\n") != 3 { // header, root, alpha
		t.Fatalf("an invalid spec opened a subnet:\n%s", r.stdout)
	}
	r = fail(exitFailure, "subnets", "spec", "--netuid", "1")
	if !strings.Contains(r.stderr, "without a spec") {
		t.Fatalf("spec of a subnet without one: %s", r.stderr)
	}
	run("subnets", "create", "--builtin", "qa", "--password-file", pw)
	qa, err := subnet.Builtin("qa")
	if err != nil {
		t.Fatal(err)
	}
	if r := run("subnets", "spec", "--netuid", "2"); r.stdout != string(qa.Text()) {
		t.Fatalf("subnets spec printed:\n%s", r.stdout)
	}
	if r := run("subnets", "spec", "2"); r.stdout != string(qa.Text()) {
		t.Fatalf("subnets spec 2 printed:\n%s", r.stdout)
	}
	if r := fail(exitUsage, "subnets", "spec", "two"); !strings.Contains(r.stderr, `netuid "two"`) {
		t.Fatalf("subnets spec two: %s", r.stderr)
	}
	// Its hyperparameters were set by the owner as the subnet opened.
	r = run("subnets", "hyperparams", "--netuid", "2", "--json")
	var params map[string]uint64
	if err := json.Unmarshal([]byte(r.stdout), &params); err != nil {
		t.Fatal(err)
	}
	for name, want := range qa.Hyperparameters {
		if params[name] != want {
			t.Errorf("hyperparameter %s = %d, the spec says %d", name, params[name], want)
		}
	}
	// A validator refuses to run a spec that is not its subnet's.
	other := writeFile(t, t.TempDir(), "other.yaml", strings.Replace(string(qa.Text()), "alpha: 0.3", "alpha: 0.4", 1))
	r = fail(exitUsage, "validator", "run", "--netuid", "2", "--spec", other, "--password-file", pw, "--listen", "/ip4/127.0.0.1/tcp/0")
	if !strings.Contains(r.stderr, "is not subnet 2's") {
		t.Fatalf("a foreign spec: %s", r.stderr)
	}
	// A dataset spec: the subnet opens with its hyperparameters; a broken
	// dataset next to it stops the validator with the line at fault.
	run("subnets", "create", "--spec", "../../examples/trivia/spec.yaml", "--password-file", pw)
	specDir := t.TempDir()
	writeFile(t, specDir, "spec.yaml", string(trivia))
	writeFile(t, specDir, "questions.jsonl", "{\"prompt\": \"a\", \"answer\": \"b\"}\n{\"prompt\": \"no answer\"}\n")
	r = fail(exitUsage, "validator", "run", "--netuid", "3", "--spec", filepath.Join(specDir, "spec.yaml"), "--password-file", pw, "--listen", "/ip4/127.0.0.1/tcp/0")
	if !strings.Contains(r.stderr, "dataset line 2: prompt and answer must not be empty") {
		t.Fatalf("a broken dataset: %s", r.stderr)
	}
	// A chain that is not there is a clear error.
	r = c.fail(exitFailure, "--home", home, "subnets", "list", "--chain", "http://127.0.0.1:1", "--timeout", "2s")
	if !strings.Contains(r.stderr, "cannot reach the chain") {
		t.Fatalf("unreachable chain: %s", r.stderr)
	}
}

// chain run on a fresh machine creates the node itself.
func TestChainRunCreatesANodeWhenNone(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := chaintest.RemovableDir(t)
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	// Without a default wallet there is nothing to make root: a clear error.
	empty := filepath.Join(dir, "empty")
	r := c.fail(exitUsage, "--home", empty, "chain", "run")
	if !strings.Contains(r.stderr, "wallet new --name default") {
		t.Fatalf("no wallet: %s", r.stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, []string{"--home", home, "chain", "run"}, env{
			stdin: strings.NewReader(""), stdout: &out, stderr: &out,
			getenv: func(string) string { return "" }, userHome: func() (string, error) { return "", errors.New("none") },
		}, nil)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "running") {
		if time.Now().After(deadline) {
			t.Fatalf("no node: %s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 || !strings.Contains(out.String(), "created single-validator chain") {
		t.Fatalf("exit %d: %s", code, out.String())
	}
	if _, err := os.Stat(filepath.Join(home, "chain", "config", "genesis.json")); err != nil {
		t.Fatal(err)
	}
}
