package subnet

import (
	"bytes"
	"context"
	"testing"

	"github.com/cybertensor/cybertensor/knowledge"
)

// Every built-in spec whose evaluation data is named by CID alone has that
// data built in, byte for byte (its body CID is the spec's); the others
// have none.
func TestBuiltinDataMatchesItsCID(t *testing.T) {
	withData := 0
	for _, name := range BuiltinNames() {
		s, err := Builtin(name)
		if err != nil {
			t.Fatal(err)
		}
		data, ok := BuiltinData(name)
		var cids []string
		for _, m := range s.EffectiveMechanisms() {
			if m.Evaluate == nil {
				continue
			}
			if m.Evaluate.Data.Path != "" {
				t.Errorf("%s: a built-in has no directory, yet mechanism %s names a data path", name, m.Name)
			}
			cids = append(cids, m.Evaluate.Data.CID)
		}
		if len(cids) == 0 {
			if ok {
				t.Errorf("%s: built-in data but no evaluate: section", name)
			}
			continue
		}
		if !ok {
			t.Fatalf("%s: evaluates models but has no built-in data", name)
		}
		withData++
		c, n, err := knowledge.BodyCID(context.Background(), bytes.NewReader(data), MaxLockedFile)
		if err != nil || n != int64(len(data)) {
			t.Fatal(n, err)
		}
		for _, want := range cids {
			if c.String() != want {
				t.Errorf("%s: the built-in data's CID is %s, the spec names %s", name, c, want)
			}
		}
		if got, ok := BuiltinDataByCID(c.String()); !ok || !bytes.Equal(got, data) {
			t.Errorf("%s: BuiltinDataByCID(%s) does not give the data", name, c)
		}
	}
	if withData == 0 {
		t.Fatal("no built-in evaluates models")
	}
	if _, ok := BuiltinDataByCID("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"); ok {
		t.Error("BuiltinDataByCID found data for another CID")
	}
}

// The model subnet's reward pays the best model 1 and any other a fifth
// of the share of models it beats: the last (a lazy model) and a refused
// copy (never scored by the reward) get 0.
func TestBuiltinModelReward(t *testing.T) {
	s, err := Builtin("model")
	if err != nil {
		t.Fatal(err)
	}
	ms := s.EffectiveMechanisms()
	if len(ms) != 1 || ms[0].Tasks.Source != FromCommitments || ms[0].Evaluate.Kind != EvaluateBuiltin || ms[0].Evaluate.Model != BuiltinModelCharLM {
		t.Fatalf("%+v", ms)
	}
	rw, err := NewRewardV2(ms[0].Reward)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		best bool
		rate float64
		want float64
	}{{true, 1, 1}, {true, 0, 1}, {false, 0.5, 0.1}, {false, 0, 0}} {
		got, err := rw.Score(Response{Status: "ok", Valid: true, IsBest: c.best, WinRate: c.rate, Loss: 2, BestLoss: 1})
		if err != nil || got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("best %v, win rate %v: %v %v; want %v", c.best, c.rate, got, err, c.want)
		}
	}
}
