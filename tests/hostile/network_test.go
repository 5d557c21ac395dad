package hostile

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/dht"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/localnet"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// The child process: the network under attack and its honest peers. It
// reads commands from stdin, one per line, and writes one JSON message
// per line to stdout:
//
//	(at start)   {"ready": {...}}           once the network is up
//	phase NAME   {"phase": {...}}           the report of the phase that ends; NAME begins
//	live         {"live": {...}}            memory after two collections
//	heap FILE    {}                         a heap profile written to FILE
//	(EOF)        the child stops the network and exits
//
// Everything it measures is of its own process: the network, not the
// attacker.

// networkEnv, set to "1", makes the test binary the child.
const networkEnv = "CYBERTENSOR_HOSTILE_NETWORK"

// message is one line of the child's output.
type message struct {
	Ready *ready       `json:"ready,omitempty"`
	Phase *phaseReport `json:"phase,omitempty"`
	Live  *reading     `json:"live,omitempty"`
}

// ready says where the target is and what it serves.
type ready struct {
	Target    peer.AddrInfo `json:"target"`
	ChainID   string        `json:"chain_id"`
	Object    string        `json:"object"`     // a knowledge object the target holds
	SubnetKey string        `json:"subnet_key"` // the qa subnet's DHT key
	Neurons   int           `json:"neurons"`
}

// rate counts probes of one kind: how many were tried, how many succeeded.
type rate struct {
	OK  int64 `json:"ok"`
	All int64 `json:"all"`
}

func (r rate) String() string {
	if r.All == 0 {
		return "0/0"
	}
	return fmt.Sprintf("%d/%d (%.1f%%)", r.OK, r.All, 100*float64(r.OK)/float64(r.All))
}

func (r rate) fraction() float64 {
	if r.All == 0 {
		return 0
	}
	return float64(r.OK) / float64(r.All)
}

// Probe kinds.
const (
	probeQuery     = "query"
	probeDHT       = "dht"
	probeKnowledge = "knowledge"
	probeConnect   = "connect" // newcomers only: the connection itself
)

// phaseReport is what the child saw during one phase.
type phaseReport struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
	// Registered and Newcomer are the honest peers' probes by kind.
	Registered map[string]rate `json:"registered"`
	Newcomer   map[string]rate `json:"newcomer"`
	// Peaks of the process, sampled every 100 ms.
	PeakRSS        uint64 `json:"peak_rss"`
	PeakHeap       uint64 `json:"peak_heap"` // heap objects, live or not yet swept
	PeakGoroutines int    `json:"peak_goroutines"`
	// HighWater is the process's peak RSS since it started (VmHWM), as
	// the phase ends.
	HighWater uint64 `json:"high_water"`
	// Epochs of the qa subnet that ran, and the validators' queries to
	// miners answered OK, during the phase.
	Epochs           int   `json:"epochs"`
	ValidatorQueries int64 `json:"validator_queries"`
	// MinersPaid is how many miners the last metagraph of the phase pays.
	MinersPaid int `json:"miners_paid"`
	Miners     int `json:"miners"`
	// Failures counts the probes' failures by who, kind and error.
	Failures map[string]int `json:"failures,omitempty"`
}

// reading is the process's memory after two collections.
type reading struct {
	LiveHeap   uint64 `json:"live_heap"`
	RSS        uint64 `json:"rss"`
	Goroutines int    `json:"goroutines"`
}

// phase accumulates a phaseReport.
type phase struct {
	name  string
	began time.Time

	mu         sync.Mutex
	registered map[string]*rate
	newcomer   map[string]*rate
	rss, heap  uint64
	goroutines int
	epochs     int
	queries0   int64
	failures   map[string]int
}

func newPhase(name string, queries int64) *phase {
	return &phase{name: name, began: time.Now(), registered: map[string]*rate{}, newcomer: map[string]*rate{}, queries0: queries, failures: map[string]int{}}
}

// maxFailureKinds bounds the distinct failures a phase keeps.
const maxFailureKinds = 64

