package subnet

import (
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
)

func TestBuiltinQA(t *testing.T) {
	s, err := Builtin("qa")
	if err != nil {
		t.Fatal(err)
	}
	if s.Name != "qa" || s.Synapses[0].Name != "text.generate" || s.Tasks.Source != FromKnowledge || s.Query.Timeout.Seconds() != 2 || s.Hyperparameters["min_allowed_weights"] != 1 {
		t.Fatalf("%+v", s)
	}
	if s.Hash() != sha256.Sum256(s.Text()) {
		t.Fatal("hash is not SHA-256 of the text")
	}
	if _, err := Builtin("nope"); err == nil || !strings.Contains(err.Error(), "qa") {
		t.Fatalf("unknown built-in: %v", err)
	}
}

// Every built-in spec parses; storage and compute send their tasks where
// their sources make them.
func TestBuiltins(t *testing.T) {
	names := BuiltinNames()
	if strings.Join(names, ",") != "compute,model,qa,storage" {
		t.Fatalf("built-ins %v", names)
	}
	// model queries no synapse: its tasks are the miners' commitments.
	want := map[string]string{"qa": "text.generate", "storage": "storage.prove", "compute": "compute.run", "model": ""}
	for _, name := range names {
		s, err := Builtin(name)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if s.Name != name || s.TaskSynapse() != want[name] {
			t.Errorf("%s: name %q, tasks go to %q", name, s.Name, s.TaskSynapse())
		}
	}
	c, _ := Builtin("compute")
	if g, err := c.Generator(); err != nil || g.name != GenHashPreimage || g.difficulty != 16 {
		t.Fatalf("compute generator %+v %v", g, err)
	}
}

const valid = `name: demo
synapses: [text.generate]
tasks:
  source: knowledge
reward: 'exact(answer, expected)'
query:
  every: 1
  timeout: 1s
alpha: 0.5
weights_every: 3
`

// Invalid specs are rejected with the line and the reason.
func TestInvalidSpecs(t *testing.T) {
	for _, c := range []struct {
		name, edit, replace string
		line                int
		reason              string
	}{
		{"unknown field", "alpha: 0.5", "alpha: 0.5\ncolour: blue", 10, "colour"},
		{"unknown synapse", "[text.generate]", "[text.generate, text.dance]", 2, `unknown synapse "text.dance"`},
		{"duplicate synapse", "[text.generate]", "[text.generate, text.generate]", 2, "listed twice"},
		{"bad expression", "'exact(answer, expected)'", "'exact(answer'", 5, "reward"},
		{"undeclared variable", "'exact(answer, expected)'", "'exact(answer, miner)'", 5, "undeclared reference"},
		{"wrong result type", "'exact(answer, expected)'", "'answer'", 5, "want double or bool"},
		{"wrong argument types", "'exact(answer, expected)'", "'latency_score(answer, 1.0)'", 5, "no matching overload"},
		{"string for a number", "alpha: 0.5", "alpha: high", 9, "cannot unmarshal"},
		{"alpha out of range", "alpha: 0.5", "alpha: 1.5", 9, "(0, 1]"},
		{"no cadence", "  every: 1", "  every: 0", 7, "at least 1 block"},
		{"timeout too short", "timeout: 1s", "timeout: 1ms", 8, "100ms to 10m"},
		{"unknown source", "source: knowledge", "source: vibes", 4, `"vibes"`},
		{"dataset without path", "source: knowledge", "source: dataset", 3, "needs a path"},
		{"unknown generator", "source: knowledge", "source: generator\n  generator: magic", 5, `unknown generator "magic"`},
		{"unknown hyperparameter", "weights_every: 3", "weights_every: 3\nhyperparameters:\n  speed: 9", 12, "unknown hyperparameter"},
		{"hyperparameter out of range", "weights_every: 3", "weights_every: 3\nhyperparameters:\n  max_allowed_validators: 5000", 12, "outside 1..4096"},
		{"root's hyperparameter", "weights_every: 3", "weights_every: 3\nhyperparameters:\n  tempo: 5", 12, "only the chain root sets it"},
		{"not yaml", "name: demo", "name: [demo", 0, "yaml"},
		{"task synapse not served", "source: knowledge", "source: knowledge\n  synapse: storage.prove", 5, "not one of the spec's synapses"},
		{"knowledge tasks for compute", "[text.generate]", "[compute.run]", 4, "knowledge tasks go to text.generate or storage.prove, not compute.run"},
		{"generator tasks for text", "source: knowledge", "source: generator\n  generator: arithmetic", 4, "generator tasks go to compute.run"},
		{"dataset tasks for storage", "[text.generate]\ntasks:\n  source: knowledge", "[text.generate, storage.prove]\ntasks:\n  source: dataset\n  path: qa.jsonl\n  synapse: storage.prove", 6, "dataset tasks go to text.generate, not storage.prove"},
		{"difficulty without a generator", "source: knowledge", "source: knowledge\n  difficulty: 3", 5, "only generated tasks"},
		{"preimage too hard", "[text.generate]\ntasks:\n  source: knowledge", "[compute.run]\ntasks:\n  source: generator\n  generator: hash-preimage\n  difficulty: 33", 6, "at most 32"},
		{"too many squarings", "[text.generate]\ntasks:\n  source: knowledge", "[compute.run]\ntasks:\n  source: generator\n  generator: arithmetic\n  difficulty: 99999999", 6, "at most 16777216"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(valid, c.edit, c.replace, 1)
			if text == valid {
				t.Fatal("edit did not apply")
			}
			_, err := Parse([]byte(text))
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("want a SpecError, got %v", err)
			}
			if c.line != 0 && se.Line != c.line {
				t.Errorf("line %d, want %d (%v)", se.Line, c.line, err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("%q lacks %q", err, c.reason)
			}
		})
	}
	if _, err := Parse([]byte(valid)); err != nil {
		t.Fatalf("the valid spec: %v", err)
	}
	if _, err := Parse(nil); err == nil {
		t.Fatal("empty spec accepted")
	}
	if _, err := Parse(make([]byte, MaxSpecSize+1)); err == nil {
		t.Fatal("oversize spec accepted")
	}
}

