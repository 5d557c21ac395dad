package knowledge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Fetching from a swarm.
//
// Each level of a body's DAG (and an object's envelope before it) is
// fetched from every known provider at once, one session each (at most
// maxSources), in an order this fetch draws at random. Providers that
// answer Missing are partial holders: peers fetching the same object, as
// the validators of a subnet fetch a new model at once. The blocks of the
// level are shared out among this library and its partial providers by
// rendezvous hashing (the highest hash of CID and peer ID wins), the same
// way on every peer that knows the same providers: each fetches its own
// share from the seeds (providers that have answered only with blocks),
// and the rest from the peer whose share it is, which asked again, after
// a backoff, while it answers Missing. So each block leaves a seed about
// once and a miner uploads about the artifact's size however many
// validators fetch it. A block whose owner is gone, or has served nothing
// for ownerGrace while answering Missing, is asked of anyone, seeds too:
// a stalled peer only delays. The level fails with ErrNotFound when every
// provider idles with blocks left and nothing arrived for stallAfter (at
// once when no provider has served any block and every one answered
// Missing), after asking the DHT and retrying failed providers as before.
const (
	// maxSources bounds the providers a fetch asks at once.
	maxSources = 16
	// swarmWindow bounds a request's blocks when there are several
	// providers, so work spreads finely among them.
	swarmWindow = 8
	// seedAfter is how many blocks a provider must serve, with no Missing
	// answer, to count as a seed.
	seedAfter = 8
	// missBase and missCap: a block a provider lacks is asked of it again
	// after missBase, doubling up to missCap.
	missBase = 10 * time.Millisecond
	missCap  = 160 * time.Millisecond
	// ownerGrace is how long the owner of a block may serve nothing before
	// others are asked for its share: at least this, and lateFactor times
	// the gap expected between its blocks (members × the level's mean gap
	// between blocks received), so a loaded swarm is not taken for a
	// stalled one.
	ownerGrace = 250 * time.Millisecond
	lateFactor = 4
	// stallAfter: idle providers and nothing received for this long, and
	// the blocks left are at none of them.
	stallAfter = time.Second
	// idlePoll bounds how long an idle worker waits before looking again.
	idlePoll = 50 * time.Millisecond
	// maxBatch bounds the blocks of a level fetched together.
	maxBatch = 4096
)

// source is a provider during one fetch.
type source struct {
	info       peer.AddrInfo
	sess       *session
	served     int // blocks it served in this fetch
	missing    int // Missing answers in this fetch
	lastServed time.Time
	active     bool // a worker runs for it
	idle       bool // its worker has nothing to ask
	dead       bool // not asked again in this fetch
	failed     bool // dead for a transient failure
}

// seed says whether s has served only blocks, enough of them to tell.
func (s *source) seed() bool { return s.missing == 0 && s.served >= seedAfter }

// wanted is one block of a level.
type wanted struct {
	c     cid.Cid
	n     int     // times the level lists it (a body may repeat a chunk)
	owner peer.ID // who fetches it from a seed first-hand
	busy  bool    // requested from a provider
	done  bool
	miss  map[peer.ID]*missed
}

// missed records a provider's Missing answers for a block.
type missed struct {
	n    int
	next time.Time // not asked again before
}

// level is the state of one getAll.
type level struct {
	blocks   []*wanted // in this fetch's random order
	left     int
	use      func(c cid.Cid, data []byte) error
	start    time.Time
	progress time.Time // the last block received
	received int       // blocks received
	members  int       // among whom the blocks are shared out
	// byOwner lists the blocks of each member's share, in the level's
	// order (assignLocked), so that picking does not scan the level.
	byOwner map[peer.ID][]*wanted
	changed chan struct{}
	fatal   error
}

// notifyLocked wakes whoever waits for the level to change; f.mu is held.
func (f *fetch) notifyLocked() {
	close(f.lvl.changed)
	f.lvl.changed = make(chan struct{})
}

// rendezvous is the weight of peer p for block c.
func rendezvous(c cid.Cid, p peer.ID) uint64 {
	h := fnv.New64a()
	h.Write(c.Bytes())
	h.Write([]byte(p))
	return h.Sum64()
}

