package neuron

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// upperSynapse is a custom synapse: a text in, its upper-case form out.
const upperSynapse = `  - name: upper.v1
    request: {type: object, required: [text], properties: {text: {type: string, maxLength: 100}}, additionalProperties: false}
    answer: text
`

// lowerSynapse is upper's twin, whose answer must be a JSON object.
const lowerSynapse = `  - name: lower.v1
    request: {type: object, required: [text], properties: {text: {type: string, maxLength: 100}}}
    answer: {type: object, required: [lower], properties: {lower: {type: string}}}
`

// hookLimitsYAML gives the test binary, run as a hook, room for the Go
// runtime's address space.
const hookLimitsYAML = `{memory_mb: 8192, timeout: 10s}`

// v2Spec parses a v2 spec of the given synapses and body (tasks, judge,
// reward or mechanisms), querying every block, written to a directory of
// its own (returned).
func v2Spec(t *testing.T, synapses, body string) (*subnet.Spec, string) {
	t.Helper()
	text := "version: 2\nname: pipeline-test\nsynapses:\n" + synapses + body +
		"query: {every: 1, sample: 0, timeout: 2s}\nalpha: 0.5\nweights_every: 3\n"
	spec, err := subnet.Parse([]byte(text))
	if err != nil {
		t.Fatalf("%v\n%s", err, text)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "spec.yaml"), []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return spec, dir
}

// answer is a miner handler answering f(text) of a {"text": …} request.
func answer(f func(text string) string) protocol.Handler {
	return protocol.HandlerFunc(func(_ context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		var req struct {
			Text string `json:"text"`
		}
		if err := json.Unmarshal(r.Body, &req); err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		return w.Write([]byte(f(req.Text)))
	})
}

