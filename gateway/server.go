package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/subnet"
)

// TokenCharger is what a Limiter may also implement to charge the tokens
// of an answer after it (Allow charged the request, cost 1, before it).
type TokenCharger interface {
	ChargeTokens(keyID string, tokens int64, now time.Time)
}

// ErrClosed is returned by Serve on a closed server.
var ErrClosed = errors.New("gateway: server closed")

// Server is the gateway's HTTP server.
type Server struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	picker   *Picker
	metrics  *metrics
	gatherer prometheus.Gatherer
	ln       net.Listener
	http     *http.Server

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the refresh loop and API handlers

	mu      sync.Mutex
	closed  bool
	serving bool
	miners  map[uint16][]Miner // the last list read of each subnet
}

// New binds cfg.Listen and returns a server that answers once Serve runs.
func New(cfg Config, deps Deps) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil {
		deps.Logger = slog.Default()
	}
	picker, err := NewPicker(cfg.Routing, time.Now, mrand.Float64)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(deps.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gateway: registering metrics: %w", err)
	}
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("gateway: listening on %s: %w", cfg.Listen, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, deps: deps, log: deps.Logger.With("component", "gateway"), picker: picker, metrics: m,
		ln: ln, ctx: ctx, cancel: cancel, miners: map[uint16][]Miner{}}
	s.gatherer, _ = deps.Registerer.(prometheus.Gatherer)
	mux := http.NewServeMux()
	mux.Handle("/v1/chat/completions", s.api("chat", s.chat))
	mux.Handle("/v1/completions", s.api("completions", s.completions))
	mux.Handle("/v1/embeddings", s.api("embeddings", s.embeddings))
	mux.HandleFunc("/v1/models", s.models)
	mux.HandleFunc("/healthz", s.healthz)
	if s.gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) { writeError(w, errRoute) })
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute,
		MaxHeaderBytes: 64 << 10, BaseContext: func(net.Listener) context.Context { return ctx }}
	return s, nil
}

// Addr is the address the server listens on.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Serve answers API requests until ctx ends or Close is called; it reads
// the subnets' miners from the metagraph every cfg.MetagraphEvery.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	if s.closed || s.serving {
		s.mu.Unlock()
		return ErrClosed
	}
	s.serving = true
	s.wg.Add(2)
	s.mu.Unlock()
	go s.refreshLoop()
	go func() {
		defer s.wg.Done()
		select {
		case <-ctx.Done():
			s.http.Close()
		case <-s.ctx.Done():
		}
	}()
	err := s.http.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) || s.ctx.Err() != nil || ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("gateway: serving: %w", err)
}

// Close stops the server: open requests are cancelled (their miners'
// streams reset) and waited for. It is safe to call more than once.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.cancel()
	s.http.Close()
	s.ln.Close()
	s.wg.Wait()
	return nil
}

// refreshLoop reads every subnet's miners now and every MetagraphEvery.
func (s *Server) refreshLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.MetagraphEvery)
	defer t.Stop()
	for {
		keep := map[peer.ID]bool{}
		for _, netuid := range s.cfg.Subnets {
			ms, err := s.loadMiners(s.ctx, netuid)
			if err != nil {
				if s.ctx.Err() == nil {
					s.log.Warn("reading miners; keeping the last list", "netuid", netuid, "err", err)
				}
				s.mu.Lock()
				ms = s.miners[netuid]
				s.mu.Unlock()
			}
			for _, m := range ms {
				keep[m.Peer] = true
			}
		}
		s.picker.Forget(func(id peer.ID) bool { return keep[id] })
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Server) loadMiners(ctx context.Context, netuid uint16) ([]Miner, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	ms, err := s.deps.Metagraph.Miners(ctx, netuid)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.miners[netuid] = ms
	s.mu.Unlock()
	return ms, nil
}

// candidates are a subnet's miners, read now if never read before.
func (s *Server) candidates(ctx context.Context, netuid uint16) ([]Miner, error) {
	s.mu.Lock()
	ms, ok := s.miners[netuid]
	s.mu.Unlock()
	if ok {
		return ms, nil
	}
	return s.loadMiners(ctx, netuid)
}