func (p *phase) count(newcomer bool, kind string, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, who := p.registered, "registered"
	if newcomer {
		m, who = p.newcomer, "newcomer"
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > 120 {
			msg = msg[:120]
		}
		key := who + " " + kind + ": " + msg
		if _, ok := p.failures[key]; ok || len(p.failures) < maxFailureKinds {
			p.failures[key]++
		}
	}
	ok := err == nil
	r := m[kind]
	if r == nil {
		r = &rate{}
		m[kind] = r
	}
	r.All++
	if ok {
		r.OK++
	}
}

func (p *phase) sample(rss, heap uint64, goroutines int) {
	p.mu.Lock()
	p.rss, p.heap, p.goroutines = max(p.rss, rss), max(p.heap, heap), max(p.goroutines, goroutines)
	p.mu.Unlock()
}

func (p *phase) epoch() {
	p.mu.Lock()
	p.epochs++
	p.mu.Unlock()
}

func (p *phase) report(queries int64, paid, miners int) *phaseReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := &phaseReport{Name: p.name, Seconds: time.Since(p.began).Seconds(), Registered: map[string]rate{}, Newcomer: map[string]rate{},
		PeakRSS: p.rss, PeakHeap: p.heap, HighWater: highWater(), PeakGoroutines: p.goroutines, Epochs: p.epochs,
		ValidatorQueries: queries - p.queries0, MinersPaid: paid, Miners: miners, Failures: maps.Clone(p.failures)}
	for k, v := range p.registered {
		r.Registered[k] = *v
	}
	for k, v := range p.newcomer {
		r.Newcomer[k] = *v
	}
	return r
}

// The network's shape: the qa subnet, tempo 10, 250 ms blocks, as
// `cybertensor localnet` runs it.
const (
	validators = 2
	miners     = 3
	netuid     = 1
	probeEvery = 100 * time.Millisecond // each honest registered probe loop
	probeWait  = 5 * time.Second        // a probe that takes longer failed
	// newcomerEvery paces the newcomers: one starts at most this often.
	newcomerEvery = 200 * time.Millisecond
)

// runNetwork is the child's main.
func runNetwork() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveNetwork(ctx, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hostile network:", err)
		return 1
	}
	return 0
}

// testNetwork is the child's network: chain, neurons and the honest
// registered prober.
type testNetwork struct {
	chain      *local.Local
	miners     []*neuron.Miner
	validators []*neuron.Validator
	prober     *node.Node
	client     *protocol.Client
	object     cid.Cid
	subnetKey  cid.Cid
	cur        atomic.Pointer[phase]
}

func (n *testNetwork) close() {
	if n.client != nil {
		n.client.Close()
	}
	if n.prober != nil {
		n.prober.Close()
	}
	for _, m := range n.miners {
		m.Close()
	}
	for _, v := range n.validators {
		v.Close()
	}
	if n.chain != nil {
		n.chain.Close()
	}
}

func serveNetwork(ctx context.Context, in io.Reader, out io.Writer) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	dir, err := os.MkdirTemp("", "cybertensor-hostile-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	n := &testNetwork{}
	defer n.close()
	if err := n.start(ctx, dir); err != nil {
		return err
	}
	n.cur.Store(newPhase("start", n.validatorQueries()))

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for _, loop := range []func(context.Context){n.sampleLoop, n.epochLoop, n.probeQueries, n.probeDHT, n.probeKnowledge, n.newcomers} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			loop(ctx)
		}()
	}

	var outMu sync.Mutex
	enc := json.NewEncoder(out)
	send := func(m message) error {
		outMu.Lock()
		defer outMu.Unlock()
		return enc.Encode(m)
	}
	if err := send(message{Ready: &ready{Target: n.target(), ChainID: n.chain.ChainID(), Object: n.object.String(), SubnetKey: n.subnetKey.String(), Neurons: validators + miners}}); err != nil {
		return err
	}
	lines := bufio.NewScanner(in)
	for lines.Scan() {
		cmd := strings.Fields(lines.Text())
		switch {
		case len(cmd) == 2 && cmd[0] == "phase":
			old := n.cur.Swap(newPhase(cmd[1], n.validatorQueries()))
			paid, total := n.minersPaid(ctx)
			if err := send(message{Phase: old.report(n.validatorQueries(), paid, total)}); err != nil {
				return err
			}
		case len(cmd) == 2 && cmd[0] == "heap":
			f, err := os.Create(cmd[1])
			if err != nil {
				return err
			}
			err = pprof.WriteHeapProfile(f)
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			if err := send(message{}); err != nil {
				return err
			}
		case len(cmd) == 1 && cmd[0] == "live":
			r := live()
			if err := send(message{Live: &r}); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unknown command %q", lines.Text())
		}
	}
	return lines.Err()
}