// v2Subnet is spec's subnet on an embedded chain, its validator (with
// cfgFn applied to its config) querying every block and start starting
// miner i with handlers.
func v2Subnet(t *testing.T, spec *subnet.Spec, dir, label string, miners int, cfgFn func(*ValidatorConfig)) (v *Validator, start func(i int, handlers map[string]protocol.Handler) *Miner, c *local.Local) {
	t.Helper()
	var colds []*wallet.PrivateKey
	for i := range miners + 1 {
		colds = append(colds, testKey(t, label+" cold", i))
	}
	c = testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	log := slog.New(slog.DiscardHandler)
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Logger, vcfg.SpecDir = log, dir
	vcfg.Swarm.Disabled = true
	if cfgFn != nil {
		cfgFn(&vcfg)
	}
	v, err := StartValidator(ctx, c, colds[0], testKey(t, label+" hot", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	return v, func(i int, handlers map[string]protocol.Handler) *Miner {
		t.Helper()
		cfg := SpecMinerConfig(1, spec, nil)
		cfg.Logger, cfg.Handlers = log, handlers
		cfg.Swarm.Disabled = true
		m, err := StartMiner(ctx, c, colds[i], testKey(t, label+" hot", i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}, c
}

// An exec task source and an exec judge: the validator runs the task
// program, asks each miner a task of its own, has the judge score the
// answers, and pays the honest miner, not the lazy one; its weights on
// chain say so.
func TestExecTasksAndJudgePayTheHonestMiner(t *testing.T) {
	spec, dir := v2Spec(t, upperSynapse, fmt.Sprintf(`tasks:
  source: exec
  command: %s
  limits: %s
judge:
  kind: exec
  command: %s
  limits: %s
reward: 'judge.score * (judge.fields.exact ? 1.0 : 0.5)'
`, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML, testHookCommand(t, "judge"), hookLimitsYAML))
	v, start, c := v2Subnet(t, spec, dir, "exec judge", 2, nil)
	honest := start(1, map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)})
	lazy := start(2, map[string]protocol.Handler{"upper.v1": answer(func(string) string { return "WHATEVER" })})
	waitUntil(t, time.Minute, "the honest miner to score", func() bool { return scoreOf(v, honest.UID()) > 0.5 })
	waitRounds(t, v, 2*5)
	if s := scoreOf(v, lazy.UID()); s != 0 || lazy.QueriesServed() == 0 {
		t.Fatalf("the lazy miner scores %v after %d queries", s, lazy.QueriesServed())
	}
	if d := v.Dropped(); len(d) != 0 {
		t.Fatalf("dropped %+v", d)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	waitUntil(t, time.Minute, "weights on chain for the honest miner only", func() bool {
		n, err := c.Neuron(ctx, 1, testKey(t, "exec judge hot", 0).PublicKey().Address())
		if err != nil || len(n.Weights) == 0 {
			return false
		}
		for _, e := range n.Weights {
			if e.UID == lazy.UID() && e.Value > 0 {
				t.Fatalf("weights %+v pay the lazy miner", n.Weights)
			}
		}
		return true
	})
}

// A judge that crashes, hangs or answers garbage leaves the miners'
// scores as they were: every judged task is dropped and counted under the
// judge's reason, none scored 0.
func TestBrokenJudgesDropTasks(t *testing.T) {
	// Only the hanging judge gets a short timeout: the others must fail
	// for their own reason, not the time the test binary takes to start.
	for _, c := range []struct {
		mode, reason, timeout string
	}{
		{"judge-crash", "judge_crashed", "10s"},
		{"judge-hang", "judge_timeout", "300ms"},
		{"judge-garbage", "judge_bad_reply", "10s"},
	} {
		t.Run(c.mode, func(t *testing.T) {
			spec, dir := v2Spec(t, upperSynapse, fmt.Sprintf(`tasks:
  source: exec
  command: %s
  limits: %s
judge:
  kind: exec
  command: %s
  limits: {memory_mb: 8192, timeout: %s}
reward: 'judge.score'
`, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML, testHookCommand(t, c.mode), c.timeout))
			v, start, _ := v2Subnet(t, spec, dir, "broken "+c.mode, 1, nil)
			honest := start(1, map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)})
			waitUntil(t, time.Minute, "three dropped tasks", func() bool {
				var n int64
				for _, d := range v.Dropped() {
					if d.Mechanism != subnet.MainMechanism || !strings.HasPrefix(d.Reason, "judge_") {
						t.Fatalf("dropped %+v", d)
					}
					n += d.Count
				}
				return n >= 3
			})
			if got := v.Dropped(); len(got) != 1 || got[0].Reason != c.reason {
				t.Errorf("dropped %+v, want reason %s", got, c.reason)
			}
			if n := honest.QueriesServed(); n == 0 {
				t.Fatal("the miner was never asked")
			}
			if e := v.scoresEntries(); len(e) != 0 {
				t.Fatalf("scores %+v: a broken judge changed them", e)
			}
			v.mu.Lock()
			last := v.answers[honest.UID()]
			v.mu.Unlock()
			if len(last) == 0 || !last[len(last)-1].Dropped || !strings.Contains(last[len(last)-1].Reason, "judge") {
				t.Fatalf("answers %+v", last)
			}
		})
	}
}

// A task program that fails skips the round: nobody is queried or scored,
// and the failure is counted.
func TestFailingTaskProgramSkipsRounds(t *testing.T) {
	spec, dir := v2Spec(t, upperSynapse, fmt.Sprintf(`tasks:
  source: exec
  command: %s
  limits: %s
reward: 'answer == expected ? 1.0 : 0.0'
`, testHookCommand(t, "fail"), hookLimitsYAML))
	v, start, _ := v2Subnet(t, spec, dir, "failing tasks", 1, nil)
	m := start(1, map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)})
	waitUntil(t, time.Minute, "three failed task runs counted", func() bool {
		d := v.Dropped()
		return len(d) == 1 && d[0].Reason == dropTaskSource && d[0].Count >= 3
	})
	if q, _ := v.Stats(); q != 0 || m.QueriesServed() != 0 {
		t.Fatalf("%d queries sent, %d served without tasks", q, m.QueriesServed())
	}
}

