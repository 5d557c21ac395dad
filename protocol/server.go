package protocol

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

// Caller is who sent a query, as the chain knows them.
type Caller struct {
	// Registered is whether the caller's hotkey holds a uid on the subnet.
	Registered bool
	UID        uint16
	// Stake is the stake on the caller's hotkey.
	Stake uint64
}

// Callers looks callers up in the metagraph; the neuron's chain view
// implements it.
type Callers interface {
	Caller(ctx context.Context, netuid uint16, id peer.ID) (Caller, error)
}

// Request is a query as a handler sees it.
type Request struct {
	ID      string
	Netuid  uint16
	Synapse string
	Body    []byte
	From    peer.ID
	Caller  Caller
}

// ResponseWriter streams a handler's answer; each Write is one chunk.
type ResponseWriter interface {
	Write(chunk []byte) error
}

// UsageWriter is implemented by the server's ResponseWriter: a handler
// that knows what answering cost reports it, and the answer's last frame
// carries it (SPEC.md §2.6). It is the miner's own statement; receipts do
// not cover it.
type UsageWriter interface {
	SetUsage(promptTokens, completionTokens uint32)
}

// SetUsage reports usage through w if w takes it (the server's writer
// does; a test's may not).
func SetUsage(w ResponseWriter, promptTokens, completionTokens uint32) {
	if u, ok := w.(UsageWriter); ok {
		u.SetUsage(promptTokens, completionTokens)
	}
}

// Handler answers one synapse type. Its context ends at the request's
// deadline, or as soon as the client resets the stream (it left: then
// context.Cause is ErrCallerGone and no answer is sent). Returning a *StatusError answers with that status; any other
// error answers INTERNAL.
type Handler interface {
	Serve(ctx context.Context, req *Request, w ResponseWriter) error
}

// ErrCallerGone is the cause of a handler's context ending because the
// client reset the stream (or its connection closed) while its request was
// queued or answered.
var ErrCallerGone = errors.New("protocol: the caller left")

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request, w ResponseWriter) error

// Serve implements Handler.
func (f HandlerFunc) Serve(ctx context.Context, req *Request, w ResponseWriter) error {
	return f(ctx, req, w)
}

// ServerConfig configures the query server.
type ServerConfig struct {
	// MaxConcurrent handlers run at once; others wait in a queue ordered
	// by the caller's stake.
	MaxConcurrent int
	// MaxQueue bounds the waiting requests; beyond it one is shed with
	// OVERLOADED: the lowest-stake one, or with ShareByStake the latest of
	// a caller holding more than its share of the queue.
	MaxQueue int
	// ShareByStake shares the MaxConcurrent slots among the callers with
	// requests queued or running, by stake: a free slot goes to the
	// highest-stake caller that runs fewer requests than its share,
	// max(1, min(⌊MaxConcurrent·stake/Σ stake⌋, MaxConcurrent − (callers−1))),
	// and to a caller at its share only when every waiting caller is.
	// So one high-stake caller (a gateway) flooding the server cannot keep
	// the validators that score it waiting. False: the queue is ordered
	// by stake alone. SPEC.md §2.4.
	ShareByStake bool
	// DefaultTimeout applies to requests that name none; MaxTimeout caps
	// what a request may ask for.
	DefaultTimeout time.Duration
	MaxTimeout     time.Duration
	// ReadTimeout bounds reading each request on a stream, from its first
	// byte (the stream's first request: from the stream's opening);
	// IdleTimeout is how long a stream may wait for the first byte of its
	// next request.
	ReadTimeout time.Duration
	IdleTimeout time.Duration
	// PeerRequestBytes bounds the request bytes one peer may have the
	// server hold at once: requests being read, queued or answered, as
	// their length prefixes announce them. A registered caller's request
	// that would pass it waits, until its read deadline, for the peer's
	// earlier requests to end; an unregistered caller's is answered
	// OVERLOADED. At least MaxRequestSize.
	PeerRequestBytes int
	// RequestBytes bounds the same for all peers together. Callers that
	// are not registered (served only with AllowUnregistered) may hold at
	// most half of it: the other half is kept for registered callers. At
	// least 2·MaxRequestSize.
	RequestBytes int
	// MinStake is the least stake a caller needs (0: any registered caller).
	MinStake uint64
	// AllowUnregistered serves callers without a uid on the subnet.
	AllowUnregistered bool
	// Blacklist, if set, refuses callers with FORBIDDEN when it returns a
	// reason.
	Blacklist func(c Caller, req *Request) string
	// Logger receives the server's logs.
	Logger *slog.Logger

	// watchEnded, if set (by tests), learns what each watch's Peek
	// returned, after any cancel.
	watchEnded func(error)
}

