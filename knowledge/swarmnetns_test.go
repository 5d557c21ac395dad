package knowledge

// A swarm fetch between machines: each library runs in a process of its
// own, in a network namespace of its own, behind a veth link that
// `tc tbf` limits to a rate each way, as a machine's uplink and downlink
// are. The test binary is its own node program: TestMain runs
// swarmNodeMain instead of the tests when swarmNodeEnv is set, and the
// parent drives each node with JSON lines on its stdin and stdout.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	neuronnode "github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

// swarmNodeEnv holds a node process's IP address in its namespace.
const swarmNodeEnv = "CYBERTENSOR_KNOWLEDGE_SWARM_NODE"

// swarmProfileEnv names a directory for each node's CPU profile of each
// run of BenchmarkSwarmFetchLinks.
const swarmProfileEnv = "CYBERTENSOR_KNOWLEDGE_SWARM_PROFILE"

// nodeCommand is one line the parent writes to a node process.
type nodeCommand struct {
	Op        string          `json:"op"`
	Size      int             `json:"size,omitempty"`
	Seed      int64           `json:"seed,omitempty"`
	CID       string          `json:"cid,omitempty"`
	Addr      string          `json:"addr,omitempty"`
	Peers     []peer.AddrInfo `json:"peers,omitempty"`
	Providers []peer.AddrInfo `json:"providers,omitempty"`
}

// nodeReply is a node process's answer to one command.
type nodeReply struct {
	Error  string         `json:"error,omitempty"`
	Info   *peer.AddrInfo `json:"info,omitempty"`
	CID    string         `json:"cid,omitempty"`
	SHA256 string         `json:"sha256,omitempty"`
	Addr   string         `json:"addr,omitempty"`
	Bytes  int64          `json:"bytes,omitempty"`
	Sent   int64          `json:"sent,omitempty"`
	CPUms  int64          `json:"cpu_ms,omitempty"`
	MaxRSS int64          `json:"max_rss_kib,omitempty"`
}

// nodeCommandTimeout bounds each command a node process carries out (a
// fetch of 100 MiB over a 50 Mbit/s link takes about 30 s); the parent
// kills its nodes if a fetch outlasts it.
const nodeCommandTimeout = 5 * time.Minute

// swarmNodeMain is a node process: a library on a host listening on ip,
// serving the knowledge protocol and counting what it sends, doing what
// the commands on stdin say until stdin closes.
func swarmNodeMain(ip string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fail := func(err error) int { log.Error("swarm node", "err", err); return 1 }
	seed := sha256.Sum256([]byte("swarm node " + ip))
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "swarm-node-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	// A validator's own configurations, but TCP only (the baseline is a
	// TCP transfer) and no DHT: providers come from the metagraph.
	ncfg := neuronnode.DefaultConfig(k)
	ncfg.ListenAddrs = []string{"/ip4/" + ip + "/tcp/4001"}
	ncfg.Logger = log
	lcfg := DefaultConfig(filepath.Join(dir, "library"))
	lcfg.Key, lcfg.Logger = k, log
	s, err := startSeeder(ncfg, lcfg)
	if err != nil {
		return fail(err)
	}
	defer s.close()

	out := json.NewEncoder(os.Stdout)
	reply := func(r nodeReply) { out.Encode(r) }
	info := s.info()
	reply(nodeReply{Info: &info})
	ctx := context.Background()
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(nil, 1<<20)
	for in.Scan() {
		var cmd nodeCommand
		if err := json.Unmarshal(in.Bytes(), &cmd); err != nil {
			reply(nodeReply{Error: err.Error()})
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, nodeCommandTimeout)
		r, err := s.do(cctx, ip, cmd, reply)
		cancel()
		if err != nil {
			r.Error = err.Error()
		}
		reply(r)
	}
	return 0
}

