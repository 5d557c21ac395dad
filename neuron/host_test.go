package neuron

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// awayChain answers Neuron from a table, or with err while err is set.
type awayChain struct {
	chainlink.Reader
	neurons map[wallet.Address]chain.NeuronInfo
	err     error
	asked   int // Neuron calls
}

func (a *awayChain) Neuron(_ context.Context, _ uint16, hotkey wallet.Address) (chain.NeuronInfo, error) {
	a.asked++
	if a.err != nil {
		return chain.NeuronInfo{}, a.err
	}
	n, ok := a.neurons[hotkey]
	if !ok {
		return n, fmt.Errorf("neuron: %w", chainlink.ErrNotFound)
	}
	return n, nil
}

func peerOf(t *testing.T, label string, i int) (peer.ID, wallet.Address) {
	k := testKey(t, label, i)
	return k.PublicKey().PeerID(), k.PublicKey().Address()
}

// While the chain is away, callers are answered as the chain last
// answered for them; callers never looked up are an error, as before.
func TestChainCallersRememberWhileTheChainIsAway(t *testing.T) {
	ctx := context.Background()
	known, knownAddr := peerOf(t, "caller", 0)
	stranger, _ := peerOf(t, "caller", 1)
	unreg, _ := peerOf(t, "caller", 2)
	c := &awayChain{neurons: map[wallet.Address]chain.NeuronInfo{knownAddr: {Stake: 99, Neuron: chain.Neuron{UID: 7}}}}
	callers := NewChainCallers(c)
	for _, id := range []peer.ID{known, unreg} {
		if _, err := callers.Caller(ctx, 1, id); err != nil {
			t.Fatal(err)
		}
	}
	c.err = errors.New("cannot reach the chain node")
	got, err := callers.Caller(ctx, 1, known)
	if err != nil || got != (protocol.Caller{Registered: true, UID: 7, Stake: 99}) {
		t.Fatalf("known caller while away: %+v %v", got, err)
	}
	if got, err := callers.Caller(ctx, 1, unreg); err != nil || got.Registered {
		t.Fatalf("unregistered caller while away: %+v %v", got, err)
	}
	if _, err := callers.Caller(ctx, 2, known); err == nil {
		t.Fatal("a caller known on another subnet")
	}
	if _, err := callers.Caller(ctx, 1, stranger); err == nil {
		t.Fatal("a stranger while away")
	}
	// The zero value remembers nothing.
	if _, err := (ChainCallers{Chain: c}).Caller(ctx, 1, known); err == nil {
		t.Fatal("zero ChainCallers answered while away")
	}
	// The memory is bounded.
	k := &knownCallers{m: map[knownCaller]askedCaller{}, max: 2}
	for i := range 5 {
		id, _ := peerOf(t, "many", i)
		k.put(1, id, protocol.Caller{UID: uint16(i)})
	}
	if len(k.m) != 2 {
		t.Fatalf("%d callers kept, max 2", len(k.m))
	}
}

// A caller's answer serves for callerFresh without asking the chain again
// (a miner is asked by every validator every few seconds), and is asked
// again once older.
func TestChainCallersAskTheChainOncePerFreshness(t *testing.T) {
	ctx := context.Background()
	id, addr := peerOf(t, "caller", 0)
	c := &awayChain{neurons: map[wallet.Address]chain.NeuronInfo{addr: {Stake: 5, Neuron: chain.Neuron{UID: 2}}}}
	callers := NewChainCallers(c)
	for range 10 {
		if got, err := callers.Caller(ctx, 1, id); err != nil || got != (protocol.Caller{Registered: true, UID: 2, Stake: 5}) {
			t.Fatalf("caller: %+v %v", got, err)
		}
	}
	if c.asked != 1 {
		t.Fatalf("the chain was asked %d times for 10 queries within %v, want once", c.asked, callerFresh)
	}
	// Older than callerFresh, the answer is read again: the caller
	// deregistered meanwhile.
	callers.known.mu.Lock()
	a := callers.known.m[knownCaller{1, id}]
	a.asked = a.asked.Add(-callerFresh)
	callers.known.m[knownCaller{1, id}] = a
	callers.known.mu.Unlock()
	delete(c.neurons, addr)
	if got, err := callers.Caller(ctx, 1, id); err != nil || got.Registered || c.asked != 2 {
		t.Fatalf("after callerFresh: %+v %v, the chain asked %d times", got, err, c.asked)
	}
}

// The swarm's registry answers from an expired entry while the chain is
// away.
func TestChainRegistryServesExpiredEntriesWhileTheChainIsAway(t *testing.T) {
	ctx := context.Background()
	_, addr := peerOf(t, "member", 0)
	c := &awayChain{neurons: map[wallet.Address]chain.NeuronInfo{addr: {Neuron: chain.Neuron{UID: 3}}}}
	r := NewChainRegistry(c, time.Nanosecond)
	if uid, ok, err := r.Lookup(ctx, 1, addr); err != nil || !ok || uid != 3 {
		t.Fatalf("lookup: %d %v %v", uid, ok, err)
	}
	c.err = errors.New("cannot reach the chain node")
	if uid, ok, err := r.Lookup(ctx, 1, addr); err != nil || !ok || uid != 3 {
		t.Fatalf("lookup while away: %d %v %v", uid, ok, err)
	}
	_, other := peerOf(t, "member", 1)
	if _, _, err := r.Lookup(ctx, 1, other); err == nil {
		t.Fatal("a member never looked up, while away")
	}
}

// The registry answers for the members of a metagraph it observed without
// asking the chain, until the ttl passes; a hotkey the metagraph does not
// hold is still asked about, and a member that left is still answered as
// registered until its entry expires (as a looked-up answer would be).
func TestChainRegistryAnswersFromObservedMetagraph(t *testing.T) {
	ctx := context.Background()
	_, a := peerOf(t, "observed", 0)
	_, b := peerOf(t, "observed", 1)
	_, outsider := peerOf(t, "observed", 2)
	c := &awayChain{neurons: map[wallet.Address]chain.NeuronInfo{}}
	r := NewChainRegistry(c, time.Hour)
	r.Observe(1, &chain.Metagraph{Hotkeys: []wallet.Address{a, b}})
	for uid, h := range []wallet.Address{a, b} {
		if got, ok, err := r.Lookup(ctx, 1, h); err != nil || !ok || got != uint16(uid) {
			t.Fatalf("member %d: %d %v %v", uid, got, ok, err)
		}
	}
	if c.asked != 0 {
		t.Fatalf("the chain was asked %d times about observed members", c.asked)
	}
	// Another subnet's registry is not this one's.
	if _, ok, _ := r.Lookup(ctx, 2, a); ok || c.asked != 1 {
		t.Fatalf("subnet 2: registered %v, the chain asked %d times", ok, c.asked)
	}
	if _, ok, _ := r.Lookup(ctx, 1, outsider); ok || c.asked != 2 {
		t.Fatalf("outsider: registered %v, the chain asked %d times", ok, c.asked)
	}
	// Observed answers expire as looked-up ones do.
	r = NewChainRegistry(c, time.Nanosecond)
	r.Observe(1, &chain.Metagraph{Hotkeys: []wallet.Address{a}})
	for past := time.Now().Add(time.Nanosecond); !time.Now().After(past); {
		// wait for the clock to pass the 1 ns ttl
	}
	if _, ok, _ := r.Lookup(ctx, 1, a); ok || c.asked != 3 {
		t.Fatalf("after the ttl: registered %v, the chain asked %d times", ok, c.asked)
	}
}
