package protocol

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

// ClientConfig configures the query client.
type ClientConfig struct {
	// DefaultTimeout applies to requests without timeout_ms.
	DefaultTimeout time.Duration
	// MaxResponseSize bounds the total body accepted from one server.
	MaxResponseSize int
	// DialTimeout bounds connecting to a server a query finds
	// unconnected. The dial is the client's, not the query's: a query
	// whose deadline passes while it connects fails (TIMEOUT) and the
	// dial goes on, up to DialTimeout, for the next query to that server,
	// instead of throwing away a handshake both sides have half done
	// (and putting the server in the host's dial backoff). Queries to one
	// server share its dial. 0 dials within each query's own deadline.
	DialTimeout time.Duration
	// MaxDials bounds the client's dials in flight (with DialTimeout);
	// more wait their turn, within DialTimeout. A validator starting up
	// connects to its miners a few at a time, not all at once on a busy
	// machine. 0: no bound.
	MaxDials int
	// IdleTimeout is how long a stream waits in the pool for the next
	// query to its server before the client closes it. The server holds
	// a goroutine and buffers for every stream kept open to it: a miner
	// of a 256-uid subnet held 28, one for each validator, each used once
	// in ~28 s. A query finding no stream opens one, which costs a
	// stream's opening on the connection, not a handshake. 0: kept until
	// the server ends it (its own idle timeout, a minute by default).
	IdleTimeout time.Duration
}

// DefaultClientConfig waits 12 s, accepts up to 64 MiB per answer, gives
// a connection 30 s to come up, dialing at most 8 at once, and closes a
// stream idle for 10 s.
func DefaultClientConfig() ClientConfig {
	return ClientConfig{DefaultTimeout: 12 * time.Second, MaxResponseSize: 64 << 20, DialTimeout: 30 * time.Second, MaxDials: 8, IdleTimeout: 10 * time.Second}
}

// Client sends queries from a host. Connections are kept by the host, and
// streams are kept too: after an exchange completes its stream goes back to
// a per-peer pool and carries the next query to that peer.
type Client struct {
	h   host.Host
	cfg ClientConfig

	// ctx ends on Close, stopping the dials (wg) the client runs.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// dialSlots holds a token per dial in flight (nil: no bound).
	dialSlots chan struct{}

	mu      sync.Mutex
	idle    map[peer.ID][]*pooled
	dialing map[peer.ID]*dial
	closed  bool
}

// dial is a connection the client is dialing; done is closed once it is
// up or failed (err).
type dial struct {
	done chan struct{}
	err  error
}

// pooled is a stream with, while it carries an exchange, its reader.
type pooled struct {
	st network.Stream
	r  *bufio.Reader // nil while idle
	// expiry closes the stream if it is still in the pool after
	// IdleTimeout; set while it is pooled, under the client's mu.
	expiry *time.Timer
}

// stopExpiry stops p's idle timer, under the client's mu; should it have
// fired, expire waits for mu and then finds p gone from the pool.
func (p *pooled) stopExpiry() {
	if p.expiry != nil {
		p.expiry.Stop()
		p.expiry = nil
	}
}

// readBufSize is the client's read buffer per stream; larger reads go
// straight into the frame buffer.
const readBufSize = 32 << 10

// clientReaders pools the read buffers of the streams carrying an
// exchange. An idle stream holds none: a validator keeps a stream to each
// miner it queries, and 32 KiB each was a quarter of a 64-neuron
// localnet's heap.
var clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, readBufSize) }}

// reading gives p a read buffer for an exchange.
func (p *pooled) reading() {
	if p.r == nil {
		p.r = clientReaders.Get().(*bufio.Reader)
		p.r.Reset(p.st)
	}
}

// done gives back p's read buffer, which must hold nothing.
func (p *pooled) done() {
	if p.r != nil {
		p.r.Reset(nil)
		clientReaders.Put(p.r)
		p.r = nil
	}
}

// maxIdlePerPeer bounds the pooled streams to one peer.
const maxIdlePerPeer = 64

