package judge

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts judgements for Prometheus, labelled by the judge's name:
//
//	cybertensor_judge_calls_total{judge}
//	cybertensor_judge_failures_total{judge,reason}
//	cybertensor_judge_call_seconds{judge}
//
// A nil *Metrics counts nothing. Several judges share one Metrics.
type Metrics struct {
	calls    *prometheus.CounterVec
	failures *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics makes the counters and registers them with reg (none if reg
// is nil). Counters already registered there by an earlier NewMetrics are
// reused, so two components on one registry share them.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "judge",
			Name: "calls_total", Help: "Judgements asked of a judge, by judge."}, []string{"judge"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "judge",
			Name: "failures_total", Help: "Judgements that failed (the task was dropped), by judge and reason."}, []string{"judge", "reason"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "cybertensor", Subsystem: "judge",
			Name: "call_seconds", Help: "Time a judgement took, failed ones included, by judge.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10)}, []string{"judge"}),
	}
	if reg != nil {
		m.calls = register(reg, m.calls)
		m.failures = register(reg, m.failures)
		m.latency = register(reg, m.latency)
	}
	return m
}

// register registers c, or returns the collector of the same name already
// there.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if prev, ok := are.ExistingCollector.(C); ok {
			return prev
		}
	}
	return c
}

func (m *Metrics) observe(judge string, d time.Duration) {
	if m == nil {
		return
	}
	m.calls.WithLabelValues(judge).Inc()
	m.latency.WithLabelValues(judge).Observe(d.Seconds())
}

func (m *Metrics) fail(judge, reason string) {
	if m != nil {
		m.failures.WithLabelValues(judge, reason).Inc()
	}
}