// call is one API request being answered.
type call struct {
	s        *Server
	w        http.ResponseWriter
	r        *http.Request
	ctx      context.Context // ends at the deadline, when the client leaves or on Close
	deadline time.Time
	start    time.Time
	// u is the usage recorded when the call ends, if record is set.
	u      Usage
	record bool
	// minerUsage is the token usage the answering miner reported on its
	// last frame (nil if it reported none).
	minerUsage *pb.Usage
	status     int
	sent       int64
	// organic: the miners' answers to this request go to Deps.Organic.
	organic bool
}

// api wraps an endpoint that asks miners: POST only, an API key, and
// usage recorded when it ends.
func (s *Server) api(endpoint string, fn func(*call)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			writeError(w, unavailable("the gateway is shutting down"))
			return
		}
		s.wg.Add(1)
		s.mu.Unlock()
		defer s.wg.Done()
		start := time.Now()
		s.metrics.inFlight.Inc()
		defer s.metrics.inFlight.Dec()
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Deadline)
		defer cancel()
		stop := context.AfterFunc(s.ctx, cancel)
		defer stop()
		deadline, _ := ctx.Deadline()
		c := &call{s: s, w: w, r: r, ctx: ctx, deadline: deadline, start: start}
		defer c.finish(endpoint)
		if r.Method != http.MethodPost {
			c.fail(errMethod)
			return
		}
		keyID, ok := s.authenticate(r)
		if !ok {
			c.fail(errUnauthorized)
			return
		}
		c.record = true
		c.u = Usage{Time: start.UTC(), KeyID: keyID, RequestID: newID("gw-"), Status: protocol.StatusUnavailable.String()}
		fn(c)
	})
}

func (s *Server) authenticate(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	secret, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || secret == "" || len(secret) > 512 {
		return "", false
	}
	return s.deps.Auth.Authenticate(strings.TrimSpace(secret))
}

// finish counts the call and records its usage.
func (c *call) finish(endpoint string) {
	s := c.s
	if c.status == 0 { // the client left before any answer
		c.status = 499
	}
	s.metrics.requests.WithLabelValues(endpoint, strconv.Itoa(c.status)).Inc()
	s.metrics.latency.WithLabelValues(endpoint).Observe(time.Since(c.start).Seconds())
	if !c.record {
		return
	}
	c.u.HTTPStatus, c.u.ResponseBytes, c.u.Latency = c.status, c.sent, time.Since(c.start)
	if c.u.FirstByte > 0 {
		s.metrics.firstToken.Observe(c.u.FirstByte.Seconds())
	}
	if err := s.deps.Recorder.Record(c.u); err != nil {
		s.metrics.recordErrs.Inc()
		s.log.Error("recording usage", "request", c.u.RequestID, "key", c.u.KeyID, "err", err)
	}
}

// fail answers with e, unless the client has left.
func (c *call) fail(e *apiError) {
	if e == errGone {
		return
	}
	c.status = e.status
	c.sent += writeError(c.w, e)
}

// writeJSON answers status with v.
func (c *call) writeJSON(status int, v any) {
	c.status = status
	c.sent += writeJSON(c.w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) int64 {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"message":"encoding the answer failed","type":"server_error","param":null,"code":null}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	n, _ := w.Write(b)
	return int64(n)
}

func writeError(w http.ResponseWriter, e *apiError) int64 {
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", retryAfterValue(e.retryAfter))
	}
	return writeJSON(w, e.status, e.body())
}

// errGone stands for a client that left: nothing is answered.
var errGone = &apiError{status: 499, typ: "client_closed", message: "the client went away"}

// readBody reads the request body, at most cfg.MaxBody bytes.
func (c *call) readBody() ([]byte, *apiError) {
	limit := c.s.cfg.MaxBody
	if c.r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, limit))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, tooLarge(limit)
	case err != nil:
		if c.ctx.Err() != nil {
			return nil, errGone
		}
		return nil, badRequest("", "reading the body: %v", err)
	}
	c.u.RequestBytes = int64(len(b))
	return b, nil
}

// model resolves a model name "sn<netuid>/<synapse>" served here for an
// endpoint of synapse want.
func (s *Server) model(name, want string) (uint16, *apiError) {
	rest, ok := strings.CutPrefix(name, "sn")
	num, synapse, ok2 := strings.Cut(rest, "/")
	n, err := strconv.ParseUint(num, 10, 16)
	if !ok || !ok2 || err != nil || (synapse != subnet.SynapseChat && synapse != subnet.SynapseEmbed) || !s.serves(uint16(n)) {
		return 0, unknownModel(name)
	}
	if synapse != want {
		return 0, badRequest("model", "model %q serves %s, not this endpoint", name, synapse)
	}
	return uint16(n), nil
}

