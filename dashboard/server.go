package dashboard

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed index.html
var indexHTML []byte

// Server is a running dashboard.
type Server struct {
	cfg    Config
	src    Source
	ln     net.Listener
	srv    *http.Server
	log    *slog.Logger
	ctx    context.Context // ends on Close or when Start's context ends
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// Start listens on cfg.Addr and serves the dashboard of src until ctx ends
// or Close is called.
func Start(ctx context.Context, cfg Config, src Source) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if src == nil {
		return nil, errors.New("dashboard: no source")
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("dashboard: listening on %s: %w", cfg.Addr, err)
	}
	s := &Server{cfg: cfg, src: src, ln: ln, log: cfg.Logger.With("component", "dashboard")}
	s.ctx, s.cancel = context.WithCancel(ctx)
	s.srv = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: cfg.ReadHeaderTimeout,
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	s.wg.Add(2)
	go s.serve()
	go s.stopOnDone()
	s.log.Info("dashboard serving", "url", s.URL())
	return s, nil
}

func (s *Server) serve() {
	defer s.wg.Done()
	if err := s.srv.Serve(s.ln); !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("dashboard stopped serving", "err", err)
		s.cancel()
	}
}

// stopOnDone shuts the server down when its context ends: it stops
// accepting, lets requests in flight finish for up to ShutdownTimeout, then
// cuts what is left.
func (s *Server) stopOnDone() {
	defer s.wg.Done()
	<-s.ctx.Done()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		s.log.Warn("dashboard shutdown cut requests in flight", "err", err)
		s.srv.Close()
	}
}

// URL is the dashboard's address, such as http://127.0.0.1:41234 (for an
// unspecified listen host, the IPv4 loopback address).
func (s *Server) URL() string {
	addr := s.ln.Addr().(*net.TCPAddr)
	ip := addr.IP
	if ip.IsUnspecified() {
		// Listening on all addresses (Go's "tcp" listener takes IPv4 too).
		ip = net.IPv4(127, 0, 0, 1)
	}
	return "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(addr.Port))
}

// Close stops the server and waits for its goroutines. It is safe to call
// more than once.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.wg.Wait()
	})
	return nil
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /api/state", s.state)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	if s.cfg.Gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{
			ErrorLog:      slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
			ErrorHandling: promhttp.ContinueOnError,
		}))
	}
	return mux
}

func (s *Server) index(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page is self-contained: it loads nothing but /api/state.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:")
	w.Write(indexHTML)
}

func (s *Server) state(w http.ResponseWriter, _ *http.Request) {
	b, err := json.Marshal(s.src.State())
	if err != nil {
		s.log.Error("encoding dashboard state", "err", err)
		http.Error(w, "encoding state: "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.Write(b)
}
