package metering

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/gateway"
)

// noMiner is the miner label of requests no miner answered.
const noMiner = "none"

// Failed says whether a request counts as a failure: the miner's status
// was not OK (or no miner answered), or the client got an HTTP error.
func Failed(u gateway.Usage) bool {
	return u.Status != "OK" || u.HTTPStatus >= 400
}

// series are one family of usage series, labelled by key or by miner.
type series struct {
	requests *prometheus.CounterVec   // by id
	failures *prometheus.CounterVec   // by id
	tokens   *prometheus.CounterVec   // by id, kind
	bytes    *prometheus.CounterVec   // by id, direction
	latency  *prometheus.HistogramVec // by id
}

func newSeries(who, label string) series {
	sub := "gateway_" + who
	opts := func(name, help string) prometheus.CounterOpts {
		return prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: sub, Name: name, Help: help + ", per " + who + "."}
	}
	return series{
		requests: prometheus.NewCounterVec(opts("requests_total", "API requests finished"), []string{label}),
		failures: prometheus.NewCounterVec(opts("failures_total", "API requests that failed (miner status not OK, or an HTTP error)"), []string{label}),
		tokens:   prometheus.NewCounterVec(opts("tokens_total", "Tokens the miners reported, by kind (prompt, completion)"), []string{label, "kind"}),
		bytes:    prometheus.NewCounterVec(opts("bytes_total", "Bytes of API requests (in) and answers (out)"), []string{label, "direction"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "cybertensor", Subsystem: sub,
			Name: "latency_seconds", Help: "Time from an API request's arrival to its last byte, per " + who + ".",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120}}, []string{label}),
	}
}

func (s series) collectors() []prometheus.Collector {
	return []prometheus.Collector{s.requests, s.failures, s.tokens, s.bytes, s.latency}
}

func (s series) observe(id string, u gateway.Usage, failed bool) {
	s.requests.WithLabelValues(id).Inc()
	f := s.failures.WithLabelValues(id) // the series exists from the first request
	if failed {
		f.Inc()
	}
	s.tokens.WithLabelValues(id, "prompt").Add(float64(u.PromptTokens))
	s.tokens.WithLabelValues(id, "completion").Add(float64(u.CompletionTokens))
	s.bytes.WithLabelValues(id, "in").Add(float64(u.RequestBytes))
	s.bytes.WithLabelValues(id, "out").Add(float64(u.ResponseBytes))
	s.latency.WithLabelValues(id).Observe(u.Latency.Seconds())
}

// metrics are the ledger's Prometheus series: cybertensor_gateway_key_*
// labelled "key" (an API key ID) and cybertensor_gateway_miner_* labelled
// "miner" (the hotkey address that answered, "none" if none did) and
// cybertensor_gateway_subnet_* labelled "netuid" (the subnet the model
// named, so a gateway over several subnets counts each apart), each with
// requests_total, failures_total, tokens_total{kind},
// bytes_total{direction} and latency_seconds; and
// cybertensor_gateway_ledger_errors_total.
type metrics struct {
	key, miner, subnet series
	ledgerErr          prometheus.Counter
}

// newMetrics registers the series on reg; nil without a Registerer.
func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, nil
	}
	m := &metrics{
		key:    newSeries("key", "key"),
		miner:  newSeries("miner", "miner"),
		subnet: newSeries("subnet", "netuid"),
		ledgerErr: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "gateway",
			Name: "ledger_errors_total", Help: "Usage records the ledger failed to write (still counted in the other series)."}),
	}
	cs := append(append(m.key.collectors(), m.miner.collectors()...), m.subnet.collectors()...)
	for _, c := range append(cs, m.ledgerErr) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering gateway usage metrics: %w", err)
		}
	}
	return m, nil
}

// observe counts one finished request under its key and its miner.
func (m *metrics) observe(u gateway.Usage) {
	if m == nil {
		return
	}
	miner := u.Miner
	if miner == "" {
		miner = noMiner
	}
	failed := Failed(u)
	m.key.observe(u.KeyID, u, failed)
	m.miner.observe(miner, u, failed)
	m.subnet.observe(strconv.Itoa(int(u.Netuid)), u, failed)
}
