package node

import (
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"

	"github.com/cybertensor/cybertensor/node/aegis"
	"github.com/cybertensor/cybertensor/node/yamux"
)

// RecordsID is the security protocol neurons prefer between themselves:
// libp2p's TLS 1.3 handshake, byte for byte (certificates carrying the
// hotkey, ALPN choosing the muxer), after which the connection carries
// cybertensor records instead of TLS records. Peers that do not offer it
// are spoken to with /tls/1.0.0 or noise. protocol/SPEC.md defines it.
const RecordsID protocol.ID = "/cybertensor/tls-records/2.0.0"

// The record layer, as SPEC.md specifies it.
const (
	// recordsExporterLabel names the TLS exporter secret (RFC 8446 §7.5)
	// from which both directions' keys derive.
	recordsExporterLabel = "EXPERIMENTAL cybertensor tls-records 1"
	recordHeaderLen      = 4
	recordTagLen         = aegis.TagSize
	// maxRecordPlaintext bounds a record's plaintext: one muxer frame's body.
	maxRecordPlaintext = 64 << 10
	maxRecordLen       = recordHeaderLen + maxRecordPlaintext + recordTagLen
	// recordTypeData is the only record type; any other is refused.
	recordTypeData = 0
	// TLS record types. A TLS server that refuses a client's certificate
	// sends an alert after the client's handshake has ended: in TLS 1.3 it
	// is encrypted and its outer type is application data.
	tlsAlert           = 21
	tlsApplicationData = 23
	// recordsPerKey is how many records one key seals before both sides
	// move to the next (8 GiB at most with 64 KiB records).
	recordsPerKey = 1 << 17
)

// Read buffers. A connection holds a small read buffer while idle. It
// grows only as bytes arrive: a read that fills it moves it one size up
// (readBufSizes), and a connection waiting for the rest of a record holds
// at most max(16 KiB, 4 × the bytes it has) (readBufFor). So a peer that
// sends a record's header and stalls makes it hold 16 KiB, as TLS does,
// and one that sends n bytes about 4n (8n for the first 2 KiB), however
// long it stalls. Larger buffers come from pools and go back when read out.
const (
	smallReadBuf = 2 << 10
	midReadBuf   = 16 << 10
	bigReadBuf   = 4 * maxRecordLen
	// writeBatch is the size at which a Write sends what it sealed so far.
	writeBatch = 4 * maxRecordLen
)

// readBufSizes are the sizes a read buffer takes, each at most 8 times
// the one before: small, a TLS record's worth, one record, a batch of four.
var readBufSizes = [...]int{smallReadBuf, midReadBuf, maxRecordLen, bigReadBuf}

// readPools hold the buffers of readBufSizes[1:].
var readPools [len(readBufSizes)]sync.Pool

func init() {
	for i := 1; i < len(readBufSizes); i++ {
		size := readBufSizes[i]
		readPools[i].New = func() any { b := make([]byte, size); return &b }
	}
}

// Write buffers: the batches sealed records wait in, in three sizes, so
// that a few small frames do not take a batch's worth of memory.
var (
	bigWritePool    = sync.Pool{New: func() any { b := make([]byte, 0, bigWriteBuf); return &b }}
	recordWritePool = sync.Pool{New: func() any { b := make([]byte, 0, maxRecordLen); return &b }}
	smallWritePool  = sync.Pool{New: func() any { b := make([]byte, 0, smallWriteBuf); return &b }}
)

const (
	// smallWriteBuf is the batch size for writes of a few small records.
	smallWriteBuf = 16 << 10
	// bigWriteBuf holds a batch and the record that ends it.
	bigWriteBuf = writeBatch + maxRecordLen
)

// writeBuffer takes from a pool a batch for n sealed bytes (one record at
// least, a batch at most): the smallest that holds them.
func writeBuffer(n int) *[]byte {
	switch {
	case n <= smallWriteBuf:
		return smallWritePool.Get().(*[]byte)
	case n <= maxRecordLen:
		return recordWritePool.Get().(*[]byte)
	}
	return bigWritePool.Get().(*[]byte)
}