// An answer that fails the synapse's answer schema scores 0, and the
// reason is in the state file "validator scores" reads.
func TestInvalidAnswerScoresZeroWithItsReason(t *testing.T) {
	spec, dir := v2Spec(t, lowerSynapse, fmt.Sprintf(`tasks:
  source: exec
  command: %s
  limits: %s
reward: 'json_path(answer_json, "lower") == expected ? 1.0 : 0.0'
`, testHookCommand(t, "tasks", "lower", "8"), hookLimitsYAML))
	state := t.TempDir()
	v, start, _ := v2Subnet(t, spec, dir, "invalid", 2, func(c *ValidatorConfig) { c.StateDir = state })
	good := start(1, map[string]protocol.Handler{"lower.v1": answer(func(s string) string { return fmt.Sprintf(`{"lower": %q}`, strings.ToLower(s)) })})
	bad := start(2, map[string]protocol.Handler{"lower.v1": answer(strings.ToLower)}) // text, not the JSON object
	waitUntil(t, time.Minute, "the good miner to score", func() bool { return scoreOf(v, good.UID()) > 0.5 })
	waitRounds(t, v, 4)
	if err := v.saveState(); err != nil {
		t.Fatal(err)
	}
	st, err := ReadValidatorStatus(state)
	if err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, a := range st.Answers {
		if a.UID == bad.UID() {
			seen = true
			if a.Score != 0 || a.Status != "OK" || !strings.Contains(a.Reason, "invalid answer") || a.Dropped {
				t.Fatalf("the bad miner's answer %+v", a)
			}
		}
	}
	if !seen {
		t.Fatalf("no answer of the bad miner in %+v", st.Answers)
	}
	for _, e := range st.Scores {
		if e.UID == bad.UID() && e.Value != 0 {
			t.Fatalf("the bad miner scores %v", e.Value)
		}
	}
}