func (s *Server) serves(netuid uint16) bool {
	for _, n := range s.cfg.Subnets {
		if n == netuid {
			return true
		}
	}
	return false
}

// admit resolves the model, charges the key and fills in the usage.
func (c *call) admit(model, synapse string) (uint16, *apiError) {
	c.u.Model, c.u.Synapse = model, synapse
	netuid, e := c.s.model(model, synapse)
	if e != nil {
		return 0, e
	}
	c.u.Netuid = netuid
	if ok, retry := c.s.deps.Limiter.Allow(c.u.KeyID, 1, time.Now()); !ok {
		return 0, overQuota(retry)
	}
	return netuid, nil
}

// query is the protocol request for a body.
func (c *call) query(netuid uint16, synapse string, body []byte) (*pb.Request, *apiError) {
	req := &pb.Request{RequestId: c.u.RequestID, Netuid: uint32(netuid), Synapse: synapse, Body: body, WantReceipt: c.s.cfg.ReceiptAsked}
	if n := proto.Size(req) + 8; n > protocol.MaxRequestSize {
		return nil, tooLarge(protocol.MaxRequestSize - 64)
	}
	c.organic = c.s.deps.Organic != nil && c.s.deps.Organic.WantOrganic(netuid, synapse)
	return req, nil
}

// chargeTokens charges an answer's tokens where the limiter counts them.
func (c *call) chargeTokens() {
	if tc, ok := c.s.deps.Limiter.(TokenCharger); ok {
		tc.ChargeTokens(c.u.KeyID, c.u.PromptTokens+c.u.CompletionTokens, time.Now())
	}
}

// attempt is how forward hands one miner's answer to an endpoint.
type attempt struct {
	// reset readies for a new miner's answer.
	reset func()
	// sink takes each chunk (pending: more has arrived); an error ends
	// the miner's answer.
	sink func(chunk []byte, pending bool) error
	// committed reports whether the client has had bytes of an answer
	// (then no other miner may be tried).
	committed func() bool
	// check judges a whole answer the miner called OK.
	check func() error
	// whole is the answer received, for organic scoring: asked only of a
	// sampled call's answer that passed check.
	whole func() []byte
}

// Errors of miners' answers the gateway refuses.
var errAnswerTooLarge = errors.New("the miner's answer is too large")

// forward sends req to the subnet's miners, one after another as they
// fail before the client has had a byte, up to cfg.Retries more.
func (s *Server) forward(c *call, netuid uint16, req *pb.Request, a attempt) *apiError {
	cands, err := s.candidates(c.ctx, netuid)
	if err != nil {
		return unavailable("reading subnet %d's miners: %v", netuid, err)
	}
	tried := map[peer.ID]bool{}
	skip := func(id peer.ID) bool { return tried[id] }
	last := ""
	for range s.cfg.Retries + 1 {
		remaining := time.Until(c.deadline)
		if remaining < time.Millisecond {
			return deadlinePassed(s.cfg.Deadline)
		}
		m, ok := s.picker.Pick(cands, skip)
		if !ok {
			break
		}
		tried[m.Peer] = true
		c.u.Attempts++
		c.u.Miner, c.u.MinerPeer, c.u.Receipt = m.Hotkey, m.Peer.String(), nil
		req.TimeoutMs = uint32(min((remaining+time.Millisecond-1)/time.Millisecond, math.MaxUint32))
		a.reset()
		var first time.Duration
		var sinkErr error
		sent := time.Now()
		res := s.deps.Querier.Query(c.ctx, m, req, func(b []byte, pending bool) error {
			if first == 0 {
				first = max(time.Since(sent), 1)
				if c.u.FirstByte == 0 {
					c.u.FirstByte = time.Since(c.start)
				}
			}
			if err := a.sink(b, pending); err != nil {
				sinkErr = err
				return err
			}
			return nil
		})
		c.u.Status = res.Status.String()
		c.minerUsage = res.Usage
		if res.Receipt != nil {
			if raw, err := proto.Marshal(res.Receipt); err == nil {
				c.u.Receipt = raw
			}
		}
		var checkErr error
		if sinkErr == nil && res.Err == nil && res.Status == protocol.StatusOK {
			if checkErr = a.check(); checkErr == nil {
				s.done(m, Succeeded, cmp(first, res.Latency))
				if c.organic {
					c.handOrganic(m, req, res, a.whole(), nil, time.Duration(req.TimeoutMs)*time.Millisecond)
				}
				return nil
			}
		}
		switch {
		case errors.Is(sinkErr, errClientGone), errors.Is(c.ctx.Err(), context.Canceled):
			s.done(m, Neutral, 0)
			return errGone
		case errors.Is(c.ctx.Err(), context.DeadlineExceeded):
			s.done(m, Failed, 0)
			return deadlinePassed(s.cfg.Deadline)
		}
		s.done(m, Failed, 0)
		if c.organic {
			invalid := checkErr
			if invalid == nil && res.Status == protocol.StatusOK {
				invalid = sinkErr // too large
			}
			c.handOrganic(m, req, res, nil, invalid, time.Duration(req.TimeoutMs)*time.Millisecond)
		}
		last = describe(m, res, sinkErr, checkErr)
		s.log.Debug("miner failed", "request", c.u.RequestID, "miner", m.Hotkey, "why", last, "committed", a.committed())
		if a.committed() {
			return &apiError{status: http.StatusBadGateway, typ: "server_error", code: "miner_failed",
				message: "the miner failed after its answer began: " + last}
		}
	}
	if time.Until(c.deadline) < time.Millisecond {
		return deadlinePassed(s.cfg.Deadline)
	}
	if len(tried) == 0 {
		return unavailable("no miner of subnet %d is available now", netuid)
	}
	return unavailable("%d miner(s) of subnet %d tried, none answered; the last: %s", len(tried), netuid, last)
}

