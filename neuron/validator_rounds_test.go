package neuron

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
)

// heldMiner is a miner handler that answers only once released, counting
// the calls it got and the most it held at once.
type heldMiner struct {
	release       chan struct{}
	asked, inside atomic.Int64
	most          atomic.Int64
}

func newHeldMiner() *heldMiner { return &heldMiner{release: make(chan struct{})} }

func (h *heldMiner) handler() protocol.Handler {
	return protocol.HandlerFunc(func(ctx context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
		h.asked.Add(1)
		n := h.inside.Add(1)
		defer h.inside.Add(-1)
		for m := h.most.Load(); n > m && !h.most.CompareAndSwap(m, n); m = h.most.Load() {
		}
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
		return w.Write([]byte("HELLO"))
	})
}

// roundsSubnet is a subnet asking "hello" of upper.v1 miners every block
// with a minute's timeout, its validator's config tuned by cfgFn.
func roundsSubnet(t *testing.T, label string, miners int, cfgFn func(*ValidatorConfig)) (*Validator, func(i int, handlers map[string]protocol.Handler) *Miner) {
	t.Helper()
	spec, dir := v2Spec(t, upperSynapse, "tasks: {source: dataset, path: tasks.jsonl}\nreward: '1.0'\n")
	if err := os.WriteFile(filepath.Join(dir, "tasks.jsonl"), []byte(`{"request": {"text": "hello"}}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	v, start, _ := v2Subnet(t, spec, dir, label, miners, func(c *ValidatorConfig) {
		c.Timeout = time.Minute
		if cfgFn != nil {
			cfgFn(c)
		}
	})
	return v, start
}

// A miner that does not answer holds back no other round: while its
// first query waits, the validator keeps asking the other miner every
// block and sets weights, and it asks the silent miner nothing more
// until that query ends.
func TestSlowMinerHoldsBackNoRound(t *testing.T) {
	v, start := roundsSubnet(t, "slow miner rounds", 2, nil)
	held := newHeldMiner()
	t.Cleanup(func() { close(held.release) })
	fast := start(1, map[string]protocol.Handler{"upper.v1": answer(func(string) string { return "HELLO" })})
	slow := start(2, map[string]protocol.Handler{"upper.v1": held.handler()})
	waitUntil(t, time.Minute, "the silent miner to be asked", func() bool { return held.asked.Load() >= 1 })
	served := fast.QueriesServed()
	waitUntil(t, time.Minute, "ten more answers from the other miner while the first query waits", func() bool {
		return fast.QueriesServed() >= served+10
	})
	_, sets := v.Stats()
	waitUntil(t, time.Minute, "weights set while the first query waits", func() bool {
		_, s := v.Stats()
		return s > sets
	})
	if got := held.asked.Load(); got != 1 {
		t.Fatalf("the silent miner was asked %d times while its first query waited", got)
	}
	if s := scoreOf(v, fast.UID()); s <= 0 {
		t.Fatalf("the answering miner scores %v", s)
	}
	// Once it answers, it is asked again.
	held.release <- struct{}{}
	waitUntil(t, time.Minute, "the released miner to be asked again", func() bool { return held.asked.Load() >= 2 })
	if m := held.most.Load(); m != 1 {
		t.Fatalf("the silent miner held %d queries at once", m)
	}
	if s := scoreOf(v, slow.UID()); s <= 0 {
		t.Fatalf("the released miner's answer scored %v", s)
	}
}

// At most RoundsInFlight rounds of a mechanism wait at once: with two,
// one miner asked a round and three miners that never answer, the third
// miner is never asked and the rounds due meanwhile are skipped and
// counted.
func TestRoundsInFlightAreBounded(t *testing.T) {
	v, start := roundsSubnet(t, "bounded rounds", 3, func(c *ValidatorConfig) {
		c.RoundsInFlight, c.Sample = 2, 1
	})
	held := []*heldMiner{newHeldMiner(), newHeldMiner(), newHeldMiner()}
	t.Cleanup(func() {
		for _, h := range held {
			close(h.release)
		}
	})
	for i, h := range held {
		start(i+1, map[string]protocol.Handler{"upper.v1": h.handler()})
	}
	skipped := func() float64 {
		return testutil.ToFloat64(v.drops.skipped.WithLabelValues("1", subnet.MainMechanism))
	}
	waitUntil(t, time.Minute, "two miners asked and rounds skipped", func() bool {
		asked := 0
		for _, h := range held {
			asked += int(h.asked.Load())
		}
		return asked == 2 && skipped() >= 5
	})
	var asked []int64
	for _, h := range held {
		asked = append(asked, h.asked.Load())
	}
	slices.Sort(asked)
	if !slices.Equal(asked, []int64{0, 1, 1}) {
		t.Fatalf("miners asked %v times with two rounds in flight", asked)
	}
	if q, _ := v.Stats(); q != 0 {
		t.Fatalf("%d queries counted as done", q)
	}
}