// assignLocked shares the level's blocks out among this library and the
// active partial providers; f.mu is held.
func (f *fetch) assignLocked() {
	self := f.l.host.ID()
	members := []peer.ID{self}
	for _, p := range f.providers {
		if s := f.sources[p.ID]; s.active && !s.dead && !s.seed() {
			members = append(members, p.ID)
		}
	}
	f.lvl.members = len(members)
	f.lvl.byOwner = make(map[peer.ID][]*wanted, len(members))
	for _, w := range f.lvl.blocks {
		if w.done {
			continue
		}
		best, owner := rendezvous(w.c, self), self
		for _, m := range members[1:] {
			if h := rendezvous(w.c, m); h > best {
				best, owner = h, m
			}
		}
		w.owner = owner
		f.lvl.byOwner[owner] = append(f.lvl.byOwner[owner], w)
	}
}

// getAll gets every CID of cids, verifying each block, storing it and
// handing it to use (one block at a time, in no set order, as often as
// cids lists it), from all the providers at once as the comment above
// says.
func (f *fetch) getAll(root cid.Cid, cids []cid.Cid, use func(c cid.Cid, data []byte) error) error {
	now := time.Now()
	lv := &level{use: use, start: now, progress: now, changed: make(chan struct{})}
	dup := map[cid.Cid]*wanted{}
	for _, c := range cids {
		if w := dup[c]; w != nil {
			w.n++
			continue
		}
		w := &wanted{c: c, n: 1}
		dup[c] = w
		lv.blocks = append(lv.blocks, w)
	}
	f.rng.Shuffle(len(lv.blocks), func(i, j int) { lv.blocks[i], lv.blocks[j] = lv.blocks[j], lv.blocks[i] })
	lv.left = len(lv.blocks)
	f.mu.Lock()
	f.lvl = lv
	f.mu.Unlock()

	ctx, cancel := context.WithCancel(f.ctx)
	var wg sync.WaitGroup
	stop := func() {
		cancel()
		f.mu.Lock()
		if lv.left > 0 {
			// Unblock workers reading: their sessions are lost.
			for _, s := range f.sources {
				if s.active && s.sess != nil {
					s.sess.st.Reset()
				}
			}
		}
		f.mu.Unlock()
		wg.Wait()
		f.mu.Lock()
		f.lvl = nil
		f.mu.Unlock()
	}
	rounds := 0
	for {
		f.mu.Lock()
		started := false
		running := 0
		for _, s := range f.sources {
			if s.active {
				running++
			}
		}
		for _, p := range f.providers {
			s := f.sources[p.ID]
			if running >= maxSources {
				break
			}
			if !s.active && !s.dead {
				s.active, s.idle = true, false
				running++
				started = true
				wg.Add(1)
				go func() {
					defer wg.Done()
					f.work(ctx, s)
				}()
			}
		}
		if started {
			f.assignLocked()
		}
		left, fatal, stuck, ch := lv.left, lv.fatal, f.stuckLocked(running), lv.changed
		failed := 0
		for _, s := range f.sources {
			if s.failed {
				failed++
			}
		}
		f.mu.Unlock()
		switch {
		case left == 0:
			stop()
			return nil
		case fatal != nil:
			stop()
			return fatal
		case f.ctx.Err() != nil:
			stop()
			return f.ctx.Err()
		case running == 0 || stuck:
			if f.askConnected() || f.askDHT(root) {
				continue
			}
			if failed > 0 && rounds < retryRounds {
				// Providers that failed to connect or broke a stream may
				// be reachable again shortly (dial backoff, limits).
				rounds++
				select {
				case <-f.ctx.Done():
					stop()
					return f.ctx.Err()
				case <-time.After(time.Duration(rounds) * retryPause):
				}
				f.mu.Lock()
				for _, s := range f.sources {
					if s.failed {
						s.failed, s.dead = false, false
					}
				}
				lv.progress = time.Now()
				f.mu.Unlock()
				continue
			}
			stop()
			f.mu.Lock()
			n := len(f.providers)
			f.mu.Unlock()
			return fmt.Errorf("%w: %d blocks at none of %d providers", ErrNotFound, left, n)
		}
		t := time.NewTimer(idlePoll)
		select {
		case <-ch:
		case <-t.C:
		case <-f.ctx.Done():
		}
		t.Stop()
	}
}

