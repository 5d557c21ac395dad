package protocol

import (
	"bufio"
	"container/heap"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
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

// Handler answers one synapse type. Its context ends at the request's
// deadline. Returning a *StatusError answers with that status; any other
// error answers INTERNAL.
type Handler interface {
	Serve(ctx context.Context, req *Request, w ResponseWriter) error
}

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
	// MaxQueue bounds the waiting requests; beyond it the lowest-stake
	// request is shed with OVERLOADED.
	MaxQueue int
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
	// MinStake is the least stake a caller needs (0: any registered caller).
	MinStake uint64
	// AllowUnregistered serves callers without a uid on the subnet.
	AllowUnregistered bool
	// Blacklist, if set, refuses callers with FORBIDDEN when it returns a
	// reason.
	Blacklist func(c Caller, req *Request) string
	// Logger receives the server's logs.
	Logger *slog.Logger
}

// DefaultServerConfig serves 16 requests at once with 256 waiting.
func DefaultServerConfig() ServerConfig {
	return ServerConfig{
		MaxConcurrent: 16, MaxQueue: 256, DefaultTimeout: 12 * time.Second, MaxTimeout: 60 * time.Second,
		ReadTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second, Logger: slog.Default(),
	}
}

func (c ServerConfig) validate() error {
	if c.MaxConcurrent < 1 || c.MaxQueue < 0 || c.DefaultTimeout <= 0 || c.MaxTimeout < c.DefaultTimeout || c.ReadTimeout <= 0 || c.IdleTimeout <= 0 || c.Logger == nil {
		return errors.New("protocol: server config: need MaxConcurrent >= 1, MaxQueue >= 0, 0 < DefaultTimeout <= MaxTimeout, ReadTimeout > 0, a Logger")
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
	handlers map[string]Handler
	sched    *scheduler
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
		handlers: map[string]Handler{}, sched: newScheduler(cfg.MaxConcurrent, cfg.MaxQueue), ctx: ctx, cancel: cancel, streams: map[network.Stream]struct{}{}}
	for name, hd := range handlers {
		s.handlers[name] = hd
	}
	h.SetStreamHandler(QueryID, s.handle)
	return s, nil
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

// responder writes frames on a stream and hashes the body for receipts.
type responder struct {
	w    *bufio.Writer
	hash hash.Hash // SHA-256 of all chunks, when a receipt is wanted
}

// Write sends chunk in frames of at most maxChunk bytes, each flushed as
// it is written.
func (r *responder) Write(chunk []byte) error {
	for len(chunk) > 0 {
		n := min(len(chunk), maxChunk)
		err := writeChunk(r.w, chunk[:n])
		if err == nil {
			err = r.w.Flush()
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
	s.wg.Add(1)
	s.streams[st] = struct{}{}
	s.mu.Unlock()
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.streams, st)
		s.mu.Unlock()
		st.Close()
	}()
	// A stream carries one exchange after another until the client closes
	// it or stays idle too long.
	br := bufio.NewReader(st)
	bw := bufio.NewWriterSize(st, writeBufSize)
	for first := true; ; first = false {
		if !first {
			// Between exchanges: a clean end or an idle timeout just ends.
			st.SetReadDeadline(time.Now().Add(s.cfg.IdleTimeout))
			if _, err := br.Peek(1); err != nil {
				return
			}
		}
		// Every request is read within ReadTimeout of its first byte.
		start := time.Now()
		st.SetReadDeadline(start.Add(s.cfg.ReadTimeout))
		raw, err := readFrame(br, MaxRequestSize)
		if err != nil {
			s.writeFinal(st, &responder{w: bw}, start, StatusBadRequest, err.Error(), nil, nil, false)
			return
		}
		if !s.serveOne(st, bw, raw, start) {
			return
		}
		st.SetDeadline(time.Time{})
	}
}

// writeFinal writes an exchange's last frame, with a signed receipt if
// sign is set and the request asked for one.
func (s *Server) writeFinal(st network.Stream, out *responder, start time.Time, status Status, msg string, raw []byte, req *pb.Request, sign bool) {
	resp := &pb.Response{Status: status, Message: msg, ProcessingUs: uint64(time.Since(start).Microseconds())}
	if sign && req != nil && req.WantReceipt {
		h := out.hash
		if h == nil {
			h = sha256.New()
		}
		resp.Receipt = s.receipt(raw, h.Sum(nil), status, st.Conn().RemotePeer())
	}
	st.SetWriteDeadline(time.Now().Add(s.cfg.ReadTimeout))
	err := writeMsg(out.w, resp)
	if err == nil {
		err = out.w.Flush()
	}
	if err != nil {
		s.log.Debug("writing final frame", "peer", st.Conn().RemotePeer(), "err", err)
	}
}

// serveOne answers one request; it returns whether the stream can carry
// another exchange. Only answers the handler gave carry a signed receipt:
// refusals before it do not.
func (s *Server) serveOne(st network.Stream, bw *bufio.Writer, raw []byte, start time.Time) bool {
	out := &responder{w: bw}
	var req pb.Request
	if err := proto.Unmarshal(raw, &req); err != nil {
		s.writeFinal(st, out, start, StatusBadRequest, "malformed request: "+err.Error(), nil, nil, false)
		return false
	}
	handled := false
	finish := func(status Status, msg string) bool {
		s.writeFinal(st, out, start, status, msg, raw, &req, handled)
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
	ctx, cancel := context.WithDeadline(s.ctx, start.Add(timeout))
	defer cancel()
	st.SetDeadline(start.Add(timeout))

	from := st.Conn().RemotePeer()
	caller, err := s.callers.Caller(ctx, uint16(req.Netuid), from)
	if err != nil {
		return finish(StatusInternal, "looking up the caller: "+err.Error())
	}
	hreq := &Request{ID: req.RequestId, Netuid: uint16(req.Netuid), Synapse: req.Synapse, Body: req.Body, From: from, Caller: caller}
	switch {
	case !caller.Registered && !s.cfg.AllowUnregistered:
		return finish(StatusForbidden, fmt.Sprintf("caller %s is not registered on subnet %d", from, req.Netuid))
	case caller.Stake < s.cfg.MinStake:
		return finish(StatusForbidden, fmt.Sprintf("caller stake %d below %d", caller.Stake, s.cfg.MinStake))
	}
	if s.cfg.Blacklist != nil {
		if reason := s.cfg.Blacklist(caller, hreq); reason != "" {
			return finish(StatusForbidden, reason)
		}
	}
	hd, ok := s.handlers[req.Synapse]
	if !ok {
		return finish(StatusNotFound, fmt.Sprintf("synapse %q is not served here", req.Synapse))
	}
	if err := s.sched.acquire(ctx, caller.Stake); err != nil {
		if errors.Is(err, errShed) {
			return finish(StatusOverloaded, "the server is overloaded; try later")
		}
		return finish(StatusTimeout, "the deadline passed while queued")
	}
	handled = true
	err = hd.Serve(ctx, hreq, out)
	s.sched.release()
	var se *StatusError
	switch {
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

// readFrame reads one varint-framed message of at most max bytes.
func readFrame(br *bufio.Reader, max int) ([]byte, error) {
	size, err := readUvarint(br)
	if err != nil {
		return nil, fmt.Errorf("reading request: %w", err)
	}
	if size > uint64(max) {
		return nil, fmt.Errorf("request of %d bytes exceeds %d", size, max)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(br, buf); err != nil {
		return nil, fmt.Errorf("reading request: %w", err)
	}
	return buf, nil
}

func readUvarint(r io.ByteReader) (uint64, error) {
	var x uint64
	for i := 0; i < 10; i++ {
		b, err := r.ReadByte()
		if err != nil {
			return 0, err
		}
		if i == 9 && b > 1 {
			break
		}
		x |= uint64(b&0x7f) << (7 * i)
		if b < 0x80 {
			if i > 0 && b == 0 {
				return 0, errors.New("non-minimal varint")
			}
			return x, nil
		}
	}
	return 0, errors.New("varint overflows 64 bits")
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

// errShed is returned to a request the queue had to drop.
var errShed = errors.New("shed")

// scheduler admits at most limit handlers at once; the rest wait in a
// queue served by highest stake first (then arrival), and when the queue
// is full the lowest-stake waiter is shed.
type scheduler struct {
	mu      sync.Mutex
	running int
	limit   int
	max     int
	seq     uint64
	waiting waitHeap
}

type waiter struct {
	stake uint64
	seq   uint64
	ready chan error
	index int
}

func newScheduler(limit, maxQueue int) *scheduler { return &scheduler{limit: limit, max: maxQueue} }

func (s *scheduler) acquire(ctx context.Context, stake uint64) error {
	s.mu.Lock()
	if s.running < s.limit && len(s.waiting) == 0 {
		s.running++
		s.mu.Unlock()
		return nil
	}
	if len(s.waiting) >= s.max {
		// Full: shed the lowest-stake waiter if this one outranks it.
		low := s.waiting.lowest()
		if low == nil || low.stake >= stake {
			s.mu.Unlock()
			return errShed
		}
		heap.Remove(&s.waiting, low.index)
		low.ready <- errShed
	}
	s.seq++
	w := &waiter{stake: stake, seq: s.seq, ready: make(chan error, 1)}
	heap.Push(&s.waiting, w)
	s.mu.Unlock()
	select {
	case err := <-w.ready:
		return err
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		if w.index >= 0 {
			heap.Remove(&s.waiting, w.index)
			return ctx.Err()
		}
		// Admitted or shed at the same moment: honour that.
		err := <-w.ready
		if err == nil {
			s.running--
			s.promote()
		}
		return ctx.Err()
	}
}

func (s *scheduler) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.running--
	s.promote()
}

// promote admits waiters while there is room; s.mu is held.
func (s *scheduler) promote() {
	for s.running < s.limit && len(s.waiting) > 0 {
		w := heap.Pop(&s.waiting).(*waiter)
		s.running++
		w.ready <- nil
	}
}

// waitHeap orders waiters by stake (high first), then arrival.
type waitHeap []*waiter

func (h waitHeap) Len() int { return len(h) }
func (h waitHeap) Less(i, j int) bool {
	if h[i].stake != h[j].stake {
		return h[i].stake > h[j].stake
	}
	return h[i].seq < h[j].seq
}
func (h waitHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *waitHeap) Push(x any) {
	w := x.(*waiter)
	w.index = len(*h)
	*h = append(*h, w)
}
func (h *waitHeap) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.index = -1
	return w
}

// lowest returns the waiter that would be served last.
func (h waitHeap) lowest() *waiter {
	var low *waiter
	for _, w := range h {
		if low == nil || w.stake < low.stake || (w.stake == low.stake && w.seq > low.seq) {
			low = w
		}
	}
	return low
}