func putWriteBuffer(bp *[]byte) {
	*bp = (*bp)[:0]
	switch cap(*bp) {
	case smallWriteBuf:
		smallWritePool.Put(bp)
	case maxRecordLen:
		recordWritePool.Put(bp)
	case bigWriteBuf:
		bigWritePool.Put(bp)
	}
}

// Errors of the record layer. A connection that returns one of them is
// broken for good: every later Read (or Write) returns it again.
var (
	ErrRecordAuth     = errors.New("node: record failed authentication")
	ErrRecordTooLarge = errors.New("node: record longer than the limit")
	ErrRecordType     = errors.New("node: record of an unknown type")
)

// recordTransport is the RecordsID security transport: it runs
// libp2ptls's handshake on a connection that shows TLS one record at a
// time, so that when the handshake ends TLS has read nothing past its last
// record, then keys its own records from the TLS exporter.
type recordTransport struct {
	tls *libp2ptls.Transport
	id  protocol.ID // RecordsID; bound into the keys
}

var _ sec.SecureTransport = (*recordTransport)(nil)

func newRecordTransport(key crypto.PrivKey, muxers []tptu.StreamMuxer) (*recordTransport, error) {
	if !aegis.Supported {
		return nil, aegis.ErrUnsupported
	}
	t, err := libp2ptls.New(RecordsID, key, muxers)
	if err != nil {
		return nil, err
	}
	return &recordTransport{tls: t, id: RecordsID}, nil
}

func (t *recordTransport) ID() protocol.ID { return t.id }

// SecureInbound runs the handshake as the TLS server.
func (t *recordTransport) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	c, err := t.tls.SecureInbound(ctx, &tlsRecordReader{Conn: insecure}, p)
	if err != nil {
		return nil, err
	}
	return newRecordConn(insecure, c, false, t.id)
}

// SecureOutbound runs the handshake as the TLS client.
func (t *recordTransport) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	trr := &tlsRecordReader{Conn: insecure}
	c, err := t.tls.SecureOutbound(ctx, trr, p)
	if err != nil {
		return nil, err
	}
	rc, err := newRecordConn(insecure, c, true, t.id)
	if err == nil {
		// In TLS 1.3 the client's handshake ends before the server has
		// checked the client's certificate: a refusal comes as a TLS
		// alert in place of the first record, which TLS can read.
		rc.refusal = &tlsRefusal{tc: c, rr: trr}
	}
	return rc, err
}

// tlsRefusal is what a client keeps of its TLS connection until the first
// record arrives, to read the alert of a server that refused it.
type tlsRefusal struct {
	tc sec.SecureConn
	rr *tlsRecordReader
}

// read has TLS read the alert that starts with buffered (the bytes the
// record connection read) and returns TLS's error, or nil if it says
// nothing within a second.
func (t *tlsRefusal) read(buffered []byte) error {
	t.rr.Conn = &replayConn{Conn: t.rr.Conn, buf: slices.Clone(buffered)}
	t.rr.have, t.rr.left = 0, 0
	t.tc.SetReadDeadline(time.Now().Add(time.Second))
	_, err := t.tc.Read(make([]byte, 1))
	if err == nil || isTimeout(err) {
		return nil
	}
	return err
}

