package subnet

import (
	"fmt"
	"math"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
)

// Judge kinds (v2): what scores an answer before the reward.
const (
	// JudgeExec: one long-lived program, a JSON line in and out per answer.
	JudgeExec = "exec"
	// JudgeHTTP: an endpoint POSTed the same JSON object.
	JudgeHTTP = "http"
	// JudgeLLM: an OpenAI-compatible model asked with a prompt template.
	JudgeLLM = "llm"
	// JudgeReference: the validator's own backend answers the task, and
	// the answers are compared.
	JudgeReference = "reference"
)

// JudgeKinds lists the judge kinds.
var JudgeKinds = []string{JudgeExec, JudgeHTTP, JudgeLLM, JudgeReference}

// Reference judges' comparisons.
const (
	CompareSimilarity = "similarity" // term overlap (the similarity function)
	CompareEmbedding  = "embedding"  // cosine of text.embed vectors
)

// Judge says how a v2 spec's answers are judged before the reward.
type Judge struct {
	// Kind is exec, http, llm or reference.
	Kind string `yaml:"kind"`
	// Command is an exec judge's argv.
	Command []string `yaml:"command"`
	// URL is an http judge's endpoint or an llm judge's OpenAI-compatible
	// base URL.
	URL string `yaml:"url"`
	// Model is an llm judge's model name.
	Model string `yaml:"model"`
	// Prompt is an llm judge's template (variables {{task.<field>}},
	// {{expected}}, {{answer}}); PromptFile a file holding it instead,
	// relative to the spec (locked).
	Prompt     string `yaml:"prompt"`
	PromptFile string `yaml:"prompt_file"`
	// APIKeyEnv names the environment variable holding an http or llm
	// judge's bearer key (the key itself is never in the spec).
	APIKeyEnv string `yaml:"api_key_env"`
	// Compare is a reference judge's comparison: similarity or embedding.
	Compare string `yaml:"compare"`
	// Limits bound the judge's calls.
	Limits HookLimits `yaml:"limits"`
}

// HookLimits bound a hook (a task program or endpoint, a judge). Zero
// values mean the hook package's defaults.
type HookLimits struct {
	// Timeout of one call (at most MaxHookTimeout).
	Timeout time.Duration `yaml:"timeout"`
	// CPUSeconds is the program's CPU time limit (exec; at most
	// MaxHookCPUSeconds).
	CPUSeconds uint64 `yaml:"cpu_seconds"`
	// MemoryMB is the program's address-space limit in MiB (exec; at most
	// MaxHookMemoryMB).
	MemoryMB uint64 `yaml:"memory_mb"`
	// MaxOutputBytes bounds one call's output (at most MaxHookOutput).
	MaxOutputBytes int `yaml:"max_output_bytes"`
	// Concurrency bounds the calls in flight (at most MaxHookConcurrency).
	Concurrency int `yaml:"concurrency"`
}

// Hook limit bounds a spec may set.
const (
	MaxHookTimeout     = 10 * time.Minute
	MaxHookCPUSeconds  = 3600
	MaxHookMemoryMB    = 64 << 10
	MaxHookOutput      = 64 << 20
	MaxHookConcurrency = 64
	// MaxCommandArgs and MaxCommandArg bound a hook's argv.
	MaxCommandArgs = 64
	MaxCommandArg  = 4096
)

// Mechanism is one of a v2 spec's incentive mechanisms.
type Mechanism struct {
	// Name is 1 to 32 bytes of [a-z0-9_-], unique in the spec.
	Name string `yaml:"name"`
	// Share of the subnet's emission: > 0, the shares summing to 1.
	Share float64 `yaml:"share"`
	Tasks Tasks   `yaml:"tasks"`
	Judge *Judge  `yaml:"judge"`
	// Evaluate evaluates the committed models of a mechanism whose tasks
	// come from commitments (Spec.Evaluate).
	Evaluate *Evaluate `yaml:"evaluate"`
	Reward   string    `yaml:"reward"`
}

// Mechanism bounds.
const (
	MaxMechanisms = 16
	// ShareTolerance is how far the shares' sum may be from 1.
	ShareTolerance = 1e-6
	// MaxCustomSynapses bounds a spec's synapse list.
	MaxSpecSynapses = 32
)

// MainMechanism names a spec's single mechanism when it has no
// mechanisms: section.
const MainMechanism = "main"

