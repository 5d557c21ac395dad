package protocol

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

func sum128(stakes ...uint64) u128 {
	var t u128
	for _, s := range stakes {
		t.add(s)
	}
	return t
}

func TestStakeShare(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limit  int
		stake  uint64
		others []uint64 // the other active callers' stakes
		want   int
	}{
		{"alone", 16, 5, nil, 16},
		{"alone without stake", 16, 0, nil, 16},
		{"equal halves", 16, 100, []uint64{100}, 8},
		{"gateway against two small validators", 4, 10_000, []uint64{100, 100}, 2},    // ⌊4·10000/10200⌋ = 3, capped at 4 − 2
		{"gateway against one small validator", 4, 10_000, []uint64{100}, 3},          // ⌊4·10000/10100⌋ = 3
		{"small validator against a gateway", 4, 100, []uint64{10_000, 100}, 1},       // ⌊0.039⌋ → at least 1
		{"gateway against validators without stake", 16, 1000, []uint64{0, 0, 0}, 13}, // ⌊16⌋ capped at 16 − 3
		{"without stake among staked", 16, 0, []uint64{1000}, 1},
		{"nobody has stake", 16, 0, []uint64{0, 0, 0}, 4},
		{"nobody has stake, more callers than slots", 4, 0, []uint64{0, 0, 0, 0, 0}, 1},
		{"more callers than slots", 4, 1000, []uint64{1, 1, 1, 1, 1, 1, 1, 1}, 1}, // ⌊3.97⌋ capped at 4 − 8 → 1
		{"floor", 10, 1, []uint64{2}, 3},                                          // ⌊10/3⌋
		{"one slot", 1, 1000, []uint64{1}, 1},
		// Totals of 2^64 and more keep their top 64 bits: the share may be
		// one off.
		{"largest stakes", 16, math.MaxUint64, []uint64{math.MaxUint64}, 7},
		{"largest against small", 16, math.MaxUint64, []uint64{1}, 15},
		{"small against largest", 16, 1 << 60, []uint64{math.MaxUint64, math.MaxUint64}, 1},
		{"three largest", 9, math.MaxUint64, []uint64{math.MaxUint64, math.MaxUint64}, 2},
		{"half of the largest", 16, 1 << 63, []uint64{1 << 63}, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			total := sum128(append([]uint64{tc.stake}, tc.others...)...)
			got := stakeShare(tc.limit, tc.stake, total, 1+len(tc.others))
			if got != tc.want {
				t.Fatalf("stakeShare(%d, %d, %v, %d) = %d, want %d", tc.limit, tc.stake, total, 1+len(tc.others), got, tc.want)
			}
			if ref := refShare(tc.limit, tc.stake, tc.others); got != ref && (total.hi == 0 || got < ref-1 || got > ref+1) {
				t.Fatalf("reference share %d, got %d", ref, got)
			}
		})
	}
}

// refShare is stakeShare's definition in exact arithmetic (totals below
// 2^64, or where the truncation does not change the floor).
func refShare(limit int, stake uint64, others []uint64) int {
	n := 1 + len(others)
	if n == 1 {
		return limit
	}
	total := new(big.Int).SetUint64(stake)
	for _, o := range others {
		total.Add(total, new(big.Int).SetUint64(o))
	}
	var q int
	if total.Sign() == 0 {
		q = limit / n
	} else {
		num := new(big.Int).Mul(big.NewInt(int64(limit)), new(big.Int).SetUint64(stake))
		q = int(num.Div(num, total).Int64())
	}
	return max(1, min(q, limit-(n-1)))
}

// Random shares against the exact reference.
func TestStakeShareMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20_000 {
		limit := 1 + rng.IntN(64)
		others := make([]uint64, rng.IntN(12))
		bound := uint64(1) << (1 + rng.IntN(63))
		for i := range others {
			others[i] = rng.Uint64N(bound)
		}
		stake := rng.Uint64N(bound)
		total := sum128(append([]uint64{stake}, others...)...)
		got := stakeShare(limit, stake, total, 1+len(others))
		// From 2^64 in all the share may be one off.
		if want := refShare(limit, stake, others); got != want && (total.hi == 0 || got < want-1 || got > want+1) {
			t.Fatalf("limit %d stake %d others %v: share %d, want %d", limit, stake, others, got, want)
		}
	}
}

// model is a naive reference of the scheduler: every waiting request in
// a list, every choice by a full scan.
type model struct {
	limit, max int
	share      bool
	running    map[peer.ID]int
	stake      map[peer.ID]uint64 // latest stake of each active caller
	waiting    []modelWaiter
	arriving   peer.ID // active while its request is placed, if set
}

type modelWaiter struct {
	id  peer.ID
	seq uint64
	w   *waiter
}