// DefaultServerConfig serves 16 requests at once with 256 waiting, the 16
// shared among callers by stake, and holds at most 4 MiB of requests per
// peer and 64 MiB in all.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		MaxConcurrent: 16, MaxQueue: 256, ShareByStake: true, DefaultTimeout: 12 * time.Second, MaxTimeout: 60 * time.Second,
		ReadTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second,
		PeerRequestBytes: 4 * MaxRequestSize, RequestBytes: 64 * MaxRequestSize, Logger: slog.Default(),
	}
}

func (c ServerConfig) validate() error {
	if c.MaxConcurrent < 1 || c.MaxQueue < 0 || c.DefaultTimeout <= 0 || c.MaxTimeout < c.DefaultTimeout || c.ReadTimeout <= 0 || c.IdleTimeout <= 0 || c.Logger == nil {
		return errors.New("protocol: server config: need MaxConcurrent >= 1, MaxQueue >= 0, 0 < DefaultTimeout <= MaxTimeout, ReadTimeout > 0, a Logger")
	}
	if c.PeerRequestBytes < MaxRequestSize || c.RequestBytes < 2*MaxRequestSize {
		return fmt.Errorf("protocol: server config: need PeerRequestBytes >= %d and RequestBytes >= %d", MaxRequestSize, 2*MaxRequestSize)
	}
	return nil
}

// Server answers queries on a host. The host's identity must be the hotkey
// key, which signs receipts.
type Server struct {
	cfg      ServerConfig
	h        host.Host
	key      *wallet.PrivateKey
	callers  Callers
	log      *slog.Logger
	handlers atomic.Pointer[map[string]Handler] // replaced whole by SetHandlers
	sched    *scheduler
	budget   *budget
	signed   atomic.Int64 // receipts signed

	ctx     context.Context
	cancel  context.CancelFunc
	mu      sync.Mutex
	closed  bool
	streams map[network.Stream]struct{} // open, so Close can end idle ones
	wg      sync.WaitGroup
}

// NewServer starts answering queries on h with the given handlers, keyed
// by synapse name.
func NewServer(h host.Host, key *wallet.PrivateKey, callers Callers, handlers map[string]Handler, cfg ServerConfig) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if key.PublicKey().PeerID() != h.ID() {
		return nil, fmt.Errorf("protocol: key %s is not the host's identity %s", key.PublicKey().PeerID(), h.ID())
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, h: h, key: key, callers: callers, log: cfg.Logger.With("component", "query-server"),
		sched:  newScheduler(cfg.MaxConcurrent, cfg.MaxQueue, cfg.ShareByStake),
		budget: newBudget(cfg.PeerRequestBytes, cfg.RequestBytes), ctx: ctx, cancel: cancel, streams: map[network.Stream]struct{}{}}
	s.SetHandlers(handlers)
	h.SetStreamHandler(QueryID, s.handle)
	return s, nil
}

// SetHandlers replaces the handlers, keyed by synapse name (e.g. when the
// subnet's spec changes): requests that arrive from now on get the new
// ones; those already in a handler finish in it.
func (s *Server) SetHandlers(handlers map[string]Handler) {
	m := make(map[string]Handler, len(handlers))
	for name, hd := range handlers {
		m[name] = hd
	}
	s.handlers.Store(&m)
}

