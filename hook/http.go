package hook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// HTTPConfig configures an HTTP hook: an endpoint that answers a POSTed
// JSON object with a JSON object (judges) or a GET with tasks.
type HTTPConfig struct {
	// Name names the hook in logs, errors and metrics.
	Name string
	// URL is the endpoint, http or https, without credentials (put them
	// in Header).
	URL string
	// Header is sent with every request (e.g. Authorization).
	Header http.Header
	// Limits: Timeout per request (connecting, sending, reading the
	// whole reply), MaxOutput bytes per reply body, Concurrency requests
	// at once. CPUSeconds and MemoryBytes do not apply.
	Limits Limits
	// Logger receives failures (nil: slog.Default()), with hook=Name.
	Logger *slog.Logger
	// Metrics counts calls (nil: not counted).
	Metrics *Metrics
}

// DefaultHTTPConfig is a hook named name for url with DefaultLimits.
func DefaultHTTPConfig(name, url string) HTTPConfig {
	return HTTPConfig{Name: name, URL: url, Limits: DefaultLimits(), Logger: slog.Default()}
}

// HTTP is an endpoint hook. Redirects are not followed (a 3xx is a status
// failure); replies are read whole, up to Limits.MaxOutput bytes after
// any content decoding. Safe for concurrent use.
type HTTP struct {
	cfg     HTTPConfig
	url     string // for messages: without query or fragment
	client  *http.Client
	tr      *http.Transport
	sem     chan struct{}
	log     *slog.Logger
	warn    *rateLimiter
	metrics hookMetrics

	base   context.Context // canceled by Close
	cancel context.CancelFunc

	mu     sync.Mutex
	closed bool
	done   chan struct{}
}

// NewHTTP checks cfg and returns the hook. It connects to nothing yet.
func NewHTTP(cfg HTTPConfig) (*HTTP, error) {
	if err := validName(cfg.Name); err != nil {
		return nil, err
	}
	if err := cfg.Limits.validate(); err != nil {
		return nil, fmt.Errorf("hook %s: %w", cfg.Name, err)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("hook %s: url: %w", cfg.Name, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("hook %s: url %q: want http://HOST/… or https://HOST/…", cfg.Name, cfg.URL)
	}
	if u.User != nil {
		return nil, fmt.Errorf("hook %s: url: credentials in the URL are refused; send them in a header", cfg.Name)
	}
	shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		MaxIdleConns:        cfg.Limits.Concurrency,
		MaxIdleConnsPerHost: cfg.Limits.Concurrency,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: cfg.Limits.Timeout,
		ForceAttemptHTTP2:   true,
	}
	h := &HTTP{
		cfg: cfg,
		url: shown.String(),
		tr:  tr,
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		sem:     make(chan struct{}, cfg.Limits.Concurrency),
		log:     log.With("hook", cfg.Name),
		warn:    newRateLimiter(1, 10),
		metrics: cfg.Metrics.forHook(cfg.Name),
		done:    make(chan struct{}),
	}
	h.base, h.cancel = context.WithCancel(context.Background())
	return h, nil
}

// Call POSTs body (a JSON value) and returns the reply body, which must be
// one JSON value. Failures wrap ErrFailed and name the hook and its URL.
func (h *HTTP) Call(ctx context.Context, body []byte) ([]byte, error) {
	start := time.Now()
	reply, err := h.do(ctx, http.MethodPost, body)
	if err == nil && !json.Valid(reply) {
		err = h.fail(ErrBadOutput, fmt.Sprintf("the reply is not one JSON value: %q", clip(reply)))
	}
	h.metrics.observe(start, err)
	if err != nil {
		return nil, err
	}
	return reply, nil
}

// Get GETs the URL and returns the reply body as it is (task sources
// parse it). Failures wrap ErrFailed.
func (h *HTTP) Get(ctx context.Context) ([]byte, error) {
	start := time.Now()
	reply, err := h.do(ctx, http.MethodGet, nil)
	h.metrics.observe(start, err)
	return reply, err
}