func (m *model) active() (n int, total u128) {
	seen := map[peer.ID]bool{}
	if m.arriving != "" {
		seen[m.arriving] = true
	}
	for id, r := range m.running {
		if r > 0 {
			seen[id] = true
		}
	}
	for _, w := range m.waiting {
		seen[w.id] = true
	}
	for id := range seen {
		total.add(m.stake[id])
	}
	return len(seen), total
}

// next is the waiter the next free slot goes to.
func (m *model) next() int {
	n, total := m.active()
	best, bestEligible := -1, false
	for i, w := range m.waiting {
		eligible := !m.share || m.running[w.id] < refShareOfLimit(m, m.limit, w.id, n, total)
		better := best < 0 || (eligible && !bestEligible) ||
			(eligible == bestEligible && (m.stake[w.id] > m.stake[m.waiting[best].id] ||
				m.stake[w.id] == m.stake[m.waiting[best].id] && w.seq < m.waiting[best].seq))
		if better {
			best, bestEligible = i, eligible
		}
	}
	return best
}

func refShareOfLimit(m *model, limit int, id peer.ID, n int, total u128) int {
	var others []uint64
	seen := map[peer.ID]bool{id: true}
	if a := m.arriving; a != "" && !seen[a] {
		seen[a] = true
		others = append(others, m.stake[a])
	}
	for o, r := range m.running {
		if r > 0 && !seen[o] {
			seen[o] = true
			others = append(others, m.stake[o])
		}
	}
	for _, w := range m.waiting {
		if !seen[w.id] {
			seen[w.id] = true
			others = append(others, m.stake[w.id])
		}
	}
	if len(others)+1 != n {
		panic("active count")
	}
	_ = total
	return refShare(limit, m.stake[id], others)
}

// shed is the waiter a full queue sheds when a request of id's arrives,
// -1 for the new one; m.stake[id] is already its stake.
func (m *model) shed(id peer.ID) int {
	const newcomer = math.MaxUint64 // the new request's arrival
	seqOf := func(i int) uint64 {
		if i < 0 {
			return newcomer
		}
		return m.waiting[i].seq
	}
	idOf := func(i int) peer.ID {
		if i < 0 {
			return id
		}
		return m.waiting[i].id
	}
	// below reports whether request i would be served after request j.
	below := func(i, j int) bool {
		if m.stake[idOf(i)] != m.stake[idOf(j)] {
			return m.stake[idOf(i)] < m.stake[idOf(j)]
		}
		return seqOf(i) > seqOf(j)
	}
	if m.share {
		m.arriving = id
		defer func() { m.arriving = "" }()
		queued := map[peer.ID]int{id: 1}
		for _, w := range m.waiting {
			queued[w.id]++
		}
		// Each over-share caller's last request, the new one for id's.
		last := map[peer.ID]int{id: -1}
		for i, w := range m.waiting {
			if w.id != id {
				last[w.id] = i
			}
		}
		n, total := m.active()
		best, found := 0, false
		for cid, i := range last {
			if queued[cid] > refShareOfLimit(m, m.max, cid, n, total) && (!found || below(i, best)) {
				best, found = i, true
			}
		}
		if found {
			return best
		}
	}
	low := -1
	for i := range m.waiting {
		if low < 0 || below(i, low) {
			low = i
		}
	}
	if low < 0 || m.stake[m.waiting[low].id] >= m.stake[id] {
		return -1
	}
	return low
}

// The scheduler's choices (who is admitted, queued, shed) against the
// naive model, over random arrivals, releases and cancellations, with
// shares and without.
func TestSchedulerMatchesModel(t *testing.T) {
	for _, share := range []bool{true, false} {
		for seed := range uint64(40) {
			t.Run(fmt.Sprintf("share=%v/seed=%d", share, seed), func(t *testing.T) {
				checkAgainstModel(t, share, seed)
			})
		}
	}
}