// EffectiveMechanisms is the spec's mechanisms, or (without a mechanisms:
// section) one named MainMechanism with share 1 and the top-level tasks,
// judge and reward.
func (s *Spec) EffectiveMechanisms() []Mechanism {
	if len(s.Mechanisms) > 0 {
		return s.Mechanisms
	}
	return []Mechanism{{Name: MainMechanism, Share: 1, Tasks: s.Tasks, Judge: s.Judge, Evaluate: s.Evaluate, Reward: s.Reward}}
}

// TaskSynapseOf is the synapse t's tasks go to: t.Synapse, or the first of
// the spec's synapses.
func (s *Spec) TaskSynapseOf(t Tasks) string {
	if t.Synapse != "" {
		return t.Synapse
	}
	if len(s.Synapses) == 0 {
		return ""
	}
	return s.Synapses[0].Name
}

// taskSources are a v2 spec's task sources.
var taskSources = []string{FromKnowledge, FromDataset, FromGenerator, FromExec, FromHTTP, FromCommitments}

var mechanismName = regexp.MustCompile(`^[a-z0-9_-]{1,32}$`)

// hookTaskSynapses are the built-in synapses dataset (v2), exec and http
// task lines may go to (besides custom synapses): the others need checks
// only a validator's own task maker has.
var hookTaskSynapses = []string{"text.generate", SynapseChat, SynapseEmbed}

func (s *Spec) validateV2(bad badFunc, lines map[string]int) error {
	switch {
	case len(s.Synapses) == 0 && !s.onlyCommitments():
		return bad("synapses", "name at least one synapse: a built-in (%s) or a custom one (only a spec whose mechanisms all take tasks from commitments may have none)", strings.Join(Synapses, ", "))
	case len(s.Synapses) > MaxSpecSynapses:
		return bad("synapses", "%d synapses, at most %d", len(s.Synapses), MaxSpecSynapses)
	}
	seen := map[string]bool{}
	for i := range s.Synapses {
		syn := &s.Synapses[i]
		field := fmt.Sprintf("synapses[%d]", i)
		if syn.custom {
			if err := syn.compile(func(f, format string, args ...any) error {
				return bad(field+"."+f, format, args...)
			}); err != nil {
				return err
			}
		} else if !slices.Contains(Synapses, syn.Name) {
			return bad(field, "unknown synapse %q: a built-in (%s), or declare it as an object with name, request and answer", syn.Name, strings.Join(Synapses, ", "))
		}
		if seen[syn.Name] {
			return bad(field, "%q listed twice", syn.Name)
		}
		seen[syn.Name] = true
	}
	if len(s.Mechanisms) > 0 {
		for _, f := range []string{"tasks", "judge", "evaluate", "reward"} {
			if lines[f] > 0 {
				return bad(f, "with mechanisms, each mechanism has its own %s: remove the top-level one", f)
			}
		}
		if len(s.Mechanisms) > MaxMechanisms {
			return bad("mechanisms", "%d mechanisms, at most %d", len(s.Mechanisms), MaxMechanisms)
		}
		names := map[string]bool{}
		sum := 0.0
		for i, m := range s.Mechanisms {
			p := fmt.Sprintf("mechanisms[%d]", i)
			switch {
			case !mechanismName.MatchString(m.Name):
				return bad(p+".name", "%q: want 1 to 32 bytes of [a-z0-9_-]", m.Name)
			case names[m.Name]:
				return bad(p+".name", "%q listed twice", m.Name)
			case !(m.Share > 0) || math.IsInf(m.Share, 0):
				return bad(p+".share", "must be greater than 0")
			}
			names[m.Name] = true
			sum += m.Share
			if err := s.validateMechanism(bad, p+".", m.Tasks, m.Judge, m.Evaluate, m.Reward); err != nil {
				return err
			}
		}
		if math.Abs(sum-1) > ShareTolerance {
			return bad("mechanisms", "shares sum to %.9g; they must sum to 1", sum)
		}
	} else if err := s.validateMechanism(bad, "", s.Tasks, s.Judge, s.Evaluate, s.Reward); err != nil {
		return err
	}
	refs := s.ReferencedFiles()
	for path, c := range s.Files {
		field := "files." + path
		if !slices.Contains(refs, path) {
			return bad(field, "the spec does not refer to this file")
		}
		if _, err := cid.Decode(c); err != nil {
			return bad(field, "%q is not a CID: %v", c, err)
		}
	}
	return nil
}