// do carries out one command; rawrecv replies twice (its address, then
// what it received), through early for the first.
func (s *seeder) do(ctx context.Context, ip string, cmd nodeCommand, early func(nodeReply)) (nodeReply, error) {
	switch cmd.Op {
	case "publish":
		obj, err := s.lib.Publish(ctx, bytes.NewReader(goRandom(cmd.Size, cmd.Seed)), Meta{Title: "model artifact", Netuid: 1})
		if err != nil {
			return nodeReply{}, err
		}
		return nodeReply{CID: obj.CID.String()}, nil
	case "connect":
		for _, p := range cmd.Peers {
			if err := s.n.Connect(ctx, p); err != nil {
				return nodeReply{}, err
			}
		}
		return nodeReply{}, nil
	case "reset":
		s.sent.Store(0)
		return nodeReply{}, nil
	case "fetch":
		c, err := cid.Decode(cmd.CID)
		if err != nil {
			return nodeReply{}, err
		}
		return nodeReply{}, s.lib.Fetch(ctx, c, WithProviders(cmd.Providers...))
	case "hash":
		c, err := cid.Decode(cmd.CID)
		if err != nil {
			return nodeReply{}, err
		}
		h := sha256.New()
		if _, err := s.lib.Get(ctx, c, h); err != nil {
			return nodeReply{}, err
		}
		return nodeReply{SHA256: hex.EncodeToString(h.Sum(nil))}, nil
	case "stats":
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		return nodeReply{Sent: s.sent.Load(), CPUms: cpu.Milliseconds(), MaxRSS: ru.Maxrss}, nil
	case "profile": // a CPU profile to Addr, until "stop-profile"
		f, err := os.Create(cmd.Addr)
		if err != nil {
			return nodeReply{}, err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return nodeReply{}, err
		}
		s.profile = f
		return nodeReply{}, nil
	case "stop-profile":
		if s.profile != nil {
			pprof.StopCPUProfile()
			s.profile.Close()
			s.profile = nil
		}
		return nodeReply{}, nil
	case "rawrecv":
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "4002"))
		if err != nil {
			return nodeReply{}, err
		}
		defer ln.Close()
		stop := context.AfterFunc(ctx, func() { ln.Close() }) // Accept ends with ctx
		defer stop()
		early(nodeReply{Addr: ln.Addr().String()})
		c, err := ln.Accept()
		if err != nil {
			return nodeReply{}, err
		}
		defer c.Close()
		n, err := io.Copy(io.Discard, c)
		return nodeReply{Bytes: n}, err
	case "rawsend":
		c, err := net.Dial("tcp", cmd.Addr)
		if err != nil {
			return nodeReply{}, err
		}
		defer c.Close()
		n, err := c.Write(goRandom(cmd.Size, cmd.Seed))
		return nodeReply{Bytes: int64(n)}, err
	}
	return nodeReply{}, fmt.Errorf("unknown op %q", cmd.Op)
}

// netnsLab is a set of network namespaces, each with one veth link to a
// bridge in a hub namespace, every link limited to rate each way.
type netnsLab struct {
	hub   string
	names []string
	ips   []string
}

