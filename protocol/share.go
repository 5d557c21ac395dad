package protocol

import (
	"container/heap"
	"context"
	"errors"
	"math/bits"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// errShed is returned to a request the queue had to drop.
var errShed = errors.New("shed")

// scheduler admits at most limit handlers at once. The rest wait in a
// queue: each caller's requests in arrival order, callers ordered by
// stake (highest first, then the arrival of their oldest waiting
// request). When a slot frees it goes to the first caller in that order
// that runs fewer requests than its share (stakeShare); when every
// waiting caller is at or over its share, to the first caller anyway, so
// that no slot stays idle while requests wait. When the queue is full
// a request is shed: the latest of a caller holding more than its share
// of the queue, else the lowest-stake one (victim).
//
// Every operation is O(log q) in the q callers that have requests
// waiting, except that a free slot may skip up to limit callers that are
// at their share, and shedding scans the waiting callers (as it scanned
// the waiting requests before shares). Callers and waiters are recycled,
// so a request that queues allocates nothing once the server has seen
// its load.
type scheduler struct {
	limit int
	max   int
	// share is whether slots are shared by stake; without it every
	// caller's share is limit and the queue is ordered by stake alone.
	share bool

	mu      sync.Mutex
	running int
	queued  int
	seq     uint64
	active  map[peer.ID]*callerSlot // callers with requests queued or running
	total   u128                    // Σ stake of the active callers
	waiting callerHeap              // callers with requests queued
	skipped []*callerSlot           // promote's scratch
	free    []*callerSlot
	freeW   []*waiter
}

// callerSlot is one caller's requests in the scheduler.
type callerSlot struct {
	id      peer.ID
	stake   uint64
	running int
	queued  int
	// head and tail are the caller's waiting requests, oldest first.
	head, tail *waiter
	index      int // in the waiting heap; -1 when not in it
}

type waiter struct {
	c          *callerSlot
	seq        uint64
	ready      chan error // buffered: admitted (nil) or shed
	queued     bool
	prev, next *waiter
}

func newScheduler(limit, maxQueue int, share bool) *scheduler {
	return &scheduler{limit: limit, max: maxQueue, share: share, active: map[peer.ID]*callerSlot{}}
}

// acquire waits for a slot for a request from id with the given stake,
// until ctx ends. The slot is given back with release(c).
func (s *scheduler) acquire(ctx context.Context, id peer.ID, stake uint64) (*callerSlot, error) {
	s.mu.Lock()
	c, w, err := s.enter(id, stake)
	s.mu.Unlock()
	if w == nil {
		return c, err
	}
	select {
	case err := <-w.ready:
		s.mu.Lock()
		s.freeWaiter(w)
		s.mu.Unlock()
		if err != nil {
			return nil, err
		}
		return c, nil
	case <-ctx.Done():
		s.mu.Lock()
		s.cancel(w)
		s.mu.Unlock()
		return nil, ctx.Err()
	}
}

// enter admits a request from id (c, nil, nil), queues it (c, w, nil:
// w.ready will say whether it was admitted or shed), or sheds it (errShed);
// s.mu is held.
func (s *scheduler) enter(id peer.ID, stake uint64) (*callerSlot, *waiter, error) {
	c := s.activate(id, stake)
	if s.running < s.limit && s.queued == 0 {
		s.running++
		c.running++
		return c, nil, nil
	}
	if s.queued >= s.max {
		// Full: shed the last request of the caller that victim names,
		// this one if it is the last of its caller's.
		low := s.victim(c)
		if low == nil {
			s.deactivate(c)
			return nil, nil, errShed
		}
		w := low.tail
		s.unqueue(w)
		s.deactivate(low)
		w.ready <- errShed
	}
	return c, s.newWaiter(c), nil
}

// cancel withdraws w, whose request gave up waiting: from the queue, or,
// if it was admitted at the same moment, from its slot; s.mu is held.
func (s *scheduler) cancel(w *waiter) {
	c := w.c
	if w.queued {
		s.unqueue(w)
		s.deactivate(c)
		s.freeWaiter(w)
		return
	}
	err := <-w.ready
	s.freeWaiter(w)
	if err == nil {
		s.running--
		c.running--
		s.deactivate(c)
		s.promote()
	}
}

// release gives back a slot acquire gave to c.
func (s *scheduler) release(c *callerSlot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	c.running--
	s.deactivate(c)
	s.promote()
}

// activate returns id's slot, making it active if it was not, and takes
// stake as its stake; s.mu is held.
func (s *scheduler) activate(id peer.ID, stake uint64) *callerSlot {
	c, ok := s.active[id]
	if !ok {
		if n := len(s.free); n > 0 {
			c, s.free = s.free[n-1], s.free[:n-1]
		} else {
			c = &callerSlot{}
		}
		*c = callerSlot{id: id, stake: stake, index: -1}
		s.active[id] = c
		s.total.add(stake)
		return c
	}
	if c.stake != stake {
		// The metagraph changed: the caller's waiting requests rank by
		// what it holds now.
		s.total.sub(c.stake)
		s.total.add(stake)
		c.stake = stake
		if c.index >= 0 {
			heap.Fix(&s.waiting, c.index)
		}
	}
	return c
}

// deactivate forgets c if it has nothing queued or running; s.mu is held.
func (s *scheduler) deactivate(c *callerSlot) {
	if c.running > 0 || c.queued > 0 {
		return
	}
	delete(s.active, c.id)
	s.total.sub(c.stake)
	*c = callerSlot{index: -1}
	s.free = append(s.free, c)
}

// newWaiter queues a request of c's; s.mu is held.
func (s *scheduler) newWaiter(c *callerSlot) *waiter {
	var w *waiter
	if n := len(s.freeW); n > 0 {
		w, s.freeW = s.freeW[n-1], s.freeW[:n-1]
	} else {
		w = &waiter{ready: make(chan error, 1)}
	}
	s.seq++
	w.c, w.seq, w.queued = c, s.seq, true
	w.prev, w.next = c.tail, nil
	if c.tail != nil {
		c.tail.next = w
	} else {
		c.head = w
	}
	c.tail = w
	c.queued++
	s.queued++
	if c.index < 0 {
		heap.Push(&s.waiting, c)
	}
	return w
}

// unqueue takes w out of the queue; s.mu is held.
func (s *scheduler) unqueue(w *waiter) {
	c := w.c
	wasHead := c.head == w
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		c.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		c.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	c.queued--
	s.queued--
	switch {
	case c.queued == 0:
		heap.Remove(&s.waiting, c.index)
	case wasHead:
		heap.Fix(&s.waiting, c.index)
	}
}

// freeWaiter keeps w, whose ready channel is drained, for reuse; s.mu is
// held.
func (s *scheduler) freeWaiter(w *waiter) {
	w.c = nil
	s.freeW = append(s.freeW, w)
}

// promote admits waiters while there is room; s.mu is held.
func (s *scheduler) promote() {
	for s.running < s.limit && s.queued > 0 {
		// The first caller in stake order under its share; callers at
		// their share are set aside (at most limit of them: each runs at
		// least one request).
		var pick *callerSlot
		for len(s.waiting) > 0 {
			c := heap.Pop(&s.waiting).(*callerSlot)
			if !s.share || c.running < stakeShare(s.limit, c.stake, s.total, len(s.active)) {
				pick = c
				break
			}
			s.skipped = append(s.skipped, c)
		}
		for i, c := range s.skipped {
			if pick == nil && i == 0 {
				// Everyone waiting is at its share: the slot goes to
				// the first of them rather than stay idle.
				pick = c
				continue
			}
			heap.Push(&s.waiting, c)
		}
		clear(s.skipped)
		s.skipped = s.skipped[:0]
		heap.Push(&s.waiting, pick)
		w := pick.head
		s.unqueue(w)
		s.running++
		pick.running++
		w.ready <- nil
	}
}

// victim chooses, when the queue is full and a request of c's arrives,
// the caller whose last request is shed: nil to shed the new one. With
// shares, callers holding more of the queue than their share of it
// (stakeShare of MaxQueue, the new request counted as c's) are shed
// first, the lowest stake and then the latest arrival of them; then,
// with or without shares, the waiting caller whose last request would be
// served last, if the new request outranks it. So a high-stake caller
// that fills the queue loses its own latest requests, not the validators
// behind it. s.mu is held.
func (s *scheduler) victim(c *callerSlot) *callerSlot {
	if s.share {
		var over *callerSlot
		for _, w := range s.waiting {
			q := w.queued
			if w == c {
				q++
			}
			if q > stakeShare(s.max, w.stake, s.total, len(s.active)) && (over == nil || ranksBelow(w, over, c)) {
				over = w
			}
		}
		if over != nil {
			if over == c {
				return nil // its latest request is the new one
			}
			return over
		}
	}
	var low *callerSlot
	for _, w := range s.waiting {
		if low == nil || ranksBelow(w, low, nil) {
			low = w
		}
	}
	if low == nil || low.stake >= c.stake {
		return nil
	}
	return low
}

// ranksBelow reports whether a's last waiting request would be served
// after b's: lower stake, then later arrival. The last request of
// newcomer, if set, is the one arriving now.
func ranksBelow(a, b, newcomer *callerSlot) bool {
	if a.stake != b.stake {
		return a.stake < b.stake
	}
	switch {
	case a == newcomer:
		return true
	case b == newcomer:
		return false
	}
	return a.tail.seq > b.tail.seq
}

// stakeShare is how many requests a caller with stake may run while
// others wait, when active callers (this one among them) with total
// stake have requests queued or running and limit run at once:
//
//	max(1, min(⌊limit·stake/total⌋, limit − (active−1)))
//
// — its stake's share of the slots, at least one, and leaving one for
// each other active caller. When no active caller has stake, the slots
// are shared equally: ⌊limit/active⌋ in place of the stake's share.
func stakeShare(limit int, stake uint64, total u128, active int) int {
	if active <= 1 {
		return limit
	}
	var q uint64
	if total.isZero() {
		q = uint64(limit / active)
	} else {
		t, st := total.lo, stake
		if total.hi > 0 {
			// Over 2^64 in all (not on any real chain): keep the top 64
			// bits of the total, and shift the stake as far: the share may
			// be one off.
			k := uint(64 - bits.LeadingZeros64(total.hi))
			t, st = total.lo>>k|total.hi<<(64-k), stake>>k
		}
		// stake ≤ total, so limit·stake/total ≤ limit: the quotient fits
		// and Div64 cannot overflow.
		hi, lo := bits.Mul64(uint64(limit), st)
		q, _ = bits.Div64(hi, lo, t)
	}
	share := min(int(q), limit-(active-1))
	return max(1, share)
}

// u128 is an unsigned 128-bit sum of stakes.
type u128 struct{ hi, lo uint64 }

func (a *u128) add(v uint64) {
	var carry uint64
	a.lo, carry = bits.Add64(a.lo, v, 0)
	a.hi += carry
}

func (a *u128) sub(v uint64) {
	var borrow uint64
	a.lo, borrow = bits.Sub64(a.lo, v, 0)
	a.hi -= borrow
}

func (a u128) isZero() bool { return a.hi == 0 && a.lo == 0 }

// callerHeap orders waiting callers by stake (high first), then the
// arrival of their oldest waiting request.
type callerHeap []*callerSlot

func (h callerHeap) Len() int { return len(h) }
func (h callerHeap) Less(i, j int) bool {
	if h[i].stake != h[j].stake {
		return h[i].stake > h[j].stake
	}
	return h[i].head.seq < h[j].head.seq
}
func (h callerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *callerHeap) Push(x any) {
	c := x.(*callerSlot)
	c.index = len(*h)
	*h = append(*h, c)
}
func (h *callerHeap) Pop() any {
	old := *h
	c := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	c.index = -1
	return c
}