// validateMechanism checks one mechanism's tasks, judge and reward; prefix
// is "" at the top level or "mechanisms[i]." .
func (s *Spec) validateMechanism(bad badFunc, prefix string, t Tasks, j *Judge, e *Evaluate, reward string) error {
	if err := s.validateTasks(bad, prefix+"tasks", t); err != nil {
		return err
	}
	if err := evaluationSpec(bad, prefix, t, j, e); err != nil {
		return err
	}
	syn := s.Synapse(s.TaskSynapseOf(t))
	if j != nil {
		if err := validateJudge(bad, prefix+"judge", j, syn); err != nil {
			return err
		}
	}
	rw, err := NewRewardV2(reward)
	if err != nil {
		return bad(prefix+"reward", "%v", err)
	}
	if rw.UsesJudge() && j == nil {
		return bad(prefix+"reward", "reads judge, but there is no judge: add a judge: section")
	}
	if rw.UsesEvaluation() && t.Source != FromCommitments {
		return bad(prefix+"reward", "%s", evaluationError(t.Source))
	}
	return nil
}

// onlyCommitments says whether every mechanism of s takes its tasks from
// commitments (such a spec needs no synapse).
func (s *Spec) onlyCommitments() bool {
	for _, m := range s.EffectiveMechanisms() {
		if m.Tasks.Source != FromCommitments {
			return false
		}
	}
	return true
}

func (s *Spec) validateTasks(bad badFunc, p string, t Tasks) error {
	only := func(set bool, field, source string) error {
		if set && t.Source != source {
			return bad(p+"."+field, "only %s task sources have a %s", source, field)
		}
		return nil
	}
	if !slices.Contains(taskSources, t.Source) {
		return bad(p+".source", "%q: want %s", t.Source, strings.Join(taskSources, ", "))
	}
	for _, err := range []error{
		only(t.Path != "", "path", FromDataset),
		only(t.CID != "", "cid", FromDataset),
		only(t.Generator != "", "generator", FromGenerator),
		only(len(t.Command) > 0, "command", FromExec),
		only(t.URL != "", "url", FromHTTP),
	} {
		if err != nil {
			return err
		}
	}
	if t.Source == FromCommitments {
		if t.Synapse != "" {
			return bad(p+".synapse", "tasks from commitments go to no synapse: validators fetch the committed models")
		}
		if t.Limits != (HookLimits{}) {
			return bad(p+".limits", "tasks from commitments have no limits (the evaluate: section has)")
		}
		return checkDifficulty(bad, p, t)
	}
	if t.Synapse != "" && s.Synapse(t.Synapse) == nil {
		return bad(p+".synapse", "%q is not one of the spec's synapses", t.Synapse)
	}
	target := s.TaskSynapseOf(t)
	synField := p + ".synapse"
	if t.Synapse == "" {
		synField = p + ".source" // the default, the first synapse, does not fit
	}
	hookSource := false
	switch t.Source {
	case FromKnowledge, FromGenerator:
		if t.Source == FromGenerator && !slices.Contains(Generators, t.Generator) {
			return bad(p+".generator", "unknown generator %q (known: %s)", t.Generator, strings.Join(Generators, ", "))
		}
		if want := taskSynapses[t.Source]; !slices.Contains(want, target) {
			return bad(synField, "%s tasks go to %s, not %s", t.Source, strings.Join(want, " or "), target)
		}
	case FromDataset:
		if t.Path == "" && t.CID == "" {
			return bad(p+".path", "a dataset source needs a path or a cid")
		}
		if t.Path != "" && !filepath.IsLocal(t.Path) {
			return bad(p+".path", "%q: want a path inside the spec's directory", t.Path)
		}
		if t.CID != "" {
			if _, err := cid.Decode(t.CID); err != nil {
				return bad(p+".cid", "%q is not a CID: %v", t.CID, err)
			}
		}
	case FromExec:
		hookSource = true
		if err := checkCommand(bad, p+".command", t.Command); err != nil {
			return err
		}
	case FromHTTP:
		hookSource = true
		if err := checkURL(bad, p+".url", t.URL); err != nil {
			return err
		}
	}
	if t.Source == FromDataset || hookSource {
		if syn := s.Synapse(target); syn != nil && syn.Builtin() && !slices.Contains(hookTaskSynapses, target) {
			return bad(synField, "%s tasks go to a custom synapse or %s, not %s", t.Source, strings.Join(hookTaskSynapses, ", "), target)
		}
	}
	if t.Limits != (HookLimits{}) && !hookSource {
		return bad(p+".limits", "only exec and http task sources have limits")
	}
	if err := checkLimits(bad, p+".limits", t.Limits); err != nil {
		return err
	}
	return checkDifficulty(bad, p, t)
}

