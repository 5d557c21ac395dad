package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/internal/lockfile"
	"github.com/cybertensor/cybertensor/neuron"
)

// Each hotkey listens on every --listen port plus its index; overlapping
// ranges, ports past 65535 and addresses without a port are refused.
func TestListenFor(t *testing.T) {
	for _, tc := range []struct {
		listen []string
		n      int
		want   [][]string
		err    string
	}{
		{listen: []string{"/ip4/0.0.0.0/tcp/4001"}, n: 1, want: [][]string{{"/ip4/0.0.0.0/tcp/4001"}}},
		{listen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"}, n: 3, want: [][]string{
			{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/udp/4001/quic-v1"},
			{"/ip4/0.0.0.0/tcp/4002", "/ip4/0.0.0.0/udp/4002/quic-v1"},
			{"/ip4/0.0.0.0/tcp/4003", "/ip4/0.0.0.0/udp/4003/quic-v1"}}},
		{listen: []string{"/ip4/127.0.0.1/tcp/0"}, n: 2, want: [][]string{{"/ip4/127.0.0.1/tcp/0"}, {"/ip4/127.0.0.1/tcp/0"}}},
		{listen: []string{"/ip6/::/tcp/5000", "/ip4/0.0.0.0/tcp/5002"}, n: 2, want: [][]string{
			{"/ip6/::/tcp/5000", "/ip4/0.0.0.0/tcp/5002"}, {"/ip6/::/tcp/5001", "/ip4/0.0.0.0/tcp/5003"}}},
		{listen: []string{"/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/tcp/4002"}, n: 3, err: "take tcp ports 4001-4003 and 4002-4004, which overlap"},
		{listen: []string{"/ip4/0.0.0.0/tcp/65534"}, n: 3, err: "3 hotkeys need tcp ports 65534 to 65536, past 65535"},
		{listen: []string{"/ip4/0.0.0.0/udp/4001/quic-v1", "/ip4/0.0.0.0/udp/4000/quic-v1"}, n: 2, err: "overlap"},
	} {
		got, err := listenFor(tc.listen, tc.n)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("listenFor(%v, %d): %v, want an error with %q", tc.listen, tc.n, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.EqualFunc(got, tc.want, slices.Equal) {
			t.Errorf("listenFor(%v, %d) = %v, %v, want %v", tc.listen, tc.n, got, err, tc.want)
		}
	}
}

// Ambiguous or empty hotkey lists are refused before anything runs.
func TestMinerRunRefusesBadHotkeys(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	empty := writeFile(t, dir, "empty", "# none yet\n\n")
	two := writeFile(t, dir, "two", "h1 h2\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--hotkey", "h1", "--hotkeys", "h1,h2"}, "--hotkey names one hotkey, --hotkeys and --hotkeys-file several: give one of them"},
		{[]string{"--hotkeys", "h1,h2", "--hotkeys-file", empty}, "--hotkeys and --hotkeys-file: give the hotkeys one way"},
		{[]string{"--hotkeys", "h1,h2,h1"}, `--hotkeys: hotkey "h1" is named twice`},
		{[]string{"--hotkeys", "h1,,h2"}, "--hotkeys: an empty hotkey name"},
		{[]string{"--hotkeys", ""}, "--hotkeys: no hotkey named"},
		{[]string{"--hotkeys-file", empty}, "names no hotkey"},
		{[]string{"--hotkeys-file", two}, `line 1: "h1 h2" is not one hotkey name`},
		{[]string{"--hotkeys-file", filepath.Join(dir, "missing")}, "--hotkeys-file: open"},
		{[]string{"--hotkeys", "h1,h2", "--listen", "/ip4/0.0.0.0/tcp/4001", "--listen", "/ip4/0.0.0.0/tcp/4002"}, "which overlap"},
		{[]string{"--hotkeys", "h1,h2", "--listen", "/ip4/0.0.0.0/tcp/65535"}, "past 65535"},
	} {
		r := c.run(append([]string{"--home", home, "miner", "run", "--chain", "http://127.0.0.1:1"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// freePorts finds n consecutive free TCP ports on loopback.
func freePorts(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := freePort(t)
		if base+n > 65535 {
			continue
		}
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if ok = err == nil; ok {
				l.Close()
			}
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// An operator with three hotkeys runs one process: each registers, serves
// on its own port and is scored by the validator. A hotkey another
// process runs keeps all three from starting, naming it, and leaves
// nothing registered, locked or listening; so does, with --hotkey-only,
// a hotkey not registered.
func TestMinerRunSeveralHotkeys(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node, a validator and four miners")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	url := minerAndValidatorChain(t, c, home, pw)
	c.ok("--home", home, "subnets", "create", "--name", "qa", "--password-file", pw, "--chain", url)
	for _, h := range []string{"h1", "h2", "h3", "h4"} {
		c.ok("--home", home, "wallet", "new-hotkey", "--name", "m", "--hotkey", h)
	}
	metagraph := func() chain.Metagraph {
		return decode[chain.Metagraph](t, c.ok("--home", home, "metagraph", "--netuid", "1", "--json", "--chain", url).stdout)
	}
	waitFor := func(what string, out *syncBuffer, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s; the miners said:\n%.6000s", what, out.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	port := freePorts(t, 3)
	listen := fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port)
	free := func() {
		t.Helper()
		for i, h := range []string{"h1", "h2", "h3"} {
			l, err := lockfile.Acquire(filepath.Join(home, "neurons", "m", h, neuron.LockFile), 0)
			switch {
			case err == nil:
				l.Release()
			case !errors.Is(err, fs.ErrNotExist): // a miner never made
				t.Fatalf("%s's state is left locked: %v", h, err)
			}
			ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+i))
			if err != nil {
				t.Fatalf("%s's port is left bound: %v", h, err)
			}
			ln.Close()
		}
	}

	// Another process runs h2.
	stopH2, h2Out := startCommand(t, home, "miner", "run", "--wallet", "m", "--hotkey", "h2", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	waitFor("h2's own miner", h2Out, func() bool { return strings.Contains(h2Out.String(), "miner uid ") })
	before := metagraph().N
	r := runBounded(t, c, 60*time.Second, func() {}, "--home", home, "miner", "run", "--wallet", "m", "--hotkeys", "h1,h2,h3", "--netuid", "1", "--listen", listen, "--password-file", pw, "--chain", url)
	want := fmt.Sprintf(`no miner started: wallet "m" hotkey "h2" (state in %s) is in use by another process (pid %d)`, filepath.Join(home, "neurons", "m", "h2"), os.Getpid())
	if r.code != exitFailure || !strings.Contains(r.stderr, want) {
		t.Fatalf("three hotkeys, one run elsewhere: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if after := metagraph().N; after != before {
		t.Fatalf("the refused miners registered: %d neurons, then %d", before, after)
	}
	stopH2()
	free()
	// Another process listens on h3's port.
	taken, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+2))
	if err != nil {
		t.Fatal(err)
	}
	r = runBounded(t, c, 60*time.Second, func() {}, "--home", home, "miner", "run", "--wallet", "m", "--hotkeys", "h1,h2,h3", "--netuid", "1", "--listen", listen, "--password-file", pw, "--chain", url)
	want = fmt.Sprintf(`address already in use: /ip4/127.0.0.1/tcp/%d (another process listens there`, port+2)
	if r.code != exitFailure || !strings.Contains(r.stderr, `no miner started: hotkey "h3": --listen: `) || !strings.Contains(r.stderr, want) {
		t.Fatalf("three hotkeys, a port of one taken: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	taken.Close()
	if after := metagraph().N; after != before {
		t.Fatalf("the refused miners registered: %d neurons, then %d", before, after)
	}
	free()

	stopValidator, validatorOut := startCommand(t, home, "validator", "run", "--builtin", "qa", "--wallet", "v", "--netuid", "1", "--stake", "50", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url, "--query-every", "1", "--weights-every", "3")
	defer stopValidator()
	stopMiners, out := startCommand(t, home, "miner", "run", "--wallet", "m", "--hotkeys", "h1,h2,h3", "--netuid", "1", "--listen", listen, "--password-file", pw, "--chain", url, "--metrics", "127.0.0.1:0")
	waitFor("the miners to start", out, func() bool { return strings.Contains(out.String(), "3 miners running (Ctrl-C to stop)") })
	uids := map[string]int{}
	for i, h := range []string{"h1", "h2", "h3"} {
		m := regexp.MustCompile(`miner uid (\d+) on subnet 1 as ` + h + ` serving at /ip4/127\.0\.0\.1/tcp/(\d+)/p2p/`).FindStringSubmatch(out.String())
		if m == nil || m[2] != strconv.Itoa(port+i) {
			t.Fatalf("%s's line (want port %d):\n%s", h, port+i, out.String())
		}
		uids[h], _ = strconv.Atoi(m[1])
	}
	waitFor("incentive for each of the three miners", out, func() bool {
		m := metagraph()
		for _, uid := range uids {
			if uid >= m.N || m.Incentive[uid] == 0 || m.Axons[uid] == nil {
				return false
			}
		}
		return true
	})
	// One metrics server: each miner's queries under its hotkey, libp2p's
	// once for the process.
	addr := regexp.MustCompile(`metrics at (http://\S+/metrics)`).FindStringSubmatch(out.String())
	if addr == nil {
		t.Fatalf("no metrics address:\n%s", out.String())
	}
	resp, err := http.Get(addr[1])
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, h := range []string{"h1", "h2", "h3"} {
		if !strings.Contains(string(body), `cybertensor_miner_queries_served_total{hotkey="`+h+`",synapse="text.generate"}`) || !strings.Contains(string(body), `cybertensor_gossip_rpc_sent_total{hotkey="`+h+`"}`) {
			t.Fatalf("metrics lack %s's series:\n%.4000s", h, body)
		}
	}
	if !strings.Contains(string(body), "\nlibp2p_") {
		t.Fatalf("metrics lack libp2p's:\n%.4000s", body)
	}
	stopMiners()
	for h, uid := range uids {
		m := regexp.MustCompile(fmt.Sprintf(`miner uid %d \(%s\) served (\d+) queries`, uid, h)).FindStringSubmatch(out.String())
		if m == nil || m[1] == "0" {
			t.Fatalf("%s's served queries:\n%s", h, out.String())
		}
	}
	free()

	// Without the coldkey, h4 (not registered) keeps h1 from starting too.
	before = metagraph().N
	r = runBounded(t, c, 60*time.Second, func() {}, "--home", home, "miner", "run", "--wallet", "m", "--hotkeys", "h1,h4", "--hotkey-only", "--netuid", "1", "--listen", listen, "--chain", url)
	if want := `no miner started: hotkey "h4" of wallet "m" is not registered on subnet 1`; r.code != exitFailure || !strings.Contains(r.stderr, want) {
		t.Fatalf("a hotkey-only run with an unregistered hotkey: exit %d, stderr %q, want %q", r.code, r.stderr, want)
	}
	if after := metagraph().N; after != before {
		t.Fatalf("the refused miners registered: %d neurons, then %d", before, after)
	}
	free()
	// --hotkeys naming one hotkey runs and prints as --hotkey does.
	stopOne, oneOut := startCommand(t, home, "miner", "run", "--wallet", "m", "--hotkeys", "h1", "--netuid", "1", "--listen", listen, "--password-file", pw, "--chain", url)
	single := fmt.Sprintf("miner uid %d on subnet 1 serving at /ip4/127.0.0.1/tcp/%d/p2p/", uids["h1"], port)
	waitFor("h1 alone", oneOut, func() bool { return strings.Contains(oneOut.String(), single) })
	stopOne()
	if !strings.Contains(oneOut.String(), "\nserved ") {
		t.Fatalf("h1 alone printed:\n%s", oneOut.String())
	}
	if !strings.Contains(validatorOut.String(), "validator uid") {
		t.Fatalf("the validator said:\n%s", validatorOut.String())
	}
}
