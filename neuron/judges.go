package neuron

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"

	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/judge"
	"github.com/cybertensor/cybertensor/subnet"
)

// This file makes a mechanism's judge from its spec's judge section: the
// hook that runs or reaches it (sandboxed and supervised by package hook)
// and the judge that speaks to it (package judge).

// maxPromptFile bounds an llm judge's prompt_file.
const maxPromptFile = 64 << 10

// HookLimits maps a spec's hook limits onto the hook package's, zero
// fields taking hook.DefaultLimits: what a validator's task programs and
// judges run under.
func HookLimits(l subnet.HookLimits) hook.Limits {
	out := hook.DefaultLimits()
	if l.Timeout > 0 {
		out.Timeout = l.Timeout
	}
	if l.CPUSeconds > 0 {
		out.CPUSeconds = l.CPUSeconds
	}
	if l.MemoryMB > 0 {
		out.MemoryBytes = l.MemoryMB << 20
	}
	if l.MaxOutputBytes > 0 {
		out.MaxOutput = l.MaxOutputBytes
	}
	if l.Concurrency > 0 {
		out.Concurrency = l.Concurrency
	}
	return out
}

// judgeLimits maps a spec's judge limits onto the judge package's (the
// time, reply size and calls at once it bounds itself: llm and reference
// judges), zero fields taking hookLimits' defaults so every kind of judge
// is bounded alike.
func judgeLimits(l subnet.HookLimits) judge.Limits {
	h := HookLimits(l)
	return judge.Limits{Timeout: h.Timeout, MaxOutput: h.MaxOutput, Concurrency: h.Concurrency}
}

// hookName names a mechanism's hook in logs and metrics: "sn1/main/judge".
func hookName(netuid uint16, mechanism, role string) string {
	return fmt.Sprintf("sn%d/%s/%s", netuid, mechanism, role)
}

// judgeEnv is what the validator needs besides the spec to make judges.
type judgeEnv struct {
	cfg     ValidatorConfig
	specDir string
	hooks   *hook.Metrics
	judges  *judge.Metrics
	log     *slog.Logger
}

// apiKey is the bearer key of an http or llm judge: ValidatorConfig's
// JudgeKey, else the environment variable the spec names (through
// ValidatorConfig.Getenv). A spec that names a variable nobody set is an
// error: its judge would be refused on every call.
func (e judgeEnv) apiKey(j *subnet.Judge) (string, error) {
	if e.cfg.JudgeKey != "" {
		return e.cfg.JudgeKey, nil
	}
	if j.APIKeyEnv == "" {
		return "", nil
	}
	var key string
	if e.cfg.Getenv != nil {
		key = e.cfg.Getenv(j.APIKeyEnv)
	}
	if key == "" {
		return "", fmt.Errorf("the judge's key is read from $%s, which is not set (or give the validator a judge key)", j.APIKeyEnv)
	}
	return key, nil
}

// newJudge makes mechanism m's judge (nil, nil without one); syn is the
// synapse its tasks go to.
func (e judgeEnv) newJudge(spec *subnet.Spec, m subnet.Mechanism, syn *subnet.Synapse) (judge.Judge, string, error) {
	j := m.Judge
	if j == nil {
		return nil, "", nil
	}
	name := hookName(e.cfg.Netuid, m.Name, "judge")
	log := e.log.With("mechanism", m.Name)
	switch j.Kind {
	case subnet.JudgeExec:
		cfg := hook.DefaultExecConfig(name, j.Command...)
		cfg.Dir, cfg.Limits, cfg.Logger, cfg.Metrics = e.specDir, HookLimits(j.Limits), log, e.hooks
		x, err := hook.StartExec(cfg)
		if err != nil {
			return nil, "", fmt.Errorf("judge of mechanism %s: %w", m.Name, err)
		}
		return judge.NewCaller(x, judge.WithName(name), judge.WithMetrics(e.judges), judge.WithLogger(log),
			judge.WithMaxReply(cfg.Limits.MaxOutput)), name, nil
	case subnet.JudgeHTTP:
		key, err := e.apiKey(j)
		if err != nil {
			return nil, "", fmt.Errorf("judge of mechanism %s: %w", m.Name, err)
		}
		cfg := hook.DefaultHTTPConfig(name, j.URL)
		cfg.Limits, cfg.Logger, cfg.Metrics = HookLimits(j.Limits), log, e.hooks
		if key != "" {
			cfg.Header = http.Header{"Authorization": {"Bearer " + key}}
		}
		h, err := hook.NewHTTP(cfg)
		if err != nil {
			return nil, "", fmt.Errorf("judge of mechanism %s: %w", m.Name, err)
		}
		return judge.NewCaller(h, judge.WithName(name), judge.WithMetrics(e.judges), judge.WithLogger(log),
			judge.WithMaxReply(cfg.Limits.MaxOutput)), name, nil
	case subnet.JudgeLLM:
		key, err := e.apiKey(j)
		if err != nil {
			return nil, "", fmt.Errorf("judge of mechanism %s: %w", m.Name, err)
		}
		prompt := j.Prompt
		if j.PromptFile != "" {
			if prompt, err = readSpecFile(e.specDir, j.PromptFile, maxPromptFile); err != nil {
				return nil, "", fmt.Errorf("judge of mechanism %s: prompt_file: %w", m.Name, err)
			}
		}
		url := j.URL
		if e.cfg.JudgeURL != "" {
			url = e.cfg.JudgeURL
		}
		var fields []string
		if syn != nil && !syn.Builtin() {
			fields = syn.RequestProperties()
		}
		l, err := judge.NewLLM(judge.LLMConfig{Name: name, BaseURL: url, Model: j.Model, APIKey: key, Prompt: prompt,
			TaskFields: fields, Limits: judgeLimits(j.Limits), Metrics: e.judges, Logger: log})
		if err != nil {
			return nil, "", fmt.Errorf("judge of mechanism %s: %w", m.Name, err)
		}
		return l, name, nil
	case subnet.JudgeReference:
		if e.cfg.Reference == nil {
			return nil, "", fmt.Errorf("judge of mechanism %s: a reference judge needs the validator's own backend (ValidatorConfig.Reference)", m.Name)
		}
		r, err := judge.NewReference(judge.ReferenceConfig{Name: name, Compare: j.Compare, Answerer: e.cfg.Reference,
			Embedder: e.cfg.ReferenceEmbedder, Limits: judgeLimits(j.Limits), Metrics: e.judges, Logger: log})
		if err != nil {
			return nil, "", fmt.Errorf("judge of mechanism %s: %w", m.Name, err)
		}
		return r, name, nil
	}
	return nil, "", fmt.Errorf("judge of mechanism %s: unknown kind %q", m.Name, j.Kind)
}

// readSpecFile reads a file the spec refers to, relative to its
// directory, of at most max bytes.
func readSpecFile(dir, path string, max int64) (string, error) {
	b, err := readSpecBytes(dir, path, max)
	return string(b), err
}

func readSpecBytes(dir, path string, max int64) ([]byte, error) {
	if !filepath.IsLocal(path) {
		return nil, fmt.Errorf("%q is not inside the spec's directory", path)
	}
	f, err := os.Open(filepath.Join(dir, path))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: more than %d bytes", path, max)
	}
	return b, nil
}
