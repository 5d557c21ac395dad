package examples

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/localnet"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/subnet"
)

// model-lm is the built-in model subnet with its corpus as a file: the
// same corpus, evaluated and rewarded the same way.
func TestModelLMIsTheBuiltin(t *testing.T) {
	corpus, err := os.ReadFile("model-lm/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	builtin, ok := subnet.BuiltinData("model")
	if !ok || !bytes.Equal(corpus, builtin) {
		t.Fatal("model-lm/corpus.txt is not the built-in model subnet's corpus")
	}
	text, err := os.ReadFile("model-lm/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ex, err := subnet.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := subnet.Builtin("model")
	e, be := ex.EffectiveMechanisms()[0], b.EffectiveMechanisms()[0]
	if e.Reward != be.Reward || e.Evaluate.Data.CID != be.Evaluate.Data.CID || e.Evaluate.Sample() != be.Evaluate.Sample() ||
		e.Evaluate.Model != be.Evaluate.Model || e.Evaluate.EpsilonValue() != be.Evaluate.EpsilonValue() {
		t.Fatalf("model-lm %+v %+v, built-in %+v %+v", e, e.Evaluate, be, be.Evaluate)
	}
}

// model-lm on a localnet from its spec file: three honest miners train
// charlm models on more or less of corpus.txt, a lazy one on a line of
// lorem ipsum, and a copier commits the leader's CID later. The best model
// earns the most, each honest one more than the next, the lazy one and
// the copier ~0.
func TestModelLMOnLocalnet(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a network for several seconds")
	}
	var progress bytes.Buffer
	cfg := localnet.DefaultConfig()
	cfg.Subnets, cfg.Specs = nil, []string{"model-lm/spec.yaml"}
	cfg.Validators, cfg.Miners, cfg.Adversaries = 2, 5, []string{localnet.Lazy, localnet.Copier}
	cfg.Tempo, cfg.BlockTime, cfg.Epochs = 5, 100*time.Millisecond, 10
	cfg.Progress, cfg.Logger, cfg.Dashboard = &progress, slog.New(slog.DiscardHandler), ""
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := localnet.Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			t.Log(progress.String())
		}
	}()
	if len(s.Models) != 5 || len(s.Specs) != 1 || s.Specs[0].Files["corpus.txt"] == "" {
		t.Fatalf("models %+v, specs %+v", s.Models, s.Specs)
	}
	var honest []localnet.ModelSummary
	var lazy, copier localnet.ModelSummary
	for _, m := range s.Models {
		switch m.Adversary {
		case localnet.Lazy:
			lazy = m
		case localnet.Copier:
			copier = m
		default:
			honest = append(honest, m)
		}
	}
	if len(honest) != 3 || s.Models[0].UID != honest[0].UID || honest[0].TrainedBytes != 81394 {
		t.Fatalf("the best model does not lead: %+v", s.Models)
	}
	for i := 1; i < 3; i++ {
		if !(honest[i].TrainedBytes < honest[i-1].TrainedBytes && honest[i].Incentive < honest[i-1].Incentive && *honest[i].Loss > *honest[i-1].Loss) {
			t.Errorf("honest model %d (%+v) is not behind model %d (%+v)", i, honest[i], i-1, honest[i-1])
		}
	}
	if lazy.Loss == nil || lazy.Incentive > 0.01 || copier.Incentive > 0.01 || copier.Status != "REFUSED" || copier.CID == "" {
		t.Errorf("lazy %+v, copier %+v", lazy, copier)
	}
	t.Logf("losses %.3f %.3f %.3f (lazy %.3f); incentive %.3f %.3f %.3f, lazy %.4f, copier %.4f",
		*honest[0].Loss, *honest[1].Loss, *honest[2].Loss, *lazy.Loss, honest[0].Incentive, honest[1].Incentive, honest[2].Incentive, lazy.Incentive, copier.Incentive)
}