// Close stops accepting queries and waits for running ones to end.
func (s *Server) Close() error {
	s.h.RemoveStreamHandler(QueryID)
	s.mu.Lock()
	s.closed = true
	for st := range s.streams {
		st.Reset()
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
	return nil
}

// exchanges is one stream's state across its exchanges.
type exchanges struct {
	st   network.Stream
	from peer.ID
	r    *bufio.Reader
	w    *bufio.Writer // taken when an answer first writes a chunk, given back with its last frame
	// held is the memory reserved in the stream's resource scope for the
	// request being read or answered.
	held int
	// watching is set while a goroutine started by watch peeks at the
	// stream; peeked receives what its Peek returned (one per watch),
	// unless the serving goroutine handed the stream over to the watch
	// (handOver) first: then the watch's goroutine carries on with resume.
	watching bool
	peeked   chan error
	mu       sync.Mutex // guards peekDone and resume
	peekDone bool
	resume   func(*exchanges, error)
	// ctx is the parent of the stream's requests' contexts, which a watch
	// cancels with ErrCallerGone (that ends the stream); made with the
	// first request that gets so far, ended with the stream.
	ctx  context.Context
	gone context.CancelCauseFunc
}

// watch reads ahead on the stream while a request is queued or answered,
// so that a client that resets the stream (or whose connection closes)
// cancels it at once with ErrCallerGone, instead of when the handler next
// writes. It is the stream's own read path: the Peek waits for the first
// byte of the next request, which a client sends only after the answer's
// last frame (SPEC.md §2.1), and next takes its result, so the watch costs
// no read of its own. End of stream (a client that closed its write side
// after the request) and the answer's read deadline cancel nothing.
func (x *exchanges) watch(ended func(error)) {
	if x.r.Buffered() > 0 {
		return // bytes already wait (sent early): nothing to watch for
	}
	if x.peeked == nil {
		x.peeked = make(chan error, 1)
	}
	x.watching = true
	x.peekDone = false
	cancel := x.gone
	go func() {
		_, err := x.r.Peek(1)
		if err != nil && !errors.Is(err, io.EOF) && !isTimeout(err) {
			cancel(ErrCallerGone)
		}
		if ended != nil {
			ended(err)
		}
		x.mu.Lock()
		resume := x.resume
		x.resume, x.peekDone = nil, resume == nil
		x.mu.Unlock()
		if resume != nil {
			resume(x, err)
			return
		}
		x.peeked <- err
	}()
}

// handOver gives the stream to a watch still peeking, once an exchange
// has ended: its goroutine, when the Peek returns, carries on serving
// with resume, and the caller returns. An idle stream then holds one
// goroutine, not two (a miner keeps a stream to each validator that
// queries it). It reports false, and the caller waits in next as before,
// if no watch runs or its Peek has already returned.
func (x *exchanges) handOver(resume func(*exchanges, error)) bool {
	if !x.watching {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.peekDone {
		return false
	}
	x.watching, x.resume = false, resume
	return true
}

// next waits for the first byte of the stream's next request, under the
// read deadline set, taking over a watch's Peek if one runs.
func (x *exchanges) next() error {
	if x.watching {
		x.watching = false
		if err := <-x.peeked; err == nil || !isTimeout(err) {
			return err
		}
		// The watch ran into the answer's deadline: wait again under
		// the deadline set now.
	}
	_, err := x.r.Peek(1)
	return err
}

// unwatch ends a watch still running; the stream must be closed for
// reading first, which interrupts its Peek.
func (x *exchanges) unwatch() {
	if x.watching {
		x.watching = false
		<-x.peeked
	}
}

// isTimeout reports whether err is a read deadline passing.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &t) && t.Timeout()
}

// writer is the stream's write buffer for the exchange, taken on first
// use: streams that are refused, answer with their last frame alone, or
// stay idle between exchanges hold none (a miner keeps a stream open to
// each validator that queries it).
func (x *exchanges) writer() *bufio.Writer {
	if x.w == nil {
		x.w = streamWriters.Get().(*bufio.Writer)
		x.w.Reset(x.st)
	}
	return x.w
}

// doneWriting gives back the exchange's write buffer, flushed or failed.
func (x *exchanges) doneWriting() {
	if x.w != nil {
		x.w.Reset(nil)
		streamWriters.Put(x.w)
		x.w = nil
	}
}

// streamWriters pools the write buffers of the exchanges answering.
var streamWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, writeBufSize) }}

// errNoMemory is the resource manager refusing memory for a request.
var errNoMemory = errors.New("no memory for the request")

// reserve charges n more bytes of request buffer to the stream's scope.
func (x *exchanges) reserve(n int, prio uint8) error {
	if err := x.st.Scope().ReserveMemory(n, prio); err != nil {
		return fmt.Errorf("%w: %v", errNoMemory, err)
	}
	x.held += n
	return nil
}

// release gives back what the exchange reserved.
func (x *exchanges) release() {
	if x.held > 0 {
		x.st.Scope().ReleaseMemory(x.held)
		x.held = 0
	}
}