func checkAgainstModel(t *testing.T, share bool, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	limit, maxQueue := 1+rng.IntN(6), rng.IntN(10)
	s := newScheduler(limit, maxQueue, share)
	m := &model{limit: limit, max: maxQueue, share: share, running: map[peer.ID]int{}, stake: map[peer.ID]uint64{}}
	ids := make([]peer.ID, 2+rng.IntN(6))
	stakes := []uint64{0, 1, 10, 100, 10_000, math.MaxUint64 / 16} // totals below 2^64: exact shares
	for i := range ids {
		ids[i] = peer.ID(fmt.Sprintf("caller-%d", i))
	}
	type run struct {
		id peer.ID
		c  *callerSlot
	}
	var runs []run
	var seq uint64
	// admitted moves the model's waiter i to running and checks that the
	// scheduler told that waiter it was admitted.
	admitted := func(i int) {
		w := m.waiting[i]
		m.waiting = slices.Delete(m.waiting, i, i+1)
		select {
		case err := <-w.w.ready:
			if err != nil {
				t.Fatalf("waiter %d of %s: %v, want admitted", w.seq, w.id, err)
			}
		default:
			t.Fatalf("waiter %d of %s was not admitted", w.seq, w.id)
		}
		s.freeWaiter(w.w)
		m.running[w.id]++
		runs = append(runs, run{w.id, s.active[w.id]})
	}
	// promote plays the model's promotion after a slot frees.
	promote := func() {
		for len(runs) < limit && len(m.waiting) > 0 {
			admitted(m.next())
		}
	}
	for step := range 400 {
		s.mu.Lock()
		switch op := rng.IntN(10); {
		case op < 5: // arrival
			id := ids[rng.IntN(len(ids))]
			st := m.stake[id]
			if m.running[id] == 0 && !slices.ContainsFunc(m.waiting, func(w modelWaiter) bool { return w.id == id }) || rng.IntN(8) == 0 {
				st = stakes[rng.IntN(len(stakes))] // a new caller, or the metagraph changed
			}
			c, w, err := s.enter(id, st)
			m.stake[id] = st
			switch {
			case len(runs) < limit && len(m.waiting) == 0:
				if err != nil || w != nil {
					t.Fatalf("step %d: %s not admitted at once: %v", step, id, err)
				}
				m.running[id]++
				runs = append(runs, run{id, c})
			case len(m.waiting) >= maxQueue:
				low := m.shed(id)
				if low < 0 {
					if !errors.Is(err, errShed) {
						t.Fatalf("step %d: %s not shed: %v", step, id, err)
					}
					if m.running[id] == 0 && !slices.ContainsFunc(m.waiting, func(w modelWaiter) bool { return w.id == id }) {
						delete(m.stake, id)
					}
					break
				}
				lw := m.waiting[low]
				m.waiting = slices.Delete(m.waiting, low, low+1)
				select {
				case e := <-lw.w.ready:
					if !errors.Is(e, errShed) {
						t.Fatalf("step %d: %s's waiter %d got %v, want shed", step, lw.id, lw.seq, e)
					}
				default:
					t.Fatalf("step %d: %s's waiter %d was not shed", step, lw.id, lw.seq)
				}
				s.freeWaiter(lw.w)
				fallthrough
			default:
				if err != nil || w == nil {
					t.Fatalf("step %d: %s not queued: %v", step, id, err)
				}
				seq++
				m.waiting = append(m.waiting, modelWaiter{id: id, seq: seq, w: w})
			}
		case op < 9: // a running request ends
			if len(runs) == 0 {
				break
			}
			i := rng.IntN(len(runs))
			r := runs[i]
			runs = slices.Delete(runs, i, i+1)
			m.running[r.id]--
			s.running--
			r.c.running--
			s.deactivate(r.c)
			s.promote()
			promote()
		default: // a waiting request gives up
			if len(m.waiting) == 0 {
				break
			}
			i := rng.IntN(len(m.waiting))
			w := m.waiting[i]
			m.waiting = slices.Delete(m.waiting, i, i+1)
			s.cancel(w.w)
		}
		// Nothing else was told anything.
		for _, w := range m.waiting {
			if len(w.w.ready) != 0 {
				t.Fatalf("step %d: waiter %d of %s was told something", step, w.seq, w.id)
			}
		}
		n, total := m.active()
		if s.running != len(runs) || s.queued != len(m.waiting) || len(s.active) != n || s.total != total {
			t.Fatalf("step %d: running %d queued %d active %d total %v; model %d %d %d %v", step, s.running, s.queued, len(s.active), s.total, len(runs), len(m.waiting), n, total)
		}
		s.mu.Unlock()
	}
}