// Two mechanisms, each with its own synapse, tasks, reward and scores:
// the validator sets weights for each under its id, mechanism 0 paying the
// miner that upper-cases, mechanism 1 the one that answers lower-case
// JSON; the state file keeps both.
func TestTwoMechanismsSetWeightsEach(t *testing.T) {
	spec, dir := v2Spec(t, upperSynapse+lowerSynapse, fmt.Sprintf(`mechanisms:
  - name: upper
    share: 0.5
    tasks: {source: exec, synapse: upper.v1, command: %s, limits: %s}
    judge: {kind: exec, command: %s, limits: %s}
    reward: 'judge.score'
  - name: lower
    share: 0.5
    tasks: {source: exec, synapse: lower.v1, command: %s, limits: %s}
    reward: 'json_path(answer_json, "lower") == expected ? 1.0 : 0.0'
`, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML, testHookCommand(t, "judge"), hookLimitsYAML,
		testHookCommand(t, "tasks", "lower", "8"), hookLimitsYAML))
	state := t.TempDir()
	v, start, c := v2Subnet(t, spec, dir, "two mechanisms", 2, func(c *ValidatorConfig) { c.StateDir = state })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	owner := testKey(t, "root", 0)
	if _, err := chainlink.NewSender(c, owner).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: 1, Shares: []uint32{1, 1}}}}); err != nil {
		t.Fatal(err)
	}
	both := func(upper, lower bool) map[string]protocol.Handler {
		h := map[string]protocol.Handler{"upper.v1": answer(func(string) string { return "no" }), "lower.v1": answer(func(string) string { return `{"lower": "no"}` })}
		if upper {
			h["upper.v1"] = answer(strings.ToUpper)
		}
		if lower {
			h["lower.v1"] = answer(func(s string) string { return fmt.Sprintf(`{"lower": %q}`, strings.ToLower(s)) })
		}
		return h
	}
	up, low := start(1, both(true, false)), start(2, both(false, true))
	if got := v.Mechanisms(); len(got) != 2 || got[0] != "upper" || got[1] != "lower" {
		t.Fatalf("mechanisms %v", got)
	}
	hot := testKey(t, "two mechanisms hot", 0).PublicKey().Address()
	weightOn := func(mech uint8) (map[uint16]uint16, bool) {
		n, err := c.Neuron(ctx, 1, hot)
		if err != nil {
			return nil, false
		}
		mn, ok := n.Mechanism(mech)
		if !ok || len(mn.Weights) == 0 {
			return nil, false
		}
		w := map[uint16]uint16{}
		for _, e := range mn.Weights {
			w[e.UID] = e.Value
		}
		return w, true
	}
	waitUntil(t, time.Minute, "weights on both mechanisms, each paying its miner", func() bool {
		w0, ok0 := weightOn(0)
		w1, ok1 := weightOn(1)
		return ok0 && ok1 && w0[up.UID()] > 0 && w0[low.UID()] == 0 && w1[low.UID()] > 0 && w1[up.UID()] == 0
	})
	// The chain holds both mechanisms' weights a moment before the
	// validator notes them.
	waitUntil(t, time.Minute, "the validator to note both weights", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		return v.pipes[0].weights != nil && v.pipes[1].weights != nil
	})
	if err := v.saveState(); err != nil {
		t.Fatal(err)
	}
	st, err := ReadValidatorStatus(state)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Mechanisms) != 2 || st.Mechanisms[0].Name != "upper" || st.Mechanisms[1].ID != 1 || st.Mechanisms[1].Weights == nil {
		t.Fatalf("status mechanisms %+v", st.Mechanisms)
	}
}

// An llm judge asks the validator's own model server (JudgeURL, over the
// spec's url) with the key from the environment variable the spec names,
// and the score it reads from the model's reply pays the honest miner.
func TestLLMJudgeThroughTheValidator(t *testing.T) {
	model := openaitest.New(openaitest.Config{APIKey: "sekret", Reply: func(req openaitest.ChatRequest) string {
		msg := req.Messages[len(req.Messages)-1].Content
		var want, got string
		for _, line := range strings.Split(msg, "\n") {
			if s, ok := strings.CutPrefix(line, "Expected: "); ok {
				want = s
			}
			if s, ok := strings.CutPrefix(line, "Answer: "); ok {
				got = s
			}
		}
		if want != "" && got == want {
			return "Score: 9/10"
		}
		return "Score: 1/10"
	}})
	defer model.Close()
	spec, dir := v2Spec(t, upperSynapse, fmt.Sprintf(`tasks: {source: exec, command: %s, limits: %s}
judge:
  kind: llm
  url: http://127.0.0.1:9/v1
  model: test-model
  api_key_env: TEST_JUDGE_KEY
  prompt: "Text: {{task.text}}\nExpected: {{expected}}\nAnswer: {{answer}}\nRate the answer from 0 to 10."
reward: 'judge.score > 0.5 ? judge.score : 0.0'
`, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML))
	v, start, _ := v2Subnet(t, spec, dir, "llm judge", 2, func(c *ValidatorConfig) {
		c.JudgeURL = model.URL + "/v1"
		c.Getenv = func(name string) string {
			if name == "TEST_JUDGE_KEY" {
				return "sekret"
			}
			return ""
		}
	})
	honest := start(1, map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)})
	lazy := start(2, map[string]protocol.Handler{"upper.v1": answer(strings.ToLower)})
	waitUntil(t, time.Minute, "the honest miner to score", func() bool { return scoreOf(v, honest.UID()) > 0.5 })
	waitRounds(t, v, 4)
	if s := scoreOf(v, lazy.UID()); s != 0 || lazy.QueriesServed() == 0 {
		t.Fatalf("the lazy miner scores %v after %d queries", s, lazy.QueriesServed())
	}
	if d := v.Dropped(); len(d) != 0 {
		t.Fatalf("dropped %+v", d)
	}
	if model.Requests("/v1/chat/completions") == 0 {
		t.Fatal("the model was never asked")
	}
}

