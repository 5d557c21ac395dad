package knowledge

import (
	"bufio"
	"errors"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// handleStream serves blocks: one Block per wanted CID, request after
// request, until the client closes the stream or leaves it without a
// request for ReadTimeout.
func (l *Library) handleStream(st network.Stream) {
	from := st.Conn().RemotePeer()
	sl, ok := l.admit(st, from)
	if !ok {
		st.Reset()
		return
	}
	defer l.release(st, from)
	l.serve(st, from, sl)
}

// slot is a transfer stream the library holds.
type slot struct {
	from       peer.ID
	registered bool
	// waiting is when the stream began to wait for its next request;
	// zero while one is read or answered.
	waiting time.Time
}

// evictAfter is how long a stream must have waited for a request before
// another peer's stream may take its place: a client writes its request
// with the stream's opening, so one that waits this long is idle.
const evictAfter = 250 * time.Millisecond

// admit takes one of the library's transfer streams for st, from peer
// from. It refuses when the library is closed or the peer holds
// MaxStreamsPerPeer already. A peer not known to be registered gets a
// stream while more than the reserve are free; otherwise it takes the place
// of an idle stream of the unregistered peer that holds the most, if that
// peer holds at least two more than it does, so unregistered peers share
// their part fairly and a newcomer gets in however many idle streams
// others open. A registered neuron takes any free stream, or else the
// place of such an idle stream. After true the caller must release.
func (l *Library) admit(st network.Stream, from peer.ID) (*slot, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || l.perPeer[from] >= l.cfg.MaxStreamsPerPeer {
		return nil, false
	}
	registered := l.registry == nil || l.registry.Registered(from)
	room := l.cfg.MaxStreams
	if !registered {
		room -= l.reserved()
	}
	if len(l.streams) >= room && !l.evictLocked(from, registered) {
		return nil, false
	}
	sl := &slot{from: from, registered: registered}
	l.streams[st] = sl
	l.perPeer[from]++
	l.wg.Add(1)
	return sl, true
}

// evictLocked makes room for a stream of from by resetting an idle
// stream of an unregistered peer, as admit says, and reports whether it
// did; l.mu is held.
func (l *Library) evictLocked(from peer.ID, registered bool) bool {
	if l.registry == nil {
		return false
	}
	now := time.Now()
	var victim network.Stream
	var vfrom peer.ID
	var most int
	var since time.Time
	for st, sl := range l.streams {
		if sl.registered || sl.waiting.IsZero() || now.Sub(sl.waiting) < evictAfter {
			continue
		}
		n := l.perPeer[sl.from]
		if n > most || n == most && sl.waiting.Before(since) {
			victim, vfrom, most, since = st, sl.from, n, sl.waiting
		}
	}
	if victim == nil || !registered && most < l.perPeer[from]+2 {
		return false
	}
	// Uncounted now, not when its handler ends: in a burst of newcomers
	// the peer would still count as holding the most, and lose every
	// stream while others kept theirs.
	delete(l.streams, victim)
	l.uncount(vfrom)
	victim.Reset() // its handler releases the rest as it ends
	return true
}

// release gives back what admit took and closes st.
func (l *Library) release(st network.Stream, from peer.ID) {
	l.mu.Lock()
	if _, ok := l.streams[st]; ok { // else evicted, and uncounted then
		delete(l.streams, st)
		l.uncount(from)
	}
	l.mu.Unlock()
	st.Close()
	l.wg.Done()
}

// setWaiting marks sl as waiting for a request (or not).
func (l *Library) setWaiting(sl *slot, waiting bool) {
	l.mu.Lock()
	if waiting {
		sl.waiting = time.Now()
	} else {
		sl.waiting = time.Time{}
	}
	l.mu.Unlock()
}

// uncount uncounts one of from's streams; l.mu is held.
func (l *Library) uncount(from peer.ID) {
	if l.perPeer[from] <= 1 {
		delete(l.perPeer, from)
	} else {
		l.perPeer[from]--
	}
}

// reserved is how many streams only registered neurons may take.
func (l *Library) reserved() int {
	if l.registry == nil {
		return 0
	}
	return l.cfg.ReservedStreams
}

// serve answers the requests on st.
func (l *Library) serve(st network.Stream, from peer.ID, sl *slot) {
	br := bufio.NewReader(st)
	var bw *bufio.Writer // made at the first request: a stream that sends none costs little
	var frame []byte
	for {
		// ReadTimeout for a request to start, and as long again for it to
		// arrive whole: a peer cannot hold the stream by dripping one.
		st.SetReadDeadline(time.Now().Add(l.cfg.ReadTimeout))
		if br.Buffered() == 0 {
			l.setWaiting(sl, true)
		}
		_, err := br.Peek(1)
		l.setWaiting(sl, false)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				l.log.Debug("no request", "from", from, "err", err)
				st.Reset()
			}
			return
		}
		st.SetReadDeadline(time.Now().Add(l.cfg.ReadTimeout))
		raw, err := readFrameGrowing(br, MaxRequestSize)
		if err != nil {
			l.log.Debug("bad request", "from", from, "err", err)
			st.Reset()
			return
		}
		want, err := DecodeRequest(raw)
		if err != nil {
			l.log.Debug("bad request", "from", from, "err", err)
			st.Reset()
			return
		}
		if bw == nil {
			bw = bufio.NewWriterSize(st, 64<<10)
		}
		st.SetWriteDeadline(time.Now().Add(l.cfg.RequestTimeout))
		for _, c := range want {
			// A block's frame is encoded straight from the database and,
			// when larger than the buffer's room, written unbuffered.
			frame = l.store.appendFrame(frame[:0], c)
			if len(frame) > bw.Available() {
				err = bw.Flush()
				if err == nil {
					_, err = st.Write(frame)
				}
			} else {
				_, err = bw.Write(frame)
			}
			if err != nil {
				st.Reset()
				return
			}
		}
		if err := bw.Flush(); err != nil {
			st.Reset()
			return
		}
	}
}
