package yamuxtest

import (
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	ma "github.com/multiformats/go-multiaddr"
)

// heapInUse is the live heap after two collections (the second empties
// the sync.Pools' victim caches, so pooled buffers nobody holds are not
// counted), once it is steady: the victim may still be working through
// frames it has read (a record connection buffers 256 KiB of them), and
// what it allocates meanwhile is not what it holds. It takes the smaller of
// two readings 64 KiB apart at most, or after about a second the last.
func heapInUse() int64 {
	prev := int64(-1)
	for range 50 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		cur := int64(ms.HeapAlloc)
		if prev >= 0 && cur-prev < 64<<10 && prev-cur < 64<<10 {
			return min(cur, prev)
		}
		prev = cur
		time.Sleep(20 * time.Millisecond)
	}
	return prev
}

// mib formats a byte count.
func mib(n int64) string { return fmt.Sprintf("%.2f MiB", float64(n)/(1<<20)) }

// peerLimit is the memory the victim's peer scope may reserve: enough for
// a full accept backlog of go-yamux's 256 streams at 256 KiB each, so the
// floods meet the muxers' own limits before the resource manager's.
const peerLimit = 256 << 20

// scope is a resource manager with explicit limits and the peer scope of
// one connection the victim's session is charged to.
type scope struct {
	rm   network.ResourceManager
	conn network.ConnManagementScope
	peer network.PeerScope
}

func newScope(t *testing.T) *scope {
	t.Helper()
	limits := rcmgr.PartialLimitConfig{
		System:      rcmgr.ResourceLimits{Memory: 2 * peerLimit, Conns: 16, ConnsInbound: 16, Streams: 4096, StreamsInbound: 4096, FD: 16},
		Transient:   rcmgr.ResourceLimits{Memory: peerLimit, Conns: 16, ConnsInbound: 16, Streams: 4096, StreamsInbound: 4096, FD: 16},
		PeerDefault: rcmgr.ResourceLimits{Memory: peerLimit, Conns: 4, ConnsInbound: 4, Streams: 4096, StreamsInbound: 4096, FD: 4},
		Conn:        rcmgr.ResourceLimits{Memory: peerLimit, Conns: 1, ConnsInbound: 1, FD: 1},
	}.Build(rcmgr.InfiniteLimits)
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits), rcmgr.WithMetricsDisabled())
	if err != nil {
		t.Fatal(err)
	}
	conn, err := rm.OpenConnection(network.DirInbound, true, ma.StringCast("/ip4/127.0.0.1/tcp/4001"))
	if err != nil {
		rm.Close()
		t.Fatal(err)
	}
	if err := conn.SetPeer(peer.ID("hostile peer")); err != nil {
		conn.Done()
		rm.Close()
		t.Fatal(err)
	}
	return &scope{rm: rm, conn: conn, peer: conn.PeerScope()}
}

// memory is what the victim's session has reserved.
func (s *scope) memory() int64 { return s.peer.Stat().Memory }

func (s *scope) close() {
	s.conn.Done()
	s.rm.Close()
}

// Counter is a socket that counts the bytes read from it and written to
// it. The suite counts at the sockets under the victim's and the
// attacker's ends, so that it never hides a secure connection's optional
// interfaces from the muxer, and knows when the victim has taken in all
// the attacker sent.
//
// On the victim's socket it also plays an attacker that stops reading
// (stopPeerReading): writes then block, as a socket's do when the peer's
// receive buffer and its own send buffer are full, until the write
// deadline passes or the socket is closed. (Over loopback TCP a peer
// that really stops reading also stalls its own sending, at random, for
// seconds: its full receive queue drops the victim's segments that carry
// window updates. A hostile peer's own TCP stack need not, so the
// attacker keeps reading its socket and the victim's is held here.)
type Counter struct {
	net.Conn
	read, written atomic.Int64
	// reading counts Reads in progress: one blocked in a socket that has
	// nothing more to give means the stack above asked for more, so it has
	// handled all it read before (see waiting).
	reading atomic.Int32

	mu       sync.Mutex
	gated    bool
	budget   int       // bytes writes may still send once gated
	deadline time.Time // the write deadline
	changed  chan struct{}
	closed   bool
}

// Count wraps a socket in a Counter.
func Count(c net.Conn) *Counter { return &Counter{Conn: c, changed: make(chan struct{})} }

func (c *Counter) Read(p []byte) (int, error) {
	c.reading.Add(1)
	n, err := c.Conn.Read(p)
	// Out of progress before its bytes count: a Read that returned the
	// last bytes must not look like one waiting for more after them.
	c.reading.Add(-1)
	c.read.Add(int64(n))
	return n, err
}

// waiting reports whether a Read is in progress after total bytes were
// read: the reader (the secure connection, and the muxer above it, which
// read only when they need more) has handled everything before it. Exact
// once total is all the peer sent: any Read in progress then began after
// the last bytes were counted.
func (c *Counter) waiting(total int64) bool {
	return c.reading.Load() > 0 && c.read.Load() == total
}

func (c *Counter) Write(p []byte) (int, error) {
	total := 0
	for {
		c.mu.Lock()
		if !c.gated {
			c.mu.Unlock()
			n, err := c.Conn.Write(p)
			c.written.Add(int64(n))
			return total + n, err
		}
		if c.closed {
			c.mu.Unlock()
			return total, net.ErrClosed
		}
		if c.budget > 0 {
			k := min(c.budget, len(p))
			c.budget -= k
			c.mu.Unlock()
			n, err := c.Conn.Write(p[:k])
			c.written.Add(int64(n))
			total += n
			if p = p[n:]; err != nil || len(p) == 0 {
				return total, err
			}
			continue
		}
		dl, changed := c.deadline, c.changed
		c.mu.Unlock()
		if len(p) == 0 {
			return total, nil
		}
		if dl.IsZero() {
			<-changed
			continue
		}
		wait := time.Until(dl)
		if wait <= 0 {
			return total, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(wait)
		select {
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// stopPeerReading makes writes block once budget more bytes were sent.
func (c *Counter) stopPeerReading(budget int) {
	c.mu.Lock()
	c.gated, c.budget = true, budget
	c.mu.Unlock()
}

// wake makes blocked writes look again; c.mu is held.
func (c *Counter) wake() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *Counter) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.wake()
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

func (c *Counter) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.wake()
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *Counter) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.wake()
	}
	c.mu.Unlock()
	return c.Conn.Close()
}