// replayConn reads buf, then the connection.
type replayConn struct {
	net.Conn
	buf []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.buf) > 0 {
		n := copy(p, c.buf)
		c.buf = c.buf[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// tlsRecordReader is the socket as TLS sees it during the handshake: a
// Read never returns bytes past the end of the TLS record it is in, so TLS
// (which reads a header, then at least the rest of its record) never
// buffers bytes that follow its handshake.
type tlsRecordReader struct {
	net.Conn
	hdr  [5]byte
	have int // bytes of hdr read
	left int // bytes of the current record's body still to read
}

func (c *tlsRecordReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if c.left == 0 {
		n, err := c.Conn.Read(c.hdr[c.have:min(len(c.hdr), c.have+len(p))])
		copy(p, c.hdr[c.have:c.have+n])
		if c.have += n; c.have == len(c.hdr) {
			c.have, c.left = 0, int(binary.BigEndian.Uint16(c.hdr[3:]))
		}
		return n, err
	}
	n, err := c.Conn.Read(p[:min(len(p), c.left)])
	c.left -= n
	return n, err
}

// recordConn is a connection of RecordsID after its handshake. Reads and
// writes are each serialized by their own lock.
type recordConn struct {
	net.Conn // the socket
	// Who the handshake proved, kept without the TLS connection (and its
	// buffers), which is done with.
	local, remote peer.ID
	remoteKey     crypto.PubKey
	state         network.ConnectionState

	rmu     sync.Mutex
	refusal *tlsRefusal // a client's, until the first record
	open    recordKeys
	small   []byte  // the idle read buffer
	pooled  *[]byte // a larger read buffer from readPools, while in use
	class   int     // buf's index in readBufSizes
	buf     []byte  // small or *pooled
	r, w    int     // buf[r:w] is read from the socket, not yet opened
	full    bool    // the last read filled buf: more is likely waiting
	refill  int     // class of the buffer a full last read filled, if emptied since
	plain   []byte  // opened plaintext a Read has not yet taken, in buf
	rerr    error

	// Writes: parts are sealed, under wmu, onto a queue of batches that
	// Flush writes, under smu, so sealing never waits for the socket.
	wmu       sync.Mutex
	seal      recordKeys
	queue     []queuedBatch
	unsent    int // sealed bytes in queue
	werr      error
	wdeadline writeDeadline
	smu       sync.Mutex
}

var (
	_ sec.SecureConn     = (*recordConn)(nil)
	_ yamux.FrameQueuer  = (*recordConn)(nil)
	_ yamux.RecordReader = (*recordConn)(nil)
	_ io.ReadWriteCloser = (*recordConn)(nil)
)

// newRecordConn keys the records of a connection whose TLS handshake
// (over raw) produced tc, which is not used after. The keys are exported
// with the protocol's ID as the context, so two sides that ran the
// handshake under different protocols share no key.
func newRecordConn(raw net.Conn, tc sec.SecureConn, client bool, id protocol.ID) (*recordConn, error) {
	c, err := func() (*recordConn, error) {
		st, ok := tc.(interface{ ConnectionState() tls.ConnectionState })
		if !ok {
			return nil, fmt.Errorf("node: records: %T exposes no TLS state", tc)
		}
		cs := st.ConnectionState()
		secrets, err := cs.ExportKeyingMaterial(recordsExporterLabel, []byte(id), 64)
		if err != nil {
			return nil, fmt.Errorf("node: records: exporter: %w", err)
		}
		clientSecret, serverSecret := secrets[:32], secrets[32:]
		if !client {
			clientSecret, serverSecret = serverSecret, clientSecret
		}
		c, err := keyRecords(raw, clientSecret, serverSecret)
		if err != nil {
			return nil, err
		}
		c.local, c.remote, c.remoteKey, c.state = tc.LocalPeer(), tc.RemotePeer(), tc.RemotePublicKey(), tc.ConnState()
		return c, nil
	}()
	if err != nil {
		raw.Close()
	}
	return c, err
}

// keyRecords makes a record connection over raw that seals with the keys
// of sealSecret and opens with those of openSecret.
func keyRecords(raw net.Conn, sealSecret, openSecret []byte) (*recordConn, error) {
	c := &recordConn{Conn: raw}
	if err := c.seal.init(sealSecret); err != nil {
		return nil, err
	}
	if err := c.open.init(openSecret); err != nil {
		return nil, err
	}
	return c, nil
}

// ReadChunk tells the muxer to buffer frames in pieces of a record's
// size: a record is opened whole, so smaller pieces would only copy it
// out in parts.
func (c *recordConn) ReadChunk() int { return maxRecordPlaintext }

// Readable waits until a record has arrived whole and returns how much
// plaintext Reads can take without blocking (yamux.RecordReader): the
// rest of an opened record, or the next record's. Empty records are opened
// and skipped. A timeout leaves the connection usable; any other failure
// is final.
func (c *recordConn) Readable() (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.plain) > 0 {
		return len(c.plain), nil
	}
	return c.untilRecord(c.nextRecord)
}

// untilRecord calls next until it finds a record (ok), reading from the
// socket whenever it needs more bytes. A timeout leaves the connection
// usable; any other failure is final. c.rmu is held.
func (c *recordConn) untilRecord(next func() (n int, ok bool, err error)) (int, error) {
	for c.rerr == nil {
		if n, ok, err := next(); err != nil {
			c.rerr = err
		} else if ok {
			return n, nil
		} else if err := c.fill(); err != nil {
			if !isTimeout(err) {
				c.rerr = err
			}
			return 0, err
		}
	}
	return 0, c.rerr
}

// nextRecord reports whether the buffer holds a whole record with
// plaintext, and how much, opening and skipping empty records. c.rmu is
// held.
func (c *recordConn) nextRecord() (n int, ok bool, err error) {
	for {
		if c.w-c.r < recordHeaderLen {
			return 0, false, nil
		}
		size, err := c.recordSize(c.buf[c.r : c.r+recordHeaderLen])
		if err != nil {
			return 0, false, err
		}
		if c.w-c.r < recordHeaderLen+size {
			return 0, false, nil
		}
		if size > recordTagLen {
			return size - recordTagLen, true, nil
		}
		nonce, err := c.open.next()
		if err != nil {
			return 0, false, err
		}
		hdr := c.buf[c.r : c.r+recordHeaderLen]
		sealed := c.buf[c.r+recordHeaderLen : c.r+recordHeaderLen+size]
		if _, err := c.open.aead.Open(sealed[:0], nonce, sealed, hdr); err != nil {
			return 0, false, ErrRecordAuth
		}
		c.r += recordHeaderLen + size
		c.release()
	}
}

func (c *recordConn) LocalPeer() peer.ID                 { return c.local }
func (c *recordConn) RemotePeer() peer.ID                { return c.remote }
func (c *recordConn) RemotePublicKey() crypto.PubKey     { return c.remoteKey }
func (c *recordConn) ConnState() network.ConnectionState { return c.state }

// recordKeys is one direction's key schedule: the AEAD of the current
// key, its IV, and how many records it has sealed or opened.
type recordKeys struct {
	secret [32]byte
	aead   cipher.AEAD
	iv     [aegis.NonceSize]byte
	nonce  [aegis.NonceSize]byte
	seq    uint64
	limit  uint64 // records per key; recordsPerKey except in tests
}

// init derives the first key from a direction's exported secret.
func (k *recordKeys) init(secret []byte) error {
	copy(k.secret[:], secret)
	k.limit = recordsPerKey
	return k.derive()
}

// derive sets the key and IV from the secret and restarts the count.
func (k *recordKeys) derive() error {
	key, err := hkdf.Expand(sha256.New, k.secret[:], "key", 16)
	if err != nil {
		return fmt.Errorf("node: records: %w", err)
	}
	iv, err := hkdf.Expand(sha256.New, k.secret[:], "iv", len(k.iv))
	if err != nil {
		return fmt.Errorf("node: records: %w", err)
	}
	if k.aead, err = aegis.New(key); err != nil {
		return fmt.Errorf("node: records: %w", err)
	}
	copy(k.iv[:], iv)
	k.seq = 0
	return nil
}

// next returns the nonce of the next record (the IV with the sequence
// number XORed into its last eight bytes, as TLS 1.3 makes its nonces),
// moving to the next key first when the current one has done its share.
func (k *recordKeys) next() ([]byte, error) {
	if k.seq == k.limit {
		next, err := hkdf.Expand(sha256.New, k.secret[:], "next", len(k.secret))
		if err != nil {
			return nil, fmt.Errorf("node: records: %w", err)
		}
		copy(k.secret[:], next)
		if err := k.derive(); err != nil {
			return nil, err
		}
	}
	k.nonce = k.iv
	binary.BigEndian.PutUint64(k.nonce[8:], binary.BigEndian.Uint64(k.iv[8:])^k.seq)
	k.seq++
	return k.nonce[:], nil
}

// Write seals p in records of at most 64 KiB and sends them in writes of
// about 256 KiB (WriteFrames with one part). Past its write deadline it
// takes nothing; a deadline that passes while it writes leaves p sealed
// and queued, to go out with the next write, and it returns len(p) with
// the timeout.
func (c *recordConn) Write(p []byte) (int, error) {
	if err := c.WriteFrames(p); err != nil {
		if isTimeout(err) && !errors.Is(err, errDeadlinePassed) {
			return len(p), err
		}
		return 0, err
	}
	return len(p), nil
}

// errDeadlinePassed is a write begun past its deadline: nothing was taken.
var errDeadlinePassed = fmt.Errorf("node: write deadline passed: %w", os.ErrDeadlineExceeded)

// writeDeadline keeps a connection's write deadline, so that a write
// begun past it can take nothing (the socket knows it too).
type writeDeadline struct {
	mu sync.Mutex
	t  time.Time
}

func (d *writeDeadline) set(t time.Time) {
	d.mu.Lock()
	d.t = t
	d.mu.Unlock()
}

func (d *writeDeadline) passed() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.t.IsZero() && !time.Now().Before(d.t)
}