func (h *HTTP) do(ctx context.Context, method string, body []byte) ([]byte, error) {
	select {
	case h.sem <- struct{}{}:
	case <-h.done:
		return nil, h.fail(ErrClosed, "")
	case <-ctx.Done():
		return nil, h.ctxErr(ctx)
	}
	defer func() { <-h.sem }()
	cctx, cancel := context.WithTimeout(ctx, h.cfg.Limits.Timeout)
	defer cancel()
	stop := context.AfterFunc(h.base, cancel) // Close ends calls in flight
	defer stop()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(cctx, method, h.cfg.URL, rd)
	if err != nil {
		return nil, fmt.Errorf("hook %s: %w", h.cfg.Name, err)
	}
	for k, vs := range h.cfg.Header {
		req.Header[k] = append([]string(nil), vs...)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if req.Header.Get("Accept") == "" {
		req.Header.Set("Accept", "application/json")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, h.transportErr(ctx, cctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		err := h.fail(ErrStatus, fmt.Sprintf("%s: %s", resp.Status, printable(snippet)))
		h.warnf("hook endpoint answered an error status", "status", resp.StatusCode)
		return nil, err
	}
	if resp.ContentLength > int64(h.cfg.Limits.MaxOutput) {
		return nil, h.fail(ErrTooLarge, fmt.Sprintf("a reply of %d bytes, over %d", resp.ContentLength, h.cfg.Limits.MaxOutput))
	}
	reply, err := io.ReadAll(io.LimitReader(resp.Body, int64(h.cfg.Limits.MaxOutput)+1))
	if err != nil {
		return nil, h.transportErr(ctx, cctx, err)
	}
	if len(reply) > h.cfg.Limits.MaxOutput {
		return nil, h.fail(ErrTooLarge, fmt.Sprintf("a reply over %d bytes", h.cfg.Limits.MaxOutput))
	}
	return reply, nil
}

// transportErr classifies a failed request or body read.
func (h *HTTP) transportErr(ctx, cctx context.Context, err error) error {
	switch {
	case h.isClosed():
		return h.fail(ErrClosed, "")
	case ctx.Err() != nil:
		return h.ctxErr(ctx)
	case cctx.Err() != nil:
		h.warnf("hook endpoint timed out", "timeout", h.cfg.Limits.Timeout)
		return h.fail(ErrTimeout, fmt.Sprintf("no reply within %v", h.cfg.Limits.Timeout))
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		err = uerr.Err // without the method and full URL
	}
	h.warnf("hook endpoint unreachable", "err", err)
	return h.fail(ErrUnreachable, err.Error())
}

func (h *HTTP) ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("hook %s (%s): call abandoned: %w", h.cfg.Name, h.url, ctx.Err())
	}
	return fmt.Errorf("hook %s (%s): %w: no reply by the caller's deadline (%w)", h.cfg.Name, h.url, ErrTimeout, context.DeadlineExceeded)
}

func (h *HTTP) fail(kind error, detail string) error {
	if detail == "" {
		return fmt.Errorf("hook %s (%s): %w", h.cfg.Name, h.url, kind)
	}
	return fmt.Errorf("hook %s (%s): %w: %s", h.cfg.Name, h.url, kind, detail)
}

func (h *HTTP) warnf(msg string, args ...any) {
	ok, dropped := h.warn.allow(time.Now())
	if !ok {
		return
	}
	if dropped > 0 {
		args = append(args, "suppressed", dropped)
	}
	h.log.Warn(msg, args...)
}

func (h *HTTP) isClosed() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.closed
}

// Close fails later calls with ErrClosed and closes idle connections.
// Safe to call more than once.
func (h *HTTP) Close() error {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.done)
	}
	h.mu.Unlock()
	h.cancel()
	h.tr.CloseIdleConnections()
	return nil
}

// printable makes a peer's bytes fit for an error message: valid UTF-8,
// no control characters, at most 200 bytes.
func printable(b []byte) string {
	s := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(string(b), "\uFFFD"))
	s = strings.TrimSpace(s)
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "") + "…"
	}
	return s
}
