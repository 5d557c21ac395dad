package dashboard

import (
	"math"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// collector exports a source's latest State to Prometheus, so /metrics and
// /api/state always agree.
type collector struct {
	src Source

	block, epochs                                               *prometheus.Desc
	stake, incentive, dividends, trust, emission, served, heard *prometheus.Desc
	heardPairs, pairs, duplicates, shared, fetched              *prometheus.Desc
}

// NewCollector exports src's State as Prometheus metrics named
// namespace_block, namespace_epochs_total{netuid},
// namespace_neuron_{stake,incentive,dividends,trust,emission}{netuid,uid,role,adversary}
// and, unless the state is ChainOnly, the neurons' own counters
// (namespace_neuron_queries_served_total, namespace_neuron_heard) and the
// gossip and knowledge totals. Register it in the Config's Gatherer.
func NewCollector(src Source, namespace string) prometheus.Collector {
	neuronLabels := []string{"netuid", "uid", "role", "adversary"}
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	return &collector{
		src:        src,
		block:      desc("block", "The chain's latest block."),
		epochs:     desc("epochs_total", "Epochs run since the dashboard started.", "netuid"),
		stake:      desc("neuron_stake", "A neuron's stake, in tokens.", neuronLabels...),
		incentive:  desc("neuron_incentive", "A neuron's incentive share after the last epoch.", neuronLabels...),
		dividends:  desc("neuron_dividends", "A neuron's dividends share after the last epoch.", neuronLabels...),
		trust:      desc("neuron_trust", "A neuron's trust after the last epoch.", neuronLabels...),
		emission:   desc("neuron_emission", "A neuron's emission in the last epoch, in tokens.", neuronLabels...),
		served:     desc("neuron_queries_served_total", "Queries a miner answered.", neuronLabels...),
		heard:      desc("neuron_heard", "Neurons whose heartbeats a neuron heard over gossip.", neuronLabels...),
		heardPairs: desc("gossip_heard_pairs", "Pairs of running neurons in which one heard the other's heartbeat."),
		pairs:      desc("gossip_pairs", "Pairs of running neurons."),
		duplicates: desc("gossip_duplicates_total", "Gossip messages received again after their first copy, all neurons."),
		shared:     desc("knowledge_shared", "Knowledge objects the neurons published."),
		fetched:    desc("knowledge_fetched_total", "Knowledge objects the neurons fetched from others."),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.block, c.epochs, c.stake, c.incentive, c.dividends, c.trust, c.emission,
		c.served, c.heard, c.heardPairs, c.pairs, c.duplicates, c.shared, c.fetched} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.src.State()
	tokens := func(v uint64) float64 { return float64(v) / math.Pow10(st.Decimals) }
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	gauge(c.block, float64(st.Block))
	for _, s := range st.Subnets {
		netuid := strconv.Itoa(int(s.Netuid))
		counter(c.epochs, float64(s.Epochs), netuid)
		for _, n := range s.Neurons {
			l := []string{netuid, strconv.Itoa(int(n.UID)), n.Role, n.Adversary}
			gauge(c.stake, tokens(n.Stake), l...)
			gauge(c.incentive, n.Incentive, l...)
			gauge(c.dividends, n.Dividends, l...)
			gauge(c.trust, n.Trust, l...)
			gauge(c.emission, tokens(n.Emission), l...)
			if !st.ChainOnly {
				counter(c.served, float64(n.QueriesServed), l...)
				gauge(c.heard, float64(n.Heard), l...)
			}
		}
	}
	if st.ChainOnly {
		return // a chain does not know the neurons' counters
	}
	gauge(c.heardPairs, float64(st.Gossip.Heard))
	gauge(c.pairs, float64(st.Gossip.Pairs))
	counter(c.duplicates, float64(st.Gossip.Duplicates))
	gauge(c.shared, float64(st.Knowledge.Shared))
	counter(c.fetched, float64(st.Knowledge.Fetched))
}