// cmp is the first byte's latency if it came, else the whole latency.
func cmp(first, whole time.Duration) time.Duration {
	if first > 0 {
		return first
	}
	return whole
}

func (s *Server) done(m Miner, o Outcome, latency time.Duration) {
	s.picker.Done(m.Peer, o, latency)
	s.metrics.attempts.WithLabelValues([...]string{"ok", "failed", "neutral"}[o]).Inc()
}

// describe says why a miner's answer failed.
func describe(m Miner, res protocol.Result, sinkErr, checkErr error) string {
	why := res.Status.String()
	switch {
	case sinkErr != nil:
		why = sinkErr.Error()
	case checkErr != nil:
		why = checkErr.Error()
	case res.Err != nil:
		why += ": " + res.Err.Error()
	case res.Message != "":
		why += ": " + res.Message
	}
	if len(why) > 300 {
		why = why[:300] + "…"
	}
	return fmt.Sprintf("miner uid %d (%s): %s", m.UID, m.Hotkey, why)
}

// chat serves POST /v1/chat/completions.
func (s *Server) chat(c *call) {
	body, e := c.readBody()
	if e != nil {
		c.fail(e)
		return
	}
	p, e := decodeChatCompletion(body)
	if e != nil {
		c.fail(e)
		return
	}
	s.text(c, p)
}

// completions serves POST /v1/completions.
func (s *Server) completions(c *call) {
	body, e := c.readBody()
	if e != nil {
		c.fail(e)
		return
	}
	p, e := decodeCompletion(body)
	if e != nil {
		c.fail(e)
		return
	}
	s.text(c, p)
}

// text forwards a text.chat request and answers it whole or as events.
func (s *Server) text(c *call, p textParams) {
	netuid, e := c.admit(p.model, subnet.SynapseChat)
	if e != nil {
		c.fail(e)
		return
	}
	req, e := c.query(netuid, subnet.SynapseChat, p.req.Encode())
	if e != nil {
		c.fail(e)
		return
	}
	id, created := newID(map[bool]string{false: "chatcmpl-", true: "cmpl-"}[p.completionAPI]), time.Now().Unix()
	c.u.PromptTokens = p.promptWords
	if p.stream {
		s.streamText(c, p, req, id, created)
		return
	}
	var buf []byte
	e = s.forward(c, netuid, req, attempt{
		reset: func() { buf = buf[:0] },
		sink: func(b []byte, _ bool) error {
			if len(buf)+len(b) > s.cfg.MaxAnswer {
				return errAnswerTooLarge
			}
			buf = append(buf, b...)
			return nil
		},
		committed: func() bool { return false },
		check: func() error {
			if !utf8.Valid(buf) {
				return errInvalidUTF8
			}
			return nil
		},
		whole: func() []byte { return buf },
	})
	if e != nil {
		c.fail(e)
		return
	}
	answer := string(buf)
	c.countTokens(countWords(answer))
	usage := usageOut{PromptTokens: c.u.PromptTokens, CompletionTokens: c.u.CompletionTokens, TotalTokens: c.u.PromptTokens + c.u.CompletionTokens}
	if p.completionAPI {
		c.writeJSON(http.StatusOK, textCompletion{ID: id, Object: "text_completion", Created: created, Model: p.model,
			Choices: []textChoice{{Text: answer, FinishReason: "stop", Logprobs: jsonNull}}, Usage: usage})
		return
	}
	c.writeJSON(http.StatusOK, chatCompletion{ID: id, Object: "chat.completion", Created: created, Model: p.model,
		Choices: []chatChoice{{Message: chatMessageOut{Role: "assistant", Content: answer}, FinishReason: "stop", Logprobs: jsonNull}}, Usage: usage})
}

