package main

import (
	"io"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/gateway"
)

func TestGatewayRefusesToRunOpen(t *testing.T) {
	c := newCLI(t)
	// No key file (the home's default, or --keys): refused before any
	// password or chain, naming the file and how to make a key.
	home := t.TempDir()
	r := c.fail(exitFailure, "--home", home, "gateway", "--netuid", "1")
	if want := "no API keys at " + defaultGatewayKeysFile(home); !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, "gateway keys add") {
		t.Fatalf("stderr %q, want %q", r.stderr, want)
	}
	r = c.fail(exitFailure, "--home", t.TempDir(), "gateway", "--netuid", "1", "--keys", "k.json")
	if !strings.Contains(r.stderr, "no API keys at k.json") {
		t.Fatalf("stderr %q", r.stderr)
	}
}

// testMeters let one key in and record nothing durable.
type testMeters struct {
	mu   sync.Mutex
	rows []gateway.Usage
}

func (m *testMeters) Authenticate(s string) (string, bool)                 { return "k1", s == "secret" }
func (m *testMeters) Allow(string, int64, time.Time) (bool, time.Duration) { return true, 0 }
func (m *testMeters) Record(u gateway.Usage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.rows = append(m.rows, u)
	return nil
}

// TestGatewayRunsAgainstAChain runs a miner and the gateway command as
// registered hotkeys on a CometBFT chain: the gateway lists its models
// and reaches the miner over libp2p, and refuses to start for an
// unregistered hotkey.
func TestGatewayRunsAgainstAChain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node, a miner and the gateway")
	}
	meters := &testMeters{}
	old := openGatewayMeters
	openGatewayMeters = func(_ *app, _ string, _ prometheus.Registerer) (gatewayMeters, error) {
		return gatewayMeters{auth: meters, limit: meters, rec: meters, close: func() error { return nil }}, nil
	}
	t.Cleanup(func() { openGatewayMeters = old })

	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--name", "m", "--password-file", pw)
	fund := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--name", "m", "--json").stdout).Coldkey.Address + "=100000"
	url := runningChainWith(t, c, home, chain.YumaEpoch, "--fund", fund)
	c.ok("--home", home, "subnets", "create", "--name", "qa", "--password-file", pw, "--chain", url)

	// Not registered yet: refused, saying how to register.
	r := runBounded(t, c, 30*time.Second, func() {}, "--home", home, "gateway", "--netuid", "1", "--password-file", pw, "--chain", url, "--listen", "127.0.0.1:0", "--keys", "k")
	if r.code != exitFailure || !strings.Contains(r.stderr, "is not registered on subnet 1") || !strings.Contains(r.stderr, "subnets register") {
		t.Fatalf("unregistered gateway: exit %d, %s", r.code, r.stderr)
	}
	c.ok("--home", home, "subnets", "create", "--name", "second", "--password-file", pw, "--chain", url)
	r = runBounded(t, c, 30*time.Second, func() {}, "--home", home, "gateway", "--netuid", "1,2", "--password-file", pw, "--chain", url, "--listen", "127.0.0.1:0", "--keys", "k")
	if r.code != exitFailure || !strings.Contains(r.stderr, "is not registered on subnets 1, 2,") || !strings.Contains(r.stderr, "--netuid 2 ") {
		t.Fatalf("gateway over two subnets, registered on neither: exit %d, %s", r.code, r.stderr)
	}
	c.ok("--home", home, "subnets", "register", "--netuid", "1", "--password-file", pw, "--chain", url)
	// Registered on one of two: refused, naming the other only.
	r = runBounded(t, c, 30*time.Second, func() {}, "--home", home, "gateway", "--netuid", "1", "--netuid", "2", "--password-file", pw, "--chain", url, "--listen", "127.0.0.1:0", "--keys", "k")
	if r.code != exitFailure || !strings.Contains(r.stderr, "is not registered on subnet 2,") || strings.Contains(r.stderr, "--netuid 1 ") {
		t.Fatalf("gateway over two subnets, registered on 1: exit %d, %s", r.code, r.stderr)
	}
	c.ok("--home", home, "subnets", "register", "--netuid", "2", "--password-file", pw, "--chain", url)

	stopMiner, minerOut := startCommand(t, home, "miner", "run", "--wallet", "m", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	defer stopMiner()
	waitOutput(t, "the miner", minerOut, regexp.MustCompile(`miner uid \d+ on subnet 1 serving`))
	stopGateway, gwOut := startCommand(t, home, "gateway", "--netuid", "1", "--netuid", "2", "--password-file", pw, "--chain", url, "--listen", "127.0.0.1:0", "--keys", "k")
	defer stopGateway()
	base := waitOutput(t, "the gateway", gwOut, regexp.MustCompile(`gateway for subnets 1, 2 at (http://\S+/v1) as hotkey \S+ \(models sn1/text.chat, sn1/text.embed, sn2/text.chat, sn2/text.embed; `))[1]

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	do := func(method, path, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer secret")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := do("GET", "/models", ""); code != 200 || !strings.Contains(body, `"sn1/text.chat"`) || !strings.Contains(body, `"sn1/text.embed"`) || !strings.Contains(body, `"sn2/text.embed"`) {
		t.Fatalf("models: %d %s", code, body)
	}
	// Subnet 2 has no miner (the gateway's own hotkey is no miner): its
	// requests never reach subnet 1's miner.
	if code, body := do("POST", "/chat/completions", `{"model":"sn2/text.chat","messages":[{"role":"user","content":"hi"}]}`); code != 503 || !strings.Contains(body, "subnet 2") {
		t.Fatalf("sn2 chat: %d %s", code, body)
	}
	meters.mu.Lock()
	if len(meters.rows) != 1 || meters.rows[0].Netuid != 2 || meters.rows[0].Attempts != 0 {
		t.Fatalf("usage of the sn2 request %+v", meters.rows)
	}
	meters.rows = nil
	meters.mu.Unlock()
	// The gateway reached the miner through the chain's axon: a miner
	// serving text.chat answers; one without it (main before the chat
	// backends) answers NOT_FOUND, which the client gets as 503 naming it.
	code, body := do("POST", "/chat/completions", `{"model":"sn1/text.chat","messages":[{"role":"user","content":"hi"}]}`)
	meters.mu.Lock()
	defer meters.mu.Unlock()
	if len(meters.rows) != 1 || meters.rows[0].Attempts != 1 || meters.rows[0].HTTPStatus != code {
		t.Fatalf("usage %+v after %d %s", meters.rows, code, body)
	}
	switch u := meters.rows[0]; code {
	case 200:
		if !strings.Contains(body, `"chat.completion"`) || u.Status != "OK" || len(u.Receipt) == 0 {
			t.Fatalf("chat: %s, usage %+v", body, u)
		}
	case 503:
		if !strings.Contains(body, "NOT_FOUND") || !strings.Contains(body, "text.chat") || u.Status != "NOT_FOUND" {
			t.Fatalf("chat through a miner without text.chat: %s, usage %+v", body, u)
		}
	default:
		t.Fatalf("chat: %d %s", code, body)
	}
}