// torchPython is a python3 that imports torch: the one in PATH, else
// Debian's; the test is skipped, saying so, if neither does.
func torchPython(t *testing.T) string {
	t.Helper()
	var tried []string
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		path, err := exec.LookPath(p)
		if err != nil || slices.Contains(tried, path) {
			continue
		}
		tried = append(tried, path)
		if exec.Command(path, "-c", "import torch").Run() == nil {
			return path
		}
	}
	t.Skipf("PyTorch is not installed: python3 -c \"import torch\" fails with %v (Debian: apt-get install python3-torch); the torch evaluator is not tested", tried)
	return ""
}

// The torch variant's evaluator, as a validator runs it (the spec's
// command and limits, in the spec's directory): a model trained longer
// scores a lower loss than one barely trained, fine-tuning lowers it
// further, and an artifact that is not a model is refused, with the
// reason. The models are trained here, with train.py.
func TestModelLMTorchEvaluator(t *testing.T) {
	py := torchPython(t)
	dir := t.TempDir()
	// The spec's python3 is the one with torch.
	bin := filepath.Join(dir, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(py, filepath.Join(bin, "python3")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	text, err := os.ReadFile("model-lm/torch-spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := subnet.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	if err := subnet.Resolve(spec, "model-lm"); err != nil {
		t.Fatal(err)
	}
	ev := spec.EffectiveMechanisms()[0].Evaluate
	corpus, err := os.ReadFile("model-lm/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	set := filepath.Join(dir, "set.txt")
	if err := os.WriteFile(set, corpus[len(corpus)-int(ev.Sample()):], 0o644); err != nil {
		t.Fatal(err)
	}
	train := func(out string, args ...string) {
		t.Helper()
		cmd := exec.Command(py, append([]string{"model-lm/torch/train.py", "--data", "model-lm/corpus.txt", "--out", out,
			"--d-model", "32", "--layers", "1", "--context", "32", "--seed", "1"}, args...)...)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("train.py %v: %v\n%s", args, err, b)
		}
	}
	evaluate := func(artifact string) map[string]any {
		t.Helper()
		hc := hook.DefaultExecConfig("model-lm-torch/evaluate", append(slices.Clone(ev.Command), artifact, set)...)
		hc.Dir, hc.Limits, hc.Logger = "model-lm", neuron.HookLimits(ev.Limits), slog.New(slog.DiscardHandler)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		lines, err := hook.Run(ctx, hc, nil, 1)
		if err != nil || len(lines) != 1 {
			t.Fatalf("eval.py %s: %v %q", artifact, err, lines)
		}
		var out map[string]any
		if err := json.Unmarshal(lines[0], &out); err != nil {
			t.Fatalf("eval.py printed %q: %v", lines[0], err)
		}
		return out
	}
	lossOf := func(artifact string) float64 {
		t.Helper()
		out := evaluate(artifact)
		l, ok := out["loss"].(float64)
		if !ok || math.IsNaN(l) || l <= 0 || l > 16 || out["bytes"] != float64(ev.Sample()-1) {
			t.Fatalf("eval.py %s: %v", artifact, out)
		}
		return l
	}
	barely, trained, tuned := filepath.Join(dir, "barely.safetensors"), filepath.Join(dir, "trained.safetensors"), filepath.Join(dir, "tuned.safetensors")
	train(barely, "--steps", "2")
	train(trained, "--steps", "150")
	train(tuned, "--init", trained, "--steps", "100")
	lb, lt, lf := lossOf(barely), lossOf(trained), lossOf(tuned)
	t.Logf("bits per byte on %d bytes: 2 steps %.3f, 150 steps %.3f, fine-tuned 100 more %.3f", ev.Sample(), lb, lt, lf)
	if !(lt < lb-0.5 && lf < lt) {
		t.Errorf("losses: 2 steps %.3f, 150 steps %.3f, fine-tuned %.3f", lb, lt, lf)
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("CTCHARLM and not a transformer at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := evaluate(garbage); out["loss"] != nil || !strings.Contains(out["refused"].(string), "not a model-lm torch model") {
		t.Errorf("garbage: %v", out)
	}
}
