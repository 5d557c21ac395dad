package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/protocol"
)

// DefaultFailureLogEvery is how often a miner logs a synapse's backend
// failures at most (MinerConfig.FailureLogEvery).
const DefaultFailureLogEvery = 10 * time.Second

// backendFailure says whether a handler's outcome is the miner's own
// failure, and names it: an error that is not the caller's fault (a bad,
// unauthorized or forbidden request, an unknown synapse), or the request's
// deadline passing while the handler ran.
func backendFailure(ctx context.Context, err error) (string, bool) {
	if ctx.Err() != nil {
		return "the deadline passed while the backend worked", true
	}
	if err == nil {
		return "", false
	}
	var se *protocol.StatusError
	if errors.As(err, &se) {
		switch se.Status {
		case protocol.StatusBadRequest, protocol.StatusUnauthorized, protocol.StatusForbidden, protocol.StatusNotFound:
			return "", false
		}
	}
	return err.Error(), true
}

// failureLog rate-limits the log of backend failures: per synapse, at most
// one line every `every`, which says how many failures it stood for.
type failureLog struct {
	every time.Duration
	now   func() time.Time

	mu  sync.Mutex
	syn map[string]*failureWindow
}

type failureWindow struct {
	last       time.Time // when a line was last logged
	suppressed int       // failures since, not logged
}

func newFailureLog(every time.Duration, now func() time.Time) *failureLog {
	return &failureLog{every: every, now: now, syn: map[string]*failureWindow{}}
}

// record counts a failure of synapse; log says whether to log it now, and
// suppressed how many failures since the last line went unlogged.
func (f *failureLog) record(synapse string) (log bool, suppressed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	w := f.syn[synapse]
	if w == nil {
		w = &failureWindow{}
		f.syn[synapse] = w
	} else if now.Sub(w.last) < f.every {
		w.suppressed++
		return false, 0
	}
	suppressed, w.suppressed, w.last = w.suppressed, 0, now
	return true, suppressed
}

// minerMetrics are a miner's Prometheus counters; nil without a
// Registerer.
type minerMetrics struct {
	reg      prometheus.Registerer
	failures *prometheus.CounterVec
	served   *prometheus.CounterVec
}

func newMinerMetrics(reg prometheus.Registerer) (*minerMetrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &minerMetrics{
		reg: reg,
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "miner",
			Name: "backend_failures_total", Help: "Queries the miner's backend failed (answered INTERNAL, UNAVAILABLE or TIMEOUT), by synapse."}, []string{"synapse"}),
		served: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "miner",
			Name: "queries_served_total", Help: "Queries the miner answered OK, by synapse."}, []string{"synapse"}),
	}
	if err := reg.Register(m.failures); err != nil {
		return nil, fmt.Errorf("neuron: miner metrics: %w", err)
	}
	if err := reg.Register(m.served); err != nil {
		reg.Unregister(m.failures)
		return nil, fmt.Errorf("neuron: miner metrics: %w", err)
	}
	return m, nil
}

func (m *minerMetrics) unregister() {
	if m != nil {
		m.reg.Unregister(m.failures)
		m.reg.Unregister(m.served)
	}
}

// outcome records one handled query of synapse.
func (m *Miner) outcome(ctx context.Context, synapse string, err error, log *slog.Logger) {
	reason, failed := backendFailure(ctx, err)
	switch {
	case failed:
		m.failed.Add(1)
		if m.metrics != nil {
			m.metrics.failures.WithLabelValues(synapse).Inc()
		}
		if ok, suppressed := m.failLog.record(synapse); ok {
			// suppressed: the failures of this synapse since its last line.
			log.Warn("backend failed a query", "synapse", synapse, "err", reason, "suppressed", suppressed)
		}
	case err == nil:
		m.served.Add(1)
		if m.metrics != nil {
			m.metrics.served.WithLabelValues(synapse).Inc()
		}
	default:
		m.refused.Add(1) // the caller's fault, or nothing to serve
	}
}