// newNetnsLab makes n namespaces behind links of rate (tc's notation,
// e.g. "100mbit"), or skips tb where that cannot be done (not root, no
// iproute2, no tbf); the namespaces are removed when tb ends.
func newNetnsLab(tb testing.TB, n int, rate string) *netnsLab {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root to create network namespaces")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("iproute2 (ip) is not installed")
	}
	if _, err := exec.LookPath("tc"); err != nil {
		tb.Skip("iproute2's tc is not installed")
	}
	prefix := fmt.Sprintf("ksw%d", os.Getpid())
	lab := &netnsLab{hub: prefix + "-hub"}
	tb.Cleanup(func() {
		for _, name := range append([]string{lab.hub}, lab.names...) {
			exec.Command("ip", "netns", "del", name).Run()
		}
	})
	run := func(args ...string) error {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	if err := run("ip", "netns", "add", lab.hub); err != nil {
		tb.Skipf("cannot create network namespaces here: %v", err)
	}
	must := func(args ...string) {
		if err := run(args...); err != nil {
			tb.Fatal(err)
		}
	}
	// tbf's burst must hold a whole GSO segment; the queue holds 50 ms.
	limit := func(ns, dev string) error {
		return run("tc", "-n", ns, "qdisc", "add", "dev", dev, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms")
	}
	must("ip", "-n", lab.hub, "link", "add", "br0", "type", "bridge")
	must("ip", "-n", lab.hub, "link", "set", "br0", "up")
	for i := range n {
		name, ip := fmt.Sprintf("%s-%d", prefix, i), fmt.Sprintf("10.232.%d.%d", i/200, 1+i%200)
		must("ip", "netns", "add", name)
		lab.names, lab.ips = append(lab.names, name), append(lab.ips, ip)
		hubDev, dev := fmt.Sprintf("h%d", i), fmt.Sprintf("e%d", i)
		must("ip", "-n", lab.hub, "link", "add", hubDev, "type", "veth", "peer", "name", dev, "netns", name)
		must("ip", "-n", lab.hub, "link", "set", hubDev, "master", "br0")
		must("ip", "-n", lab.hub, "link", "set", hubDev, "up")
		must("ip", "-n", name, "addr", "add", ip+"/16", "dev", dev)
		must("ip", "-n", name, "link", "set", dev, "up")
		must("ip", "-n", name, "link", "set", "lo", "up")
		// The node's uplink (its veth's egress) and downlink (the hub's).
		if err := limit(name, dev); err != nil {
			tb.Skipf("cannot limit a link's rate here (tc tbf): %v", err)
		}
		must("tc", "-n", lab.hub, "qdisc", "add", "dev", hubDev, "root", "tbf", "rate", rate, "burst", "256kb", "latency", "50ms")
	}
	return lab
}

// nodeProcess is one node process and the pipes that drive it.
type nodeProcess struct {
	cmd  *exec.Cmd
	in   io.WriteCloser
	out  *json.Decoder
	info peer.AddrInfo
	mu   sync.Mutex
}

// startNodes starts a node process in each of lab's namespaces and waits
// for each to say who it is; they are stopped when tb ends.
func startNodes(tb testing.TB, lab *netnsLab) []*nodeProcess {
	tb.Helper()
	self, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	logs := tb.TempDir()
	var nodes []*nodeProcess
	tb.Cleanup(func() {
		for _, p := range nodes {
			p.in.Close() // the node's loop ends: it closes and exits
		}
		for _, p := range nodes {
			done := make(chan struct{})
			go func() { p.cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				p.cmd.Process.Kill()
				<-done
			}
		}
	})
	for i, name := range lab.names {
		cmd := exec.Command("ip", "netns", "exec", name, self)
		cmd.Env = append(os.Environ(), swarmNodeEnv+"="+lab.ips[i])
		stderr, err := os.Create(filepath.Join(logs, name+".log"))
		if err != nil {
			tb.Fatal(err)
		}
		defer stderr.Close()
		cmd.Stderr = stderr
		in, err := cmd.StdinPipe()
		if err != nil {
			tb.Fatal(err)
		}
		out, err := cmd.StdoutPipe()
		if err != nil {
			tb.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			tb.Fatal(err)
		}
		p := &nodeProcess{cmd: cmd, in: in, out: json.NewDecoder(out)}
		nodes = append(nodes, p)
		var hello nodeReply
		if err := p.out.Decode(&hello); err != nil || hello.Info == nil {
			log, _ := os.ReadFile(stderr.Name())
			tb.Fatalf("node %d did not start: %v %s: %s", i, err, hello.Error, log)
		}
		p.info = *hello.Info
	}
	return nodes
}

// send writes cmd to the node.
func (p *nodeProcess) send(cmd nodeCommand) error {
	b, err := json.Marshal(cmd)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err = p.in.Write(append(b, '\n'))
	return err
}

// receive reads the node's next reply; its error field becomes an error.
func (p *nodeProcess) receive() (nodeReply, error) {
	var r nodeReply
	if err := p.out.Decode(&r); err != nil {
		return r, fmt.Errorf("node %s: %w", p.info.ID, err)
	}
	if r.Error != "" {
		return r, fmt.Errorf("node %s: %s", p.info.ID, r.Error)
	}
	return r, nil
}

// call sends cmd and reads the reply.
func (p *nodeProcess) call(cmd nodeCommand) (nodeReply, error) {
	if err := p.send(cmd); err != nil {
		return nodeReply{}, err
	}
	return p.receive()
}

// linkRun is what a swarm fetch between namespaces measured.
type linkRun struct {
	swarmRun
	tcp      time.Duration // one raw-TCP transfer, miner to a validator
	cpu      time.Duration // CPU of every node process, from the start
	profiles []string      // CPU profiles of the nodes (swarmProfileEnv)
	peakRSS  int64         // the largest node process's, bytes
	fetchers int
}

// swarmFetchLinks publishes size bytes on nodes[0] (the miner) and has
// every other node fetch it at the same moment, each told the miner and
// every other fetcher; each copy is then checked. Before, it times one
// raw-TCP transfer of the same bytes from the miner to the first fetcher
// over the same links.
func swarmFetchLinks(tb testing.TB, nodes []*nodeProcess, size int, seed int64) (linkRun, error) {
	miner, fs := nodes[0], nodes[1:]
	run := linkRun{fetchers: len(fs)}
	// The baseline.
	r, err := fs[0].call(nodeCommand{Op: "rawrecv"})
	if err != nil {
		return run, err
	}
	began := time.Now()
	if err := miner.send(nodeCommand{Op: "rawsend", Addr: r.Addr, Size: size, Seed: seed}); err != nil {
		return run, err
	}
	if r, err = fs[0].receive(); err != nil {
		return run, err
	} else if r.Bytes != int64(size) {
		return run, fmt.Errorf("raw TCP: %d bytes of %d", r.Bytes, size)
	}
	run.tcp = time.Since(began)
	if _, err := miner.receive(); err != nil {
		return run, err
	}

	r, err = miner.call(nodeCommand{Op: "publish", Size: size, Seed: seed})
	if err != nil {
		return run, err
	}
	c := r.CID
	// Connections are up before the clock starts, as between the
	// validators and miners of a running subnet.
	for i, f := range fs {
		var peers []peer.AddrInfo
		for _, o := range nodes[:i+1] {
			peers = append(peers, o.info)
		}
		if _, err := f.call(nodeCommand{Op: "connect", Peers: peers}); err != nil {
			return run, err
		}
	}
	for _, p := range nodes {
		if _, err := p.call(nodeCommand{Op: "reset"}); err != nil {
			return run, err
		}
		st, err := p.call(nodeCommand{Op: "stats"})
		if err != nil {
			return run, err
		}
		run.cpu -= time.Duration(st.CPUms) * time.Millisecond
		if dir := os.Getenv(swarmProfileEnv); dir != "" {
			path := filepath.Join(dir, fmt.Sprintf("node%d-%s.pprof", len(run.profiles), c[len(c)-8:]))
			if _, err := p.call(nodeCommand{Op: "profile", Addr: path}); err != nil {
				return run, err
			}
			run.profiles = append(run.profiles, path)
		}
	}
	began = time.Now()
	for i, f := range fs {
		providers := []peer.AddrInfo{miner.info}
		for j, o := range fs {
			if j != i {
				providers = append(providers, o.info)
			}
		}
		if err := f.send(nodeCommand{Op: "fetch", CID: c, Providers: providers}); err != nil {
			return run, err
		}
	}
	type done struct {
		took time.Duration
		err  error
	}
	results := make(chan done, len(fs))
	for _, f := range fs {
		go func() {
			_, err := f.receive()
			results <- done{time.Since(began), err}
		}()
	}
	run.first = time.Hour
	var errs []error
	watchdog := time.AfterFunc(nodeCommandTimeout+30*time.Second, func() {
		for _, p := range nodes {
			p.cmd.Process.Kill() // a hung node: its reply fails
		}
	})
	defer watchdog.Stop()
	for range fs {
		d := <-results
		errs = append(errs, d.err)
		run.last, run.first = max(run.last, d.took), min(run.first, d.took)
	}
	if err := errors.Join(errs...); err != nil {
		return run, err
	}
	want := sha256.Sum256(goRandom(size, seed))
	for i, p := range nodes {
		if _, err := p.call(nodeCommand{Op: "stop-profile"}); err != nil {
			return run, err
		}
		st, err := p.call(nodeCommand{Op: "stats"})
		if err != nil {
			return run, err
		}
		if i == 0 {
			run.minerSent = st.Sent
		} else {
			run.peersSent += st.Sent
		}
		run.cpu += time.Duration(st.CPUms) * time.Millisecond
		run.peakRSS = max(run.peakRSS, st.MaxRSS<<10)
		if i == 0 {
			continue
		}
		h, err := p.call(nodeCommand{Op: "hash", CID: c})
		if err != nil {
			return run, err
		}
		if h.SHA256 != hex.EncodeToString(want[:]) {
			return run, fmt.Errorf("fetcher %d holds other bytes", i)
		}
	}
	return run, nil
}

// Every fetcher of a small swarm between namespaces, each node its own
// process behind a rate-limited link, ends with the verified object, and
// the miner uploads less than once per fetcher.
func TestSwarmFetchBetweenNamespaces(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes in network namespaces")
	}
	lab := newNetnsLab(t, 5, "200mbit")
	nodes := startNodes(t, lab)
	const size = 8 << 20
	run, err := swarmFetchLinks(t, nodes, size, 7)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("last %v, raw TCP %v; miner sent %.2f× the size, fetchers %.2f×", run.last, run.tcp,
		float64(run.minerSent)/size, float64(run.peersSent)/size)
	if run.minerSent >= int64(run.fetchers)*size {
		t.Fatalf("the miner sent %d bytes, as much as every fetcher fetching from it alone", run.minerSent)
	}
	if run.peersSent == 0 {
		t.Fatal("the fetchers served each other nothing")
	}
}