// SetDeadline sets both deadlines.
func (c *recordConn) SetDeadline(t time.Time) error {
	c.wdeadline.set(t)
	return c.Conn.SetDeadline(t)
}

// SetWriteDeadline bounds writes: one begun past it takes nothing, one it
// cuts short keeps what it did not send queued.
func (c *recordConn) SetWriteDeadline(t time.Time) error {
	c.wdeadline.set(t)
	return c.Conn.SetWriteDeadline(t)
}

// WriteFrames sends muxer frames' headers and bodies, and anything queued
// before them, in writes of about 256 KiB, each part sealed as its own
// record (or several, past 64 KiB), so the reader can open a body straight
// into the stream's buffer. A write deadline that cuts it short leaves
// every part sealed and what was not sent queued, sent first by the next
// write (yamux.FrameQueuer); any other failure is final, since part of a
// record may have gone.
func (c *recordConn) WriteFrames(parts ...[]byte) error {
	if c.wdeadline.passed() {
		return errDeadlinePassed
	}
	if _, err := c.QueueFrames(parts...); err != nil {
		return err
	}
	return c.Flush()
}

// QueueFrames seals parts as WriteFrames does and queues them without
// writing, returning how many sealed bytes are now waiting to be written
// (yamux.FrameQueuer): the muxer queues a Write that has a deadline so,
// which then never waits on the socket.
func (c *recordConn) QueueFrames(parts ...[]byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	left := 0 // sealed bytes still to queue
	for _, part := range parts {
		left += len(part) + (len(part)+maxRecordPlaintext-1)/maxRecordPlaintext*(recordHeaderLen+recordTagLen)
	}
	for _, part := range parts {
		for len(part) > 0 {
			chunk := part[:min(len(part), maxRecordPlaintext)]
			sealed := recordHeaderLen + len(chunk) + recordTagLen
			bp := c.batchFor(sealed, left)
			var err error
			if *bp, err = c.sealRecord(*bp, chunk); err != nil {
				return 0, err
			}
			c.unsent += sealed
			left -= sealed
			part = part[len(chunk):]
		}
	}
	return c.unsent, nil
}