func validateJudge(bad badFunc, p string, j *Judge, syn *Synapse) error {
	if !slices.Contains(JudgeKinds, j.Kind) {
		return bad(p+".kind", "%q: want %s", j.Kind, strings.Join(JudgeKinds, ", "))
	}
	uses := map[string]bool{
		"command":     len(j.Command) > 0,
		"url":         j.URL != "",
		"model":       j.Model != "",
		"prompt":      j.Prompt != "",
		"prompt_file": j.PromptFile != "",
		"api_key_env": j.APIKeyEnv != "",
		"compare":     j.Compare != "",
	}
	allowed := map[string][]string{
		JudgeExec:      {"command"},
		JudgeHTTP:      {"url", "api_key_env"},
		JudgeLLM:       {"url", "model", "prompt", "prompt_file", "api_key_env"},
		JudgeReference: {"compare"},
	}[j.Kind]
	for _, f := range []string{"command", "url", "model", "prompt", "prompt_file", "api_key_env", "compare"} {
		if uses[f] && !slices.Contains(allowed, f) {
			return bad(p+"."+f, "a %s judge has no %s (it takes %s)", j.Kind, f, strings.Join(allowed, ", "))
		}
	}
	switch j.Kind {
	case JudgeExec:
		if err := checkCommand(bad, p+".command", j.Command); err != nil {
			return err
		}
	case JudgeHTTP:
		if err := checkURL(bad, p+".url", j.URL); err != nil {
			return err
		}
	case JudgeLLM:
		if err := checkURL(bad, p+".url", j.URL); err != nil {
			return err
		}
		switch {
		case j.Model == "":
			return bad(p+".model", "an llm judge needs a model")
		case (j.Prompt == "") == (j.PromptFile == ""):
			return bad(p+".prompt", "an llm judge needs exactly one of prompt and prompt_file")
		case j.PromptFile != "" && !filepath.IsLocal(j.PromptFile):
			return bad(p+".prompt_file", "%q: want a path inside the spec's directory", j.PromptFile)
		}
		if j.Prompt != "" && syn != nil {
			if err := CheckJudgeTemplate(j.Prompt, syn); err != nil {
				return bad(p+".prompt", "%v", err)
			}
		}
	case JudgeReference:
		if j.Compare != CompareSimilarity && j.Compare != CompareEmbedding {
			return bad(p+".compare", "%q: want %s or %s", j.Compare, CompareSimilarity, CompareEmbedding)
		}
	}
	if j.APIKeyEnv != "" && !envName.MatchString(j.APIKeyEnv) {
		return bad(p+".api_key_env", "%q is not an environment variable name", j.APIKeyEnv)
	}
	return checkLimits(bad, p+".limits", j.Limits)
}

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

func checkCommand(bad badFunc, field string, argv []string) error {
	switch {
	case len(argv) == 0:
		return bad(field, "needs a command: the program and its arguments")
	case len(argv) > MaxCommandArgs:
		return bad(field, "%d arguments, at most %d", len(argv), MaxCommandArgs)
	}
	for i, a := range argv {
		switch {
		case i == 0 && strings.TrimSpace(a) == "":
			return bad(fmt.Sprintf("%s[0]", field), "the program must not be empty")
		case len(a) > MaxCommandArg:
			return bad(fmt.Sprintf("%s[%d]", field, i), "%d bytes, at most %d", len(a), MaxCommandArg)
		case strings.ContainsRune(a, 0):
			return bad(fmt.Sprintf("%s[%d]", field, i), "contains a NUL byte")
		}
		if path, ok := commandFile(i, a); ok && !filepath.IsLocal(path) && !filepath.IsAbs(path) {
			return bad(fmt.Sprintf("%s[%d]", field, i), "%q: a file the spec refers to must be inside the spec's directory", a)
		}
	}
	return nil
}

func checkURL(bad badFunc, field, raw string) error {
	if raw == "" {
		return bad(field, "needs a url")
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return bad(field, "%q: want an http or https URL", raw)
	}
	if u.User != nil {
		return bad(field, "must not hold credentials (use api_key_env)")
	}
	return nil
}

func checkLimits(bad badFunc, p string, l HookLimits) error {
	switch {
	case l.Timeout < 0 || l.Timeout > MaxHookTimeout:
		return bad(p+".timeout", "%v: want 0 (the default) to %v", l.Timeout, MaxHookTimeout)
	case l.CPUSeconds > MaxHookCPUSeconds:
		return bad(p+".cpu_seconds", "%d: at most %d", l.CPUSeconds, MaxHookCPUSeconds)
	case l.MemoryMB > MaxHookMemoryMB:
		return bad(p+".memory_mb", "%d: at most %d", l.MemoryMB, MaxHookMemoryMB)
	case l.MaxOutputBytes < 0 || l.MaxOutputBytes > MaxHookOutput:
		return bad(p+".max_output_bytes", "%d: want 0 (the default) to %d", l.MaxOutputBytes, MaxHookOutput)
	case l.Concurrency < 0 || l.Concurrency > MaxHookConcurrency:
		return bad(p+".concurrency", "%d: want 0 (the default) to %d", l.Concurrency, MaxHookConcurrency)
	}
	return nil
}