// responder writes an answer's frames and hashes its body for receipts.
// Once the last frame is written (ended), Write fails: the write buffer
// has gone back to the pool, and a handler writing after it returned
// (against Handler's contract) must not write into another stream's.
type responder struct {
	mu    sync.Mutex
	ended bool
	x     *exchanges
	hash  hash.Hash // SHA-256 of all chunks, when a receipt is wanted
	usage *pb.Usage // what the handler reported, for the last frame
}

// end ends the answer: later writes fail, and the write buffer goes back
// (the exchange's last frame, written or not).
func (r *responder) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	r.x.doneWriting()
}

// SetUsage implements UsageWriter; the last call counts.
func (r *responder) SetUsage(promptTokens, completionTokens uint32) {
	r.usage = &pb.Usage{PromptTokens: promptTokens, CompletionTokens: completionTokens}
}

// Write sends chunk in frames of at most maxChunk bytes, each flushed as
// it is written.
func (r *responder) Write(chunk []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ended {
		return errors.New("protocol: writing response: the answer has ended")
	}
	w := r.x.writer()
	for len(chunk) > 0 {
		n := min(len(chunk), maxChunk)
		err := writeChunk(w, chunk[:n])
		if err == nil {
			err = w.Flush()
		}
		if err != nil {
			return fmt.Errorf("protocol: writing response: %w", err)
		}
		if r.hash != nil {
			r.hash.Write(chunk[:n])
		}
		chunk = chunk[n:]
	}
	return nil
}

func (s *Server) handle(st network.Stream) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		st.Reset()
		return
	}
	s.wg.Add(1) // done by endStream, in whichever goroutine serves last
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	// A stream carries one exchange after another until the client closes
	// it or stays idle too long.
	r := streamReaders.Get().(*bufio.Reader)
	r.Reset(st)
	s.serve(&exchanges{st: st, from: st.Conn().RemotePeer(), r: r}, true)
}

// serve runs exchanges on x's stream, the first at once if first is set,
// until the stream ends (then endStream) or it hands the idle stream over
// to the last exchange's watch, which carries on with resume.
func (s *Server) serve(x *exchanges, first bool) {
	handed := false
	defer func() {
		if !handed {
			s.endStream(x)
		}
	}()
	for ; ; first = false {
		if !first {
			// Between exchanges: a clean end or an idle timeout just ends.
			x.st.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			if x.handOver(s.resume) {
				handed = true
				return
			}
			if err := x.next(); err != nil {
				return
			}
		}
		// Every request is read within ReadTimeout of its first byte.
		start := time.Now()
		x.st.SetReadDeadline(start.Add(s.cfg.ReadTimeout))
		if !s.exchange(x, start) {
			return
		}
		x.st.SetDeadline(time.Time{})
	}
}

// resume carries on serving x, handed over to its watch, with what the
// watch's Peek returned (as next does).
func (s *Server) resume(x *exchanges, err error) {
	if isTimeout(err) {
		// The Peek ran into the answer's deadline: wait again under the
		// idle deadline set before the handover.
		_, err = x.r.Peek(1)
	}
	if err != nil {
		s.endStream(x)
		return
	}
	s.serve(x, true)
}

// endStream closes x's stream and gives back what it held.
func (s *Server) endStream(x *exchanges) {
	s.mu.Lock()
	delete(s.streams, x.st)
	s.mu.Unlock()
	x.st.Close() // interrupts a watch's Peek
	x.unwatch()
	x.doneWriting()
	if x.gone != nil {
		x.gone(nil)
	}
	x.r.Reset(nil)
	streamReaders.Put(x.r)
	s.wg.Done()
}

// streamReaders pools the streams' read buffers: a flood of streams that
// each carry one small request, or none, allocates no buffer for each.
var streamReaders = sync.Pool{New: func() any { return bufio.NewReader(nil) }}