// countTokens sets the call's token usage and charges it to the key: the
// miner's own count when its last frame carried one (protocol/SPEC.md
// §2.6), else the gateway's: the prompt's and the answer's
// whitespace-separated words (words).
func (c *call) countTokens(words int64) {
	if u := c.minerUsage; u != nil {
		c.u.PromptTokens, c.u.CompletionTokens = int64(u.PromptTokens), int64(u.CompletionTokens)
	} else {
		c.u.CompletionTokens = words
	}
	c.chargeTokens()
}

// streamText forwards a text.chat request and answers with server-sent
// events as the miner's chunks arrive.
func (s *Server) streamText(c *call, p textParams, req *pb.Request, id string, created int64) {
	sse := newSSE(c.w)
	object := "chat.completion.chunk"
	if p.completionAPI {
		object = "text_completion"
	}
	chunk := func(text *string, finish *string) chatChunk {
		ch := chunkChoice{FinishReason: finish, Logprobs: jsonNull}
		switch {
		case p.completionAPI && text == nil:
			ch.Text = new(string)
		case p.completionAPI:
			ch.Text = text
		case !sse.started:
			ch.Delta = &chunkDelta{Role: "assistant", Content: text}
		default:
			ch.Delta = &chunkDelta{Content: text}
		}
		return chatChunk{ID: id, Object: object, Created: created, Model: p.model, Choices: []chunkChoice{ch}}
	}
	// Text events after the first are written from a template: the
	// per-token path encodes only the text.
	head, _ := json.Marshal(chatChunk{ID: id, Object: object, Created: created, Model: p.model})
	head = append(bytes.TrimSuffix(head, []byte(`"choices":null}`)), `"choices":[{"index":0,`...)
	if p.completionAPI {
		head = append(head, `"text":`...)
	} else {
		head = append(head, `"delta":{"content":`...)
	}
	tail := `,"finish_reason":null,"logprobs":null}]}`
	if !p.completionAPI {
		tail = "}" + tail
	}
	textEvent := func(t string, flush bool) error {
		if !sse.started {
			return sse.event(chunk(&t, nil), flush)
		}
		b := append(append(sse.buf[:0], "data: "...), head...)
		b = appendJSONString(b, t)
		b = append(append(b, tail...), "\n\n"...)
		sse.buf = b
		return sse.write(b, flush)
	}
	var (
		join  utf8Joiner
		words wordCounter
		total int
		kept  []byte // the answer, kept for organic scoring
	)
	netuid := uint16(req.Netuid)
	e := s.forward(c, netuid, req, attempt{
		reset: func() { join, words, total, kept = utf8Joiner{}, wordCounter{}, 0, kept[:0] },
		sink: func(b []byte, pending bool) error {
			if total += len(b); total > s.cfg.MaxAnswer {
				return errAnswerTooLarge
			}
			if c.organic {
				kept = append(kept, b...)
			}
			t, err := join.push(b)
			if err != nil || t == "" {
				return err
			}
			words.feed(t)
			return textEvent(t, !pending)
		},
		committed: func() bool { return sse.started },
		check:     join.end,
		whole:     func() []byte { return kept },
	})
	defer func() { c.sent = sse.written }()
	// The events that end the stream are written unflushed: they go out
	// with the response's end, after the usage is recorded (call.finish),
	// in one write, so a client that saw its stream end finds the request
	// in the usage ledger (TestStreamEndsAfterItsUsageIsRecorded).
	if e != nil {
		if !sse.started {
			c.fail(e)
			return
		}
		// Mid-stream: the answer ends with an error event and no [DONE].
		c.status = http.StatusOK
		sse.event(e.body(), false)
		return
	}
	c.status = http.StatusOK
	c.countTokens(words.n)
	stop := "stop"
	if !sse.started {
		empty := ""
		sse.event(chunk(&empty, nil), false)
	}
	sse.event(chunk(nil, &stop), false)
	if p.includeUsage {
		sse.event(chatChunk{ID: id, Object: object, Created: created, Model: p.model, Choices: []chunkChoice{},
			Usage: &usageOut{PromptTokens: c.u.PromptTokens, CompletionTokens: c.u.CompletionTokens, TotalTokens: c.u.PromptTokens + c.u.CompletionTokens}}, false)
	}
	sse.done()
}