func TestReward(t *testing.T) {
	qa, _ := Builtin("qa")
	rw, err := NewReward(qa.Reward)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		r    Response
		want float64
	}{
		{"correct and instant", Response{Answer: "It is Blue.", Expected: "blue", TimeoutMS: 1000}, 1},
		{"correct at half the deadline", Response{Answer: "blue", Expected: "blue", LatencyMS: 500, TimeoutMS: 1000}, 0.75},
		{"correct past the deadline", Response{Answer: "blue", Expected: "blue", LatencyMS: 1500, TimeoutMS: 1000}, 0},
		{"wrong", Response{Answer: "red", Expected: "blue", TimeoutMS: 1000}, 0},
		{"empty expected", Response{Answer: "red", Expected: "", TimeoutMS: 1000}, 0},
	} {
		got, err := rw.Score(c.r)
		if err != nil || got != c.want {
			t.Errorf("%s: %v %v, want %v", c.name, got, err, c.want)
		}
	}
	for expr, want := range map[string]float64{
		`valid`: 1,
		`similarity("the sky is blue", "blue sky")`: 1,
		`similarity("red apple", "blue sky")`:       0,
		`3.0`:                                       1, // clamped
		`-1.0`:                                      0,
		`0.0/0.0`:                                   0, // NaN
		`status == "ok" ? 0.25 : 1.0`:               0.25,
		`rate_score(work, 10.0, 100.0)`:             0.5, // 1,000 units in 10 ms: 100 per ms
		`rate_score(work, 0.0, 1000.0)`:             0.5, // at least 1 ms
		`rate_score(0.0, 10.0, 100.0)`:              0,
		`rate_score(work, 10.0, 0.0)`:               0, // nonsense
		`rate_score(-1.0, 10.0, 100.0)`:             0,
		`rate_score(work, 0.0/0.0, 100.0)`:          0,
		`work / 1000.0`:                             1,
	} {
		rw, err := NewReward(expr)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		if got, err := rw.Score(Response{Status: "ok", Valid: true, Work: 1000}); err != nil || got != want {
			t.Errorf("%s = %v %v, want %v", expr, got, err, want)
		}
	}
}

