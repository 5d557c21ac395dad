package node

import (
	"context"
	"net"
	"sync"

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
// write to the socket.
type batchedConn struct {
	sec.SecureConn
	bc *batchConn
}

func (c *batchedConn) Write(p []byte) (int, error) {
	c.bc.begin()
	n, err := c.SecureConn.Write(p)
	if ferr := c.bc.end(); err == nil && ferr != nil {
		return 0, ferr
	}
	return n, err
}

// WriteFrames writes muxer frames' headers and bodies in one batch: one
// system call, no copy of a body before encryption.
func (c *batchedConn) WriteFrames(parts ...[]byte) error {
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
// failed write is final: every later write returns its error, since TLS
// already counted the lost records as sent.
type batchConn struct {
	net.Conn

	mu   sync.Mutex
	open int
	buf  *[]byte
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
		c.flushLocked()
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
		if c.flushLocked(); c.err != nil {
			return 0, c.err
		}
		n, err := c.Conn.Write(p)
		c.err = err
		return n, err
	}
	if c.buf != nil && len(*c.buf)+len(p) > maxBatch {
		if c.flushLocked(); c.err != nil {
			return 0, c.err
		}
	}
	if c.buf == nil {
		c.buf = batchPool.Get().(*[]byte)
	}
	*c.buf = append(*c.buf, p...)
	return len(p), nil
}

// flushLocked writes the gathered bytes; c.mu is held.
func (c *batchConn) flushLocked() {
	if c.buf == nil {
		return
	}
	if c.err == nil {
		_, c.err = c.Conn.Write(*c.buf)
	}
	*c.buf = (*c.buf)[:0]
	if cap(*c.buf) <= maxBatch+64<<10 {
		batchPool.Put(c.buf)
	}
	c.buf = nil
}
