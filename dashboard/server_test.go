package dashboard

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeSource serves a fixed State that a test may replace.
type fakeSource struct {
	mu sync.Mutex
	st State
}

func (f *fakeSource) State() State {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.st
}

func (f *fakeSource) set(st State) {
	f.mu.Lock()
	f.st = st
	f.mu.Unlock()
}

// sampleState is a subnet of one validator, an honest miner and a lazy one
// after three epochs.
func sampleState() State {
	return State{
		ChainID: "cybertensor-test", Block: 42, Epochs: 3, Decimals: 9,
		Subnets: []Subnet{{
			Netuid: 1, Name: "qa", Tempo: 3, Epochs: 3,
			Neurons: []Neuron{
				{UID: 0, Hotkey: "ct1validator", Role: "validator", Online: true, Stake: 1_000_000_000_000, Dividends: 1, Trust: 0, Emission: 500_000_000, QueriesSent: 30, WeightSets: 3, Heard: 2, KnowledgeShared: 12},
				{UID: 1, Hotkey: "ct1honest", Role: "miner", Online: true, Incentive: 0.97, Trust: 0.98, Emission: 480_000_000, QueriesServed: 15, Heard: 2, KnowledgeFetched: 12,
					OrganicRequests: 7, OrganicTokens: 1234, OrganicFailures: 1},
				{UID: 2, Hotkey: "ct1lazy", Role: "miner", Adversary: "lazy", Online: true, Incentive: 0.03, Trust: 0.02, Emission: 20_000_000, QueriesServed: 15, Heard: 2, Duplicates: 4},
			},
			History: []EpochPoint{
				{Epoch: 1, Block: 4, Incentive: []float64{0, 0.5, 0.5}, Dividends: []float64{1, 0, 0}},
				{Epoch: 2, Block: 8, Incentive: []float64{0, 0.8, 0.2}, Dividends: []float64{1, 0, 0}},
				{Epoch: 3, Block: 12, Incentive: []float64{0, 0.97, 0.03}, Dividends: []float64{1, 0, 0}},
			},
		}},
		Gossip:    GossipStats{Neurons: 3, Heard: 6, Pairs: 6, Duplicates: 4},
		Knowledge: KnowledgeStats{Shared: 12, Fetched: 12},
	}
}

// start serves src with a registry holding one gauge, and closes the server
// when the test ends.
func start(t *testing.T, src Source) *Server {
	t.Helper()
	reg := prometheus.NewRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "dashboard_test_answer", Help: "A test gauge."})
	g.Set(42)
	reg.MustRegister(g)
	cfg := DefaultTestConfig()
	cfg.Gatherer = reg
	s, err := Start(context.Background(), cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// client makes one connection per request, so no idle connection outlives
// a test.
var client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}

func get(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestState(t *testing.T) {
	src := &fakeSource{st: sampleState()}
	s := start(t, src)
	resp, body := get(t, s.URL()+"/api/state")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var got State
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatal(err)
	}
	if want := sampleState(); !reflect.DeepEqual(got, want) {
		t.Errorf("state round trip:\n got %+v\nwant %+v", got, want)
	}
	for _, key := range []string{`"chain_id":"cybertensor-test"`, `"incentive":[0,0.5,0.5]`, `"adversary":"lazy"`, `"knowledge_fetched":12`} {
		if !strings.Contains(body, key) {
			t.Errorf("JSON lacks %s: %s", key, body)
		}
	}
	// Each request reads the source afresh.
	next := sampleState()
	next.Block = 43
	src.set(next)
	if _, body := get(t, s.URL()+"/api/state"); !strings.Contains(body, `"block":43`) {
		t.Errorf("state not refreshed: %s", body)
	}
}