// TestRewardCommitments covers the variables a reward reads from the
// miner's chain commitment, and UsesCommitments, which decides whether a
// validator reads the subnet's commitments at all.
func TestRewardCommitments(t *testing.T) {
	const cidText = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	r := Response{Status: "ok", Valid: true, Commitment: cidText, CommitmentBlock: 90, Block: 100}
	for _, c := range []struct {
		expr string
		uses bool
		want float64
	}{
		{`is_cid(commitment) ? 1.0 : 0.0`, true, 1},
		{`commitment == "" ? 0.0 : 1.0`, true, 1},
		{`block - commitment_block >= 10.0`, true, 1},
		{`block - commitment_block >= 11.0`, true, 0},
		{`is_cid("not a cid")`, false, 0},
		{`is_cid("")`, false, 0},
		{`block / 200.0`, false, 0.5},
		{`valid`, false, 1},
	} {
		rw, err := NewReward(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if rw.UsesCommitments() != c.uses {
			t.Errorf("%s: UsesCommitments %v, want %v", c.expr, rw.UsesCommitments(), c.uses)
		}
		if got, err := rw.Score(r); err != nil || got != c.want {
			t.Errorf("%s = %v %v, want %v", c.expr, got, err, c.want)
		}
	}
	// A miner without a commitment sees "" and 0.
	rw, _ := NewReward(`is_cid(commitment) && commitment_block > 0.0`)
	if got, _ := rw.Score(Response{Status: "ok", Valid: true}); got != 0 {
		t.Errorf("no commitment scored %v", got)
	}
	for data, want := range map[string]string{
		cidText:              cidText,
		"model: tiny-lm v2":  "model: tiny-lm v2",
		string([]byte{0xff}): "0xff",
		"\x00ok":             "\x00ok",
	} {
		if got := CommitmentText([]byte(data)); got != want {
			t.Errorf("CommitmentText(%q) = %q, want %q", data, got, want)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(valid))
	for _, name := range BuiltinNames() {
		s, _ := Builtin(name)
		f.Add(s.Text())
	}
	f.Add([]byte("name: [x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("not a SpecError: %v", err)
			}
			return
		}
		compile := NewReward
		if s.Version >= 2 {
			compile = NewRewardV2 // v2 rewards see more variables (loss, is_best, …)
		}
		for _, m := range s.EffectiveMechanisms() {
			if _, err := compile(m.Reward); err != nil {
				t.Fatalf("accepted spec with a bad reward: %v", err)
			}
		}
	})
}

// UsesExpected says whether a reward reads the task's expected answer,
// which organic requests lack.
func TestRewardUsesExpected(t *testing.T) {
	for _, c := range []struct {
		expr string
		uses bool
	}{
		{`similarity(answer, expected)`, true},
		{`expected_json == answer_json ? 1.0 : 0.0`, true},
		{`size(expected) > 0 && judge.score > 0.5`, true},
		{`judge.score`, false},
		{`valid ? latency_score(latency_ms, timeout_ms) : 0.0`, false},
		{`word_count(answer) > 3 ? judge.score : 0.0`, false},
		{`task.text == "expected" ? 1.0 : 0.0`, false},
	} {
		rw, err := NewRewardV2(c.expr)
		if err != nil {
			t.Fatalf("%s: %v", c.expr, err)
		}
		if rw.UsesExpected() != c.uses {
			t.Errorf("%s: UsesExpected %v, want %v", c.expr, rw.UsesExpected(), c.uses)
		}
	}
}

// A judge of a built-in synapse's tasks names the fields of its request
// (protocol/SPEC.md §2.6) in its template.
func TestJudgeTemplateOfBuiltins(t *testing.T) {
	for _, c := range []struct {
		synapse, tmpl string
		ok            bool
	}{
		{SynapseChat, "{{task.messages}} {{answer}}", true},
		{SynapseChat, "{{task.max_tokens}} {{task.stop}}", true},
		{SynapseChat, "{{task.prompt}}", false},
		{SynapseEmbed, "{{task.input}}", true},
		{SynapseEmbed, "{{task.messages}}", false},
		{"text.generate", "{{task.prompt}}", true},
	} {
		err := CheckJudgeTemplate(c.tmpl, BuiltinSynapse(c.synapse))
		if (err == nil) != c.ok {
			t.Errorf("%s %q: %v, want ok %v", c.synapse, c.tmpl, err, c.ok)
		}
	}
}
