package neuron

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	gonet "net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestReaskDue(t *testing.T) {
	// uid i is held by hot(i) and served by ids[i]; uid 4 has stopped
	// serving, and uid 5's axon names another peer than the one asked.
	m := &chain.Metagraph{}
	var ids []peer.ID
	for i := range 6 {
		ids = append(ids, testKey(t, "reask due", i).PublicKey().PeerID())
		m.Hotkeys = append(m.Hotkeys, testKey(t, "reask due hot", i).PublicKey().Address())
		switch i {
		case 4:
			m.Axons = append(m.Axons, nil)
		case 5:
			m.Axons = append(m.Axons, &chain.Axon{PeerID: ids[0].String()})
		default:
			m.Axons = append(m.Axons, &chain.Axon{PeerID: ids[i].String()})
		}
	}
	hot := func(uid int) string { return m.Hotkeys[uid].String() }
	target := func(uid int) roundTarget { return roundTarget{uint16(uid), hot(uid), ids[uid]} }
	for _, tc := range []struct {
		name              string
		reask             []roundTarget
		asking            []uint16
		connected         []int
		most              int
		due, redial, left []uint16
	}{
		{name: "none", connected: []int{0, 1}},
		{name: "the connected ones, in uid order; the others to dial", reask: []roundTarget{target(3), target(1), target(2)}, connected: []int{1, 3},
			due: []uint16{1, 3}, redial: []uint16{2}, left: []uint16{2}},
		{name: "at most most", reask: []roundTarget{target(0), target(1), target(2), target(3)}, connected: []int{0, 1, 2, 3}, most: 2,
			due: []uint16{0, 1}, left: []uint16{2, 3}},
		{name: "most 0 is all", reask: []roundTarget{target(0), target(1), target(2)}, connected: []int{0, 1, 2},
			due: []uint16{0, 1, 2}},
		{name: "not one a round waits on", reask: []roundTarget{target(0), target(1)}, asking: []uint16{0}, connected: []int{0, 1},
			due: []uint16{1}, left: []uint16{0}},
		{name: "forgets uids that stopped serving, changed hands or peers, or are gone",
			reask: []roundTarget{target(4), {2, hot(3), ids[2]}, target(5), {9, hot(1), ids[1]}, target(1), target(3)}, connected: []int{0, 1, 2, 4, 5},
			due: []uint16{1}, redial: []uint16{3}, left: []uint16{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reask := map[uint16]roundTarget{}
			for _, r := range tc.reask {
				reask[r.uid] = r
			}
			kept := maps.Clone(reask)
			asking := map[uint16]bool{}
			for _, uid := range tc.asking {
				asking[uid] = true
			}
			connected := func(id peer.ID) bool {
				return slices.ContainsFunc(tc.connected, func(i int) bool { return ids[i] == id })
			}
			dueTargets, redialTargets := reaskDue(reask, m, asking, connected, tc.most)
			uids := func(ts []roundTarget) []uint16 {
				var out []uint16
				for _, d := range ts {
					if d != kept[d.uid] {
						t.Errorf("%+v is not the target kept (%+v)", d, kept[d.uid])
					}
					out = append(out, d.uid)
				}
				return out
			}
			if due := uids(dueTargets); !slices.Equal(due, tc.due) {
				t.Errorf("due %v, want %v", due, tc.due)
			}
			if redial := uids(redialTargets); !slices.Equal(redial, tc.redial) {
				t.Errorf("to dial again %v, want %v", redial, tc.redial)
			}
			if left := slices.Sorted(maps.Keys(reask)); !slices.Equal(left, tc.left) {
				t.Errorf("left to ask again %v, want %v", left, tc.left)
			}
		})
	}
}

// gate is a TCP listener in front of a miner's address: it holds the
// connections it accepts, refuses them (closes them at once) or forwards
// them, as set (and connections it holds, once set otherwise).
type gate struct {
	addr    ma.Multiaddr
	mu      sync.Mutex
	mode    gateMode
	changed chan struct{} // closed when the mode changes
}

