package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the server's Prometheus metrics. Usage per key and per
// miner is the Recorder's to count.
type metrics struct {
	requests   *prometheus.CounterVec   // by endpoint and HTTP status
	latency    *prometheus.HistogramVec // by endpoint
	firstToken prometheus.Histogram
	attempts   *prometheus.CounterVec // by outcome
	inFlight   prometheus.Gauge
	recordErrs prometheus.Counter
	organic    *prometheus.CounterVec // by synapse
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cybertensor_gateway_requests_total",
			Help: "API requests finished, by endpoint and HTTP status."}, []string{"endpoint", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "cybertensor_gateway_request_seconds",
			Help: "Time from an API request's arrival to its last byte.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 17)}, []string{"endpoint"}),
		firstToken: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "cybertensor_gateway_first_byte_seconds",
			Help: "Time from an API request's arrival to the first byte of its miner's answer.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 17)}),
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cybertensor_gateway_miner_attempts_total",
			Help: "Queries sent to miners, by outcome (ok, failed, neutral: ended by the client)."}, []string{"outcome"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{Name: "cybertensor_gateway_in_flight",
			Help: "API requests being answered."}),
		recordErrs: prometheus.NewCounter(prometheus.CounterOpts{Name: "cybertensor_gateway_record_errors_total",
			Help: "Finished requests whose usage the Recorder failed to keep."}),
		organic: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "cybertensor_gateway_organic_sampled_total",
			Help: "Miners' answers to sampled requests handed to the validator's organic scoring, by synapse."}, []string{"synapse"}),
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.requests, m.latency, m.firstToken, m.attempts, m.inFlight, m.recordErrs, m.organic} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}
