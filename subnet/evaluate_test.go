package subnet

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const validModelSpec = `version: 2
name: model-lm
tasks: {source: commitments}
evaluate:
  kind: builtin
  model: charlm
  data: {path: data/eval.txt}
  sample_bytes: 4096
  epsilon: 0.01
reward: '0.5 * win_rate + (is_best ? 0.5 : 0.0)'
query: {every: 2, timeout: 30s}
alpha: 0.3
weights_every: 5
`

func TestParseModelSpec(t *testing.T) {
	s, err := Parse([]byte(validModelSpec))
	if err != nil {
		t.Fatal(err)
	}
	ms := s.EffectiveMechanisms()
	e := ms[0].Evaluate
	if len(s.Synapses) != 0 || e == nil || e.Kind != EvaluateBuiltin || e.Sample() != 4096 || e.MaxArtifact() != DefaultMaxArtifactBytes || e.EpsilonValue() != 0.01 {
		t.Fatalf("mechanisms %+v evaluate %+v", ms, e)
	}
	if got := s.ReferencedFiles(); !reflect.DeepEqual(got, []string{"data/eval.txt"}) {
		t.Fatalf("referenced files %v", got)
	}
	rw, err := s.CompileReward(s.Reward)
	if err != nil || !rw.UsesEvaluation() || rw.UsesCommitments() {
		t.Fatalf("reward %v", err)
	}
	score, err := rw.Score(Response{WinRate: 0.5, IsBest: true})
	if err != nil || score != 0.75 {
		t.Fatalf("score %v %v", score, err)
	}
	// Defaults: epsilon absent is 0.005; 0 is 0, not the default.
	d, err := Parse([]byte(strings.Replace(strings.Replace(validModelSpec, "  sample_bytes: 4096\n", "", 1), "  epsilon: 0.01\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if e := d.Evaluate; e.EpsilonValue() != DefaultEpsilon || e.Sample() != DefaultSampleBytes {
		t.Fatalf("defaults %+v", e)
	}
	z, err := Parse([]byte(strings.Replace(validModelSpec, "epsilon: 0.01", "epsilon: 0", 1)))
	if err != nil || z.Evaluate.EpsilonValue() != 0 {
		t.Fatalf("epsilon 0: %v", err)
	}
	// Every evaluation variable reaches the reward.
	all, err := NewRewardV2(`loss == 2.0 && best_loss == 1.5 && epsilon == 0.01 && commit_block == 7.0 && win_rate == 0.25 && !is_best`)
	if err != nil {
		t.Fatal(err)
	}
	if score, err := all.Score(Response{Loss: 2, BestLoss: 1.5, Epsilon: 0.01, CommitBlock: 7, WinRate: 0.25}); err != nil || score != 1 {
		t.Fatalf("variables: %v %v", score, err)
	}
}

const modelMechanisms = `version: 2
name: mixed
synapses: [text.generate]
mechanisms:
  - name: qa
    share: 0.5
    tasks: {source: dataset, path: data/q.jsonl}
    reward: 'answer == expected'
  - name: models
    share: 0.5
    tasks: {source: commitments}
    evaluate: {kind: exec, command: [./eval.sh], limits: {timeout: 1m, concurrency: 1}, data: {cid: bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku}}
    reward: 'is_best'
query: {every: 2, timeout: 30s}
alpha: 0.3
weights_every: 5
`

func TestInvalidModelSpecs(t *testing.T) {
	if _, err := Parse([]byte(modelMechanisms)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, base, edit, replace string
		line                      int
		field, reason             string
	}{
		{"no evaluate", validModelSpec, "evaluate:\n  kind: builtin\n  model: charlm\n  data: {path: data/eval.txt}\n  sample_bytes: 4096\n  epsilon: 0.01\n", "", 0, "evaluate", "add an evaluate: section"},
		{"evaluate for another source", modelMechanisms, "reward: 'answer == expected'", "reward: 'answer == expected'\n    evaluate: {kind: builtin, model: charlm, data: {path: e.txt}}", 9, "mechanisms[0].evaluate", "only a mechanism whose tasks come from commitments"},
		{"evaluation variable elsewhere", modelMechanisms, "reward: 'answer == expected'", "reward: 'loss < 1.0'", 8, "mechanisms[0].reward", "reads an evaluation variable"},
		{"judge with commitments", validModelSpec, "reward:", "judge: {kind: reference, compare: similarity}\nreward:", 10, "judge", "has no judge"},
		{"synapse with commitments", validModelSpec, "{source: commitments}", "{source: commitments, synapse: text.generate}", 3, "tasks.synapse", "go to no synapse"},
		{"path with commitments", validModelSpec, "{source: commitments}", "{source: commitments, path: x.jsonl}", 3, "tasks.path", "only dataset task sources"},
		{"limits with commitments", validModelSpec, "{source: commitments}", "{source: commitments, limits: {timeout: 1s}}", 3, "tasks.limits", "the evaluate: section has"},
		{"no synapses otherwise", modelMechanisms, "synapses: [text.generate]\n", "", 0, "synapses", "only a spec whose mechanisms all take tasks from commitments"},
		{"top-level evaluate with mechanisms", modelMechanisms, "query:", "evaluate: {kind: builtin, model: charlm, data: {path: e.txt}}\nquery:", 14, "evaluate", "each mechanism has its own evaluate"},
		{"unknown kind", validModelSpec, "kind: builtin", "kind: oracle", 5, "evaluate.kind", `"oracle": want builtin or exec`},
		{"unknown model", validModelSpec, "model: charlm", "model: gpt", 6, "evaluate.model", `"gpt": want charlm`},
		{"builtin with command", validModelSpec, "model: charlm", "model: charlm\n  command: [./x]", 7, "evaluate.command", "no command"},
		{"builtin with a timeout", validModelSpec, "model: charlm", "model: charlm\n  limits: {timeout: 1s}", 7, "evaluate.limits", "only limits.concurrency"},
		{"exec with model", modelMechanisms, "kind: exec,", "kind: exec, model: charlm,", 12, "mechanisms[1].evaluate.model", "has no model"},
		{"exec without command", modelMechanisms, "command: [./eval.sh], ", "", 12, "mechanisms[1].evaluate.command", "needs a command"},
		{"exec program outside", modelMechanisms, "[./eval.sh]", "[../eval.sh]", 12, "mechanisms[1].evaluate.command[0]", "inside the spec's directory"},
		{"limits out of range", modelMechanisms, "concurrency: 1", "concurrency: 65", 12, "mechanisms[1].evaluate.limits.concurrency", "to 64"},
		{"no data", validModelSpec, "  data: {path: data/eval.txt}\n", "", 4, "evaluate.data", "needs a path or a cid"},
		{"data outside", validModelSpec, "data/eval.txt", "/etc/passwd", 7, "evaluate.data.path", "inside the spec's directory"},
		{"data bad cid", validModelSpec, "{path: data/eval.txt}", "{cid: nope}", 7, "evaluate.data.cid", "not a CID"},
		{"sample too large", validModelSpec, "sample_bytes: 4096", "sample_bytes: 16777217", 8, "evaluate.sample_bytes", "to 16777216"},
		{"negative sample", validModelSpec, "sample_bytes: 4096", "sample_bytes: -1", 8, "evaluate.sample_bytes", "want 0"},
		{"artifact limit too large", validModelSpec, "sample_bytes: 4096", "max_artifact_bytes: 4294967297", 8, "evaluate.max_artifact_bytes", "to 4294967296"},
		{"epsilon too large", validModelSpec, "epsilon: 0.01", "epsilon: 0.6", 9, "evaluate.epsilon", "want 0 to 0.5"},
		{"negative epsilon", validModelSpec, "epsilon: 0.01", "epsilon: -0.1", 9, "evaluate.epsilon", "want 0 to 0.5"},
		{"NaN epsilon", validModelSpec, "epsilon: 0.01", "epsilon: .nan", 9, "evaluate.epsilon", "want 0 to 0.5"},
		{"unknown evaluate field", validModelSpec, "model: charlm", "model: charlm\n  colour: red", 7, "yaml", "field colour not found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(c.base, c.edit) {
				t.Fatalf("the edit %q is not in the base spec", c.edit)
			}
			_, err := Parse([]byte(strings.Replace(c.base, c.edit, c.replace, 1)))
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("want a SpecError, got %v", err)
			}
			if se.Line != c.line || se.Field != c.field || !strings.Contains(se.Reason, c.reason) {
				t.Fatalf("got line %d field %q: %v; want line %d field %q reason containing %q", se.Line, se.Field, err, c.line, c.field, c.reason)
			}
		})
	}
	// v1 knows none of it.
	v1 := strings.Replace(strings.Replace(validModelSpec, "version: 2\n", "", 1), "reward: '0.5 * win_rate + (is_best ? 0.5 : 0.0)'", "reward: '1.0'\nsynapses: [text.generate]", 1)
	if _, err := Parse([]byte(v1)); err == nil || !strings.Contains(err.Error(), "needs version: 2") {
		t.Fatalf("v1 with evaluate: %v", err)
	}
}