type gateMode int

const (
	gateHold gateMode = iota
	gateRefuse
	gateForward
)

func (g *gate) set(m gateMode) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mode = m
	close(g.changed)
	g.changed = make(chan struct{})
}

func (g *gate) current() (gateMode, chan struct{}) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.mode, g.changed
}

func newGate(t *testing.T, to string, mode gateMode) *gate {
	t.Helper()
	ln, err := gonet.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &gate{addr: ma.StringCast("/ip4/127.0.0.1/tcp/" + strings.TrimPrefix(ln.Addr().String(), "127.0.0.1:")), mode: mode, changed: make(chan struct{})}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []gonet.Conn
	track := func(c gonet.Conn) {
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
	}
	quit := make(chan struct{})
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			track(c)
			wg.Go(func() {
				defer c.Close()
				for {
					mode, changed := g.current()
					if mode == gateRefuse {
						return
					}
					if mode == gateForward {
						break
					}
					select {
					case <-changed:
					case <-quit:
						return
					}
				}
				up, err := gonet.Dial("tcp4", to)
				if err != nil {
					return
				}
				track(up)
				defer up.Close()
				var pipes sync.WaitGroup
				pipes.Go(func() { io.Copy(up, c); up.Close() })
				pipes.Go(func() { io.Copy(c, up); c.Close() })
				pipes.Wait()
			})
		}
	})
	t.Cleanup(func() {
		ln.Close()
		close(quit)
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return g
}

// reaskRig is a subnet of miners answering upper.v1, the first of them
// reachable only through a gate (its axon names only the gate), and a
// validator asking Sample 1 a round, whose rounds the test runs one at a
// time with round (returning the uids asked). The validator is connected
// to every other miner.
type reaskRig struct {
	v     *Validator
	c     *local.Local
	slow  *Miner
	gate  *gate
	round func() []uint16
}

func newReaskRig(t *testing.T, miners int, mode gateMode) *reaskRig {
	t.Helper()
	spec, dir := v2Spec(t, upperSynapse, "tasks: {source: dataset, path: tasks.jsonl}\nreward: '1.0'\n")
	if err := os.WriteFile(filepath.Join(dir, "tasks.jsonl"), []byte(`{"request": {"text": "hello"}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var colds, hots []*wallet.PrivateKey
	for i := range miners + 1 {
		colds, hots = append(colds, testKey(t, "reask cold", i)), append(hots, testKey(t, "reask hot", i))
	}
	// The slow miner serves its axon again, naming only the gate: no
	// serving rate limit.
	ccfg := local.DefaultConfig(testGenesis(t, colds, func(p *chain.Hyperparams) { p.ServingRateLimit = 0 }), chain.YumaEpoch)
	ccfg.BlockTime, ccfg.Logger = 50*time.Millisecond, slog.New(slog.DiscardHandler)
	c, err := local.New(ccfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	log := slog.New(slog.DiscardHandler)
	var ms []*Miner
	for i := 1; i <= miners; i++ {
		cfg := SpecMinerConfig(1, spec, nil)
		cfg.Logger, cfg.Handlers = log, map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)}
		cfg.Swarm.Disabled = true
		m, err := StartMiner(ctx, c, colds[i], hots[i], cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		ms = append(ms, m)
	}
	rig := &reaskRig{c: c, slow: ms[0], gate: newGate(t, tcpAddr(t, ms[0]), mode)}
	msg := &chainpb.Msg{Sum: &chainpb.Msg_ServeAxon{ServeAxon: &chainpb.ServeAxon{
		Netuid: 1, PeerId: rig.slow.ID().String(), Multiaddrs: []string{rig.gate.addr.String()}, Protocols: []string{string(protocol.QueryID)}}}}
	if _, err := chainlink.NewSender(c, hots[1]).Send(ctx, msg); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "the slow miner's new axon on chain", func() bool {
		n, err := c.Neuron(ctx, 1, hots[1].PublicKey().Address())
		return err == nil && n.Axon != nil && slices.Equal(n.Axon.Multiaddrs, []string{rig.gate.addr.String()})
	})
	// Rounds are run by the test, not by the validator's loop.
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Logger, vcfg.SpecDir, vcfg.Swarm.Disabled = log, dir, true
	vcfg.QueryEvery, vcfg.Sample, vcfg.Timeout = 1<<62, 1, time.Second
	if rig.v, err = StartValidator(ctx, c, colds[0], hots[0], 1e12, vcfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rig.v.Close() })
	for _, m := range ms[1:] {
		if err := rig.v.h.Connect(ctx, peer.AddrInfo{ID: m.ID(), Addrs: m.Host().Addrs()}); err != nil {
			t.Fatal(err)
		}
	}
	p := rig.v.pipes[0]
	rig.round = func() []uint16 {
		t.Helper()
		m, err := c.Metagraph(ctx, 1, true)
		if err != nil {
			t.Fatal(err)
		}
		r := rig.v.prepareRound(ctx, p, m)
		if r == nil {
			t.Fatal("no round")
		}
		rig.v.finishRound(ctx, p, r)
		var uids []uint16
		for _, t := range r.targets {
			uids = append(uids, t.uid)
		}
		return uids
	}
	return rig
}

// askSlowFailing runs rounds until the rotation asks the slow miner, and
// checks that its query failed as not connected, with status want.
func (rig *reaskRig) askSlowFailing(t *testing.T, miners int, want string) {
	t.Helper()
	for i := 0; ; i++ {
		if i == miners {
			t.Fatalf("the slow miner (uid %d) was not asked in a pass", rig.slow.UID())
		}
		if slices.Contains(rig.round(), rig.slow.UID()) {
			break
		}
	}
	last := rig.v.LastAnswers()
	if i := slices.IndexFunc(last, func(a Answer) bool { return a.UID == rig.slow.UID() }); i < 0 || last[i].Status != want || !strings.Contains(last[i].Reason, "not connected") {
		t.Fatalf("the slow miner's answer: %+v, want %s, not connected", last, want)
	}
}

// askedAgainOnceConnected waits until the validator's dial to the slow
// miner comes through, then checks that the next round asks it again and
// scores it.
func (rig *reaskRig) askedAgainOnceConnected(t *testing.T) {
	t.Helper()
	waitUntil(t, time.Minute, "the validator's dial to the slow miner to come through", func() bool {
		return rig.v.connected(rig.slow.ID())
	})
	if uids := rig.round(); !slices.Contains(uids, rig.slow.UID()) || rig.reasked() != 1 {
		t.Fatalf("the round after the connection came up asked %v (%v again), not the slow miner (uid %d)", uids, rig.reasked(), rig.slow.UID())
	}
	if s := scoreOf(rig.v, rig.slow.UID()); s <= 0 {
		t.Fatalf("the slow miner asked again scores %v", s)
	}
}

func (rig *reaskRig) reasked() float64 {
	return testutil.ToFloat64(rig.v.drops.reasked.WithLabelValues("1", subnet.MainMechanism))
}

// A miner whose query ends while the validator is still connecting to it
// is asked again by the first round after the connection is up, not at
// the rotation's next pass; while the connection is not up, it is not.
func TestMinerAskedAgainOnceConnected(t *testing.T) {
	const miners = 6
	rig := newReaskRig(t, miners, gateHold)
	// The rotation reaches the slow miner within a pass; its query ends
	// while the handshake is held.
	rig.askSlowFailing(t, miners, "TIMEOUT")
	if uids := rig.round(); slices.Contains(uids, rig.slow.UID()) || rig.reasked() != 0 {
		t.Fatalf("asked %v (%v again) while the slow miner's handshake is held", uids, rig.reasked())
	}
	rig.gate.set(gateForward)
	rig.askedAgainOnceConnected(t)
	if n := len(rig.v.pipes[0].reask); n != 0 {
		t.Fatalf("%d still to ask again", n)
	}
}

// A miner the validator failed to dial is dialed again by the next round
// (once the host's dial backoff has passed), and asked once connected,
// before the rotation comes back to it.
func TestMinerDialedAgainAfterAFailedDial(t *testing.T) {
	const miners = 6
	rig := newReaskRig(t, miners, gateRefuse)
	rig.askSlowFailing(t, miners, "UNAVAILABLE")
	// Run rounds until the rotation's next two are not the slow miner (a
	// round's query to it would dial it, not the round's redial).
	p := rig.v.pipes[0]
	for i := 0; ; i++ {
		if next := p.rotation.peek(2); len(next) == 2 && !slices.Contains(next, int(rig.slow.UID())) {
			break
		}
		if i == 2*miners {
			t.Fatal("the rotation's next two included the slow miner for two passes")
		}
		rig.round()
	}
	if rig.v.connected(rig.slow.ID()) {
		t.Fatal("connected to the slow miner through a gate that refuses")
	}
	// The gate opens; the dial that failed is not waited out.
	rig.gate.set(gateForward)
	rig.v.h.Network().(*swarm.Swarm).Backoff().Clear(rig.slow.ID())
	if uids := rig.round(); slices.Contains(uids, rig.slow.UID()) {
		t.Fatalf("the rotation asked the slow miner: %v", uids)
	}
	rig.askedAgainOnceConnected(t)
}

// tcpAddr is m's TCP listen address (host:port).
func tcpAddr(t *testing.T, m *Miner) string {
	t.Helper()
	for _, a := range m.Host().Addrs() {
		if port, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			return "127.0.0.1:" + port
		}
	}
	t.Fatalf("no TCP address in %v", m.Host().Addrs())
	return ""
}

func (rig *reaskRig) newcomers() float64 {
	return testutil.ToFloat64(rig.v.drops.newcomers.WithLabelValues("1", subnet.MainMechanism))
}

// beyond lists the members a rotation does not draw within its next
// draws, in its order, then the members its order does not hold.
func TestRotationBeyond(t *testing.T) {
	r := rotation{order: []int{5, 3, 9, 1, 7, 2}, pos: 2}
	for _, tc := range []struct {
		name    string
		ahead   int
		members []int
		want    []int
	}{
		{"past the next two", 2, []int{1, 2, 3, 5, 7, 9}, []int{7, 2}},
		{"none ahead", 0, []int{1, 2, 3, 5, 7, 9}, []int{9, 1, 7, 2}},
		{"the window passes the order's end", 10, []int{1, 2, 3, 5, 7, 9}, nil},
		{"members that left are not listed", 1, []int{1, 3, 9}, []int{1}},
		{"members that joined come last", 3, []int{1, 2, 3, 5, 7, 9, 11, 4}, []int{2, 11, 4}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.beyond(tc.ahead, tc.members); !slices.Equal(got, tc.want) {
				t.Fatalf("beyond(%d, %v) = %v, want %v", tc.ahead, tc.members, got, tc.want)
			}
		})
	}
	var empty rotation
	if got := empty.beyond(2, []int{4, 1}); !slices.Equal(got, []int{4, 1}) {
		t.Fatalf("an empty rotation: beyond = %v", got)
	}
}

// A validator asks the miners it never scored before the rotation's turn
// reaches them, each once and only once its connection is up: with
// Sample 1, a subnet of 6 miners is scored in 3 rounds, not 6; then a
// round asks Sample miners again.
func TestNewcomersAskedEarlyOnce(t *testing.T) {
	const miners = 6
	rig := newReaskRig(t, miners, gateHold)
	asked := map[uint16]int{}
	for range 3 {
		uids := rig.round()
		if len(uids) > 2 {
			t.Fatalf("a round of Sample 1 asked %v", uids)
		}
		for _, uid := range uids {
			asked[uid]++
		}
	}
	for uid, n := range asked {
		if n > 1 {
			t.Fatalf("uid %d asked %d times in the first 3 rounds: %v", uid, n, asked)
		}
	}
	if rig.newcomers() < 2 {
		t.Fatalf("%v newcomers asked in the first 3 rounds, want at least 2", rig.newcomers())
	}
	// Every miner but the one behind the held gate answered (the
	// rotation may have reached that one, whose query failed).
	m, err := rig.c.Metagraph(context.Background(), 1, true)
	if err != nil {
		t.Fatal(err)
	}
	for uid, axon := range m.Axons {
		if axon != nil && uint16(uid) != rig.v.UID() && uint16(uid) != rig.slow.UID() && scoreOf(rig.v, uint16(uid)) <= 0 {
			t.Fatalf("uid %d not scored after 3 rounds (asked %v)", uid, asked)
		}
	}
	// Once the gate lets the validator's dial through, the slow miner is
	// asked within connectAhead+1 rounds: as a newcomer, again as one
	// whose query found no connection, or by the rotation, whose next
	// connectAhead rounds' miners are not newcomers to ask early.
	rig.gate.set(gateForward)
	waitUntil(t, time.Minute, "the validator's dial to the slow miner to come through", func() bool {
		return rig.v.connected(rig.slow.ID())
	})
	for i := 0; ; i++ {
		if i > connectAhead {
			t.Fatalf("the slow miner not asked in %d rounds after its connection came up", i)
		}
		if slices.Contains(rig.round(), rig.slow.UID()) {
			break
		}
	}
	if s := scoreOf(rig.v, rig.slow.UID()); s <= 0 {
		t.Fatalf("the slow miner scores %v", s)
	}
	// Everyone is scored: rounds ask the rotation's one miner, no
	// newcomer again.
	before := rig.newcomers()
	for range miners {
		if uids := rig.round(); len(uids) != 1 {
			t.Fatalf("a round with every miner scored asked %v", uids)
		}
	}
	if rig.newcomers() != before {
		t.Fatalf("newcomers asked again: %v, then %v", before, rig.newcomers())
	}
}

// Validators that stagger their first cycles reach every miner in step:
// once each has drawn 60% of the miners, every miner was drawn by more
// than half of them. Later cycles are shuffled as usual.
func TestRotationStaggered(t *testing.T) {
	// #24's subnet: 224 miners and 32 validators, each asking 16 a round.
	const miners, validators, k = 224, 32, 16
	members := make([]int, miners)
	for i := range members {
		members[i] = 300 - i // not in uid order, and not from 0
	}
	drawnBy := map[int]int{}
	for rank := range validators {
		var r rotation
		rng := rand.New(rand.NewPCG(uint64(rank), 7))
		r.stagger(rng, rank, validators, 2*k)
		seen := map[int]bool{}
		drawFirstCycle(t, &r, rng, members, k, miners*6/10, seen, drawnBy, nil)
		// The rest of the first cycle holds every member once; the
		// second is a shuffle of all of them.
		drawFirstCycle(t, &r, rng, members, k, miners, seen, nil, nil)
		if r.cycles != 1 || r.pos != len(r.order) {
			t.Fatalf("rank %d: %d cycles, at %d of %d after the first", rank, r.cycles, r.pos, len(r.order))
		}
		r.next(rng, members, k)
		if r.cycles != 2 || !slices.Equal(slices.Sorted(slices.Values(r.order)), slices.Sorted(slices.Values(members))) {
			t.Fatalf("rank %d: the second cycle's order %v", rank, r.order)
		}
	}
	for _, m := range members {
		if drawnBy[m] <= validators/2 {
			t.Fatalf("member %d drawn by %d of %d validators when each had drawn 60%%", m, drawnBy[m], validators)
		}
	}
	// Not staggered (rank out of range, or a lone validator): shuffled.
	var r rotation
	r.stagger(nil, 3, 3, 0)
	r.stagger(nil, 0, 1, 0)
	if r.of > 1 {
		t.Fatalf("stagger(3, 3) then (0, 1) set %d of %d", r.rank, r.of)
	}
}

func TestValidatorRank(t *testing.T) {
	axon := &chain.Axon{}
	m := &chain.Metagraph{
		// uid:    0    1     2  3    4  5
		Axons: []*chain.Axon{nil, axon, nil, nil, axon, nil},
		Stake: []uint64{5, 5, 0, 7, 9, 1},
	}
	for _, tc := range []struct {
		uid      uint16
		rank, of int
	}{{0, 0, 3}, {3, 1, 3}, {5, 2, 3}, {2, -1, 3}, {1, -1, 3}, {9, -1, 3}} {
		if rank, of := validatorRank(m, tc.uid); rank != tc.rank || of != tc.of {
			t.Errorf("uid %d: rank %d of %d, want %d of %d", tc.uid, rank, of, tc.rank, tc.of)
		}
	}
}

func TestRotationRestaggered(t *testing.T) {
	// 32 validators asking 16 of 224 miners a round; the first 16 stake
	// and start two rounds before the others, so their first draws see 16
	// validators and the later ones see all 32.
	const miners, validators, k, late = 224, 32, 16, 2
	members := make([]int, miners)
	for i := range members {
		members[i] = validators + i
	}
	view := func(v, round int) (rank, of int) {
		if round < late {
			return v, validators / 2
		}
		return v, validators
	}
	// asked is how many validators drew each member when each had drawn
	// 60% of them; followViews says whether a validator's place follows
	// its view during the first cycle, or stays at the first one's.
	asked := func(followViews bool) map[int]int {
		drawnBy := map[int]int{}
		for v := range validators {
			var r rotation
			rng := rand.New(rand.NewPCG(uint64(v), 9))
			round, seen := 0, map[int]bool{}
			if v >= validators/2 {
				round = late
			}
			drawFirstCycle(t, &r, rng, members, k, miners*6/10, seen, drawnBy, func() {
				if r.cycles == 0 || followViews {
					rank, of := view(v, round)
					r.stagger(rng, rank, of, 2*k)
				}
				round++
			})
			// The first cycle still holds every member once.
			drawFirstCycle(t, &r, rng, members, k, miners, seen, nil, nil)
			if r.cycles != 1 {
				t.Fatalf("validator %d: %d cycles after its first", v, r.cycles)
			}
		}
		return drawnBy
	}
	short := func(drawnBy map[int]int) (n int) {
		for _, m := range members {
			if drawnBy[m] <= validators/2 {
				n++
			}
		}
		return n
	}
	// A new place keeps the members next in line (the validator connects
	// to them ahead) and goes on from the new place's segment.
	var r rotation
	rng := rand.New(rand.NewPCG(1, 2))
	r.stagger(rng, 0, 4, 2*k)
	r.next(rng, members, k)
	next := slices.Clone(r.peek(2 * k))
	r.stagger(rng, 3, 8, 2*k)
	if got := r.peek(2 * k); !slices.Equal(got, next) {
		t.Fatalf("a new place changed the next members from %v to %v", next, got)
	}
	sorted := slices.Sorted(slices.Values(members))
	if m := r.order[r.pos+2*k]; !slices.Contains(sorted[3*miners/8:4*miners/8], m) {
		t.Fatalf("after the next members comes %d, not one of segment 3 of 8", m)
	}
	if n := short(asked(false)); n == 0 {
		t.Fatalf("with places kept from the first view every member was drawn by a majority: the scenario tests nothing")
	}
	if n := short(asked(true)); n > 0 {
		t.Fatalf("%d members drawn by at most half of the validators when each had drawn 60%%", n)
	}
}

// drawFirstCycle draws k of members a round from r until seen holds until
// of them, counting each draw in drawnBy (if not nil) and calling before
// (if not nil) ahead of each round; a member drawn twice fails the test.
func drawFirstCycle(t *testing.T, r *rotation, rng *rand.Rand, members []int, k, until int, seen map[int]bool, drawnBy map[int]int, before func()) {
	t.Helper()
	for len(seen) < until {
		if before != nil {
			before()
		}
		for _, m := range r.next(rng, members, k) {
			if seen[m] {
				t.Fatalf("%d drawn twice in the first cycle", m)
			}
			seen[m] = true
			if drawnBy != nil {
				drawnBy[m]++
			}
		}
	}
}
