package protocol

import (
	"context"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
)

// budget bounds the request bytes the server holds (requests being read,
// queued or answered): per peer, and for all peers together, of which
// callers that are not registered may hold only a share. Bytes are
// counted as announced by a frame's length prefix when its caller has
// been checked, before its body is read.
type budget struct {
	perPeer, total, unregistered int

	mu      sync.Mutex
	held    int // by all peers
	unreg   int // by unregistered callers
	peers   map[peer.ID]int
	release chan struct{} // closed (and replaced) whenever bytes are given back
}

// hold is bytes a request took from the budget.
type hold struct {
	id         peer.ID
	n          int
	registered bool
}

func newBudget(perPeer, total int) *budget {
	return &budget{perPeer: perPeer, total: total, unregistered: total / 2, peers: map[peer.ID]int{}, release: make(chan struct{})}
}

// fits reports whether n more bytes for id fit; b.mu is held.
func (b *budget) fits(id peer.ID, n int, registered bool) bool {
	return b.peers[id]+n <= b.perPeer && b.held+n <= b.total && (registered || b.unreg+n <= b.unregistered)
}

// take takes n bytes for id if they fit now.
func (b *budget) take(id peer.ID, n int, registered bool) (hold, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.fits(id, n, registered) {
		return hold{}, false
	}
	b.held += n
	b.peers[id] += n
	if !registered {
		b.unreg += n
	}
	return hold{id: id, n: n, registered: registered}, true
}

// wait takes n bytes for id, waiting for others to give bytes back until
// ctx ends.
func (b *budget) wait(ctx context.Context, id peer.ID, n int, registered bool) (hold, error) {
	for {
		b.mu.Lock()
		released := b.release
		b.mu.Unlock()
		if h, ok := b.take(id, n, registered); ok {
			return h, nil
		}
		select {
		case <-released:
		case <-ctx.Done():
			return hold{}, ctx.Err()
		}
	}
}

// give returns a hold's bytes.
func (b *budget) give(h hold) {
	if h.n == 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.held -= h.n
	if b.peers[h.id] -= h.n; b.peers[h.id] == 0 {
		delete(b.peers, h.id)
	}
	if !h.registered {
		b.unreg -= h.n
	}
	close(b.release)
	b.release = make(chan struct{})
}