// batchFor returns the queued batch a record of n sealed bytes goes onto:
// the last one while it has room and stays within writeBatch, else a new
// one from a pool, sized for the left bytes still to queue (n among them)
// up to a batch. c.wmu is held.
func (c *recordConn) batchFor(n, left int) *[]byte {
	if k := len(c.queue); k > 0 {
		last := c.queue[k-1].bp
		if len(*last)+n <= cap(*last) && len(*last) < writeBatch {
			return last
		}
	}
	bp := writeBuffer(left)
	c.queue = append(c.queue, queuedBatch{bp: bp})
	return bp
}

// Unsent is how many sealed bytes wait to be written (yamux.FrameQueuer).
func (c *recordConn) Unsent() int {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.unsent
}

// Flush writes what is queued, in order; sealing goes on meanwhile. A
// timeout leaves what was not sent at the front of the queue.
func (c *recordConn) Flush() error {
	c.smu.Lock()
	defer c.smu.Unlock()
	for {
		c.wmu.Lock()
		if c.werr != nil || len(c.queue) == 0 {
			err := c.werr
			c.wmu.Unlock()
			return err
		}
		b := c.queue[0]
		copy(c.queue, c.queue[1:])
		c.queue[len(c.queue)-1] = queuedBatch{}
		c.queue = c.queue[:len(c.queue)-1]
		c.wmu.Unlock()

		n, err := c.Conn.Write((*b.bp)[b.off:])
		c.wmu.Lock()
		c.unsent -= n
		if err != nil && isTimeout(err) {
			b.off += n
			c.queue = slices.Insert(c.queue, 0, b)
		} else {
			putWriteBuffer(b.bp)
			if err != nil {
				c.werr = err
			}
		}
		c.wmu.Unlock()
		if err != nil {
			return err
		}
	}
}

