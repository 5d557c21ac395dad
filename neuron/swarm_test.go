package neuron

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink/comet/comettest"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) {
	comettest.RunChildIfAsked() // a CometBFT node for chainnode_test.go
	runTestHookIfAsked()        // a v2 spec's task program or judge (testhook_test.go)
	runExecBackendIfAsked()     // an exec backend for custom_synapse_test.go
	goleak.VerifyTestMain(m,
		// go-libp2p-kad-dht's shared worker pools and the go-log event loop
		// are process-wide and outlive any one neuron.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func testKey(t testing.TB, label string, i int) *wallet.PrivateKey {
	t.Helper()
	seed := sha256.Sum256([]byte(fmt.Sprintf("neuron test %s %d", label, i)))
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testGenesis has subnet 1 (tempo 10, tuned by tune if set) and funded
// coldkeys.
// testKeys is n test keys of label, testKey(t, label, i) for i < n.
func testKeys(t testing.TB, label string, n int) []*wallet.PrivateKey {
	keys := make([]*wallet.PrivateKey, n)
	for i := range keys {
		keys[i] = testKey(t, label, i)
	}
	return keys
}

func testGenesis(t *testing.T, colds []*wallet.PrivateKey, tune func(*chain.Hyperparams)) chain.Genesis {
	t.Helper()
	root := testKey(t, "root", 0)
	balances := []chain.GenesisBalance{{Address: root.PublicKey().Address(), Amount: 1e15}}
	for _, c := range colds {
		balances = append(balances, chain.GenesisBalance{Address: c.PublicKey().Address(), Amount: 1e13})
	}
	gen := chain.LocalnetGenesis("neuron-test", root.PublicKey().Address(), balances)
	params := gen.SubnetDefaults
	params.Tempo, params.MaxAllowedUIDs, params.MinAllowedWeights = 10, 64, 1
	if tune != nil {
		tune(&params)
	}
	gen.Subnets = []chain.GenesisSubnet{{Name: "qa", Owner: root.PublicKey().Address(), Params: &params}}
	return gen
}

// testChain is an embedded chain with subnet 1 and funded coldkeys,
// producing a block every 50 ms.
func testChain(t *testing.T, colds []*wallet.PrivateKey) *local.Local {
	t.Helper()
	cfg := local.DefaultConfig(testGenesis(t, colds, nil), chain.YumaEpoch)
	cfg.BlockTime, cfg.Logger = 50*time.Millisecond, slog.New(slog.DiscardHandler)
	c, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func waitUntil(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func fastSwarm() SwarmConfig {
	s := DefaultSwarmConfig()
	s.HeartbeatEvery, s.DiscoverEvery, s.RegistryTTL, s.ReannounceEvery = 300*time.Millisecond, 500*time.Millisecond, time.Second, 2*time.Second
	return s
}

// Miners and validators started only from the chain (no bootstrap peers)
// find each other through the axons served on chain and the DHT, and
// every one hears every other's heartbeat with the uid the chain gives it.
// Only neurons without an axon on chain announce themselves on the DHT.
func TestNeuronsFormASwarm(t *testing.T) {
	miners, validators := 8, 2
	if testing.Short() {
		miners = 4
	}
	colds := testKeys(t, "cold", miners+validators)
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	type member struct {
		id    peer.ID
		uid   uint16
		swarm *Swarm
	}
	var members []member
	var models []*backend.Retrieval
	for i := range miners {
		// Miners start knowing nothing and learn what validators publish.
		model := backend.NewRetrieval()
		models = append(models, model)
		cfg := DefaultMinerConfig(1, model)
		cfg.Swarm, cfg.Logger, cfg.KnowledgeDir = fastSwarm(), log, t.TempDir()
		m, err := StartMiner(ctx, c, colds[i], testKey(t, "hot", i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		members = append(members, member{m.ID(), m.UID(), m.Swarm()})
	}
	for i := range validators {
		cfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
		cfg.Swarm, cfg.Logger, cfg.KnowledgeDir = fastSwarm(), log, t.TempDir()
		cfg.Publish = []backend.Document{{ID: fmt.Sprintf("sky-%d", i), Text: fmt.Sprintf("Validator %d notes: the sky is blue because of Rayleigh scattering of sunlight.", i)}}
		v, err := StartValidator(ctx, c, colds[miners+i], testKey(t, "hot", miners+i), 1e12, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		members = append(members, member{v.ID(), v.UID(), v.Swarm()})
	}

	for _, m := range members {
		deadline := time.Now().Add(time.Minute)
		for {
			heard := m.swarm.Heard()
			missing := 0
			for _, o := range members {
				if o.id == m.id {
					continue
				}
				if h, ok := heard[o.id]; !ok {
					missing++
				} else if h.UID != o.uid {
					t.Fatalf("uid %d heard uid %d for a neuron holding %d", m.uid, h.UID, o.uid)
				}
			}
			if missing == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("uid %d has not heard %d of %d neurons", m.uid, missing, len(members)-1)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// Every miner learned both validators' knowledge over gossip and the
	// transfer protocol, so its model answers from it.
	for i, model := range models {
		waitUntil(t, time.Minute, fmt.Sprintf("miner %d to learn the validators' knowledge", i), func() bool {
			learned := map[string]bool{}
			for _, h := range model.Search("why is the sky blue Rayleigh", 10) {
				if strings.Contains(h.Text, "Rayleigh") {
					learned[h.Text] = true
				}
			}
			return len(learned) == validators
		})
	}
	// Miners, whose axons are on chain, are found there and did not walk
	// the DHT to announce themselves; the validators, which serve no
	// axon, did: a miner finds both of them there, and no miner.
	first := members[0]
	deadline := time.Now().Add(time.Minute)
	for {
		qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
		found := map[peer.ID]bool{}
		for _, p := range first.swarm.DHT().Members(qctx, 1) {
			found[p.ID] = true
		}
		qcancel()
		for _, m := range members[:miners] {
			if found[m.id] {
				t.Fatalf("miner uid %d, whose axon is on chain, announced itself on the DHT", m.uid)
			}
		}
		validatorsFound := 0
		for _, v := range members[miners:] {
			if found[v.id] {
				validatorsFound++
			}
		}
		if validatorsFound == validators {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the DHT lists %d of %d validators", validatorsFound, validators)
		}
	}
}

// Discovery keeps TargetPeers members connected, or every other member of
// a smaller subnet: a 4-member subnet does not search the DHT each round
// for 8.
func TestSwarmTarget(t *testing.T) {
	for _, tc := range []struct{ members, want int }{
		{0, 8}, // the metagraph not read yet
		{1, 0},
		{4, 3},
		{9, 8},
		{256, 8},
	} {
		s := &Swarm{cfg: DefaultSwarmConfig()}
		if tc.members > 0 {
			mg := &chain.Metagraph{}
			for i := range tc.members {
				mg.Hotkeys = append(mg.Hotkeys, testKey(t, "target", i).PublicKey().Address())
			}
			s.registered.update(mg)
		}
		if got := s.target(); got != tc.want {
			t.Errorf("%d members: target %d, want %d", tc.members, got, tc.want)
		}
	}
}

// The connection budget: above HighWater a neuron trims its connections
// to LowWater besides the members its role exchanges with, which the swarm
// protects: each miner keeps both validators (which query it) and at most
// LowWater other members, each validator every miner (which it queries).
// Heartbeats still reach everyone over what is left.
func TestSwarmConnectionBudget(t *testing.T) {
	miners, validators := 10, 2
	colds := testKeys(t, "budget cold", miners+validators)
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	budget := fastSwarm()
	budget.TargetPeers, budget.LowWater, budget.HighWater, budget.GracePeriod = 2, 2, 4, 0
	ms, vs := startSubnet(ctx, t, c, colds, func(i int) *wallet.PrivateKey { return testKey(t, "budget hot", i) }, miners, validators, budget)

	// What each neuron's budget should come to, or why not yet.
	wrong := func() string {
		for _, v := range vs {
			for _, m := range ms {
				if !v.h.ConnManager().IsProtected(m.id, keepTag) {
					return fmt.Sprintf("validator %s does not keep miner %s", v.id.ShortString(), m.id.ShortString())
				}
			}
		}
		for _, m := range ms {
			for _, v := range vs {
				if !m.h.ConnManager().IsProtected(v.id, keepTag) {
					return fmt.Sprintf("miner %s does not keep validator %s", m.id.ShortString(), v.id.ShortString())
				}
			}
			others := 0
			for _, p := range m.h.Network().Peers() {
				if m.h.ConnManager().IsProtected(p, "") {
					if !slices.ContainsFunc(vs, func(v swarmMember) bool { return v.id == p }) {
						isMember, axon := m.swarm.registered.member(p)
						_, mine := m.swarm.registered.member(m.id)
						return fmt.Sprintf("miner %s keeps %s, not a validator (a miner: %v, member %v axon %v, mine %v, tags %v)", m.id.ShortString(), p.ShortString(), slices.ContainsFunc(ms, func(o swarmMember) bool { return o.id == p }), isMember, axon, mine, m.h.ConnManager().GetTagInfo(p)) + fmt.Sprint(" keep ", m.h.ConnManager().IsProtected(p, keepTag), " kbucket ", m.h.ConnManager().IsProtected(p, "kbucket"))
					}
					continue
				}
				others++
			}
			if others > budget.LowWater {
				return fmt.Sprintf("miner %s holds %d connections besides the validators, more than LowWater %d", m.id.ShortString(), others, budget.LowWater)
			}
		}
		return ""
	}
	deadline := time.Now().Add(90 * time.Second)
	for why := wrong(); why != ""; why = wrong() {
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Every neuron hears every other over what is left.
	waitAllHear(t, append(slices.Clone(ms), vs...))
}

// dialable yields to a member with a smaller peer ID for yieldDial only
// when that member can find this neuron as it found the member (yield);
// a validator, whose axon is not on chain, dials the miners at once.
func TestDialable(t *testing.T) {
	ids := make([]peer.ID, 4)
	for i := range ids {
		id, err := peer.IDFromPrivateKey(testKey(t, "dialable", i).Libp2p())
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = id
	}
	slices.Sort(ids)
	self, smaller, larger, connected := ids[2], ids[0], ids[3], ids[1]
	addr := []multiaddr.Multiaddr{multiaddr.StringCast("/ip4/127.0.0.1/tcp/4001")}
	infos := []peer.AddrInfo{{ID: self, Addrs: addr}, {ID: smaller, Addrs: addr}, {ID: larger, Addrs: addr}, {ID: connected, Addrs: addr}, {ID: larger}}
	connectedness := func(p peer.ID) network.Connectedness {
		if p == connected {
			return network.Connected
		}
		return network.NotConnected
	}
	ids2 := func(infos []peer.AddrInfo) []peer.ID {
		var out []peer.ID
		for _, info := range infos {
			out = append(out, info.ID)
		}
		return out
	}
	start := time.Unix(1000, 0)
	for _, tc := range []struct {
		name  string
		yield bool
		at    time.Duration // after the first call
		want  []peer.ID
	}{
		{"no yield: every unconnected member with an address", false, 0, []peer.ID{smaller, larger}},
		{"yield: the smaller ID first gets its chance", true, 0, []peer.ID{larger}},
		{"yield: still within yieldDial", true, yieldDial - time.Millisecond, []peer.ID{larger}},
		{"yield: yieldDial passed", true, yieldDial, []peer.ID{smaller, larger}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			unconnected := map[peer.ID]time.Time{connected: start}
			dialable(infos, self, connectedness, unconnected, start, tc.yield)
			got := ids2(dialable(infos, self, connectedness, unconnected, start.Add(tc.at), tc.yield))
			if !slices.Equal(got, tc.want) {
				t.Errorf("dialable = %v, want %v", got, tc.want)
			}
			if _, ok := unconnected[connected]; ok {
				t.Error("a connected member is still remembered as unconnected")
			}
		})
	}
}

// retryPace: the first attempt is due at once; each failure doubles the
// wait before the next, from first up to most.
func TestRetryPace(t *testing.T) {
	var p retryPace
	now := time.Unix(1000, 0)
	if !p.due(now) {
		t.Fatal("the first attempt is not due")
	}
	for i, want := range []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute} {
		p.failed(now, 2*time.Second, time.Minute)
		if p.wait != want {
			t.Fatalf("after failure %d: wait %v, want %v", i+1, p.wait, want)
		}
		if p.due(now.Add(want - time.Millisecond)) {
			t.Fatalf("after failure %d: due before the wait passed", i+1)
		}
		if !p.due(now.Add(want)) {
			t.Fatalf("after failure %d: not due once the wait passed", i+1)
		}
		now = now.Add(want)
	}
}

// The first membership announcement is due within 100 ms a member of the
// start (at most the bound given), at a random time: not all at once for
// neurons started together, and at once in a small subnet.
func TestMembershipPaceSpreadsTheFirstAttempt(t *testing.T) {
	now := time.Unix(1000, 0)
	for _, tc := range []struct {
		members int
		within  time.Duration
	}{{0, 0}, {5, 500 * time.Millisecond}, {256, 25600 * time.Millisecond}, {4096, time.Minute}} {
		seen := map[time.Duration]bool{}
		for range 100 {
			p := membershipPace(now, tc.members, time.Minute)
			if p.next.Before(now) || !p.due(now.Add(tc.within)) {
				t.Fatalf("%d members: first attempt due at %v, not within %v of the start", tc.members, p.next.Sub(now), tc.within)
			}
			seen[p.next.Sub(now)*10/(tc.within+1)] = true
		}
		if tc.within > 0 && len(seen) < 5 {
			t.Fatalf("%d members: 100 first attempts fell in %d tenths of %v", tc.members, len(seen), tc.within)
		}
	}
}

// A heartbeat waits a random part of 40 ms a member (at most a period)
// after the mesh has a peer in a subnet of up to 120, a random part of the
// period in a larger one, a random part of the period after the first,
// then a period.
func TestHeartbeatWait(t *testing.T) {
	every := 30 * time.Second
	for _, tc := range []struct {
		sent, members int
		u             float64
		want          time.Duration
	}{
		{0, 0, 0.5, time.Millisecond}, // a subnet not read yet: at once
		{0, 4, 0.5, 80 * time.Millisecond},
		{0, 120, 0.5, 2400 * time.Millisecond},
		{0, 121, 0.5, 15125 * time.Millisecond}, // a larger subnet: within its period
		{0, 256, 0.5, 32 * time.Second},
		{0, 256, 0, time.Millisecond},
		{0, 1024, 0.5, 128 * time.Second},
		{1, 4, 0.25, 7500 * time.Millisecond},
		{1, 120, 0.999, time.Duration(0.999 * float64(every))},
		{1, 256, 0.5, 32 * time.Second}, // the period is 64 s at 256
		{2, 120, 0.9, every},
		{2, 121, 0.9, 30250 * time.Millisecond},
		{2, 256, 0.9, 64 * time.Second},
		{7, 0, 0, every},
		{7, 1024, 0, 256 * time.Second},
	} {
		if got := heartbeatWait(tc.sent, tc.members, every, tc.u); got != tc.want {
			t.Errorf("heartbeatWait(%d, %d, %v, %v) = %v, want %v", tc.sent, tc.members, every, tc.u, got, tc.want)
		}
	}
}

func TestHeartbeatPeriod(t *testing.T) {
	for _, tc := range []struct {
		every   time.Duration
		members int
		want    time.Duration
	}{
		{30 * time.Second, 0, 30 * time.Second},
		{30 * time.Second, 120, 30 * time.Second},
		{30 * time.Second, 121, 30250 * time.Millisecond},
		{30 * time.Second, 256, 64 * time.Second},
		{300 * time.Millisecond, 16, 300 * time.Millisecond}, // a configured period holds up to 120 members
		{300 * time.Millisecond, 240, 600 * time.Millisecond},
	} {
		// The first heartbeat waits at most a period.
		if first := heartbeatWait(0, tc.members, tc.every, 0.999); first > tc.want {
			t.Errorf("heartbeatWait(0, %d, %v, 0.999) = %v, more than the period %v", tc.members, tc.every, first, tc.want)
		}
		if got := heartbeatPeriod(tc.every, tc.members); got != tc.want {
			t.Errorf("heartbeatPeriod(%v, %d) = %v, want %v", tc.every, tc.members, got, tc.want)
		}
	}
}

// 256 neurons that start within the same 100 ms publish their heartbeats
// spread over the period (64 s at 256), not together: after the start-up,
// no second of the period holds more than three times its share.
// (Publishing every period from the start, as neurons did before, put all
// 256 in one second.)
func TestHeartbeatsOfNeuronsStartedTogetherSpread(t *testing.T) {
	const members, periods = 256, 6
	period := heartbeatPeriod(30*time.Second, members)
	rng := rand.New(rand.NewPCG(1, 2))
	perSecond := make([]int, period/time.Second)
	firsts := 0
	for range members {
		at := time.Duration(rng.Int64N(int64(100 * time.Millisecond))) // the mesh's first peer
		for sent := 0; at < periods*period; sent++ {
			at += heartbeatWait(sent, members, 30*time.Second, rng.Float64())
			if at < 2*period {
				if sent == 0 && at < period {
					firsts++
				}
				continue // start-up
			}
			perSecond[at%period/time.Second]++
		}
	}
	if firsts != members {
		t.Fatalf("%d of %d first heartbeats within a period", firsts, members)
	}
	total := 0
	for _, n := range perSecond {
		total += n
	}
	share := float64(total) / float64(len(perSecond))
	if most := slices.Max(perSecond); float64(most) > 3*share {
		t.Fatalf("one second of the period holds %d heartbeats, %.1f times its share of %.1f: %v", most, float64(most)/share, share, perSecond)
	}
}

// A miner fetches announced objects concurrently: an object whose only
// provider never answers (a black hole, the stand-in for a publisher too
// busy to serve) does not hold back the next announcement, which is
// learned while the first fetch still waits (up to the library's 30 s
// request timeout). And a body small enough to travel with its
// announcement is learned from it, even from that black hole.
func TestAnnouncedObjectsAreFetchedConcurrently(t *testing.T) {
	var colds []*wallet.PrivateKey
	for i := range 3 {
		colds = append(colds, testKey(t, "cold", i))
	}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	model := backend.NewRetrieval()
	mcfg := DefaultMinerConfig(1, model)
	mcfg.Swarm, mcfg.Logger, mcfg.KnowledgeDir = fastSwarm(), log, t.TempDir()
	m, err := StartMiner(ctx, c, colds[0], testKey(t, "hot", 0), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	var vs []*Validator
	for i := 1; i < 3; i++ {
		cfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
		cfg.Swarm, cfg.Logger, cfg.KnowledgeDir = fastSwarm(), log, t.TempDir()
		v, err := StartValidator(ctx, c, colds[i], testKey(t, "hot", i), 1e12, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		vs = append(vs, v)
	}
	waitUntil(t, time.Minute, "the miner to hear both validators", func() bool {
		heard := m.Swarm().Heard()
		_, a := heard[vs[0].ID()]
		_, b := heard[vs[1].ID()]
		return a && b
	})
	// The second validator's library stops answering: requests are read
	// and never answered.
	hole := make(chan struct{})
	defer close(hole)
	vs[1].Swarm().h.SetStreamHandler(knowledge.ProtocolID, func(st network.Stream) {
		go io.Copy(io.Discard, st)
		<-hole
		st.Reset()
	})
	// Documents too large to travel with their announcements.
	filler := strings.Repeat(" More words to make the document too long to travel with its announcement.", 20)
	publish := func(v *Validator, text string) *knowledge.Object {
		t.Helper()
		o, err := v.Library().Publish(ctx, strings.NewReader(text), knowledge.Meta{MediaType: "text/plain", Title: text[:12], Netuid: 1})
		if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
			t.Fatal(err)
		}
		return o
	}
	learned := func(word string) bool {
		for _, h := range model.Search(word, 10) {
			if strings.Contains(h.Text, word) {
				return true
			}
		}
		return false
	}
	stuck := publish(vs[1], "Held back: nobody can fetch this passage about quasars."+filler)
	waitUntil(t, time.Minute, "the miner to hear of the unfetchable object", func() bool {
		_, ok := m.Library().Announced(stuck.CID)
		return ok
	})
	publish(vs[0], "The sky is blue because of Rayleigh scattering of sunlight."+filler)
	waitUntil(t, 15*time.Second, "the miner to learn the second object while the first is held back", func() bool { return learned("Rayleigh") })
	if learned("quasars") {
		t.Fatal("the miner learned the object nobody can serve")
	}
	publish(vs[1], "Pulsars spin fast.")
	waitUntil(t, 15*time.Second, "the miner to learn a short document from its announcement", func() bool { return learned("Pulsars") })
}

// A miner of a subnet with at least TargetPeers validators dials no member
// within DiscoverEvery of joining (they connect to it); anyone else, or a
// miner after the wait, dials what discovery needs.
func TestDialsWanted(t *testing.T) {
	const wait, target = time.Minute, 8
	for _, tc := range []struct {
		name       string
		need       int
		miner      bool
		validators int
		since      time.Duration
		want       int
	}{
		{"miner waiting for its validators", 8, true, 28, 0, 0},
		{"miner waiting, as many validators as the target", 3, true, target, 10 * time.Second, 0},
		{"miner of a subnet with fewer validators", 8, true, target - 1, 0, 8},
		{"miner after the wait", 8, true, 28, wait, 8},
		{"miner of a subnet without validators", 8, true, 0, 0, 8},
		{"validator (no axon)", 8, false, 28, 0, 8},
	} {
		if got := dialsWanted(tc.need, tc.miner, tc.validators, target, tc.since, wait); got != tc.want {
			t.Errorf("%s: dialsWanted(%d) = %d, want %d", tc.name, tc.need, got, tc.want)
		}
	}
}

// servingNone counts the registered hotkeys with no axon: the validators.
func TestServingNone(t *testing.T) {
	axon := &chain.Axon{PeerID: "x"}
	hk := func(b byte) wallet.Address { var a wallet.Address; a[0] = b; return a }
	for _, tc := range []struct {
		name string
		mg   *chain.Metagraph
		want int
	}{
		{"no metagraph yet", nil, 0},
		{"only miners", &chain.Metagraph{Hotkeys: []wallet.Address{hk(1), hk(2)}, Axons: []*chain.Axon{axon, axon}}, 0},
		{"a validator", &chain.Metagraph{Hotkeys: []wallet.Address{hk(1), hk(2), hk(3)}, Axons: []*chain.Axon{axon, nil, axon}}, 1},
		{"an empty uid", &chain.Metagraph{Hotkeys: []wallet.Address{hk(1), {}}, Axons: []*chain.Axon{axon, nil}}, 0},
		{"axons shorter than hotkeys", &chain.Metagraph{Hotkeys: []wallet.Address{hk(1), hk(2), hk(3)}, Axons: []*chain.Axon{axon}}, 2},
	} {
		var r registeredHotkeys
		if tc.mg != nil {
			r.update(tc.mg)
		}
		if got := r.servingNone(); got != tc.want {
			t.Errorf("%s: servingNone = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// The gossip peer set: a miner gossips with GossipValidators of the
// subnet's validators, never over a connection to another (at either
// end), and a miner whose chosen validators are not running gossips with
// miners instead; every neuron still hears every other.
func TestGossipPeerSet(t *testing.T) {
	miners, validators, idle := 6, 4, 2
	colds := testKeys(t, "peer set cold", miners+validators+idle)
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sw := fastSwarm()
	sw.TargetPeers, sw.GossipValidators = 2, 2
	hot := func(i int) *wallet.PrivateKey { return testKey(t, "peer set hot", i) }
	// Every validator hotkey registers first, so that every neuron ranks
	// the same validators from its first metagraph; two never run.
	for i := miners; i < miners+validators+idle; i++ {
		if _, err := ensureRegistered(ctx, c, colds[i], hot(i), 1); err != nil {
			t.Fatal(err)
		}
	}
	ms, vs := startSubnet(ctx, t, c, colds, hot, miners, validators, sw)
	waitAllHear(t, append(slices.Clone(ms), vs...))
	// Which validator–miner pairs gossip, by the rule; the refused pairs
	// connected (for queries) and the miners whose choice includes an
	// idle validator.
	refused, fallback := 0, 0
	for _, m := range ms {
		chosen := 0
		for _, v := range vs {
			if m.swarm.gossipsWith(v.id) != v.swarm.gossipsWith(m.id) {
				t.Fatalf("miner %s and validator %s disagree", m.id.ShortString(), v.id.ShortString())
			}
			if m.swarm.gossipsWith(v.id) {
				chosen++
				continue
			}
			if v.h.Network().Connectedness(m.id) == network.Connected {
				refused++
			}
			// gossip's own test checks that no stream is open.
			if slices.Contains(m.swarm.beats.Peers(), v.id) || slices.Contains(v.swarm.beats.Peers(), m.id) {
				t.Errorf("miner %s and validator %s, outside each other's peer set, gossip", m.id.ShortString(), v.id.ShortString())
			}
		}
		if chosen < sw.GossipValidators {
			fallback++
			// It gossips with miners to reach TargetPeers.
			waitUntil(t, time.Minute, fmt.Sprintf("miner %s, with %d running validators to gossip with, to gossip with %d members", m.id.ShortString(), chosen, sw.TargetPeers), func() bool {
				return len(m.swarm.beats.Peers()) >= sw.TargetPeers
			})
		}
	}
	if refused == 0 || fallback == 0 {
		t.Fatalf("%d connected pairs refused, %d miners with an idle validator chosen: the test's keys exercise neither", refused, fallback)
	}
}

// swarmMember is a neuron of a test subnet: a miner (uid set) or a
// validator (validator set).
type swarmMember struct {
	id        peer.ID
	h         host.Host
	swarm     *Swarm
	uid       uint16
	validator *Validator
}

// startSubnet starts miners miners (colds[i] and hot(i), i < miners) and
// then validators validators (the next indices, staking 1e12), all with
// swarm config sw and a validator querying every block, its config then
// changed by tune (if given) with the validator's index among them.
func startSubnet(ctx context.Context, t *testing.T, c *local.Local, colds []*wallet.PrivateKey, hot func(int) *wallet.PrivateKey, miners, validators int, sw SwarmConfig, tune ...func(int, *ValidatorConfig)) (ms, vs []swarmMember) {
	t.Helper()
	log := slog.New(slog.DiscardHandler)
	for i := range miners {
		cfg := DefaultMinerConfig(1, backend.NewRetrieval())
		cfg.Swarm, cfg.Logger = sw, log
		m, err := StartMiner(ctx, c, colds[i], hot(i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		ms = append(ms, swarmMember{id: m.ID(), h: m.Host(), swarm: m.Swarm(), uid: m.UID()})
	}
	for i := miners; i < miners+validators; i++ {
		cfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
		cfg.Swarm, cfg.Logger, cfg.QueryEvery = sw, log, 1
		for _, f := range tune {
			f(i-miners, &cfg)
		}
		v, err := StartValidator(ctx, c, colds[i], hot(i), 1e12, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { v.Close() })
		vs = append(vs, swarmMember{id: v.ID(), h: v.Host(), swarm: v.Swarm(), validator: v})
	}
	return ms, vs
}

// waitAllHear waits until every member has heard every other's heartbeat.
func waitAllHear(t *testing.T, all []swarmMember) {
	t.Helper()
	for _, m := range all {
		waitUntil(t, time.Minute, fmt.Sprintf("%s to hear every neuron", m.id.ShortString()), func() bool {
			heard := m.swarm.Heard()
			for _, o := range all {
				if _, ok := heard[o.id]; !ok && o.id != m.id {
					return false
				}
			}
			return true
		})
	}
}
