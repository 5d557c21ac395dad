package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
)

// The newcomer's three terminals: chain run, miner run, validator run; the
// metagraph shows the miner earning.
func TestMinerAndValidatorRunAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node and two neurons")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--name", "m", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--name", "v", "--password-file", pw)
	fund := func(name string) string {
		return decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--name", name, "--json").stdout).Coldkey.Address + "=100000"
	}
	url := runningChainWith(t, c, home, chain.YumaEpoch, "--fund", fund("m"), "--fund", fund("v"))
	c.ok("--home", home, "subnets", "create", "--name", "qa", "--password-file", pw, "--chain", url)

	start := func(args ...string) (func(), *syncBuffer) { return startCommand(t, home, args...) }
	stopMiner, minerOut := start("--log-level", "info", "miner", "run", "--wallet", "m", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url, "--metrics", "127.0.0.1:0")
	defer stopMiner()
	stopValidator, validatorOut := start("validator", "run", "--builtin", "qa", "--wallet", "v", "--netuid", "1", "--stake", "50", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url, "--query-every", "1", "--weights-every", "3")
	defer stopValidator()

	// A registered hotkey publishes knowledge from the command line and
	// serves it on the subnet: the running miner hears the announcement.
	if r := c.run("--home", home, "knowledge", "serve", "--netuid", "1", "--chain", url, "--listen", "/ip4/127.0.0.1/tcp/0"); r.code != 1 || !strings.Contains(r.stderr, "holds no uid on subnet 1") {
		t.Fatalf("serving on a subnet with an unregistered hotkey: exit %d, %s", r.code, r.stderr)
	}
	c.ok("--home", home, "subnets", "register", "--netuid", "1", "--password-file", pw, "--chain", url)
	c.ok("--home", home, "knowledge", "publish", "--text", "Zebras sleep standing up in the savanna.", "--title", "zebra-note", "--netuid", "1")
	stopServe, serveOut := start("knowledge", "serve", "--netuid", "1", "--chain", url, "--listen", "/ip4/127.0.0.1/tcp/0")
	defer stopServe()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; serve said:\n%s\nminer said:\n%.4000s", what, serveOut.String(), minerOut.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("the miner to hear the announcement", func() bool {
		return strings.Contains(minerOut.String(), "knowledge announced") && strings.Contains(minerOut.String(), "title=zebra-note")
	})

	// A second miner for the running hotkey is refused at once, naming the
	// process, and the running miner's axon stays on chain (#20 bug 2).
	axons := func() string {
		m := decode[chain.Metagraph](t, c.ok("--home", home, "metagraph", "--netuid", "1", "--json", "--chain", url).stdout)
		b, _ := json.Marshal(m.Axons)
		return string(b)
	}
	before := axons()
	r := runBounded(t, c, 30*time.Second, func() {}, "--home", home, "miner", "run", "--wallet", "m", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	if want := fmt.Sprintf(`hotkey "default" (state in %s) is in use by another process (pid %d)`, filepath.Join(home, "neurons", "m", "default"), os.Getpid()); r.code != exitFailure || !strings.Contains(r.stderr, want) {
		t.Fatalf("a second miner for the hotkey: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if after := axons(); after != before {
		t.Fatalf("the refused miner changed the axons from %s to %s", before, after)
	}
	// A miner on the running miner's port is refused with "address in
	// use" before it touches the chain, unless both share it with
	// --reuseport (#20 bug 3: SO_REUSEPORT let it share silently).
	port := regexp.MustCompile(`serving at /ip4/127\.0\.0\.1/tcp/(\d+)/`).FindStringSubmatch(minerOut.String())
	if port == nil {
		t.Fatalf("the miner printed no address:\n%s", minerOut.String())
	}
	c.ok("--home", home, "wallet", "new", "--name", "x", "--password-file", pw)
	taken := "/ip4/127.0.0.1/tcp/" + port[1]
	r = runBounded(t, c, 30*time.Second, func() {}, "--home", home, "miner", "run", "--wallet", "x", "--netuid", "1", "--listen", taken, "--password-file", pw, "--chain", url)
	if want := "address already in use: " + taken + " (another process listens there; to share a TCP port, start every process on it with --reuseport)"; r.code != exitFailure || !strings.Contains(r.stderr, want) {
		t.Fatalf("a miner on a port in use: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if after := axons(); after != before {
		t.Fatalf("the refused miner changed the axons from %s to %s", before, after)
	}

	// A server that holds only the hotkeys (the wallet copied without its
	// coldkey) runs a miner with --hotkey-only for a hotkey registered
	// from the coldkey's machine, and asks for no password; an
	// unregistered one is refused, saying where to register it; a
	// validator cannot stake without the coldkey.
	c.ok("--home", home, "wallet", "new-hotkey", "--name", "m", "--hotkey", "h2")
	c.ok("--home", home, "wallet", "new-hotkey", "--name", "m", "--hotkey", "h3")
	c.ok("--home", home, "subnets", "register", "--netuid", "1", "--wallet", "m", "--hotkey", "h2", "--password-file", pw, "--chain", url)
	server := filepath.Join(dir, "server")
	if err := os.CopyFS(filepath.Join(server, "wallets", "m"), os.DirFS(filepath.Join(home, "wallets", "m"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(server, "wallets", "m", "coldkey")); err != nil {
		t.Fatal(err)
	}
	stopH2, h2Out := startCommand(t, server, "miner", "run", "--wallet", "m", "--hotkey", "h2", "--hotkey-only", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--chain", url)
	hotkeyOnlyUp := time.Now().Add(30 * time.Second)
	for !strings.Contains(h2Out.String(), "miner uid ") {
		if time.Now().After(hotkeyOnlyUp) {
			t.Fatalf("the hotkey-only miner did not start:\n%s", h2Out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopH2()
	r = runBounded(t, c, 30*time.Second, func() {}, "--home", server, "miner", "run", "--wallet", "m", "--hotkey", "h3", "--hotkey-only", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--chain", url)
	if want := `hotkey "h3" of wallet "m" is not registered on subnet 1`; r.code != exitFailure || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "subnets register --netuid 1 --wallet m --hotkey h3") {
		t.Fatalf("a hotkey-only miner for an unregistered hotkey: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	r = runBounded(t, c, 30*time.Second, func() {}, "--home", server, "validator", "run", "--wallet", "m", "--hotkey", "h2", "--hotkey-only", "--stake", "5", "--netuid", "1", "--chain", url)
	if r.code != exitUsage || !strings.Contains(r.stderr, "--stake needs the coldkey") {
		t.Fatalf("a hotkey-only validator that stakes: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runBounded(t, c, 30*time.Second, func() {}, "--home", server, "validator", "run", "--wallet", "m", "--hotkey", "h2", "--hotkey-only", "--netuid", "1", "--chain", url, "--keep-connected-within", "0s")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--keep-connected-within 0s: must be positive") {
		t.Fatalf("a validator keeping miners connected within 0s: exit %d, stderr %q", r.code, r.stderr)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		r := c.run("--home", home, "metagraph", "--netuid", "1", "--json", "--chain", url)
		if r.code == 0 {
			m := decode[chain.Metagraph](t, r.stdout)
			// Four neurons: the miner and the hotkey-only miner (the axons
			// on chain), the validator and the library-serving hotkey.
			minerEarns, validatorEarns := false, false
			for uid := range m.N {
				minerEarns = minerEarns || (m.Axons[uid] != nil && m.Incentive[uid] > 0)
				validatorEarns = validatorEarns || (m.Axons[uid] == nil && m.Dividends[uid] > 0)
			}
			if m.N == 4 && minerEarns && validatorEarns {
				// The validator scored with the qa spec's reward expression.
				if !strings.Contains(validatorOut.String(), `running spec "qa"`) {
					t.Fatalf("the validator did not run the spec:\n%s", validatorOut.String())
				}
				checkMetrics(t, minerOut.String())
				return
			}
		}
		if time.Now().After(deadline) {
			m := decode[chain.Metagraph](t, r.stdout)
			t.Fatalf("no incentive for the miner: block %d n %d stake %v permit %v active %v lastupdate %v reg %v incentive %v dividends %v weights %v axons %v",
				m.Block, m.N, m.Stake, m.ValidatorPermit, m.Active, m.LastUpdate, m.RegisteredAt, m.Incentive, m.Dividends, m.Weights, m.Axons)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkMetrics reads the metrics address the miner printed and checks that
// libp2p's metrics and gossip's delivery counter are served.
func checkMetrics(t *testing.T, out string) {
	t.Helper()
	m := regexp.MustCompile(`metrics at (http://\S+/metrics)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the miner printed no metrics address:\n%s", out)
	}
	deadline := time.Now().Add(40 * time.Second)
	for {
		resp, err := http.Get(m[1])
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		text := string(body)
		if strings.Contains(text, "libp2p_") && strings.Contains(text, "cybertensor_gossip_delivered_total{topic=") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics lack libp2p's or gossip's deliveries:\n%.3000s", text)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// The example dataset spec's questions load, relative to the spec file.
func TestDatasetTasksFromTheExample(t *testing.T) {
	tasks, err := datasetTasks("../../examples/trivia/spec.yaml", "questions.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if len(tasks) != 8 || tasks[5].Prompt != "What is the chemical symbol of gold?" || tasks[5].Answer != "Au" {
		t.Fatalf("tasks %+v", tasks)
	}
	if _, err := datasetTasks("../../examples/trivia/spec.yaml", "missing.jsonl"); err == nil || !strings.Contains(err.Error(), "missing.jsonl") {
		t.Fatalf("a missing dataset: %v", err)
	}
}

// startCommand runs the command line with args in the background, under
// home, until the returned stop (which fails t if it exited non-zero);
// the buffer collects its output.
func startCommand(t *testing.T, home string, args ...string) (stop func(), out *syncBuffer) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	out = &syncBuffer{}
	go func() {
		done <- runWith(ctx, append([]string{"--home", home, "--log-level", "error"}, args...), env{
			stdin: strings.NewReader(""), stdout: out, stderr: out,
			getenv: func(k string) string { return "" }, userHome: func() (string, error) { return "", errors.New("none") },
		}, nil)
	}()
	return func() {
		cancel()
		if code := <-done; code != 0 {
			t.Errorf("%v exited %d: %s", args, code, out.String())
		}
	}, out
}