// queuedBatch is sealed records waiting to be written: (*bp)[off:].
type queuedBatch struct {
	bp  *[]byte
	off int
}

// sealRecord appends to out one record of plaintext (at most
// maxRecordPlaintext bytes, not empty). c.wmu is held.
func (c *recordConn) sealRecord(out, plaintext []byte) ([]byte, error) {
	nonce, err := c.seal.next()
	if err != nil {
		c.werr = err
		return out, err
	}
	n := len(plaintext) + recordTagLen
	start := len(out)
	out = append(out, recordTypeData, byte(n>>16), byte(n>>8), byte(n))
	return c.seal.aead.Seal(out, nonce, plaintext, out[start:]), nil
}

// Read returns plaintext of the records in order. A record whose
// plaintext fits in p is opened straight into p; a larger one is opened in
// place and handed out over several Reads. A timeout leaves the
// connection usable; any other failure is final.
func (c *recordConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(p) == 0 {
		return 0, nil
	}
	if len(c.plain) > 0 {
		n := copy(p, c.plain)
		c.plain = c.plain[n:]
		c.release()
		return n, nil
	}
	return c.untilRecord(func() (int, bool, error) { return c.openRecord(p) })
}

// openRecord opens the next record if the buffer holds all of it: into p
// when it fits, otherwise in place (then c.plain holds what p did not
// take). ok is false when more bytes are needed. An empty record is
// opened and skipped. c.rmu is held.
func (c *recordConn) openRecord(p []byte) (n int, ok bool, err error) {
	for {
		if c.w-c.r < recordHeaderLen {
			return 0, false, nil
		}
		hdr := c.buf[c.r : c.r+recordHeaderLen]
		size, err := c.recordSize(hdr)
		if err != nil {
			return 0, false, err
		}
		if c.w-c.r < recordHeaderLen+size {
			return 0, false, nil
		}
		nonce, err := c.open.next()
		if err != nil {
			return 0, false, err
		}
		sealed := c.buf[c.r+recordHeaderLen : c.r+recordHeaderLen+size]
		c.r += recordHeaderLen + size
		plainLen := size - recordTagLen
		if plainLen <= len(p) {
			if _, err := c.open.aead.Open(p[:0], nonce, sealed, hdr); err != nil {
				return 0, false, ErrRecordAuth
			}
			if plainLen == 0 {
				continue
			}
			c.release()
			return plainLen, true, nil
		}
		plain, err := c.open.aead.Open(sealed[:0], nonce, sealed, hdr)
		if err != nil {
			return 0, false, ErrRecordAuth
		}
		n = copy(p, plain)
		c.plain = plain[n:]
		return n, true, nil
	}
}

// recordSize is recordSize, and for a client whose first record is a TLS
// record (a server refusing its certificate sends an alert), TLS's reading
// of it. c.rmu is held.
func (c *recordConn) recordSize(hdr []byte) (int, error) {
	size, err := recordSize(hdr)
	t := c.refusal
	c.refusal = nil
	if err != nil && t != nil && (hdr[0] == tlsAlert || hdr[0] == tlsApplicationData) {
		if terr := t.read(c.buf[c.r:c.w]); terr != nil {
			err = fmt.Errorf("%w: %w", err, terr)
		}
	}
	return size, err
}

