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
	if !l.admit(st, from) {
		st.Reset()
		return
	}
	defer l.release(st, from)
	l.serve(st, from)
}

// admit takes one of the library's transfer streams for st, from peer
// from. It refuses when the library is closed, when the peer holds
// MaxStreamsPerPeer already, and when no stream is free for it: a peer
// not known to be registered gets one only while more than the reserve
// are free. The registry is asked only when that decides. After true the
// caller must release.
func (l *Library) admit(st network.Stream, from peer.ID) bool {
	l.mu.Lock()
	if l.closed || l.perPeer[from] >= l.cfg.MaxStreamsPerPeer || len(l.streams) >= l.cfg.MaxStreams {
		l.mu.Unlock()
		return false
	}
	// The peer's count includes the registry's answer below, awaited
	// unlocked.
	l.wg.Add(1)
	l.perPeer[from]++
	if len(l.streams) < l.cfg.MaxStreams-l.reserved() {
		l.streams[st] = struct{}{}
		l.mu.Unlock()
		return true
	}
	l.mu.Unlock()
	ok := l.registry.Registered(from)
	l.mu.Lock()
	defer l.mu.Unlock()
	if ok && !l.closed && len(l.streams) < l.cfg.MaxStreams {
		l.streams[st] = struct{}{}
		return true
	}
	l.uncount(from)
	l.wg.Done()
	return false
}

// release gives back what admit took and closes st.
func (l *Library) release(st network.Stream, from peer.ID) {
	l.mu.Lock()
	delete(l.streams, st)
	l.uncount(from)
	l.mu.Unlock()
	st.Close()
	l.wg.Done()
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
func (l *Library) serve(st network.Stream, from peer.ID) {
	br := bufio.NewReader(st)
	var bw *bufio.Writer // made at the first request: a stream that sends none costs little
	var frame []byte
	for {
		// ReadTimeout for a request to start, and as long again for it to
		// arrive whole: a peer cannot hold the stream by dripping one.
		st.SetReadDeadline(time.Now().Add(l.cfg.ReadTimeout))
		if _, err := br.Peek(1); err != nil {
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