// The evaluation dataset's path is locked like a dataset's, an exec
// evaluator's program too, and a cid beside the path must be its CID.
func TestLockEvaluationData(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "data"), 0o755)
	os.WriteFile(filepath.Join(dir, "data", "eval.txt"), []byte("the quick brown fox\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "eval.sh"), []byte("#!/bin/sh\necho '{\"loss\": 1}'\n"), 0o755)
	text := strings.Replace(validModelSpec, "kind: builtin\n  model: charlm", "kind: exec\n  command: [./eval.sh]", 1)
	s, err := Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := s.ReferencedFiles(); !reflect.DeepEqual(got, []string{"data/eval.txt", "eval.sh"}) {
		t.Fatalf("referenced %v", got)
	}
	locked, err := Lock(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := Resolve(locked, dir); err != nil {
		t.Fatal(err)
	}
	want, _ := FileCID(filepath.Join(dir, "data", "eval.txt"))
	if locked.Files["data/eval.txt"] != want {
		t.Fatalf("files %v", locked.Files)
	}
	agree, err := Parse([]byte(strings.Replace(text, "{path: data/eval.txt}", "{path: data/eval.txt, cid: "+want+"}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(agree, dir); err != nil {
		t.Fatalf("a cid that agrees: %v", err)
	}
	other, _ := FileCID(filepath.Join(dir, "eval.sh"))
	differ, err := Parse([]byte(strings.Replace(text, "{path: data/eval.txt}", "{path: data/eval.txt, cid: "+other+"}", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Lock(differ, dir); err == nil || !strings.Contains(err.Error(), "but the spec's cid is") {
		t.Fatalf("a cid that does not agree: %v", err)
	}
	os.WriteFile(filepath.Join(dir, "data", "eval.txt"), []byte("changed"), 0o644)
	if err := Resolve(locked, dir); err == nil || !strings.Contains(err.Error(), "changed since the spec was locked") {
		t.Fatalf("a changed evaluation dataset: %v", err)
	}
}

func TestEpsilonRule(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	for _, c := range []struct {
		name    string
		a, b    Contender
		eps     float64
		aBeatsB bool
		bBeatsA bool
	}{
		{"earlier and better", Contender{1, 10, 1.0}, Contender{2, 20, 1.2}, 0.005, true, false},
		{"a copy committed later loses", Contender{1, 10, 1.0}, Contender{2, 20, 1.0}, 0.005, true, false},
		{"later within epsilon loses", Contender{1, 10, 1.0}, Contender{2, 20, 0.996}, 0.005, true, false},
		{"later beyond epsilon wins", Contender{1, 10, 1.0}, Contender{2, 20, 0.994}, 0.005, false, true},
		{"exactly at the margin: neither", Contender{1, 10, 1.0}, Contender{2, 20, 0.5}, 0.5, false, false},
		{"epsilon 0: plain loss", Contender{1, 10, 1.0}, Contender{2, 20, 0.999}, 0, false, true},
		{"epsilon 0, equal: neither", Contender{1, 10, 1.0}, Contender{2, 20, 1.0}, 0, false, false},
		{"same block: lower loss", Contender{1, 10, 1.0}, Contender{2, 10, 0.999}, 0.005, false, true},
		{"same block, equal: neither", Contender{1, 10, 1.0}, Contender{2, 10, 1.0}, 0.005, false, false},
		{"NaN loses to a number", Contender{1, 10, nan}, Contender{2, 20, 5}, 0.005, false, true},
		{"Inf loses to a number", Contender{1, 10, inf}, Contender{2, 20, 5}, 0.005, false, true},
		{"two NaNs: neither", Contender{1, 10, nan}, Contender{2, 20, nan}, 0.005, false, false},
		{"zero loss earlier holds", Contender{1, 10, 0}, Contender{2, 20, 0}, 0.005, false, false},
	} {
		if got := Beats(c.a, c.b, c.eps); got != c.aBeatsB {
			t.Errorf("%s: a beats b = %v", c.name, got)
		}
		if got := Beats(c.b, c.a, c.eps); got != c.bBeatsA {
			t.Errorf("%s: b beats a = %v", c.name, got)
		}
	}
}

func TestCompete(t *testing.T) {
	type want struct {
		wins []int
		best int
	}
	for _, c := range []struct {
		name string
		cs   []Contender
		eps  float64
		want want
	}{
		{"empty", nil, 0.005, want{nil, -1}},
		{"alone", []Contender{{3, 5, 2.0}}, 0.005, want{[]int{0}, 0}},
		{"three by quality", []Contender{{1, 10, 3.0}, {2, 11, 2.0}, {3, 12, 2.5}}, 0.005, want{[]int{0, 2, 1}, 1}},
		{"a later copy of the leader", []Contender{{1, 10, 2.0}, {2, 11, 3.0}, {3, 30, 2.0}}, 0.005, want{[]int{2, 0, 1}, 0}},
		// Nobody beats everyone: 1 and 2 tie in wins; the first committed is best.
		{"a tie in wins", []Contender{{2, 10, 1.0}, {1, 10, 1.0}}, 0.005, want{[]int{0, 0}, 1}},
		{"NaN never best", []Contender{{1, 1, nan()}, {2, 2, 9}}, 0.005, want{[]int{0, 1}, 1}},
	} {
		out, best := Compete(c.cs, c.eps)
		wins := make([]int, len(out))
		for i, s := range out {
			wins[i] = s.Wins
			wantRate := 1.0
			if len(c.cs) > 1 {
				wantRate = float64(s.Wins) / float64(len(c.cs)-1)
			}
			if s.WinRate != wantRate || s.IsBest != (i == best) {
				t.Errorf("%s: standing %d %+v", c.name, i, s)
			}
		}
		if len(out) == 0 {
			wins = nil
		}
		if !reflect.DeepEqual(wins, c.want.wins) || best != c.want.best {
			t.Errorf("%s: wins %v best %d; want %v best %d", c.name, wins, best, c.want.wins, c.want.best)
		}
		// The order of the input does not change anyone's standing.
		rev := make([]Contender, len(c.cs))
		for i := range c.cs {
			rev[len(c.cs)-1-i] = c.cs[i]
		}
		rout, rbest := Compete(rev, c.eps)
		for i := range c.cs {
			if rout[len(c.cs)-1-i] != out[i] {
				t.Errorf("%s: reversed input changed standing %d", c.name, i)
			}
		}
		if best >= 0 && rbest != len(c.cs)-1-best {
			t.Errorf("%s: reversed input changed the best", c.name)
		}
	}
}

func nan() float64 { return math.NaN() }