// start runs the chain, registers the neurons and the prober, and
// publishes an object on the target (miner 0).
func (n *testNetwork) start(ctx context.Context, dir string) error {
	logger := slog.New(slog.DiscardHandler)
	root, err := wallet.GenerateKey()
	if err != nil {
		return err
	}
	colds := make([]*wallet.PrivateKey, validators+miners+1) // the last: the prober's
	hots := make([]*wallet.PrivateKey, len(colds))
	balances := []chain.GenesisBalance{{Address: root.PublicKey().Address(), Amount: 1e15}}
	for i := range colds {
		if colds[i], err = wallet.GenerateKey(); err != nil {
			return err
		}
		if hots[i], err = wallet.GenerateKey(); err != nil {
			return err
		}
		balances = append(balances, chain.GenesisBalance{Address: colds[i].PublicKey().Address(), Amount: 1e13})
	}
	spec, err := subnet.Builtin("qa")
	if err != nil {
		return err
	}
	gen := chain.LocalnetGenesis("cybertensor-hostile", root.PublicKey().Address(), balances)
	params := gen.SubnetDefaults
	// As localnet sets them: every neuron registers at once, every
	// validator has a permit.
	params.Tempo, params.MaxAllowedUIDs, params.MinAllowedWeights = 10, 64, 1
	params.MaxAllowedValidators, params.ActivityCutoff, params.Kappa = validators, 10_000, 32767
	params.MaxRegsPerBlock, params.TargetRegsPerInterval = 64, 64
	gen.Subnets = []chain.GenesisSubnet{{Name: "qa", Owner: root.PublicKey().Address(), Params: &params}}
	lcfg := local.DefaultConfig(gen, chain.NewYumaEpoch())
	lcfg.BlockTime, lcfg.Logger = 250*time.Millisecond, logger
	if n.chain, err = local.New(lcfg); err != nil {
		return err
	}
	n.subnetKey = dht.SubnetKey(n.chain.ChainID(), netuid)

	// The prober registers first: the neurons' first metagraph has it.
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	prober := len(colds) - 1
	hotAddr := hots[prober].PublicKey().Address()
	reg := &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: netuid, Hotkey: hotAddr[:]}}}
	if _, err := chainlink.NewSender(n.chain, colds[prober]).Send(setup, reg); err != nil {
		return fmt.Errorf("registering the prober: %w", err)
	}
	pcfg := node.DefaultTestConfig(hots[prober])
	if n.prober, err = node.New(setup, pcfg); err != nil {
		return err
	}
	if n.client, err = protocol.NewClient(n.prober, protocol.DefaultClientConfig()); err != nil {
		return err
	}

	docs := localnet.Documents()
	var wg sync.WaitGroup
	errs := make([]error, validators+miners)
	n.validators = make([]*neuron.Validator, validators)
	n.miners = make([]*neuron.Miner, miners)
	for i := range validators + miners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i < validators {
				cfg := neuron.SpecValidatorConfig(netuid, spec, localnet.Tasks())
				cfg.Logger, cfg.Seed = logger, uint64(i)
				cfg.KnowledgeDir = filepath.Join(dir, fmt.Sprintf("validator-%d", i))
				for j, d := range docs {
					if j%validators == i {
						cfg.Publish = append(cfg.Publish, d)
					}
				}
				n.validators[i], errs[i] = neuron.StartValidator(setup, n.chain, colds[i], hots[i], 1_000_000_000_000, cfg)
				return
			}
			m := i - validators
			cfg := neuron.SpecMinerConfig(netuid, spec, backend.NewRetrieval(docs...))
			cfg.Logger = logger
			cfg.KnowledgeDir = filepath.Join(dir, fmt.Sprintf("miner-%d", m))
			n.miners[m], errs[i] = neuron.StartMiner(setup, n.chain, colds[i], hots[i], cfg)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	// An object on the target for the knowledge probes to fetch. They
	// fetch it from the target itself, so a DHT provide that fails (the
	// target's routing table may still be empty this early: the
	// validators publish their documents once they run, not before
	// StartValidator returns) leaves it as usable as a shared one.
	obj, err := n.miners[0].Library().Publish(setup, bytes.NewReader(bytes.Repeat([]byte("the library of machine intelligence "), 2000)),
		knowledge.Meta{MediaType: "text/plain", Title: "probe", Netuid: netuid})
	if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
		return fmt.Errorf("publishing the probe object: %w", err)
	}
	n.object = obj.CID
	// Up once the target answers the prober.
	n.prober.Connect(setup, n.target())
	for {
		err := n.queryTarget(setup)
		if err == nil {
			return nil
		}
		select {
		case <-setup.Done():
			return fmt.Errorf("the prober never got an answer from the target: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
		n.prober.Connect(setup, n.target())
	}
}

// target is the miner under attack.
func (n *testNetwork) target() peer.AddrInfo {
	m := n.miners[0]
	info := peer.AddrInfo{ID: m.ID()}
	for _, a := range m.Addrs() {
		if ai, err := peer.AddrInfoFromString(a); err == nil {
			info.Addrs = append(info.Addrs, ai.Addrs...)
		}
	}
	return info
}

func (n *testNetwork) validatorQueries() int64 {
	var total int64
	for _, v := range n.validators {
		q, _ := v.Stats()
		total += q
	}
	return total
}

// minersPaid counts the miners the metagraph pays incentive to.
func (n *testNetwork) minersPaid(ctx context.Context) (paid, total int) {
	mg, err := n.chain.Metagraph(ctx, netuid, true)
	if err != nil {
		return 0, miners
	}
	hot := map[wallet.Address]bool{}
	for _, m := range n.miners {
		a, err := protocol.HotkeyAddress(m.ID())
		if err == nil {
			hot[a] = true
		}
	}
	for uid, h := range mg.Hotkeys {
		if hot[h] && uid < len(mg.Incentive) && mg.Incentive[uid] > 0 {
			paid++
		}
	}
	return paid, miners
}

// sampleLoop records the process's peaks in the current phase.
func (n *testNetwork) sampleLoop(ctx context.Context) {
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		metrics.Read(sample)
		n.cur.Load().sample(rss(), sample[0].Value.Uint64(), runtime.NumGoroutine())
	}
}

