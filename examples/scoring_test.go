package examples

import (
	"bytes"
	"context"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/judge"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/subnet"
)

// example is one worked example, loaded: its spec, its tasks and the
// synapse they go to.
type example struct {
	dir    string
	spec   *subnet.Spec
	syn    *subnet.Synapse
	tasks  []subnet.Task
	reward *subnet.Reward
}

// loadExample parses dir/spec.yaml and makes its tasks from the task lines
// its source gives: the dataset file, or the task program's output.
func loadExample(t *testing.T, dir string) *example {
	t.Helper()
	text, err := os.ReadFile(filepath.Join(dir, "spec.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := subnet.Parse(text)
	if err != nil {
		t.Fatalf("%s/spec.yaml: %v", dir, err)
	}
	if spec.Version != 2 {
		t.Fatalf("%s/spec.yaml: version %d, want 2", dir, spec.Version)
	}
	for _, f := range spec.ReferencedFiles() {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("%s/spec.yaml refers to %s: %v", dir, f, err)
		}
	}
	syn := spec.Synapse(spec.TaskSynapseOf(spec.Tasks))
	if syn == nil || syn.Builtin() {
		t.Fatalf("%s: tasks go to %q, want a custom synapse", dir, spec.TaskSynapseOf(spec.Tasks))
	}
	var lines []byte
	switch spec.Tasks.Source {
	case subnet.FromDataset:
		lines, err = os.ReadFile(filepath.Join(dir, spec.Tasks.Path))
	case subnet.FromExec:
		lines = runTaskProgram(t, dir, spec.Tasks)
	default:
		t.Fatalf("%s: task source %q", dir, spec.Tasks.Source)
	}
	if err != nil {
		t.Fatal(err)
	}
	tls, err := subnet.ParseTaskLines(bytes.NewReader(lines), 0)
	if err != nil {
		t.Fatalf("%s: task lines: %v", dir, err)
	}
	rw, err := spec.CompileReward(spec.Reward)
	if err != nil {
		t.Fatalf("%s: reward: %v", dir, err)
	}
	ex := &example{dir: dir, spec: spec, syn: syn, reward: rw}
	for i, l := range tls {
		task, err := syn.TaskFromLine(l)
		if err != nil {
			t.Fatalf("%s: task %d: %v", dir, i+1, err)
		}
		ex.tasks = append(ex.tasks, task)
	}
	return ex
}

// runTaskProgram runs a task program as a validator does: a sandboxed
// hook under the spec's limits, in the spec's directory, its output the
// task lines.
func runTaskProgram(t *testing.T, dir string, tasks subnet.Tasks) []byte {
	t.Helper()
	python3(t)
	cfg := hook.DefaultExecConfig(filepath.Base(dir)+"/tasks", tasks.Command...)
	cfg.Dir, cfg.Limits, cfg.Logger = dir, neuron.HookLimits(tasks.Limits), slog.New(slog.DiscardHandler)
	lines, err := hook.Run(context.Background(), cfg, nil, 10_000)
	if err != nil {
		t.Fatalf("%s: %v: %v", dir, tasks.Command, err)
	}
	return append(bytes.Join(lines, []byte("\n")), '\n')
}

// startExecJudge starts a spec's exec judge as a validator does: a
// supervised hook under the spec's limits, behind judge.NewCaller.
func startExecJudge(t *testing.T, dir string, j *subnet.Judge) judge.Judge {
	t.Helper()
	python3(t)
	cfg := hook.DefaultExecConfig(filepath.Base(dir)+"/judge", j.Command...)
	cfg.Dir, cfg.Limits, cfg.Logger = dir, neuron.HookLimits(j.Limits), slog.New(slog.DiscardHandler)
	e, err := hook.StartExec(cfg)
	if err != nil {
		t.Fatal(err)
	}
	jd := judge.NewCaller(e, judge.WithName(cfg.Name))
	t.Cleanup(func() {
		jd.Close()
		e.Close()
	})
	return jd
}

// taskLines are the tasks as the fake model's answer tables want them.
func (ex *example) taskLines(t *testing.T) []taskLine {
	t.Helper()
	var out []taskLine
	for _, task := range ex.tasks {
		out = append(out, taskLine{Request: task.Request, Expected: task.ExpectedJSON, Meta: task.Meta})
	}
	return out
}

// honestAnswer is what an LLM-backed miner answers: the synapse's prompt,
// rendered from the request, sent to the model.
func honestAnswer(t *testing.T, model *backend.OpenAI, syn *subnet.Synapse, task subnet.Task) []byte {
	t.Helper()
	prompt, err := syn.RenderPrompt(task.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := model.Generate(context.Background(), prompt, func(s string) error {
		out.WriteString(s)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return []byte(out.String())
}

// lazyAnswer is eight words drawn at random, as localnet's lazy miner
// answers a text synapse.
func lazyAnswer(rng *mrand.Rand) []byte {
	words := strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore")
	var out []string
	for range 8 {
		out = append(out, words[rng.IntN(len(words))])
	}
	return []byte(strings.Join(out, " "))
}

// score is what a validator pays one answer: 0 for an answer that fails
// the synapse's answer schema, else the reward of the judged answer. A
// judge failure fails the test (the validator would drop the task).
func (ex *example) score(t *testing.T, j judge.Judge, task subnet.Task, answer []byte, latency time.Duration) float64 {
	t.Helper()
	if err := ex.syn.ValidateAnswer(answer); err != nil {
		return 0
	}
	resp := task.Response("ok", answer, latency, ex.spec.Query.Timeout)
	if j != nil {
		res, err := j.Judge(context.Background(), judge.Input{Request: task.Body, Expected: task.ExpectedJSON, Meta: task.Meta,
			Synapse: ex.syn.Name, Answer: answer, AnswerIsText: ex.syn.AnswerIsText()})
		if err != nil {
			t.Fatalf("%s: judge failed on %q: %v", ex.dir, answer, err)
		}
		resp.Judge = &subnet.JudgeResult{Score: res.Score, Fields: res.Fields}
	}
	s, err := ex.reward.Score(resp)
	if err != nil {
		t.Fatalf("%s: reward: %v", ex.dir, err)
	}
	return s
}

// checkPays scores every task's honest and lazy answers (and, on the
// first three tasks, the extra answers, which must earn nothing) and checks the honest average is high
// and at least ten times the lazy one.
func (ex *example) checkPays(t *testing.T, j judge.Judge, model *backend.OpenAI, extra map[string]func(subnet.Task) []byte) {
	t.Helper()
	rng := mrand.New(mrand.NewPCG(1, 2))
	var honest, lazy float64
	latency := ex.spec.Query.Timeout / 20
	for i, task := range ex.tasks {
		h := ex.score(t, j, task, honestAnswer(t, model, ex.syn, task), latency)
		if h < 0.8 {
			t.Errorf("%s: honest answer to %s scored %.3f", ex.dir, task.Body, h)
		}
		honest += h
		lazy += ex.score(t, j, task, lazyAnswer(rng), latency)
		if i >= 3 {
			continue // the extra answers on the first three tasks
		}
		for name, answer := range extra {
			if s := ex.score(t, j, task, answer(task), latency); s > 0.05 {
				t.Errorf("%s: %s answer to %s scored %.3f", ex.dir, name, task.Body, s)
			}
		}
	}
	honest /= float64(len(ex.tasks))
	lazy /= float64(len(ex.tasks))
	t.Logf("%s: %d tasks, mean honest reward %.3f, lazy %.3f", ex.dir, len(ex.tasks), honest, lazy)
	if honest < 0.8 || honest < 10*lazy {
		t.Errorf("%s: mean honest reward %.3f, lazy %.3f: want honest ≥ 0.8 and ≥ 10× lazy", ex.dir, honest, lazy)
	}
}

func newModelClient(t *testing.T, m *fakeModel) *backend.OpenAI {
	t.Helper()
	c, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: m.URL, Model: "test-model"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// The summarize example scores one task at a time as its validators do —
// tasks from tasks.py, answers from an LLM-backed miner, the LLM judge
// with judge.txt, the spec's reward — and pays the honest lead sentence,
// not random words nor a copy of the whole article (over 60 words).
func TestSummarizeScoring(t *testing.T) {
	ex := loadExample(t, "summarize")
	model := newFakeModel(t, summarizeAnswers(t, ex.taskLines(t)))
	prompt, err := os.ReadFile(filepath.Join("summarize", ex.spec.Judge.PromptFile))
	if err != nil {
		t.Fatal(err)
	}
	j, err := judge.NewLLM(judge.LLMConfig{Name: "summarize", BaseURL: model.URL + "/v1", Model: ex.spec.Judge.Model,
		Prompt: string(prompt), TaskFields: ex.syn.RequestProperties()})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ex.checkPays(t, j, newModelClient(t, model), map[string]func(subnet.Task) []byte{
		"the whole article": func(task subnet.Task) []byte { return []byte(task.Request["text"].(string)) },
		"another article's lead": func(task subnet.Task) []byte {
			return []byte("Voters in the mountain district elected a new mayor after a close count.")
		},
	})
}

// The translate example pays the reference translation (and a close
// paraphrase of it), not random words nor the untranslated sentence.
func TestTranslateScoring(t *testing.T) {
	ex := loadExample(t, "translate")
	model := newFakeModel(t, translateAnswers(t, ex.taskLines(t)))
	ex.checkPays(t, nil, newModelClient(t, model), map[string]func(subnet.Task) []byte{
		"the source sentence": func(task subnet.Task) []byte { return []byte(task.Request["text"].(string)) },
		"another sentence's reference": func(task subnet.Task) []byte {
			if strings.Contains(task.Expected, "mesa") {
				return []byte("Le train part à huit heures du matin.")
			}
			return []byte("Quisiera una mesa para dos, por favor.")
		},
	})
	// A correct translation worded differently still earns most of it.
	var task subnet.Task
	for _, tk := range ex.tasks {
		if tk.Expected == "Ma sœur habite dans une petite maison près de la mer." {
			task = tk
		}
	}
	if s := ex.score(t, nil, task, []byte("Ma sœur vit dans une petite maison près de la mer."), time.Second); s < 0.6 {
		t.Errorf("a paraphrase of the reference scored %.3f", s)
	}
}

// The code example pays code that passes its tests — answers from the
// model, checked against code.v1's answer schema, run by judge.py under
// the hook — and nothing for random words (not JSON), the smallest answer
// the schema accepts, code that fails the tests, or a forged pass.
func TestCodeScoring(t *testing.T) {
	ex := loadExample(t, "code")
	model := newFakeModel(t, codeAnswers(t, ex.taskLines(t)))
	j := startExecJudge(t, "code", ex.spec.Judge)
	ex.checkPays(t, j, newModelClient(t, model), map[string]func(subnet.Task) []byte{
		"the smallest valid JSON": func(subnet.Task) []byte { return []byte(`{"code":"x"}`) },
		"code that raises":        func(subnet.Task) []byte { return []byte(`{"code":"def f(*a):\n    raise ValueError\n"}`) },
		"forged passes":           func(subnet.Task) []byte { return []byte(`{"code":"import os\nprint('0 0')\nos._exit(0)\n"}`) },
		"code in a string field":  func(subnet.Task) []byte { return []byte(`"def f(): pass"`) },
	})
}
