package hook

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func newTestHTTP(t *testing.T, url string, mutate func(*HTTPConfig)) *HTTP {
	t.Helper()
	cfg := DefaultHTTPConfig("judge", url)
	cfg.Logger = testConfig(t, nil).Logger
	cfg.Limits.Timeout = 5 * time.Second
	if mutate != nil {
		mutate(&cfg)
	}
	h, err := NewHTTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func TestHTTPCallAndGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		switch r.Method {
		case http.MethodPost:
			if r.Header.Get("Content-Type") != "application/json" {
				http.Error(w, "not json", http.StatusUnsupportedMediaType)
				return
			}
			body, _ := io.ReadAll(r.Body)
			fmt.Fprintf(w, `{"score":0.5,"fields":{"got":%s}}`, body)
		case http.MethodGet:
			io.WriteString(w, "{\"request\":{\"text\":\"a\"}}\n{\"request\":{\"text\":\"b\"}}\n")
		}
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	h := newTestHTTP(t, srv.URL+"/judge?x=1", func(c *HTTPConfig) {
		c.Header = http.Header{"Authorization": {"Bearer k"}}
		c.Metrics = m
	})
	ctx := context.Background()
	reply, err := h.Call(ctx, []byte(`{"answer":"x"}`))
	if err != nil || string(reply) != `{"score":0.5,"fields":{"got":{"answer":"x"}}}` {
		t.Fatalf("call: %s %v", reply, err)
	}
	tasks, err := h.Get(ctx)
	if err != nil || strings.Count(string(tasks), "\n") != 2 {
		t.Fatalf("get: %q %v", tasks, err)
	}
	if got := testutil.ToFloat64(m.calls.WithLabelValues("judge")); got != 2 {
		t.Errorf("calls_total %v, want 2", got)
	}
	// Without the key: a status failure that names the hook, the status
	// and what the server said, and not the query string.
	h2 := newTestHTTP(t, srv.URL+"/judge?secret=1", func(c *HTTPConfig) { c.Metrics = m })
	_, err = h2.Call(ctx, []byte(`{}`))
	if !errors.Is(err, ErrStatus) || !strings.Contains(err.Error(), "hook judge") ||
		!strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "no key") || strings.Contains(err.Error(), "secret") {
		t.Fatalf("unauthorized: %v", err)
	}
	if got := testutil.ToFloat64(m.failures.WithLabelValues("judge", "status")); got != 1 {
		t.Errorf("failures_total{reason=status} %v, want 1", got)
	}
}

func TestHTTPFailures(t *testing.T) {
	release := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/garbage", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "<html>oops</html>") })
	mux.HandleFunc("/big", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `"`+strings.Repeat("x", 5000)+`"`)
	})
	mux.HandleFunc("/bigchunked", func(w http.ResponseWriter, r *http.Request) {
		for range 50 {
			io.WriteString(w, strings.Repeat("x", 1000))
			w.(http.Flusher).Flush()
		}
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/garbage", http.StatusFound)
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "judge\x00broke\n"+strings.Repeat("z", 1000), http.StatusInternalServerError)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer close(release)
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()

	cases := []struct {
		path string
		url  string
		want error
	}{
		{path: "/garbage", want: ErrBadOutput},
		{path: "/big", want: ErrTooLarge},
		{path: "/bigchunked", want: ErrTooLarge},
		{path: "/slow", want: ErrTimeout},
		{path: "/redirect", want: ErrStatus},
		{path: "/fail", want: ErrStatus},
		{url: deadURL, want: ErrUnreachable},
	}
	for _, c := range cases {
		t.Run(c.path+c.url, func(t *testing.T) {
			url := srv.URL + c.path
			if c.url != "" {
				url = c.url
			}
			h := newTestHTTP(t, url, func(cfg *HTTPConfig) {
				cfg.Limits.MaxOutput = 4096
				cfg.Limits.Timeout = 300 * time.Millisecond
			})
			_, err := h.Call(context.Background(), []byte(`{}`))
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), "hook judge") {
				t.Fatalf("%v, want %v", err, c.want)
			}
			if strings.ContainsAny(err.Error(), "\x00\n") || len(err.Error()) > 400 {
				t.Fatalf("the error carries the server's bytes unbounded: %q", err)
			}
		})
	}
}

func TestHTTPConcurrencyBoundAndClose(t *testing.T) {
	var inFlight, most atomic.Int32
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for {
			m := most.Load()
			if n <= m || most.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, `{}`)
	}))
	defer srv.Close()
	h := newTestHTTP(t, srv.URL, func(c *HTTPConfig) { c.Limits.Concurrency = 2 })
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.Call(context.Background(), []byte(`{}`))
			errs <- err
		}()
	}
	eventually(t, 10*time.Second, "two requests in flight", func() bool { return inFlight.Load() == 2 })
	close(release)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if most.Load() != 2 {
		t.Fatalf("%d requests in flight at once; want 2 (Concurrency 2)", most.Load())
	}

	// Close ends a call in flight and refuses later ones.
	block := make(chan struct{})
	srv2 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // the server notices a gone client only after the body
		close(block)
		<-r.Context().Done()
	}))
	defer srv2.Close()
	h2 := newTestHTTP(t, srv2.URL, nil)
	done := make(chan error, 1)
	go func() {
		_, err := h2.Call(context.Background(), []byte(`{}`))
		done <- err
	}()
	<-block
	h2.Close()
	if err := <-done; !errors.Is(err, ErrClosed) {
		t.Fatalf("call in flight at Close: %v", err)
	}
	if _, err := h2.Get(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v", err)
	}
}

func TestNewHTTPRefusesBadConfig(t *testing.T) {
	for _, url := range []string{"", "ftp://x/y", "http://", "http://user:pass@host/", "://bad", "/relative"} {
		cfg := DefaultHTTPConfig("judge", url)
		if h, err := NewHTTP(cfg); err == nil {
			h.Close()
			t.Errorf("url %q accepted", url)
		} else if strings.Contains(err.Error(), "pass") {
			t.Errorf("error shows the password: %v", err)
		}
	}
	cfg := DefaultHTTPConfig("judge", "http://127.0.0.1:1/")
	cfg.Limits.Concurrency = 0
	if _, err := NewHTTP(cfg); err == nil {
		t.Error("concurrency 0 accepted")
	}
}
