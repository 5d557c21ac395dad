package metering

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// A gateway over several subnets: the same miner hotkey answering on two
// subnets is one miner series, and the subnet series count each subnet's
// requests, failures and tokens apart, as the summary's subnet groups
// do; the ledger's entries keep their subnet and model.
func TestLedgerCountsSubnetsApart(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := testLedgerConfig()
	cfg.Registerer = reg
	l := openLedger(t, filepath.Join(t.TempDir(), "usage.db"), cfg)
	want := map[string]struct{ requests, failures, completion float64 }{}
	for i := range 10 {
		u := usage(i)
		u.Netuid = uint16(1 + i%2)
		u.Model = fmt.Sprintf("sn%d/text.chat", u.Netuid)
		if err := l.Record(u); err != nil {
			t.Fatal(err)
		}
		w := want[fmt.Sprint(u.Netuid)]
		w.requests++
		if Failed(u) {
			w.failures++
		}
		w.completion += float64(u.CompletionTokens)
		want[fmt.Sprint(u.Netuid)] = w
	}
	for netuid, w := range want {
		got := []float64{testutil.ToFloat64(l.metrics.subnet.requests.WithLabelValues(netuid)),
			testutil.ToFloat64(l.metrics.subnet.failures.WithLabelValues(netuid)),
			testutil.ToFloat64(l.metrics.subnet.tokens.WithLabelValues(netuid, "completion"))}
		if got[0] != w.requests || got[1] != w.failures || got[2] != w.completion {
			t.Errorf("subnet %s: requests, failures, completion tokens %v, want %+v", netuid, got, w)
		}
	}
	if c, err := testutil.GatherAndCount(reg, "cybertensor_gateway_subnet_requests_total"); err != nil || c != 2 {
		t.Errorf("subnet request series %d %v", c, err)
	}
	sum, err := l.Summarize(Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum.Subnets) != 2 {
		t.Fatalf("summary's subnets %+v", sum.Subnets)
	}
	for _, g := range sum.Subnets {
		w := want[g.ID]
		if float64(g.Requests) != w.requests || float64(g.Failures) != w.failures || float64(g.CompletionTokens) != w.completion {
			t.Errorf("summary of subnet %s: %+v, want %+v", g.ID, g.Totals, w)
		}
	}
	es, err := l.Entries(Query{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Model != fmt.Sprintf("sn%d/text.chat", e.Netuid) {
			t.Fatalf("entry %d: model %s of subnet %d", e.Seq, e.Model, e.Netuid)
		}
	}
}
