package dashboard

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// The collector exports the state's chain numbers under its namespace,
// and the neurons' own counters only when the source knows them.
func TestCollectorLeavesOutWhatAChainCannotKnow(t *testing.T) {
	src := &fakeSource{st: sampleState()}
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewCollector(src, "test"))
	for _, want := range []string{"test_neuron_queries_served_total", "test_gossip_heard_pairs", "test_knowledge_fetched_total", "test_neuron_stake"} {
		if n, err := testutil.GatherAndCount(reg, want); err != nil || n == 0 {
			t.Errorf("%s: %d series, %v", want, n, err)
		}
	}

	st := sampleState()
	st.ChainOnly = true
	src.set(st)
	for name, want := range map[string]int{"test_block": 1, "test_epochs_total": 1, "test_neuron_stake": 3, "test_neuron_incentive": 3,
		"test_neuron_queries_served_total": 0, "test_neuron_heard": 0, "test_gossip_heard_pairs": 0, "test_knowledge_fetched_total": 0} {
		if n, err := testutil.GatherAndCount(reg, name); err != nil || n != want {
			t.Errorf("chain only: %s has %d series (%v), want %d", name, n, err, want)
		}
	}
}