// stuckLocked says whether the level cannot go on with the providers it
// has: every worker idles with blocks left, and either no provider has
// served a block in this fetch and each has answered Missing, or nothing
// arrived for stallAfter past the owners' grace and no block waits for its
// owner's grace to end; f.mu is held.
func (f *fetch) stuckLocked(running int) bool {
	if running == 0 || f.lvl.left == 0 {
		return false
	}
	anyServed, allMissed := false, true
	for _, s := range f.sources {
		if !s.active {
			continue
		}
		if !s.idle {
			return false
		}
		anyServed = anyServed || s.served > 0
		allMissed = allMissed && s.missing > 0
	}
	if !anyServed && allMissed {
		return true
	}
	now := time.Now()
	if now.Sub(f.lvl.progress) <= stallAfter+f.graceLocked(now) {
		return false
	}
	self := f.l.host.ID()
	for _, w := range f.lvl.blocks {
		if !w.done && w.owner != self && !f.lateLocked(w, now) {
			return false
		}
	}
	return true
}

// window is how many blocks one request asks for; f.mu is held.
func (f *fetch) windowLocked() int {
	live := 0
	for _, s := range f.sources {
		if !s.dead {
			live++
		}
	}
	if live > 1 {
		return min(f.l.cfg.Window, swarmWindow)
	}
	return f.l.cfg.Window
}

// pickLocked chooses up to n blocks to ask s for: for a provider not
// known to be partial (or when none is left that is not), this library's
// own share; those of its share; then blocks whose owner is late. It
// marks them busy; f.mu is held.
func (f *fetch) pickLocked(s *source, n int, now time.Time) []*wanted {
	self := f.l.host.ID()
	id := s.info.ID
	var out []*wanted
	free := func(w *wanted) bool {
		if w.done || w.busy {
			return false
		}
		m := w.miss[id]
		return m == nil || !now.Before(m.next)
	}
	take := func(ws []*wanted, ok func(w *wanted) bool) {
		for _, w := range ws {
			if len(out) == n {
				return
			}
			if free(w) && ok(w) {
				w.busy = true
				out = append(out, w)
			}
		}
	}
	all := func(*wanted) bool { return true }
	if s.missing == 0 || !f.anySeedLocked() {
		take(f.lvl.byOwner[self], all)
	}
	take(f.lvl.byOwner[id], all)
	for owner, ws := range f.lvl.byOwner {
		if owner != self && owner != id && f.ownerLateLocked(owner, now) {
			take(ws, func(w *wanted) bool { return f.lateLocked(w, now) })
		}
	}
	return out
}

// ownerLateLocked says whether some block of owner's share may be late
// (lateLocked): the owner is gone, or has served nothing for its grace;
// f.mu is held.
func (f *fetch) ownerLateLocked(owner peer.ID, now time.Time) bool {
	o := f.sources[owner]
	if o == nil || o.dead || !o.active {
		return true
	}
	last := o.lastServed
	if last.Before(f.lvl.start) {
		last = f.lvl.start
	}
	return now.Sub(last) > f.graceLocked(now)
}

// anySeedLocked says whether a live provider has not answered Missing;
// f.mu is held.
func (f *fetch) anySeedLocked() bool {
	for _, s := range f.sources {
		if !s.dead && s.missing == 0 {
			return true
		}
	}
	return false
}

// lateLocked says whether w's owner (another provider) is gone, or has
// answered Missing for it and served nothing for its grace (ownerGrace);
// f.mu is held.
func (f *fetch) lateLocked(w *wanted, now time.Time) bool {
	o := f.sources[w.owner]
	if o == nil || o.dead || !o.active {
		return true
	}
	return w.miss[w.owner] != nil && f.ownerLateLocked(w.owner, now)
}