// epochLoop counts the qa subnet's epochs.
func (n *testNetwork) epochLoop(ctx context.Context) {
	heads, err := n.chain.SubscribeHeads(ctx)
	if err != nil {
		return
	}
	for h := range heads {
		for _, e := range h.Epochs {
			if e == netuid {
				n.cur.Load().epoch()
			}
		}
	}
}

// every runs probe every probeEvery until ctx ends.
func every(ctx context.Context, probe func(context.Context)) {
	tick := time.NewTicker(probeEvery)
	defer tick.Stop()
	for {
		probe(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// probeQueries: the registered prober asks the target a question.
func (n *testNetwork) probeQueries(ctx context.Context) {
	every(ctx, func(ctx context.Context) {
		err := n.queryTarget(ctx)
		if ctx.Err() == nil {
			n.cur.Load().count(false, probeQuery, err)
		}
	})
}

func (n *testNetwork) queryTarget(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, probeWait)
	defer cancel()
	task := subnet.TextTask(localnet.Tasks()[0].Prompt, "")
	req := &pb.Request{Netuid: netuid, Synapse: task.Synapse, Body: task.Body, TimeoutMs: uint32(probeWait / time.Millisecond)}
	res := n.client.Query(ctx, []peer.ID{n.miners[0].ID()}, req)[0]
	if res.Status != protocol.StatusOK {
		return fmt.Errorf("query: %v %s %v", res.Status, res.Message, res.Err)
	}
	return nil
}

// probeDHT: the registered prober asks the target's DHT for the subnet's
// members.
func (n *testNetwork) probeDHT(ctx context.Context) {
	every(ctx, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, probeWait)
		defer cancel()
		provs, err := getProviders(ctx, n.prober, n.miners[0].ID(), n.subnetKey.Hash())
		if err == nil && len(provs) == 0 {
			err = errors.New("no members listed")
		}
		if ctx.Err() == nil || err == nil {
			n.cur.Load().count(false, probeDHT, err)
		}
	})
}