// exchange reads one request and answers it; it returns whether the
// stream can carry another. The caller is checked when the request's
// short fields have arrived, before its body: a caller refused then gets
// its answer without the server reading the body into memory (what
// remains of the frame is discarded as it arrives, within the read
// deadline, so that the client reads the answer), and the stream ends.
func (s *Server) exchange(x *exchanges, start time.Time) bool {
	defer x.release()
	size, err := readUvarint(x.r)
	if err != nil {
		s.writeFinal(x, &responder{x: x}, start, StatusBadRequest, "reading request: "+err.Error(), nil, nil, false)
		return false
	}
	if size > MaxRequestSize {
		s.writeFinal(x, &responder{x: x}, start, StatusBadRequest, fmt.Sprintf("request of %d bytes exceeds %d", size, MaxRequestSize), nil, nil, false)
		return false
	}
	var head []byte
	refuse := func(status Status, msg string) bool {
		s.writeFinal(x, &responder{x: x}, start, status, msg, nil, nil, false)
		if rest := int64(int(size) - len(head)); int64(x.r.Buffered()) >= rest {
			x.r.Discard(int(rest)) // all here: the stream ends cleanly
		} else {
			// The rest is not read: the muxer drops what arrives without
			// buffering it, and the client may send no more than its
			// window.
			x.st.CloseRead()
		}
		return false
	}
	if err := x.reserve(min(int(size), headCap), network.ReservationPriorityLow); err != nil {
		return refuse(StatusOverloaded, "the server is out of memory for requests; try later")
	}
	head, netuid, err := readHead(x.r, int(size))
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		s.writeFinal(x, &responder{x: x}, start, StatusBadRequest, "reading request: "+err.Error(), nil, nil, false)
		return false
	}
	if netuid > 0xffff {
		return refuse(StatusBadRequest, fmt.Sprintf("netuid %d out of range", netuid))
	}
	ctx, cancel := context.WithDeadline(s.ctx, start.Add(s.cfg.ReadTimeout))
	defer cancel()
	caller, err := s.callers.Caller(ctx, uint16(netuid), x.from)
	if err != nil {
		return refuse(StatusInternal, "looking up the caller: "+err.Error())
	}
	if msg := s.refusal(caller, uint16(netuid), x.from); msg != "" {
		return refuse(StatusForbidden, msg)
	}
	prio := uint8(network.ReservationPriorityLow)
	var h hold
	if caller.Registered {
		prio = network.ReservationPriorityHigh
		h, err = s.budget.wait(ctx, x.from, int(size), true)
	} else if hh, ok := s.budget.take(x.from, int(size), false); ok {
		h = hh
	} else {
		err = errShed
	}
	if err != nil {
		return refuse(StatusOverloaded, "too many request bytes in flight; try later")
	}
	defer s.budget.give(h)
	raw, err := readRest(x.r, head, int(size), func(n int) error { return x.reserve(n, prio) })
	head = raw
	if errors.Is(err, errNoMemory) {
		return refuse(StatusOverloaded, "the server is out of memory for requests; try later")
	}
	if err != nil {
		s.writeFinal(x, &responder{x: x}, start, StatusBadRequest, "reading request: "+err.Error(), nil, nil, false)
		return false
	}
	return s.serveOne(x, raw, start, uint16(netuid), caller)
}

// refusal says why the server refuses a caller on netuid, or "".
func (s *Server) refusal(c Caller, netuid uint16, from peer.ID) string {
	switch {
	case !c.Registered && !s.cfg.AllowUnregistered:
		return fmt.Sprintf("caller %s is not registered on subnet %d", from, netuid)
	case c.Stake < s.cfg.MinStake:
		return fmt.Sprintf("caller stake %d below %d", c.Stake, s.cfg.MinStake)
	}
	return ""
}

// writeFinal writes an exchange's last frame, with a signed receipt if
// sign is set and the request asked for one.
func (s *Server) writeFinal(x *exchanges, out *responder, start time.Time, status Status, msg string, raw []byte, req *pb.Request, sign bool) {
	resp := &pb.Response{Status: status, Message: msg, ProcessingUs: uint64(time.Since(start).Microseconds()), Usage: out.usage}
	if sign && req != nil && req.WantReceipt {
		h := out.hash
		if h == nil {
			h = sha256.New()
		}
		resp.Receipt = s.receipt(raw, h.Sum(nil), status, x.from)
	}
	out.mu.Lock()
	defer out.mu.Unlock()
	out.ended = true
	x.st.SetWriteDeadline(time.Now().Add(s.cfg.ReadTimeout))
	var err error
	if x.w != nil {
		if err = writeMsg(x.w, resp); err == nil {
			err = x.w.Flush()
		}
		x.doneWriting()
	} else {
		err = writeMsg(x.st, resp)
	}
	if err != nil {
		s.log.Debug("writing final frame", "peer", x.from, "err", err)
	}
}

