package gateway

import (
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
)

// fakeClock is a clock the test moves.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func miners(scores ...float64) []Miner {
	out := make([]Miner, len(scores))
	for i, s := range scores {
		out[i] = Miner{UID: uint16(i), Peer: peer.ID(fmt.Sprintf("m%d", i)), Incentive: s, Trust: 1}
	}
	return out
}

func newTestPicker(t *testing.T, cfg PickerConfig, r float64) (*Picker, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	p, err := NewPicker(cfg, clk.now, func() float64 { return r })
	if err != nil {
		t.Fatal(err)
	}
	return p, clk
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestPickerWeights(t *testing.T) {
	cfg := DefaultPickerConfig()
	cfg.Temperature = 0.5
	for _, tc := range []struct {
		name   string
		scores []float64
		setup  func(p *Picker, c *fakeClock, ms []Miner)
		skip   string
		want   []float64
	}{
		{name: "softmax of scaled scores", scores: []float64{0.5, 0.25, 0},
			want: []float64{1, math.Exp(-0.5 / 0.5), math.Exp(-1 / 0.5)}},
		{name: "all zero: uniform", scores: []float64{0, 0}, want: []float64{1, 1}},
		{name: "out of range counts as zero", scores: []float64{1, math.NaN(), 2},
			want: []float64{1, math.Exp(-1 / 0.5), math.Exp(-1 / 0.5)}},
		{name: "skipped", scores: []float64{1, 1}, skip: "m0", want: []float64{0, 1}},
		{name: "in flight divides", scores: []float64{1, 1},
			setup: func(p *Picker, _ *fakeClock, ms []Miner) { pickN(p, ms[:1], 3) },
			want:  []float64{1.0 / 4, 1}},
		{name: "at the cap: none", scores: []float64{1, 1},
			setup: func(p *Picker, _ *fakeClock, ms []Miner) { pickN(p, ms[:1], cfg.MaxInFlight) },
			want:  []float64{0, 1}},
		{name: "latency divides", scores: []float64{1, 1},
			setup: func(p *Picker, _ *fakeClock, ms []Miner) {
				pickN(p, ms[:1], 1)
				p.Done(ms[0].Peer, Succeeded, cfg.LatencyScale)
			},
			want: []float64{0.5, 1}},
		{name: "backing off", scores: []float64{1, 1},
			setup: func(p *Picker, _ *fakeClock, ms []Miner) {
				pickN(p, ms[1:], 1)
				p.Done(ms[1].Peer, Failed, 0)
			},
			want: []float64{1, 0}},
		{name: "backoff over", scores: []float64{1, 1},
			setup: func(p *Picker, c *fakeClock, ms []Miner) {
				pickN(p, ms[1:], 1)
				p.Done(ms[1].Peer, Failed, 0)
				c.t = c.t.Add(cfg.BackoffBase)
			},
			want: []float64{1, 1}},
		{name: "neutral changes nothing but in flight", scores: []float64{1, 1},
			setup: func(p *Picker, _ *fakeClock, ms []Miner) {
				pickN(p, ms[:1], 1)
				p.Done(ms[0].Peer, Neutral, time.Hour)
			},
			want: []float64{1, 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, clk := newTestPicker(t, cfg, 0)
			ms := miners(tc.scores...)
			if tc.setup != nil {
				tc.setup(p, clk, ms)
			}
			got := p.Weights(ms, func(id peer.ID) bool { return string(id) == tc.skip })
			for i := range got {
				if !near(got[i], tc.want[i]) {
					t.Fatalf("weights %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// pickN picks n times among ms (which must all be pickable).
func pickN(p *Picker, ms []Miner, n int) {
	for range n {
		p.Pick(ms, nil)
	}
}

func TestPickerPick(t *testing.T) {
	for _, tc := range []struct {
		name   string
		scores []float64
		r      float64
		want   int // -1: none
	}{
		{"first of equals", []float64{1, 1, 1}, 0, 0},
		{"middle of equals", []float64{1, 1, 1}, 0.5, 1},
		{"last of equals", []float64{1, 1, 1}, 0.999, 2},
		{"cold temperature sends to the best", []float64{0.1, 1, 0.2}, 0.3, 1},
		{"none", nil, 0.5, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultPickerConfig()
			cfg.Temperature = 0.01
			p, _ := newTestPicker(t, cfg, tc.r)
			ms := miners(tc.scores...)
			m, ok := p.Pick(ms, nil)
			if tc.want < 0 {
				if ok {
					t.Fatalf("picked %v from nothing", m)
				}
				return
			}
			if !ok || m.UID != uint16(tc.want) {
				t.Fatalf("picked %v (ok %v), want uid %d", m.UID, ok, tc.want)
			}
		})
	}
}

func TestPickerBackoffDoublesToMax(t *testing.T) {
	cfg := DefaultPickerConfig()
	cfg.BackoffBase, cfg.BackoffMax = time.Second, 5*time.Second
	p, clk := newTestPicker(t, cfg, 0)
	ms := miners(1)
	for i, want := range []time.Duration{1, 2, 4, 5, 5} {
		want *= time.Second
		if _, ok := p.Pick(ms, nil); !ok {
			t.Fatalf("failure %d: not pickable", i)
		}
		p.Done(ms[0].Peer, Failed, 0)
		clk.t = clk.t.Add(want - 1)
		if _, ok := p.Pick(ms, nil); ok {
			t.Fatalf("failure %d: picked before its %v backoff ended", i, want)
		}
		clk.t = clk.t.Add(1)
	}
	// A success ends the run of failures: the next failure backs off by
	// the base again.
	p.Pick(ms, nil)
	p.Done(ms[0].Peer, Succeeded, time.Millisecond)
	p.Pick(ms, nil)
	p.Done(ms[0].Peer, Failed, 0)
	clk.t = clk.t.Add(cfg.BackoffBase)
	if _, ok := p.Pick(ms, nil); !ok {
		t.Fatal("backoff after a success did not restart from the base")
	}
}

func TestPickerLatencyEWMA(t *testing.T) {
	cfg := DefaultPickerConfig()
	cfg.LatencyAlpha = 0.5
	p, _ := newTestPicker(t, cfg, 0)
	ms := miners(1)
	for _, l := range []time.Duration{100, 300} {
		p.Pick(ms, nil)
		p.Done(ms[0].Peer, Succeeded, l*time.Millisecond)
	}
	// EWMA: 100, then 0.5·300 + 0.5·100 = 200 ms.
	want := 1 / (1 + 200.0/500)
	if w := p.Weights(ms, nil); !near(w[0], want) {
		t.Fatalf("weight %v, want %v", w[0], want)
	}
}

func TestPickerForget(t *testing.T) {
	p, _ := newTestPicker(t, DefaultPickerConfig(), 0)
	ms := miners(1, 1)
	pickN(p, ms[:1], 1)
	pickN(p, ms[1:], 1)
	p.Done(ms[1].Peer, Failed, 0)
	p.Forget(func(peer.ID) bool { return false })
	// m0 is in flight and kept; m1's backoff is forgotten.
	if w := p.Weights(ms, nil); !near(w[0], 0.5) || !near(w[1], 1) {
		t.Fatalf("weights after Forget %v, want [0.5 1]", w)
	}
}