// probeKnowledge: the registered prober fetches the object's envelope
// from the target.
func (n *testNetwork) probeKnowledge(ctx context.Context) {
	every(ctx, func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, probeWait)
		defer cancel()
		err := fetchBlock(ctx, n.prober, n.miners[0].ID(), n.object)
		if ctx.Err() == nil || err == nil {
			n.cur.Load().count(false, probeKnowledge, err)
		}
	})
}

// newcomers: one after another, a peer with a fresh key — honest, not
// registered — connects to the target and asks it a question (a live
// server refuses it FORBIDDEN), for the subnet's members, and for the
// object.
func (n *testNetwork) newcomers(ctx context.Context) {
	tick := time.NewTicker(newcomerEvery)
	defer tick.Stop()
	for {
		n.newcomer(ctx)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (n *testNetwork) newcomer(ctx context.Context) {
	key, err := wallet.GenerateKey()
	if err != nil {
		return
	}
	cfg := node.DefaultTestConfig(key)
	h, err := node.New(ctx, cfg)
	if err != nil {
		return
	}
	defer h.Close()
	p := n.cur.Load()
	cctx, cancel := context.WithTimeout(ctx, probeWait)
	err = h.Connect(cctx, n.target())
	cancel()
	if ctx.Err() != nil {
		return
	}
	p.count(true, probeConnect, err)
	probe := func(kind string, do func(ctx context.Context, h host.Host) error) {
		ctx, cancel := context.WithTimeout(ctx, probeWait)
		defer cancel()
		err := do(ctx, h)
		if ctx.Err() == nil || err == nil {
			n.cur.Load().count(true, kind, err)
		}
	}
	probe(probeQuery, func(ctx context.Context, h host.Host) error {
		c, err := protocol.NewClient(h, protocol.DefaultClientConfig())
		if err != nil {
			return err
		}
		defer c.Close()
		task := subnet.TextTask(localnet.Tasks()[0].Prompt, "")
		res := c.Query(ctx, []peer.ID{n.miners[0].ID()}, &pb.Request{Netuid: netuid, Synapse: task.Synapse, Body: task.Body})[0]
		if res.Status != protocol.StatusForbidden {
			return fmt.Errorf("query: %v %s %v", res.Status, res.Message, res.Err)
		}
		return nil
	})
	probe(probeDHT, func(ctx context.Context, h host.Host) error {
		_, err := getProviders(ctx, h, n.miners[0].ID(), n.subnetKey.Hash())
		return err
	})
	probe(probeKnowledge, func(ctx context.Context, h host.Host) error {
		return fetchBlock(ctx, h, n.miners[0].ID(), n.object)
	})
}

// live is the process's memory after two collections.
func live() reading {
	runtime.GC()
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return reading{LiveHeap: s[0].Value.Uint64(), RSS: rss(), Goroutines: runtime.NumGoroutine()}
}

// rss is the process's resident set size (0 where /proc is not).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, resident uint64
	if _, err := fmt.Sscan(string(b), &size, &resident); err != nil {
		return 0
	}
	return resident * uint64(os.Getpagesize())
}

// highWater is the process's peak RSS (VmHWM; 0 where /proc is not).
func highWater() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb uint64
			if _, err := fmt.Sscan(rest, &kb); err == nil {
				return kb << 10
			}
		}
	}
	return 0
}
