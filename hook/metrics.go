package hook

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics counts hook calls for Prometheus, labelled by the hook's name:
//
//	cybertensor_hook_calls_total{hook}              every call
//	cybertensor_hook_failures_total{hook,reason}    failed calls, by reason
//	cybertensor_hook_call_seconds{hook}             call latency (all calls)
//
// Reasons are timeout, crashed, too_large, bad_output, closed, status,
// unreachable and canceled (the caller's context ended first). One Metrics
// serves every hook of a process; a nil *Metrics counts nothing.
type Metrics struct {
	calls    *prometheus.CounterVec
	failures *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
}

// NewMetrics makes the hook metrics and registers them with reg (nil: not
// registered, still counted). A registerer that holds them already (a
// second NewMetrics on it) lends its existing collectors, so both count
// into the same series.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "hook",
			Name: "calls_total", Help: "Calls to hook programs and endpoints, by hook."}, []string{"hook"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "hook",
			Name: "failures_total", Help: "Failed hook calls, by hook and reason."}, []string{"hook", "reason"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "cybertensor", Subsystem: "hook",
			Name: "call_seconds", Help: "Hook call latency in seconds, by hook.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10)}, []string{"hook"}),
	}
	if reg == nil {
		return m
	}
	m.calls = register(reg, m.calls)
	m.failures = register(reg, m.failures)
	m.seconds = register(reg, m.seconds)
	return m
}

// register registers c, or returns the collector reg already holds under
// its name. Any other registration error leaves c unregistered (it still
// counts; the registry just does not export it).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(C); ok {
			return existing
		}
	}
	return c
}

// hookMetrics is one hook's view of Metrics, its label values resolved
// once so a call costs no label lookup.
type hookMetrics struct {
	m       *Metrics
	name    string
	calls   prometheus.Counter
	seconds prometheus.Observer
}

func (m *Metrics) forHook(name string) hookMetrics {
	if m == nil {
		return hookMetrics{}
	}
	return hookMetrics{m: m, name: name, calls: m.calls.WithLabelValues(name), seconds: m.seconds.WithLabelValues(name)}
}

// observe counts one call that started at start and ended with err.
func (h hookMetrics) observe(start time.Time, err error) {
	if h.m == nil {
		return
	}
	h.calls.Inc()
	h.seconds.Observe(time.Since(start).Seconds())
	if err != nil {
		h.m.failures.WithLabelValues(h.name, reasonOf(err)).Inc()
	}
}
