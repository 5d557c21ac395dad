package localnet

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/dashboard"
	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/wallet"
)

// fakeSubnets is a chain with subnets 1 "qa" and 2 "code".
type fakeSubnets struct{}

func (fakeSubnets) ChainID() string { return "test-chain" }

func (fakeSubnets) Subnet(_ context.Context, netuid uint16) (chain.SubnetInfo, error) {
	info := chain.SubnetInfo{Netuid: netuid, Name: map[uint16]string{1: "qa", 2: "code"}[netuid]}
	info.Params.Tempo = uint64(netuid) * 5
	return info, nil
}

// metagraph of netuid with the given hotkeys and incentive (in 1/65535).
func metagraph(t *testing.T, netuid uint16, hotkeys []chain.Address, incentive ...uint16) *chain.Metagraph {
	t.Helper()
	n := len(hotkeys)
	mg := &chain.Metagraph{Netuid: netuid, N: n, Hotkeys: hotkeys, Stake: make([]uint64, n), Trust: make([]uint16, n),
		Consensus: make([]uint16, n), Incentive: incentive, Dividends: make([]uint16, n), Emission: make([]uint64, n)}
	for i := range n {
		mg.Stake[i] = uint64(i+1) * 1e9
		mg.Dividends[i] = 65535 - incentive[i]
	}
	return mg
}

func hotkeys(t *testing.T, n int) []chain.Address {
	t.Helper()
	var out []chain.Address
	for range n {
		k, err := wallet.GenerateKey()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, k.PublicKey().Address())
	}
	return out
}