// scriptExtensions mark a command argument as a script file next to the
// spec (locked with it).
var scriptExtensions = []string{".py", ".js", ".mjs", ".cjs", ".ts", ".sh", ".bash", ".rb", ".pl", ".php", ".lua", ".r", ".jl", ".wasm"}

// commandFile says whether argv[i] names a file the spec refers to: the
// program (i = 0) if it contains "/"; a later argument that does not start
// with "-" and contains "/" or ends in a script extension. Absolute paths
// are the system's (python3's /usr/bin/…), not the spec's.
func commandFile(i int, arg string) (string, bool) {
	if arg == "" || strings.HasPrefix(arg, "-") || strings.ContainsAny(arg, " \t\n=") {
		return "", false
	}
	hasSlash := strings.Contains(arg, "/")
	if i == 0 {
		return filepath.Clean(arg), hasSlash
	}
	return filepath.Clean(arg), hasSlash || slices.Contains(scriptExtensions, strings.ToLower(filepath.Ext(arg)))
}

// fileRef is one place a spec refers to a file.
type fileRef struct {
	path  string // relative to the spec's directory, slash-separated
	field string // e.g. "tasks.command[1]"
	kind  string // "dataset", "program", "script" or "prompt"
	// synapse the dataset's tasks go to; judge template's task synapse.
	synapse string
}

// fileRefs lists every reference to a file, in spec order.
func (s *Spec) fileRefs() []fileRef {
	if s.Version < 2 {
		return nil
	}
	var out []fileRef
	cmd := func(prefix string, argv []string) {
		for i, a := range argv {
			if path, ok := commandFile(i, a); ok && filepath.IsLocal(path) {
				kind := "script"
				if i == 0 {
					kind = "program"
				}
				out = append(out, fileRef{path: filepath.ToSlash(path), field: fmt.Sprintf("%s[%d]", prefix, i), kind: kind})
			}
		}
	}
	for i, m := range s.EffectiveMechanisms() {
		p := ""
		if len(s.Mechanisms) > 0 {
			p = fmt.Sprintf("mechanisms[%d].", i)
		}
		syn := s.TaskSynapseOf(m.Tasks)
		if m.Tasks.Source == FromDataset && m.Tasks.Path != "" && filepath.IsLocal(m.Tasks.Path) {
			out = append(out, fileRef{path: filepath.ToSlash(filepath.Clean(m.Tasks.Path)), field: p + "tasks.path", kind: "dataset", synapse: syn})
		}
		if m.Tasks.Source == FromExec {
			cmd(p+"tasks.command", m.Tasks.Command)
		}
		if e := m.Evaluate; e != nil && m.Tasks.Source == FromCommitments {
			if e.Kind == EvaluateExec {
				cmd(p+"evaluate.command", e.Command)
			}
			if e.Data.Path != "" && filepath.IsLocal(e.Data.Path) {
				out = append(out, fileRef{path: filepath.ToSlash(filepath.Clean(e.Data.Path)), field: p + "evaluate.data.path", kind: "evaluation data"})
			}
		}
		if m.Judge != nil {
			if m.Judge.Kind == JudgeExec {
				cmd(p+"judge.command", m.Judge.Command)
			}
			if m.Judge.PromptFile != "" && filepath.IsLocal(m.Judge.PromptFile) {
				out = append(out, fileRef{path: filepath.ToSlash(filepath.Clean(m.Judge.PromptFile)), field: p + "judge.prompt_file", kind: "prompt", synapse: syn})
			}
		}
	}
	return out
}

// ReferencedFiles lists, sorted and without duplicates, the files a v2
// spec refers to, relative to its directory: datasets and evaluation
// datasets by path, task, judge and evaluator programs and scripts in
// commands (see commandFile), llm judges' prompt files. Absolute program paths are not listed. A v1 spec refers to
// no files here (its dataset is read as before).
func (s *Spec) ReferencedFiles() []string {
	var out []string
	for _, r := range s.fileRefs() {
		if !slices.Contains(out, r.path) {
			out = append(out, r.path)
		}
	}
	slices.Sort(out)
	return out
}