// graceLocked is how long an owner may serve nothing, as ownerGrace says,
// at most RequestTimeout; f.mu is held.
func (f *fetch) graceLocked(now time.Time) time.Duration {
	var gap time.Duration // between the blocks received so far
	if f.lvl.received > 0 {
		gap = f.lvl.progress.Sub(f.lvl.start) / time.Duration(f.lvl.received)
	}
	return min(max(ownerGrace, lateFactor*time.Duration(f.lvl.members)*gap), f.l.cfg.RequestTimeout)
}

// wakeLocked is when s may next have a block to ask for; f.mu is held.
func (f *fetch) wakeLocked(s *source, now time.Time) time.Duration {
	d := idlePoll
	self, id := f.l.host.ID(), s.info.ID
	for owner, ws := range f.lvl.byOwner {
		if owner != self && owner != id && !f.ownerLateLocked(owner, now) {
			continue // none of these is asked of s (pickLocked)
		}
		for _, w := range ws {
			if m := w.miss[id]; m != nil && !w.done && !w.busy {
				d = min(d, max(m.next.Sub(now), time.Millisecond))
			}
		}
	}
	return d
}

// work asks s for blocks until the level is done, s fails or ctx ends.
func (f *fetch) work(ctx context.Context, s *source) {
	var queue [][]*wanted // requested, oldest first
	defer func() {
		f.mu.Lock()
		for _, ws := range queue {
			for _, w := range ws {
				w.busy = false
			}
		}
		if len(queue) > 0 && s.sess != nil {
			// Answers are still due on it: it cannot serve the next level.
			s.sess.st.Reset()
			s.sess = nil
		}
		s.active, s.idle = false, false
		if f.lvl != nil {
			f.assignLocked()
			f.notifyLocked()
		}
		f.mu.Unlock()
	}()
	sess, err := f.session(ctx, s)
	if err != nil {
		f.lost(ctx, s, err)
		return
	}
	for {
		now := time.Now()
		f.mu.Lock()
		if f.lvl.left == 0 || f.lvl.fatal != nil || ctx.Err() != nil {
			f.mu.Unlock()
			return
		}
		var fresh [][]*wanted
		for len(queue)+len(fresh) < inFlight {
			ws := f.pickLocked(s, f.windowLocked(), now)
			if len(ws) == 0 {
				break
			}
			fresh = append(fresh, ws)
		}
		wasIdle := s.idle
		s.idle = len(queue)+len(fresh) == 0
		var ch chan struct{}
		var wait time.Duration
		if s.idle {
			if !wasIdle {
				f.notifyLocked() // the coordinator looks whether all idle
			}
			ch, wait = f.lvl.changed, f.wakeLocked(s, now)
		}
		f.mu.Unlock()
		if s.idle {
			t := time.NewTimer(wait)
			select {
			case <-ch:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
			continue
		}
		for _, ws := range fresh {
			queue = append(queue, ws)
			cids := make([]cid.Cid, len(ws))
			for i, w := range ws {
				cids[i] = w.c
			}
			req, err := EncodeRequest(cids)
			if err == nil {
				err = writeFrame(sess.bw, req)
			}
			if err != nil {
				f.lost(ctx, s, fmt.Errorf("sending a request: %w", err))
				return
			}
		}
		sess.st.SetDeadline(time.Now().Add(f.l.cfg.RequestTimeout))
		if err := sess.bw.Flush(); err != nil {
			f.lost(ctx, s, fmt.Errorf("sending a request: %w", err))
			return
		}
		ws := queue[0]
		for len(ws) > 0 {
			if err := f.receive(sess, s, ws[0]); err != nil {
				f.lost(ctx, s, err)
				return
			}
			ws = ws[1:]
			queue[0] = ws
		}
		queue = queue[1:]
	}
}

// receive reads s's answer for w: a Missing answer is noted, a block
// verified and handed to the level.
func (f *fetch) receive(sess *session, s *source, w *wanted) error {
	raw, err := readFrame(sess.br, MaxBlockFrame)
	if err != nil {
		return err
	}
	m, err := DecodeBlock(raw)
	if err != nil {
		return errBadData{err}
	}
	if !m.CID.Equals(w.c) {
		return errBadData{fmt.Errorf("%w: answered %s for %s", ErrBadMessage, m.CID, w.c)}
	}
	now := time.Now()
	if m.Missing {
		f.mu.Lock()
		defer f.mu.Unlock()
		wasSeed := s.seed()
		s.missing++
		if w.miss == nil {
			w.miss = map[peer.ID]*missed{}
		}
		ms := w.miss[s.info.ID]
		if ms == nil {
			ms = &missed{}
			w.miss[s.info.ID] = ms
		}
		ms.n++
		ms.next = now.Add(min(missBase<<min(ms.n-1, 8), missCap))
		w.busy = false
		if wasSeed {
			f.assignLocked()
		}
		f.notifyLocked()
		return nil
	}
	if err := verifyBlock(w.c, m.Data); err != nil {
		return errBadData{err}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for range w.n {
		if err := f.lvl.use(w.c, m.Data); err != nil {
			if errors.Is(err, ErrBadBlock) || errors.Is(err, ErrBadObject) {
				// It hashes to its CID, so the fault is upstream (the
				// author's DAG), not this provider's.
				err = fmt.Errorf("%w (%v)", errUnrecoverable, err)
			}
			f.fatalLocked(err)
			return nil
		}
	}
	// The frame was read into a buffer of its own: the import keeps the
	// block without copying it.
	if err := f.im.putOwned(w.c, m.Data); err != nil {
		f.fatalLocked(err)
		return nil
	}
	w.busy, w.done = false, true
	f.lvl.left--
	f.lvl.received++
	f.lvl.progress = now
	wasSeed := s.seed()
	s.served++
	s.lastServed = now
	if s.seed() != wasSeed {
		f.assignLocked()
	}
	f.notifyLocked()
	return nil
}

// fatalLocked ends the level with err; f.mu is held.
func (f *fetch) fatalLocked(err error) {
	if f.lvl.fatal == nil {
		f.lvl.fatal = err
	}
	f.notifyLocked()
}

// lost handles a worker's failure with s: a bad block penalizes and drops
// it; another failure drops it until the retry. A failure because the
// level ended (ctx) is nobody's fault.
func (f *fetch) lost(ctx context.Context, s *source, err error) {
	var bad errBadData
	f.mu.Lock()
	defer f.mu.Unlock()
	if s.sess != nil {
		s.sess.st.Reset()
		s.sess = nil
	}
	switch {
	case ctx.Err() != nil || f.lvl.fatal != nil:
	case errors.As(err, &bad):
		s.dead = true
		f.mu.Unlock()
		f.l.penalize(s.info.ID, penaltyBadBlock, bad.Error())
		f.mu.Lock()
	default:
		f.l.log.Debug("provider failed", "provider", s.info.ID, "err", err)
		s.dead, s.failed = true, true
	}
}

// session returns s's stream, opening it first.
func (f *fetch) session(ctx context.Context, s *source) (*session, error) {
	f.mu.Lock()
	sess := s.sess
	f.mu.Unlock()
	if sess != nil {
		return sess, nil
	}
	p := s.info
	ctx, cancel := context.WithTimeout(ctx, f.l.cfg.RequestTimeout)
	defer cancel()
	// A provider is a deliberate choice: dial it even if an earlier dial
	// (say, by the DHT) failed and put it in backoff.
	ctx = network.WithForceDirectDial(ctx, "knowledge fetch")
	if len(p.Addrs) > 0 {
		if err := f.l.host.Connect(ctx, p); err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", p.ID, err)
		}
	}
	st, err := f.l.host.NewStream(ctx, p.ID, ProtocolID)
	if err != nil {
		return nil, fmt.Errorf("opening a stream to %s: %w", p.ID, err)
	}
	sess = &session{st: st, br: bufio.NewReaderSize(st, 64<<10), bw: bufio.NewWriter(st)}
	f.mu.Lock()
	s.sess = sess
	f.mu.Unlock()
	return sess, nil
}