// upperAnswerer is a validator's own backend for upper.v1.
type upperAnswerer struct{}

func (upperAnswerer) Answer(_ context.Context, _ string, request []byte) ([]byte, error) {
	var req struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(request, &req); err != nil {
		return nil, err
	}
	return []byte(strings.ToUpper(req.Text)), nil
}

// An http judge (an endpoint on 127.0.0.1 speaking the exec judge's
// protocol, with the bearer key) and a reference judge (the validator's
// own backend answering the same task, compared by similarity) each pay
// the honest miner and not the lazy one.
func TestHTTPAndReferenceJudges(t *testing.T) {
	var calls atomic.Int64
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer k" {
			http.Error(w, "who are you", http.StatusUnauthorized)
			return
		}
		var req struct {
			Task struct {
				Expected string `json:"expected"`
			} `json:"task"`
			Answer string `json:"answer"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		score := 0.0
		if req.Answer == req.Task.Expected {
			score = 1
		}
		fmt.Fprintf(w, `{"score": %v}`, score)
	}))
	defer endpoint.Close()
	for _, c := range []struct {
		name, judge string
		cfg         func(*ValidatorConfig)
	}{
		{"http", fmt.Sprintf("{kind: http, url: %q, api_key_env: HTTP_JUDGE_KEY}", endpoint.URL),
			func(c *ValidatorConfig) { c.JudgeKey = "k" }},
		{"reference", "{kind: reference, compare: similarity}", func(c *ValidatorConfig) { c.Reference = upperAnswerer{} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			spec, dir := v2Spec(t, upperSynapse, fmt.Sprintf(`tasks: {source: exec, command: %s, limits: %s}
judge: %s
reward: 'judge.score'
`, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML, c.judge))
			v, start, _ := v2Subnet(t, spec, dir, c.name+" judge", 2, c.cfg)
			honest := start(1, map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)})
			lazy := start(2, map[string]protocol.Handler{"upper.v1": answer(func(string) string { return "nothing to see" })})
			waitUntil(t, time.Minute, "the honest miner to score", func() bool { return scoreOf(v, honest.UID()) > 0.5 })
			waitRounds(t, v, 4)
			if s := scoreOf(v, lazy.UID()); s != 0 || lazy.QueriesServed() == 0 {
				t.Fatalf("the lazy miner scores %v after %d queries", s, lazy.QueriesServed())
			}
			if d := v.Dropped(); len(d) != 0 {
				t.Fatalf("dropped %+v", d)
			}
		})
	}
	if calls.Load() == 0 {
		t.Fatal("the http judge was never called")
	}
	// A reference judge needs the validator's own backend.
	spec, dir := v2Spec(t, upperSynapse, fmt.Sprintf("tasks: {source: exec, command: %s}\njudge: {kind: reference, compare: similarity}\nreward: 'judge.score'\n",
		testHookCommand(t, "tasks", "upper", "8")))
	c := testChain(t, []*wallet.PrivateKey{testKey(t, "no reference cold", 0)})
	cfg := SpecValidatorConfig(1, spec, nil)
	cfg.Logger, cfg.SpecDir, cfg.Swarm.Disabled = slog.New(slog.DiscardHandler), dir, true
	if _, err := StartValidator(context.Background(), c, testKey(t, "no reference cold", 0), testKey(t, "no reference hot", 0), 0, cfg); err == nil || !strings.Contains(err.Error(), "Reference") {
		t.Fatalf("a reference judge without a backend: %v", err)
	}
}