// recordSize checks a record header and returns the length of the sealed
// plaintext that follows it.
func recordSize(hdr []byte) (int, error) {
	switch hdr[0] {
	case recordTypeData:
	case tlsAlert, tlsApplicationData:
		return 0, fmt.Errorf("%w: a TLS record (%d), most likely an alert: the peer refused the handshake", ErrRecordType, hdr[0])
	default:
		return 0, fmt.Errorf("%w: %d", ErrRecordType, hdr[0])
	}
	size := int(hdr[1])<<16 | int(hdr[2])<<8 | int(hdr[3])
	if size < recordTagLen || size > maxRecordPlaintext+recordTagLen {
		return 0, fmt.Errorf("%w: %d bytes sealed", ErrRecordTooLarge, size)
	}
	return size, nil
}

// fill reads from the socket once, first making room: the unread bytes
// move to the front of a buffer of the size readBufFor allows. c.rmu is
// held, and fill runs only when the buffer lacks part of a record.
func (c *recordConn) fill() error {
	if c.buf == nil {
		c.small = make([]byte, smallReadBuf)
		c.buf = c.small
	}
	arrived := c.w - c.r
	need := recordHeaderLen
	if arrived >= recordHeaderLen {
		size, _ := recordSize(c.buf[c.r:])
		need += size
	}
	class := readBufFor(c.class, arrived, need, c.full)
	if c.full && c.refill > class {
		class = c.refill // the buffer the last read filled, given back empty
	}
	if class != c.class || c.r+need > len(c.buf) {
		c.resize(class)
	}
	n, err := c.Conn.Read(c.buf[c.w:])
	c.w += n
	c.full = c.w == len(c.buf)
	if n > 0 {
		return nil
	}
	if err == io.EOF && c.w > c.r {
		err = io.ErrUnexpectedEOF
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// readBufFor is the size class of buffer for a read that waits for the
// rest of a record of need bytes (header included) of which arrived are
// buffered, the buffer being of class now and the last read having filled
// it or not. After a full read the buffer grows one class (more bytes are
// likely waiting); otherwise it is the smallest class that holds the
// record, but no larger than max(16 KiB, 4 × arrived) allows, and never
// smaller than what holds arrived with room to read.
func readBufFor(now, arrived, need int, full bool) int {
	if full && now < len(readBufSizes)-1 {
		return now + 1
	}
	limit := max(midReadBuf, 4*arrived) + recordHeaderLen + recordTagLen
	class := 0
	for class < len(readBufSizes)-1 && readBufSizes[class] < need && readBufSizes[class+1] <= limit {
		class++
	}
	for readBufSizes[class] <= arrived && class < len(readBufSizes)-1 {
		class++
	}
	return class
}

// resize moves the unread bytes to the front of a buffer of the given
// class, taking it from its pool (or the small buffer) and giving back the
// one it leaves. c.rmu is held.
func (c *recordConn) resize(class int) {
	dst := c.small
	var pooled *[]byte
	switch {
	case class == c.class:
		dst, pooled = c.buf, c.pooled
	case class > 0:
		pooled = readPools[class].Get().(*[]byte)
		dst = *pooled
	}
	c.w = copy(dst, c.buf[c.r:c.w])
	c.r = 0
	if c.pooled != nil && c.pooled != pooled {
		readPools[c.class].Put(c.pooled)
	}
	c.buf, c.pooled, c.class = dst, pooled, class
}

// release returns a pooled buffer once everything in it has been read
// out, and empties the buffer; if the last read filled it, the next read
// takes one of its size again (refill). c.rmu is held.
func (c *recordConn) release() {
	if c.r != c.w || len(c.plain) > 0 {
		return
	}
	c.r, c.w = 0, 0
	c.refill = 0
	if c.full {
		c.refill = c.class
	}
	if c.pooled != nil {
		readPools[c.class].Put(c.pooled)
		c.pooled, c.buf, c.class = nil, c.small, 0
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