// NewClient returns a client for h.
func NewClient(h host.Host, cfg ClientConfig) (*Client, error) {
	if cfg.DefaultTimeout <= 0 || cfg.MaxResponseSize <= 0 {
		return nil, errors.New("protocol: client config: DefaultTimeout and MaxResponseSize must be positive")
	}
	if cfg.DialTimeout < 0 || cfg.MaxDials < 0 || cfg.IdleTimeout < 0 {
		return nil, errors.New("protocol: client config: DialTimeout, MaxDials and IdleTimeout must not be negative")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Client{h: h, cfg: cfg, ctx: ctx, cancel: cancel, idle: map[peer.ID][]*pooled{}, dialing: map[peer.ID]*dial{}}
	if cfg.MaxDials > 0 {
		c.dialSlots = make(chan struct{}, cfg.MaxDials)
	}
	return c, nil
}

// Close closes the pooled streams and stops the client's dials.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	for id, list := range c.idle {
		for _, p := range list {
			p.stopExpiry()
			p.st.Close()
		}
		delete(c.idle, id)
	}
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
	return nil
}

// connect returns once target is connected (at once if it is, or if the
// client has no DialTimeout: then opening the stream dials), the
// client's dial to it failed, or ctx ends. The dial outlives ctx.
func (c *Client) connect(ctx context.Context, target peer.ID) error {
	d, err := c.startDial(target)
	if d == nil {
		return err
	}
	select {
	case <-d.done:
		return d.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Dial starts connecting to target in the background, as a query would
// (within DialTimeout and MaxDials, sharing a dial already under way), so
// that a query to it soon finds the connection up. It does not wait; it
// does nothing if target is connected or the client has no DialTimeout.
// The caller gives the host target's addresses first.
func (c *Client) Dial(target peer.ID) {
	c.startDial(target)
}

// SpareDials is how many more dials the client would start at once
// before one waits for MaxDials' slots: MaxDials less the dials under
// way or waiting (and -1, no bound, without MaxDials).
func (c *Client) SpareDials() int {
	if c.cfg.MaxDials == 0 {
		return -1
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return max(0, c.cfg.MaxDials-len(c.dialing))
}

// startDial returns the client's dial to target, starting it if none is
// under way; nil if target is connected or the client does not dial
// (then err says why if it is closed).
func (c *Client) startDial(target peer.ID) (*dial, error) {
	if c.cfg.DialTimeout == 0 || c.h.Network().Connectedness(target) == network.Connected {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClientClosed
	}
	if d := c.dialing[target]; d != nil {
		return d, nil
	}
	d := &dial{done: make(chan struct{})}
	c.dialing[target] = d
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		dctx, cancel := context.WithTimeout(c.ctx, c.cfg.DialTimeout)
		d.err = c.dial(dctx, target)
		cancel()
		c.mu.Lock()
		delete(c.dialing, target)
		c.mu.Unlock()
		close(d.done)
	}()
	return d, nil
}

// dial connects to target once one of the client's dial slots is free.
func (c *Client) dial(ctx context.Context, target peer.ID) error {
	if c.dialSlots != nil {
		select {
		case c.dialSlots <- struct{}{}:
			defer func() { <-c.dialSlots }()
		case <-ctx.Done():
			return fmt.Errorf("waiting for a dial slot: %w", ctx.Err())
		}
		if c.h.Network().Connectedness(target) == network.Connected {
			return nil // it dialed us meanwhile
		}
	}
	return c.h.Connect(ctx, peer.AddrInfo{ID: target})
}

// errClientClosed is a query's error on a closed client.
var errClientClosed = errors.New("protocol: client closed")

// ErrNotConnected is in the error of a query that ended before the
// client's connection to the server was up: its dial failed, or the
// query's deadline passed while it was under way (the dial goes on, within
// DialTimeout, so a later query may find the connection up). Such a query
// never reached the server.
var ErrNotConnected = errors.New("not connected")

func (c *Client) take(id peer.ID) *pooled {
	c.mu.Lock()
	defer c.mu.Unlock()
	list := c.idle[id]
	if len(list) == 0 {
		return nil
	}
	p := list[len(list)-1]
	c.idle[id] = list[:len(list)-1]
	p.stopExpiry()
	return p
}

// give pools p, idle, for the next query to id. A stream with bytes read
// ahead after an answer's last frame carries what no request asked for
// (the server speaks only when asked, SPEC.md §2.1) and is closed.
func (c *Client) give(id peer.ID, p *pooled) {
	ahead := p.r != nil && p.r.Buffered() > 0
	p.done()
	c.mu.Lock()
	defer c.mu.Unlock()
	if ahead || c.closed || len(c.idle[id]) >= maxIdlePerPeer {
		p.st.Close()
		return
	}
	c.idle[id] = append(c.idle[id], p)
	if c.cfg.IdleTimeout > 0 {
		p.expiry = time.AfterFunc(c.cfg.IdleTimeout, func() { c.expire(id, p) })
	}
}

// expire closes p, pooled for id, if it is still in the pool.
func (c *Client) expire(id peer.ID, p *pooled) {
	c.mu.Lock()
	list := c.idle[id]
	i := slices.Index(list, p)
	if i < 0 {
		c.mu.Unlock()
		return
	}
	p.expiry = nil
	if list = slices.Delete(list, i, i+1); len(list) == 0 {
		delete(c.idle, id)
	} else {
		c.idle[id] = list
	}
	c.mu.Unlock()
	p.st.Close()
}

// Release closes the streams pooled for id: the caller is done with the
// server for a while (a validator that asked a miner its round's task and
// will close the connection, which holds no stream then, until its next
// turn). A query to id after Release opens a new stream.
func (c *Client) Release(id peer.ID) {
	c.mu.Lock()
	list := c.idle[id]
	delete(c.idle, id)
	for _, p := range list {
		p.stopExpiry()
	}
	c.mu.Unlock()
	for _, p := range list {
		p.st.Close()
	}
}

// Result is one server's answer.
type Result struct {
	Peer    peer.ID
	Status  Status
	Message string
	Body    []byte
	// Latency is the time from sending to the last frame; Processing is
	// what the server reported.
	Latency    time.Duration
	Processing time.Duration
	// Receipt is the server's signed receipt, when one was asked for and
	// the server's handler answered; refusals before the handler (bad
	// requests, FORBIDDEN, NOT_FOUND, OVERLOADED, TIMEOUT while queued)
	// carry none.
	Receipt *pb.Receipt
	// Usage is what the server's handler said answering cost (tokens),
	// nil if it said nothing. It is the server's own claim: the receipt
	// does not cover it.
	Usage *pb.Usage
	// Err says why a query failed on this side (unreachable peer, broken
	// stream, deadline), when it did.
	Err error
}

// Query sends req to every target concurrently and returns their results
// in target order. It returns by req's deadline whatever the targets do.
func (c *Client) Query(ctx context.Context, targets []peer.ID, req *pb.Request) []Result {
	out := make([]Result, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = c.Stream(ctx, t, req, nil)
		}()
	}
	wg.Wait()
	return out
}

// Stream sends req to one target. If onChunk is set, each body chunk is
// passed to it as it arrives (and not collected in Result.Body); the slice
// is valid only during the call.
func (c *Client) Stream(ctx context.Context, target peer.ID, req *pb.Request, onChunk func([]byte) error) Result {
	if onChunk == nil {
		return c.StreamPending(ctx, target, req, nil)
	}
	return c.StreamPending(ctx, target, req, func(b []byte, _ bool) error { return onChunk(b) })
}

// StreamPending is Stream whose onChunk also learns whether more of the
// answer has already arrived (is read ahead, waiting): a caller that
// forwards chunks can hold its flush while pending is true, and flush
// once it is false, with no added latency.
func (c *Client) StreamPending(ctx context.Context, target peer.ID, req *pb.Request, onChunk func(chunk []byte, pending bool) error) Result {
	res := Result{Peer: target}
	timeout := c.cfg.DefaultTimeout
	if req.TimeoutMs != 0 {
		timeout = time.Duration(req.TimeoutMs) * time.Millisecond
	} else {
		req = proto.Clone(req).(*pb.Request)
		req.TimeoutMs = uint32(timeout / time.Millisecond)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	start := time.Now()
	deadline, _ := ctx.Deadline()
	fail := func(status Status, err error) Result {
		res.Status, res.Err, res.Latency = status, err, time.Since(start)
		// The stream's deadline is the query's: a read or write that
		// ran into it may return a moment before ctx's own timer ends
		// ctx, and is the query's deadline passing all the same.
		if ctx.Err() != nil || isTimeout(err) && !time.Now().Before(deadline) {
			res.Status, res.Err = StatusTimeout, fmt.Errorf("deadline of %v passed: %w", timeout, err)
		}
		return res
	}
	// A query whose context is already done is not sent: on a pooled
	// stream to a fast server it could otherwise be answered before the
	// stream noticed the context.
	if err := ctx.Err(); err != nil {
		return fail(StatusTimeout, fmt.Errorf("query to %s not sent: %w", target, err))
	}
	// A pooled stream the server has since closed fails before any frame
	// arrives; then the query is sent once more on a fresh stream.
	for attempt := 0; ; attempt++ {
		p := c.take(target)
		reused := p != nil
		if p == nil {
			if err := c.connect(ctx, target); err != nil {
				return fail(StatusUnavailable, fmt.Errorf("connecting to %s: %w: %w", target, ErrNotConnected, err))
			}
			st, err := c.h.NewStream(ctx, target, QueryID)
			if err != nil {
				return fail(StatusUnavailable, fmt.Errorf("opening a stream to %s: %w", target, err))
			}
			p = &pooled{st: st}
		}
		p.reading()
		res.Body, res.Usage = nil, nil
		got, err := c.exchange(ctx, p, req, onChunk, &res)
		if err == nil {
			res.Latency = time.Since(start)
			return res
		}
		if reused && !got && attempt == 0 && ctx.Err() == nil {
			continue
		}
		if errors.Is(err, errTooLarge) {
			return fail(StatusBadRequest, err)
		}
		if errors.Is(err, errChunk) {
			return fail(StatusInternal, err)
		}
		return fail(StatusUnavailable, err)
	}
}

// syncWriteMax is the longest request written before its answer is
// read; it fits any stream's initial window (256 KiB), so its write never
// waits for the server to read.
const syncWriteMax = 64 << 10

var (
	errTooLarge = errors.New("response too large")
	errChunk    = errors.New("chunk callback failed")
)

// exchange runs one request/response on a stream and pools the stream
// when it completed cleanly. got reports whether any frame arrived.
func (c *Client) exchange(ctx context.Context, p *pooled, req *pb.Request, onChunk func([]byte, bool) error, res *Result) (got bool, err error) {
	st := p.st
	// A stalled peer must not hold us past the deadline: the deadline
	// bounds every read and write, and cancellation resets the stream.
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	clean := false
	defer func() {
		if stop() && clean {
			st.SetDeadline(time.Time{})
			c.give(res.Peer, p)
		} else {
			st.Reset()
			p.done()
		}
	}()
	raw, err := proto.Marshal(req)
	if err != nil {
		return false, fmt.Errorf("encoding the request: %w", err)
	}
	msg := append(binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(raw)), uint64(len(raw))), raw...)
	var writing chan error // a long request's write, while the answer is read
	if len(msg) <= syncWriteMax {
		if _, err := st.Write(msg); err != nil {
			return false, fmt.Errorf("sending the request: %w", err)
		}
	} else {
		// A server may answer before it has read a long request (it
		// refuses the caller once it has read the netuid, §2.4) and stop
		// reading it: the answer is read while the request is written.
		writing = make(chan error, 1)
		go func() {
			_, err := st.Write(msg)
			writing <- err
		}()
		defer func() {
			if writing != nil { // answered while it wrote: the rest is not sent
				clean = false
				st.Reset()
				<-writing
			}
		}()
	}
	buf := frameBufs.Get().(*[]byte)
	defer frameBufs.Put(buf)
	total := 0
	for {
		frame, err := readResponse(p.r, buf)
		if err != nil {
			return got, fmt.Errorf("reading the response: %w", err)
		}
		got = true
		if len(frame.Body) > 0 {
			total += len(frame.Body)
			if total > c.cfg.MaxResponseSize {
				return got, fmt.Errorf("%w: more than %d bytes", errTooLarge, c.cfg.MaxResponseSize)
			}
			if onChunk != nil {
				if err := onChunk(frame.Body, p.r.Buffered() > 0); err != nil {
					return got, fmt.Errorf("%w: %v", errChunk, err)
				}
			} else {
				res.Body = append(res.Body, frame.Body...)
			}
		}
		if !frame.More {
			res.Status, res.Message, res.Receipt, res.Usage = frame.Status, frame.Message, frame.Receipt, frame.Usage
			res.Processing = time.Duration(frame.ProcessingUs) * time.Microsecond
			clean = frame.Status != StatusTimeout && frame.Status != StatusBadRequest
			if writing != nil {
				select {
				case err := <-writing:
					writing = nil
					clean = clean && err == nil
				default: // still writing: the deferred reset ends it
				}
			}
			return got, nil
		}
	}
}