// The board keeps each subnet's metagraph and history, caps the history,
// never changes a published snapshot, and totals the neurons' counters.
func TestBoard(t *testing.T) {
	ctx := context.Background()
	b := newBoard(fakeSubnets{}, nil)
	if st := b.State(); st.ChainID != "test-chain" || len(st.Subnets) != 0 {
		t.Fatalf("initial state %+v", st)
	}
	keys := hotkeys(t, 3)
	b.epoch(ctx, 10, metagraph(t, 2, keys[:2], 65535, 0))
	b.epoch(ctx, 11, metagraph(t, 1, keys, 0, 32768, 32767))
	first := b.State()
	if len(first.Subnets) != 2 || first.Subnets[0].Netuid != 1 || first.Subnets[0].Name != "qa" || first.Subnets[0].Tempo != 5 ||
		first.Subnets[1].Name != "code" || first.Epochs != 2 || first.Block != 11 {
		t.Fatalf("state after two epochs: %+v", first)
	}
	qa := first.Subnets[0]
	if len(qa.Neurons) != 3 || qa.Neurons[1].Incentive != frac(32768) || qa.Neurons[2].Stake != 3e9 || qa.Neurons[2].Hotkey != keys[2].String() {
		t.Errorf("qa neurons %+v", qa.Neurons)
	}
	if len(qa.History) != 1 || qa.History[0].Epoch != 1 || qa.History[0].Block != 11 || qa.History[0].Incentive[1] != frac(32768) {
		t.Errorf("qa history %+v", qa.History)
	}

	for i := range historyLimit + 5 {
		b.epoch(ctx, uint64(12+i), metagraph(t, 1, keys, 0, 65535, 0))
	}
	st := b.State()
	h := st.Subnets[0].History
	if len(h) != historyLimit || h[len(h)-1].Epoch != historyLimit+6 || h[0].Epoch != 7 {
		t.Errorf("history of %d points, epochs %d to %d", len(h), h[0].Epoch, h[len(h)-1].Epoch)
	}
	if len(first.Subnets[0].History) != 1 || first.Subnets[0].History[0].Incentive[1] != frac(32768) || first.Subnets[0].Neurons[1].Incentive != frac(32768) {
		t.Error("a published snapshot changed")
	}

	// Counters: two online neurons that heard each other (and themselves),
	// and one stopped that the others heard before it left.
	ids := []peer.ID{"A", "B", "C"}
	b.counters[keys[0].String()] = liveCounters{id: ids[0], role: "validator", online: true, sent: 7,
		swarmStats: swarmStats{heard: heardOf(ids...), shared: 12, duplicates: 3}}
	b.counters[keys[1].String()] = liveCounters{id: ids[1], role: "miner", online: true, served: 5,
		swarmStats: swarmStats{heard: heardOf(ids...), fetched: 12, duplicates: 4}}
	b.counters[keys[2].String()] = liveCounters{id: ids[2], role: "miner", adversary: Offline,
		swarmStats: swarmStats{heard: heardOf(ids[:2]...), fetched: 2}}
	b.publish()
	st = b.State()
	want := dashboard.GossipStats{Neurons: 2, Heard: 2, Pairs: 2, Duplicates: 7}
	if st.Gossip != want || st.Knowledge != (dashboard.KnowledgeStats{Shared: 12, Fetched: 14}) {
		t.Errorf("gossip %+v (want %+v), knowledge %+v", st.Gossip, want, st.Knowledge)
	}
	n := st.Subnets[0].Neurons
	if n[0].Role != "validator" || n[0].QueriesSent != 7 || !n[0].Online || n[1].QueriesServed != 5 || n[1].Heard != 3 ||
		n[2].Adversary != Offline || n[2].Online || n[2].KnowledgeFetched != 2 {
		t.Errorf("neurons %+v", n)
	}
	if st.Subnets[1].Neurons[0].Role != "validator" {
		t.Error("counters not shown on the second subnet")
	}

	// The metrics show the same snapshot.
	reg := prometheus.NewRegistry()
	reg.MustRegister(dashboard.NewCollector(b, "cybertensor_localnet"))
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP cybertensor_localnet_neuron_incentive A neuron's incentive share after the last epoch.
# TYPE cybertensor_localnet_neuron_incentive gauge
cybertensor_localnet_neuron_incentive{adversary="",netuid="1",role="miner",uid="1"} 1
cybertensor_localnet_neuron_incentive{adversary="",netuid="1",role="validator",uid="0"} 0
cybertensor_localnet_neuron_incentive{adversary="",netuid="2",role="miner",uid="1"} 0
cybertensor_localnet_neuron_incentive{adversary="",netuid="2",role="validator",uid="0"} 1
cybertensor_localnet_neuron_incentive{adversary="offline",netuid="1",role="miner",uid="2"} 0
# HELP cybertensor_localnet_epochs_total Epochs run since the dashboard started.
# TYPE cybertensor_localnet_epochs_total counter
cybertensor_localnet_epochs_total{netuid="1"} 518
cybertensor_localnet_epochs_total{netuid="2"} 1
# HELP cybertensor_localnet_gossip_heard_pairs Pairs of running neurons in which one heard the other's heartbeat.
# TYPE cybertensor_localnet_gossip_heard_pairs gauge
cybertensor_localnet_gossip_heard_pairs 2
`), "cybertensor_localnet_neuron_incentive", "cybertensor_localnet_epochs_total", "cybertensor_localnet_gossip_heard_pairs"); err != nil {
		t.Error(err)
	}
	if n, err := testutil.GatherAndCount(reg); err != nil || n < 30 {
		t.Errorf("%d metrics, %v", n, err)
	}
}

func heardOf(ids ...peer.ID) map[peer.ID]neuron.Heard {
	out := map[peer.ID]neuron.Heard{}
	for _, id := range ids {
		out[id] = neuron.Heard{}
	}
	return out
}

// A nil board (no dashboard) ignores the run loop.
func TestNilBoard(t *testing.T) {
	var b *board
	b.head(chainlink.Head{Height: 1})
	b.epoch(context.Background(), 1, &chain.Metagraph{})
	b.close()
}

// recorderFunc is a gateway.Recorder of a function.
type recorderFunc func(gateway.Usage) error

func (f recorderFunc) Record(u gateway.Usage) error { return f(u) }

// minerUsage counts per miner only what the ledger kept: requests, tokens
// and failures; requests no miner answered apart. The board shows the
// counts on the miners' rows.
func TestOrganicUsageOnBoard(t *testing.T) {
	keys := hotkeys(t, 2)
	full := errors.New("disk full")
	var kept int
	u := &minerUsage{next: recorderFunc(func(u gateway.Usage) error {
		if u.RequestID == "lost" {
			return full
		}
		kept++
		return nil
	}), byMiner: map[string]organic{}}
	miner := keys[1].String()
	for _, rec := range []gateway.Usage{
		{RequestID: "a", Miner: miner, Status: "OK", HTTPStatus: 200, PromptTokens: 3, CompletionTokens: 9},
		{RequestID: "b", Miner: miner, Status: "TIMEOUT", HTTPStatus: 504, PromptTokens: 2},
		{RequestID: "c", Status: "UNAVAILABLE", HTTPStatus: 503},
	} {
		if err := u.Record(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := u.Record(gateway.Usage{RequestID: "lost", Miner: miner, Status: "OK", HTTPStatus: 200}); !errors.Is(err, full) {
		t.Fatalf("a record the ledger refused: %v", err)
	}
	if got := u.snapshot()[miner]; kept != 3 || got != (organic{requests: 2, tokens: 14, failures: 1}) || u.unserved != 1 {
		t.Fatalf("kept %d, counted %+v, unserved %d", kept, got, u.unserved)
	}
	b := newBoard(fakeSubnets{}, nil)
	b.gatewayUsage(u)
	b.epoch(context.Background(), 5, metagraph(t, 1, keys, 0, 65535))
	rows := b.State().Subnets[0].Neurons
	if rows[0].OrganicRequests != 0 || rows[1].OrganicRequests != 2 || rows[1].OrganicTokens != 14 || rows[1].OrganicFailures != 1 {
		t.Fatalf("rows %+v", rows)
	}
}
