package neuron

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// The state file a running validator keeps tells each miner's moving
// average, its last answers' statuses and reasons, and the weights last
// set, block and time (what "validator scores" prints).
func TestValidatorStatusShowsAnswersAndWeights(t *testing.T) {
	var colds []*wallet.PrivateKey
	for i := range 3 {
		colds = append(colds, testKey(t, "status cold", i))
	}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	doc := backend.Document{ID: "sky", Text: "The sky is blue because of Rayleigh scattering."}
	var uids [2]uint16
	for i := range 2 {
		mcfg := DefaultMinerConfig(1, backend.NewRetrieval(doc))
		mcfg.Swarm.Disabled, mcfg.Logger = true, log
		if i == 1 {
			mcfg.Handlers = map[string]protocol.Handler{"text.generate": protocol.HandlerFunc(func(context.Context, *protocol.Request, protocol.ResponseWriter) error {
				return errors.New("model server down")
			})}
		}
		m, err := StartMiner(ctx, c, colds[i], testKey(t, "status hot", i), mcfg)
		if err != nil {
			t.Fatal(err)
		}
		uids[i] = m.UID()
		t.Cleanup(func() { m.Close() })
	}
	vcfg := DefaultValidatorConfig(1, []Task{{Prompt: "Why is the sky blue?", Answer: "Rayleigh"}})
	vcfg.Swarm.Disabled, vcfg.Logger, vcfg.StateDir = true, log, t.TempDir()
	vcfg.QueryEvery, vcfg.WeightsEvery = 1, 2
	v, err := StartValidator(ctx, c, colds[2], testKey(t, "status hot", 2), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	// Read while it runs: rounds and weight settings keep the file fresh.
	var st *ValidatorStatus
	waitUntil(t, time.Minute, "the state file to show both miners' answers and weights", func() bool {
		var err error
		st, err = ReadValidatorStatus(vcfg.StateDir)
		if err != nil {
			return false
		}
		seen := map[uint16]bool{}
		for _, a := range st.Answers {
			seen[a.UID] = true
		}
		return st.Weights != nil && seen[uids[0]] && seen[uids[1]] && len(st.Scores) >= 2
	})
	if st.Netuid != 1 || st.Hotkey != testKey(t, "status hot", 2).PublicKey().Address().String() || st.Saved.IsZero() {
		t.Fatalf("status header %+v", st)
	}
	for _, a := range st.Answers {
		switch a.UID {
		case uids[0]:
			if a.Status != "OK" || a.Score <= 0 {
				t.Errorf("honest miner's answer %+v", a)
			}
		case uids[1]:
			if a.Status != "INTERNAL" || !strings.Contains(a.Reason, "model server down") || a.Score != 0 {
				t.Errorf("failing miner's answer %+v", a)
			}
		}
	}
	score := map[uint16]float64{}
	for _, e := range st.Scores {
		score[e.UID] = e.Value
	}
	if score[uids[0]] <= 0 || score[uids[1]] != 0 {
		t.Fatalf("moving averages %v", st.Scores)
	}
	if w := st.Weights; w.Block == 0 || w.Time == 0 || len(w.UIDs) == 0 || len(w.UIDs) != len(w.Values) {
		t.Fatalf("weights %+v", w)
	}
	n, err := c.Neuron(ctx, 1, testKey(t, "status hot", 2).PublicKey().Address())
	if err != nil || len(n.Weights) == 0 {
		t.Fatalf("the chain holds no weights of the validator: %v", err)
	}
}