// embeddings serves POST /v1/embeddings.
func (s *Server) embeddings(c *call) {
	body, e := c.readBody()
	if e != nil {
		c.fail(e)
		return
	}
	p, e := decodeEmbedding(body)
	if e != nil {
		c.fail(e)
		return
	}
	netuid, e := c.admit(p.model, subnet.SynapseEmbed)
	if e != nil {
		c.fail(e)
		return
	}
	req, e := c.query(netuid, subnet.SynapseEmbed, p.req.Encode())
	if e != nil {
		c.fail(e)
		return
	}
	c.u.PromptTokens = p.promptWords
	limit := min(s.cfg.MaxAnswer, subnet.MaxEmbedAnswer)
	var buf []byte
	var answer subnet.EmbedAnswer
	e = s.forward(c, netuid, req, attempt{
		reset: func() { buf = buf[:0] },
		sink: func(b []byte, _ bool) error {
			if len(buf)+len(b) > limit {
				return errAnswerTooLarge
			}
			buf = append(buf, b...)
			return nil
		},
		committed: func() bool { return false },
		check: func() (err error) {
			answer, err = subnet.DecodeEmbedAnswer(buf, p.req)
			return err
		},
		whole: func() []byte { return buf },
	})
	if e != nil {
		c.fail(e)
		return
	}
	c.countTokens(0)
	out := embeddingList{Object: "list", Model: p.model, Usage: embedUsage{PromptTokens: c.u.PromptTokens, TotalTokens: c.u.PromptTokens}}
	for i, v := range answer.Embeddings {
		item := embeddingItem{Object: "embedding", Index: i, Embedding: v}
		if p.base64 {
			raw := make([]byte, 4*len(v))
			for j, x := range v {
				binary.LittleEndian.PutUint32(raw[4*j:], math.Float32bits(float32(x)))
			}
			item.Embedding = base64.StdEncoding.EncodeToString(raw)
		}
		out.Data = append(out.Data, item)
	}
	c.writeJSON(http.StatusOK, out)
}

// models serves GET /v1/models: one model per subnet and synapse.
func (s *Server) models(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, errMethod)
		return
	}
	if _, ok := s.authenticate(r); !ok {
		writeError(w, errUnauthorized)
		return
	}
	list := modelList{Object: "list", Data: []modelInfo{}}
	for _, n := range s.cfg.Subnets {
		for _, syn := range []string{subnet.SynapseChat, subnet.SynapseEmbed} {
			list.Data = append(list.Data, modelInfo{ID: fmt.Sprintf("sn%d/%s", n, syn), Object: "model", OwnedBy: fmt.Sprintf("subnet-%d", n)})
		}
	}
	writeJSON(w, http.StatusOK, list)
}

// healthz serves GET /healthz: 200 when some served subnet has a miner
// with an axon, 503 otherwise, with the count per subnet.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	counts := map[string]int{}
	total := 0
	for _, n := range s.cfg.Subnets {
		counts[strconv.Itoa(int(n))] = len(s.miners[n])
		total += len(s.miners[n])
	}
	s.mu.Unlock()
	status, state := http.StatusOK, "ok"
	if total == 0 {
		status, state = http.StatusServiceUnavailable, "no miners"
	}
	writeJSON(w, status, map[string]any{"status": state, "miners": counts})
}

// newID is prefix and 24 random hex digits.
func newID(prefix string) string {
	var b [12]byte
	rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