// serveOne answers one request whose caller was looked up on gateNetuid;
// it returns whether the stream can carry another exchange. Only answers
// the handler gave carry a signed receipt: refusals before it do not.
func (s *Server) serveOne(x *exchanges, raw []byte, start time.Time, gateNetuid uint16, caller Caller) bool {
	out := &responder{x: x}
	defer out.end()
	var req pb.Request
	if err := proto.Unmarshal(raw, &req); err != nil {
		s.writeFinal(x, out, start, StatusBadRequest, "malformed request: "+err.Error(), nil, nil, false)
		return false
	}
	handled := false
	finish := func(status Status, msg string) bool {
		s.writeFinal(x, out, start, status, msg, raw, &req, handled)
		return status != StatusTimeout
	}
	if req.WantReceipt {
		out.hash = sha256.New() // hash the answer only when it is to be signed
	}
	if err := checkRequest(&req); err != nil {
		return finish(StatusBadRequest, err.Error())
	}
	timeout := s.cfg.DefaultTimeout
	if req.TimeoutMs != 0 {
		timeout = min(time.Duration(req.TimeoutMs)*time.Millisecond, s.cfg.MaxTimeout)
	}
	if x.ctx == nil {
		x.ctx, x.gone = context.WithCancelCause(s.ctx)
	}
	ctx, cancel := context.WithDeadline(x.ctx, start.Add(timeout))
	defer cancel()
	x.st.SetDeadline(start.Add(timeout))

	from := x.from
	if uint16(req.Netuid) != gateNetuid {
		// The netuid came after the body (or twice): look the caller up
		// on the request's own.
		var err error
		if caller, err = s.callers.Caller(ctx, uint16(req.Netuid), from); err != nil {
			return finish(StatusInternal, "looking up the caller: "+err.Error())
		}
		if msg := s.refusal(caller, uint16(req.Netuid), from); msg != "" {
			finish(StatusForbidden, msg)
			return false
		}
	}
	hreq := &Request{ID: req.RequestId, Netuid: uint16(req.Netuid), Synapse: req.Synapse, Body: req.Body, From: from, Caller: caller}
	if s.cfg.Blacklist != nil {
		if reason := s.cfg.Blacklist(caller, hreq); reason != "" {
			return finish(StatusForbidden, reason)
		}
	}
	hd, ok := (*s.handlers.Load())[req.Synapse]
	if !ok {
		return finish(StatusNotFound, fmt.Sprintf("synapse %q is not served here", req.Synapse))
	}
	// From here a client that resets the stream cancels its request.
	x.watch(s.cfg.watchEnded)
	slot, err := s.sched.acquire(ctx, from, caller.Stake)
	if err != nil {
		if errors.Is(context.Cause(ctx), ErrCallerGone) {
			return false // no one to answer
		}
		if errors.Is(err, errShed) {
			return finish(StatusOverloaded, "the server is overloaded; try later")
		}
		return finish(StatusTimeout, "the deadline passed while queued")
	}
	handled = true
	err = hd.Serve(ctx, hreq, out)
	s.sched.release(slot)
	var se *StatusError
	switch {
	case errors.Is(context.Cause(ctx), ErrCallerGone):
		s.log.Debug("the caller left while its request was answered", "peer", from, "synapse", req.Synapse)
		return false // no answer, no receipt: the stream is gone
	case ctx.Err() != nil:
		return finish(StatusTimeout, "the deadline passed")
	case errors.As(err, &se):
		return finish(se.Status, se.Message)
	case err != nil:
		return finish(StatusInternal, err.Error())
	default:
		return finish(StatusOK, "")
	}
}

func checkRequest(r *pb.Request) error {
	switch {
	case r.Netuid > 0xffff:
		return fmt.Errorf("netuid %d out of range", r.Netuid)
	case r.Synapse == "" || len(r.Synapse) > maxIDLen:
		return fmt.Errorf("synapse must be 1 to %d bytes", maxIDLen)
	case len(r.RequestId) > maxIDLen:
		return fmt.Errorf("request_id longer than %d bytes", maxIDLen)
	}
	return nil
}

func (s *Server) receipt(raw, bodyHash []byte, status Status, client peer.ID) *pb.Receipt {
	r := &pb.Receipt{RequestHash: RequestHash(raw), ResponseHash: bodyHash, Server: s.h.ID().String(), Client: client.String(), Status: status}
	r.Signature = s.key.Sign(receiptSignBytes(r))
	s.signed.Add(1)
	return r
}