// BenchmarkSwarmFetchLinks: #25's target between machines: 16 validators
// fetch a new 100 MiB artifact from its miner at the same moment, each
// node a process in its own network namespace behind a link limited to
// the rate each way; the last within 3× one raw-TCP transfer of 100 MiB
// over the same links, the miner uploading at most 4× the size.
func BenchmarkSwarmFetchLinks(b *testing.B) {
	const size, fetchers = 100 << 20, 16
	for _, rate := range []string{"50mbit", "100mbit", "200mbit"} {
		b.Run(rate, func(b *testing.B) {
			lab := newNetnsLab(b, fetchers+1, rate)
			nodes := startNodes(b, lab)
			for i := range b.N {
				run, err := swarmFetchLinks(b, nodes, size, int64(40+i))
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("run %d: last %v (first %v), raw TCP %v: %.2f×; miner sent %.2f× the size, validators %.2f×; CPU %v, peak RSS %d MiB",
					i, run.last, run.first, run.tcp, float64(run.last)/float64(run.tcp),
					float64(run.minerSent)/size, float64(run.peersSent)/size, run.cpu.Round(time.Millisecond), run.peakRSS>>20)
				b.ReportMetric(float64(run.last.Milliseconds()), "last-ms")
				b.ReportMetric(float64(run.tcp.Milliseconds()), "tcp-ms")
				b.ReportMetric(float64(run.last)/float64(run.tcp), "time/tcp")
				b.ReportMetric(float64(run.minerSent)/size, "upload/size")
			}
		})
	}
}