// waitOutput waits up to a minute for a running command's output to match
// re and returns the match, or fails naming what it waited for.
func waitOutput(t *testing.T, what string, out *syncBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s:\n%s", what, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// --netuid is repeatable and takes comma lists; a subnet twice, the root
// network or a non-number is refused before anything runs.
func TestGatewayNetuidFlag(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []uint16
		says string
	}{
		{nil, []uint16{1}, ""},
		{[]string{"--netuid", "3"}, []uint16{3}, ""},
		{[]string{"--netuid", "1,3", "--netuid", "7"}, []uint16{1, 3, 7}, ""},
		{[]string{"--netuid", "2", "--netuid", "1"}, []uint16{2, 1}, ""},
		{[]string{"--netuid", "1,1"}, nil, "subnet 1 given twice"},
		{[]string{"--netuid", "1", "--netuid", "1"}, nil, "subnet 1 given twice"},
		{[]string{"--netuid", "0"}, nil, "root network"},
		{[]string{"--netuid", "x"}, nil, "want a netuid"},
		{[]string{"--netuid", "70000"}, nil, "want a netuid"},
		{[]string{"--netuid", "1,"}, nil, "want a netuid"},
	} {
		l := netuidList{vals: []uint16{1}}
		fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
		fs.SetOutput(io.Discard)
		fs.Var(&l, "netuid", "")
		err := fs.Parse(c.args)
		if c.says != "" {
			if err == nil || !strings.Contains(err.Error(), c.says) {
				t.Errorf("%v: %v, want an error saying %q", c.args, err, c.says)
			}
			continue
		}
		if err != nil || !slices.Equal(l.vals, c.want) {
			t.Errorf("%v: %v %v, want %v", c.args, l.vals, err, c.want)
		}
	}
	if r := newCLI(t).fail(exitUsage, "--home", t.TempDir(), "gateway", "--netuid", "2,2"); !strings.Contains(r.stderr, "given twice") {
		t.Fatalf("gateway --netuid 2,2: %s", r.stderr)
	}
	if got := subnetsText([]uint16{4}) + "; " + subnetsText([]uint16{1, 2, 3}); got != "subnet 4; subnets 1, 2, 3" {
		t.Fatalf("subnetsText: %s", got)
	}
}
