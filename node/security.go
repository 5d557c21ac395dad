package node

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/cybertensor/cybertensor/node/yamux"
)

// batchedTLS is libp2p's TLS security transport (same protocol ID, same
// bytes on the wire) with fewer writes: crypto/tls writes each record of at
// most 16 KiB with its own system call, so a 64 KiB muxer frame costs four.
// Here the records of one Write are gathered and written at once, which on
// loopback halves the CPU spent in write calls for bulk transfers.
type batchedTLS struct {
	*libp2ptls.Transport
}

var _ sec.SecureTransport = (*batchedTLS)(nil)

// newBatchedTLS has libp2ptls.New's signature, so libp2p.Security takes it.
func newBatchedTLS(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*batchedTLS, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return &batchedTLS{t}, nil
}

// SecureInbound runs the TLS handshake as a server.
func (t *batchedTLS) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	bc := &batchConn{Conn: insecure}
	c, err := t.Transport.SecureInbound(ctx, bc, p)
	if err != nil {
		return nil, err
	}
	return &batchedConn{SecureConn: c, bc: bc}, nil
}

// SecureOutbound runs the TLS handshake as a client.
func (t *batchedTLS) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	bc := &batchConn{Conn: insecure}
	c, err := t.Transport.SecureOutbound(ctx, bc, p)
	if err != nil {
		return nil, err
	}
	return &batchedConn{SecureConn: c, bc: bc}, nil
}

// batchedConn is a TLS connection whose Write sends its records in one
// write to the socket. A Write begun past its write deadline takes
// nothing; one the deadline cuts short has handed all its records to the
// batch, returns len(p) with the timeout, and what the socket did not
// take goes out first with the next write.
type batchedConn struct {
	sec.SecureConn
	bc *batchConn

	wdeadline writeDeadline
}

// SetDeadline sets both deadlines.
func (c *batchedConn) SetDeadline(t time.Time) error {
	c.wdeadline.set(t)
	return c.SecureConn.SetDeadline(t)
}

// SetWriteDeadline bounds writes.
func (c *batchedConn) SetWriteDeadline(t time.Time) error {
	c.wdeadline.set(t)
	return c.SecureConn.SetWriteDeadline(t)
}

func (c *batchedConn) Write(p []byte) (int, error) {
	if c.wdeadline.passed() {
		return 0, errDeadlinePassed
	}
	c.bc.begin()
	n, err := c.SecureConn.Write(p)
	if ferr := c.bc.end(); err == nil && ferr != nil {
		if isTimeout(ferr) {
			// Every record of p is in the batch; what the socket did not
			// take goes out first with the next write.
			return n, ferr
		}
		return 0, ferr
	}
	return n, err
}

// WriteFrames writes muxer frames' headers and bodies in one batch: one
// system call, no copy of a body before encryption.
func (c *batchedConn) WriteFrames(parts ...[]byte) error {
	if c.wdeadline.passed() {
		return errDeadlinePassed
	}
	c.bc.begin()
	var err error
	for _, p := range parts {
		if _, err = c.SecureConn.Write(p); err != nil {
			break
		}
	}
	if ferr := c.bc.end(); err == nil {
		err = ferr
	}
	return err
}

var _ yamux.FrameWriter = (*batchedConn)(nil)

// maxBatch bounds the bytes gathered before a write to the socket.
const maxBatch = 1 << 20

var batchPool = sync.Pool{New: func() any { b := make([]byte, 0, 256<<10); return &b }}

// batchConn is the socket beneath TLS. While a batch is open (a Write of
// the TLS connection is running) it gathers what TLS writes; the last batch
// to end writes it. TLS writes only under its own write lock, and records
// written from elsewhere meanwhile (a key update answered by a reader, an
// alert) join the open batch in order, so the byte stream is unchanged. A
// batch whose write a deadline cuts short keeps what the socket did not
// take, written first by the next write; any other failed write is final:
// every later write returns its error, since TLS already counted the lost
// records as sent.
type batchConn struct {
	net.Conn

	mu   sync.Mutex
	open int
	buf  *[]byte
	off  int // buf[:off] is written
	err  error
}

func (c *batchConn) begin() {
	c.mu.Lock()
	c.open++
	c.mu.Unlock()
}

func (c *batchConn) end() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.open--
	if c.open == 0 {
		if err := c.flushLocked(); err != nil {
			return err
		}
	}
	return c.err
}

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.open == 0 {
		if err := c.flushLocked(); err != nil {
			return 0, err
		}
		n, err := c.Conn.Write(p)
		c.err = err
		return n, err
	}
	if c.buf != nil && len(*c.buf)+len(p) > maxBatch {
		if err := c.flushLocked(); err != nil && !isTimeout(err) {
			return 0, err
		}
	}
	if c.buf == nil {
		c.buf = batchPool.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// flushLocked writes the gathered bytes; c.mu is held. A timeout keeps
// what was not written for the next flush.
func (c *batchConn) flushLocked() error {
	if c.buf == nil || c.err != nil {
		return c.err
	}
	n, err := c.Conn.Write((*c.buf)[c.off:])
	c.off += n
	if err != nil {
		if isTimeout(err) {
			return err
		}
		c.err = err
	}
	*c.buf = (*c.buf)[:0]
	if cap(*c.buf) <= maxBatch+64<<10 {
		batchPool.Put(c.buf)
	}
	c.buf, c.off = nil, 0
	return c.err
}