// The server under a flood: a high-stake caller (a gateway) keeps ten
// times the server's concurrency in flight while two low-stake validators
// query it one request at a time. With shares, every validator request is
// answered OK within a bound of a few handler times, also when the flood
// overfills the queue; with ShareByStake off
// the gateway's queued requests outrank theirs and the bound fails, which
// shows the test measures what it claims.
func TestStakeShareUnderFlood(t *testing.T) {
	const work = 40 * time.Millisecond
	const limit = 4
	// A validator's request waits at most for the first of limit running
	// requests to end, then runs: under 2·work, here 5·work for a loaded
	// machine.
	const bound = 5 * work
	t.Run("shared", func(t *testing.T) {
		p95, statuses, _ := floodRun(t, true, limit, 64, work, 20, 10*time.Second)
		t.Logf("validators' p95 %v (bound %v), statuses %v", p95, bound, statuses)
		if len(statuses) != 1 || statuses[StatusOK] != 40 {
			t.Fatalf("validators' statuses %v, want 40 OK", statuses)
		}
		if p95 > bound {
			t.Fatalf("validators' p95 latency %v over %v", p95, bound)
		}
	})
	// The queue holds a little less than the flood (a few of the
	// gateway's requests are always being shed and sent again, few
	// enough not to load the machine), so the validators' requests
	// arrive to a full queue: the gateway's own latest requests are
	// shed, not theirs.
	t.Run("shared, queue full", func(t *testing.T) {
		p95, statuses, gateway := floodRun(t, true, limit, 9*limit-2, work, 20, 10*time.Second)
		t.Logf("validators' p95 %v (bound %v), statuses %v", p95, bound, statuses)
		if gateway[StatusOverloaded] == 0 {
			t.Fatalf("the gateway was never shed (%v): the queue was not full", gateway)
		}
		if len(statuses) != 1 || statuses[StatusOK] != 40 {
			t.Fatalf("validators' statuses %v, want 40 OK", statuses)
		}
		if p95 > bound {
			t.Fatalf("validators' p95 latency %v over %v", p95, bound)
		}
	})
	t.Run("stake order alone", func(t *testing.T) {
		p95, statuses, _ := floodRun(t, false, limit, 64, work, 2, time.Second)
		t.Logf("validators' p95 %v, statuses %v", p95, statuses)
		if p95 <= bound && statuses[StatusOK] == 4 {
			t.Fatalf("without shares the validators were served within %v too (p95 %v): the flood does not test shares", bound, p95)
		}
	})
}

// floodRun runs the flood against a server with MaxConcurrent limit whose
// handler works for work and whose queue holds maxQueue, each validator
// sending perValidator requests
// (with timeout) one after another; it returns their p95 latency and their
// statuses, and the gateway's.
func floodRun(t *testing.T, share bool, limit, maxQueue int, work time.Duration, perValidator int, timeout time.Duration) (p95 time.Duration, statuses, gw map[Status]int) {
	nt := newNet(t, 4)
	gateway, v1, v2 := nt.hosts[1].ID(), nt.hosts[2].ID(), nt.hosts[3].ID()
	nt.reg.mu.Lock()
	nt.reg.m[gateway] = Caller{Registered: true, UID: 1, Stake: 1_000_000}
	nt.reg.m[v1] = Caller{Registered: true, UID: 2, Stake: 1_000}
	nt.reg.m[v2] = Caller{Registered: true, UID: 3, Stake: 1_000}
	nt.reg.mu.Unlock()
	cfg := DefaultServerConfig()
	cfg.MaxConcurrent, cfg.MaxQueue, cfg.ShareByStake = limit, maxQueue, share
	srv := nt.server(0, map[string]Handler{"work": HandlerFunc(func(ctx context.Context, r *Request, w ResponseWriter) error {
		select {
		case <-time.After(work):
		case <-ctx.Done():
			return ctx.Err()
		}
		return w.Write([]byte("done"))
	})}, cfg)
	server := nt.hosts[0].ID()
	req := &pb.Request{Synapse: "work", Netuid: 1, TimeoutMs: 10_000}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	gc := nt.client(1)
	defer gc.Close()
	var flood sync.WaitGroup
	var gmu sync.Mutex
	gateStatus := map[Status]int{}
	for range 10 * limit {
		flood.Add(1)
		go func() {
			defer flood.Done()
			for ctx.Err() == nil {
				r := gc.Stream(ctx, server, req, nil)
				gmu.Lock()
				gateStatus[r.Status]++
				gmu.Unlock()
				if r.Status == StatusOverloaded {
					// Shed: try again soon (not at once, to spare the
					// shared test machine's CPU).
					select {
					case <-time.After(2 * time.Millisecond):
					case <-ctx.Done():
					}
				}
			}
		}()
	}
	// The flood is on once the gateway holds every slot and has more
	// requests waiting than the validators will ever have.
	waitUntil(t, 10*time.Second, "the flood to fill the queue", func() bool {
		srv.sched.mu.Lock()
		defer srv.sched.mu.Unlock()
		return srv.sched.running == limit && srv.sched.queued >= min(4*limit, maxQueue)
	})

	var mu sync.Mutex
	var lat []time.Duration
	statuses = map[Status]int{}
	var vw sync.WaitGroup
	for _, i := range []int{2, 3} {
		c := nt.client(i)
		defer c.Close()
		vw.Add(1)
		go func() {
			defer vw.Done()
			for range perValidator {
				start := time.Now()
				vreq := &pb.Request{Synapse: "work", Netuid: 1, TimeoutMs: uint32(timeout.Milliseconds())}
				r := c.Stream(context.Background(), server, vreq, nil)
				mu.Lock()
				lat = append(lat, time.Since(start))
				statuses[r.Status]++
				mu.Unlock()
			}
		}()
	}
	vw.Wait()
	stop()
	flood.Wait()
	t.Logf("the gateway's statuses: %v", gateStatus)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[(len(lat)*95+99)/100-1], statuses, gateStatus
}
