package neuron

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/subnet"
)

// echoCaller answers every custom synapse with the request's text.
type echoCaller struct{}

func (echoCaller) Call(_ context.Context, _ string, body json.RawMessage) (json.RawMessage, error) {
	var req struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, err
	}
	return json.Marshal(req.Text)
}

// textSpec is a v2 spec serving one custom synapse per name, each
// {"text": …} → text; extra goes after the synapses.
func textSpec(t *testing.T, name string, synapses []string, extra string) *subnet.Spec {
	t.Helper()
	text := "version: 2\nname: " + name + "\nsynapses:\n" + extra
	for _, s := range synapses {
		text += "  - name: " + s + "\n    request: {type: object, required: [text], properties: {text: {type: string}}}\n    answer: text\n"
	}
	text += "tasks: {source: dataset, synapse: " + synapses[0] + `, path: tasks.jsonl}
reward: 'answer == expected ? 1.0 : 0.0'
query: {every: 2, sample: 4, timeout: 5s}
alpha: 0.3
weights_every: 5
`
	spec, err := subnet.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// The owner sets a new spec on chain: at the tempo boundary the miner
// fetches it from its knowledge library and serves its synapses (one it
// dropped is NOT_FOUND); a spec it cannot serve (storage.prove on a miner
// that does not replicate) is logged and the running synapses stay.
func TestMinerFollowsTheSpecOnChain(t *testing.T) {
	first := textSpec(t, "first", []string{"a.v1"}, "")
	second := textSpec(t, "second", []string{"b.v1"}, "")
	unservable := textSpec(t, "third", []string{"c.v1"}, "  - storage.prove\n")
	colds := testColds(t, "follow cold", 2)
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logs := &records{}
	cfg := SpecMinerConfig(1, first, nil)
	cfg.Caller, cfg.Logger, cfg.Swarm, cfg.KnowledgeDir = echoCaller{}, slog.New(logs), fastSwarm(), t.TempDir()
	m, err := StartMiner(ctx, c, colds[0], testKey(t, "follow hot", 0), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	client := testCaller(t, ctx, c, colds[1], testKey(t, "follow hot", 1), m)
	ask := func(synapse string) protocol.Result {
		return client.Stream(ctx, m.ID(), &pb.Request{Netuid: 1, Synapse: synapse, Body: []byte(`{"text": "hello"}`), TimeoutMs: 5000}, nil)
	}
	if r := ask("a.v1"); r.Status != protocol.StatusOK || string(r.Body) != "hello" {
		t.Fatalf("a.v1 under the first spec: %v %q", r.Status, r.Message)
	}
	// The specs are in the miner's library (it would fetch them from the
	// swarm otherwise, as the validator does in TestValidatorSwitchesToTheSpecOnChain).
	for _, s := range []*subnet.Spec{second, unservable} {
		if _, err := m.Library().Publish(ctx, bytes.NewReader(s.Text()), knowledge.Meta{MediaType: "application/yaml", Title: s.Name}); err != nil && !errors.Is(err, knowledge.ErrNotShared) {
			t.Fatal(err)
		}
	}
	owner := chainlink.NewSender(c, testKey(t, "root", 0))
	setSpec := func(s *subnet.Spec) {
		t.Helper()
		h := s.Hash()
		if _, err := owner.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: 1, SpecHash: h[:]}}}); err != nil {
			t.Fatal(err)
		}
	}
	setSpec(second)
	waitUntil(t, time.Minute, "the miner to serve the second spec", func() bool { return m.Spec().Name == "second" })
	if r := ask("b.v1"); r.Status != protocol.StatusOK || string(r.Body) != "hello" {
		t.Fatalf("b.v1 under the second spec: %v %q", r.Status, r.Message)
	}
	if r := ask("a.v1"); r.Status != protocol.StatusNotFound {
		t.Fatalf("a.v1 under the second spec: %v %q", r.Status, r.Message)
	}

	setSpec(unservable)
	waitUntil(t, time.Minute, "the miner to refuse the third spec", func() bool { return logs.find("cannot serve it") != "" })
	if got := logs.find("cannot serve it"); !strings.Contains(got, "storage.prove") {
		t.Fatalf("logged %q", got)
	}
	if m.Spec().Name != "second" {
		t.Fatalf("serving %q", m.Spec().Name)
	}
	if r := ask("b.v1"); r.Status != protocol.StatusOK {
		t.Fatalf("b.v1 after the refused spec: %v %q", r.Status, r.Message)
	}
}