func TestPage(t *testing.T) {
	s := start(t, &fakeSource{})
	resp, body := get(t, s.URL()+"/")
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, want := range []string{`id="metagraph"`, `id="chart"`, `id="stats"`, `/api/state`} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %s", want)
		}
	}
	// The page works offline: it loads no script, style or font from
	// elsewhere, and the browser is told to refuse any.
	for _, bad := range []string{"<script src", "<link", "@import", "https://"} {
		if strings.Contains(body, bad) {
			t.Errorf("page references an external asset (%q)", bad)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
}

func TestMetricsAndHealth(t *testing.T) {
	s := start(t, &fakeSource{})
	resp, body := get(t, s.URL()+"/metrics")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "dashboard_test_answer 42") {
		t.Errorf("/metrics: status %d:\n%s", resp.StatusCode, body)
	}
	resp, body = get(t, s.URL()+"/healthz")
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Errorf("/healthz: status %d, %q", resp.StatusCode, body)
	}

	// Without a Gatherer there is no /metrics.
	cfg := DefaultTestConfig()
	bare, err := Start(context.Background(), cfg, &fakeSource{})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	if resp, _ := get(t, bare.URL()+"/metrics"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics without a gatherer: status %d", resp.StatusCode)
	}
}

func TestNotFound(t *testing.T) {
	s := start(t, &fakeSource{})
	for _, path := range []string{"/nope", "/api", "/api/state/x", "/index.html", "/metrics/x"} {
		if resp, _ := get(t, s.URL()+path); resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404", path, resp.StatusCode)
		}
	}
	resp, err := client.Post(s.URL()+"/api/state", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/state: status %d, want 405", resp.StatusCode)
	}
}

// refused reports whether nothing accepts connections at url's address.
func refused(t *testing.T, url string) bool {
	t.Helper()
	c, err := net.DialTimeout("tcp", strings.TrimPrefix(url, "http://"), time.Second)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

func TestCloseStopsServing(t *testing.T) {
	s, err := Start(context.Background(), DefaultTestConfig(), &fakeSource{})
	if err != nil {
		t.Fatal(err)
	}
	if resp, _ := get(t, s.URL()+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if !refused(t, s.URL()) {
		t.Error("still accepting connections after Close")
	}
}

func TestContextEndStopsServing(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	s, err := Start(ctx, DefaultTestConfig(), &fakeSource{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cancel()
	deadline := time.Now().Add(10 * time.Second)
	for !refused(t, s.URL()) {
		if time.Now().After(deadline) {
			t.Fatal("still serving 10s after the context ended")
		}
		select {
		case <-s.ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func TestURL(t *testing.T) {
	cfg := DefaultTestConfig()
	cfg.Addr = "0.0.0.0:0"
	s, err := Start(context.Background(), cfg, &fakeSource{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !strings.HasPrefix(s.URL(), "http://127.0.0.1:") {
		t.Errorf("URL %q for an unspecified address", s.URL())
	}
	if resp, _ := get(t, s.URL()+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestStartErrors(t *testing.T) {
	s := start(t, &fakeSource{})
	taken := DefaultTestConfig()
	taken.Addr = strings.TrimPrefix(s.URL(), "http://")
	if _, err := Start(context.Background(), taken, &fakeSource{}); err == nil || !strings.Contains(err.Error(), "listening on") {
		t.Errorf("address in use: %v", err)
	} else {
		var opErr *net.OpError
		if !errors.As(err, &opErr) {
			t.Errorf("error %v does not wrap the listener's", err)
		}
	}
	if _, err := Start(context.Background(), DefaultTestConfig(), nil); err == nil {
		t.Error("nil source accepted")
	}
	for _, mutate := range []func(*Config){
		func(c *Config) { c.Addr = "" },
		func(c *Config) { c.Logger = nil },
		func(c *Config) { c.ShutdownTimeout = 0 },
		func(c *Config) { c.ReadHeaderTimeout = -1 },
	} {
		cfg := DefaultTestConfig()
		mutate(&cfg)
		if s, err := Start(context.Background(), cfg, &fakeSource{}); err == nil {
			s.Close()
			t.Errorf("%+v accepted", cfg)
		}
	}
}
