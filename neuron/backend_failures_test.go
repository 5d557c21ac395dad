package neuron

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// The failure log keeps to one line per synapse per window, and the next
// line says how many failures went unlogged.
func TestFailureLogRateLimits(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	f := newFailureLog(10*time.Second, func() time.Time { return now })
	step := func(d time.Duration, syn string, wantLog bool, wantSuppressed int) {
		t.Helper()
		now = now.Add(d)
		if log, sup := f.record(syn); log != wantLog || sup != wantSuppressed {
			t.Fatalf("at +%v %s: log %v suppressed %d, want %v %d", d, syn, log, sup, wantLog, wantSuppressed)
		}
	}
	step(0, "a", true, 0)
	step(time.Second, "a", false, 0)
	step(time.Second, "b", true, 0) // another synapse has its own window
	step(7*time.Second, "a", false, 0)
	step(time.Second, "a", true, 2) // 10 s after the first line: 2 unlogged
	step(9*time.Second, "a", false, 0)
	step(time.Hour, "a", true, 1)
	step(0, "b", true, 0)
}

func TestBackendFailureClassification(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithCancel(live)
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{live, nil, false},
		{live, errors.New("model crashed"), true},
		{live, protocol.Errorf(protocol.StatusInternal, "oom"), true},
		{live, protocol.Errorf(protocol.StatusUnavailable, "loading"), true},
		{live, protocol.Errorf(protocol.StatusBadRequest, "no prompt"), false},
		{live, protocol.Errorf(protocol.StatusNotFound, "no such object"), false},
		{expired, nil, true},
	} {
		if _, got := backendFailure(tc.ctx, tc.err); got != tc.want {
			t.Errorf("backendFailure(ctx err %v, %v) = %v, want %v", tc.ctx.Err(), tc.err, got, tc.want)
		}
	}
}

// syncBuffer is a log destination tests read while the miner writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A miner whose backend fails does not count the queries as served, logs
// the failure once per window with the count of the others, and counts
// every one in /metrics by synapse (#20 "a neuron never fails silently").
func TestMinerBackendFailuresAreNotServed(t *testing.T) {
	colds := []*wallet.PrivateKey{testKey(t, "failing cold", 0), testKey(t, "failing cold", 1)}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var logs syncBuffer
	reg := prometheus.NewRegistry()
	var fail sync.Mutex // held: the backend fails
	cfg := DefaultMinerConfig(1, nil)
	cfg.Swarm.Disabled, cfg.Host.Registerer = true, reg
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.FailureLogEvery = time.Hour // one line in this test, however slow the machine
	cfg.Handlers = map[string]protocol.Handler{"text.generate": protocol.HandlerFunc(func(_ context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
		if !fail.TryLock() {
			return errors.New("model server: connection refused")
		}
		fail.Unlock()
		return w.Write([]byte(`{"text":"ok"}`))
	})}
	m, err := StartMiner(ctx, c, colds[0], testKey(t, "failing hot", 0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()

	ask := registeredProber(t, ctx, c, colds[1], testKey(t, "failing hot", 1), m)
	probe := func() protocol.Result { return ask(15 * time.Second) }

	fail.Lock()
	for range 5 {
		if r := probe(); r.Status != protocol.StatusInternal {
			t.Fatalf("a failing backend answered %v %q", r.Status, r.Message)
		}
	}
	fail.Unlock()
	if r := probe(); r.Status != protocol.StatusOK {
		t.Fatalf("a working backend answered %v %q", r.Status, r.Message)
	}
	if served, failed := m.QueriesServed(), m.BackendFailures(); served != 1 || failed != 5 {
		t.Fatalf("served %d, failed %d; want 1 and 5", served, failed)
	}
	if got := testutil.ToFloat64(m.metrics.failures.WithLabelValues("text.generate")); got != 5 {
		t.Fatalf("cybertensor_miner_backend_failures_total{synapse=text.generate} = %v, want 5", got)
	}
	if n, err := testutil.GatherAndCount(reg, "cybertensor_miner_backend_failures_total", "cybertensor_miner_queries_served_total"); err != nil || n != 2 {
		t.Fatalf("gathered %d series (%v), want 2", n, err)
	}
	lines := strings.Count(logs.String(), "backend failed a query")
	if lines != 1 || !strings.Contains(logs.String(), "synapse=text.generate") || !strings.Contains(logs.String(), "connection refused") {
		t.Fatalf("%d log lines of failures, want 1 naming the synapse and error:\n%s", lines, logs.String())
	}
	// The next window's line says how many went unlogged.
	m.failLog.mu.Lock()
	m.failLog.syn["text.generate"].last = time.Now().Add(-2 * time.Hour)
	m.failLog.mu.Unlock()
	fail.Lock()
	probe()
	fail.Unlock()
	if !strings.Contains(logs.String(), "suppressed=4") {
		t.Fatalf("the second line does not count the 4 unlogged failures:\n%s", logs.String())
	}
}
