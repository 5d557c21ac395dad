package subnet

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/cybertensor/cybertensor/chain"
)

// Task sources a validator may draw tasks from.
const (
	// FromKnowledge: fill-in-the-blank questions from documents the
	// validator publishes in the knowledge library.
	FromKnowledge = "knowledge"
	// FromDataset: question/answer pairs from a JSON lines file.
	FromDataset = "dataset"
	// FromGenerator: tasks a built-in generator makes and checks.
	FromGenerator = "generator"
	// FromExec (v2): a program that prints task lines (TaskLine) on its
	// standard output.
	FromExec = "exec"
	// FromHTTP (v2): an endpoint whose GET returns task lines or a JSON
	// array of tasks.
	FromHTTP = "http"
)

// Spec is a subnet's declarative spec.
type Spec struct {
	// Version of the language: 0 (absent) or 1 is v1, 2 is v2 (custom
	// synapses, task and judge hooks, mechanisms, the file lock).
	Version int `yaml:"version"`
	// Name of the subnet, 1 to 64 bytes.
	Name string `yaml:"name"`
	// Synapses are the synapse types its miners serve: built-ins by name,
	// and (v2) custom synapses.
	Synapses []Synapse `yaml:"synapses"`
	Tasks    Tasks     `yaml:"tasks"`
	// Judge (v2, optional) scores each answer before the reward.
	Judge *Judge `yaml:"judge"`
	// Evaluate (v2) evaluates the models miners commit: required with
	// tasks from commitments, refused with any other source.
	Evaluate *Evaluate `yaml:"evaluate"`
	// Reward is a CEL expression scoring one response in [0, 1] (see
	// Reward for its variables and functions).
	Reward string `yaml:"reward"`
	// Mechanisms (v2, optional) are several incentive mechanisms, each
	// with its tasks, judge, reward and share of the subnet's emission;
	// with them the top-level tasks, judge and reward are absent.
	Mechanisms []Mechanism `yaml:"mechanisms"`
	Query      Query       `yaml:"query"`
	// Alpha is the moving-average weight of a new score, in (0, 1].
	Alpha float64 `yaml:"alpha"`
	// WeightsEvery is how often, in blocks, validators set weights.
	WeightsEvery uint64 `yaml:"weights_every"`
	// Hyperparameters the subnet owner sets at creation (by their chain
	// names, e.g. tempo, max_allowed_uids).
	Hyperparameters map[string]uint64 `yaml:"hyperparameters"`
	// Files (v2) is the lock: each file the spec refers to (ReferencedFiles),
	// by its path relative to the spec, with the knowledge CID of its bytes.
	// Lock writes it; Resolve checks it.
	Files map[string]string `yaml:"files"`

	text []byte
	// lines maps each field path to its line in text.
	lines map[string]int
}

// Tasks says where validators' tasks come from and which synapse they go
// to.
type Tasks struct {
	Source string `yaml:"source"`
	// Synapse the tasks go to; empty means the first of the spec's
	// synapses. Knowledge tasks go to text.generate (questions on the
	// documents) or storage.prove (challenges on the objects), dataset
	// tasks to text.generate, generator tasks to compute.run.
	Synapse string `yaml:"synapse"`
	// Path of the dataset file (FromDataset), relative to the spec's
	// directory.
	Path string `yaml:"path"`
	// CID of the dataset file in the knowledge library (FromDataset, v2);
	// with Path too, the two must agree (Resolve).
	CID string `yaml:"cid"`
	// Command (FromExec) is the task program's argv.
	Command []string `yaml:"command"`
	// URL (FromHTTP) is the task endpoint, http or https.
	URL string `yaml:"url"`
	// Generator names the built-in generator (FromGenerator).
	Generator string `yaml:"generator"`
	// Difficulty of generated tasks (FromGenerator; 0: the generator's
	// default): leading zero bits of the hash for hash-preimage (1 to
	// MaxPreimageBits, default DefaultPreimageBits), sequential modular
	// squarings for arithmetic (1 to MaxSquarings, default
	// DefaultSquarings).
	Difficulty uint64 `yaml:"difficulty"`
	// Limits bound the task hook (FromExec, FromHTTP).
	Limits HookLimits `yaml:"limits"`
}

// Query sets validators' query cadence.
type Query struct {
	// Every is the number of blocks between query rounds.
	Every uint64 `yaml:"every"`
	// Sample is how many miners each round queries (0: all).
	Sample int `yaml:"sample"`
	// Timeout of each query.
	Timeout time.Duration `yaml:"timeout"`
}

// Generators are the built-in task generators (see NewGenerator).
var Generators = []string{GenArithmetic, GenHashPreimage}

// taskSynapses are the synapses each task source makes tasks for.
var taskSynapses = map[string][]string{
	FromKnowledge: {"text.generate", "storage.prove"},
	FromDataset:   {"text.generate"},
	FromGenerator: {"compute.run"},
}

// HyperparameterNames lists the hyperparameters a spec may set: those the
// chain lets a subnet's owner set (tempo, kappa and the registration
// costs are the chain root's).
func HyperparameterNames() []string {
	var out []string
	for _, name := range chain.HyperparamNames() {
		if _, _, ok := chain.OwnerHyperparam(name); ok {
			out = append(out, name)
		}
	}
	return out
}

// SpecError is a spec rejected at a line, for a reason.
type SpecError struct {
	Line   int    // 0 when the spec as a whole is wrong
	Field  string // "" when the spec as a whole is wrong
	Reason string
}

func (e *SpecError) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("spec line %d: %s: %s", e.Line, e.Field, e.Reason)
	case e.Field == "":
		return "spec: " + e.Reason
	}
	return fmt.Sprintf("spec: %s: %s", e.Field, e.Reason)
}

// MaxSpecSize bounds a spec's text.
const MaxSpecSize = 64 << 10

// Parse reads and validates a spec. Every error is a *SpecError naming the
// line (when it has one), the field and the reason.
func Parse(text []byte) (*Spec, error) {
	if len(text) > MaxSpecSize {
		return nil, &SpecError{Reason: fmt.Sprintf("%d bytes, at most %d", len(text), MaxSpecSize)}
	}
	var root yaml.Node
	if err := yaml.Unmarshal(text, &root); err != nil {
		return nil, yamlError(err)
	}
	if len(root.Content) == 0 {
		return nil, &SpecError{Reason: "empty"}
	}
	dec := yaml.NewDecoder(bytes.NewReader(text))
	dec.KnownFields(true)
	var s Spec
	if err := dec.Decode(&s); err != nil {
		return nil, yamlError(err)
	}
	s.text = append([]byte(nil), text...)
	lines := fieldLines(root.Content[0], "")
	s.lines = lines
	if err := s.validate(lines); err != nil {
		return nil, err
	}
	return &s, nil
}

// yamlError turns a YAML error ("yaml: line 3: …" or a type error list)
// into a SpecError.
func yamlError(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		return lineError(te.Errors[0])
	}
	return lineError(err.Error())
}

func lineError(msg string) *SpecError {
	msg = strings.TrimPrefix(msg, "yaml: ")
	var line int
	if n, _ := fmt.Sscanf(msg, "line %d:", &line); n == 1 {
		_, rest, _ := strings.Cut(msg, ":")
		return &SpecError{Line: line, Field: "yaml", Reason: strings.TrimSpace(rest)}
	}
	return &SpecError{Field: "yaml", Reason: msg}
}

// fieldLines maps each field path (e.g. "query.timeout") to its line.
func fieldLines(n *yaml.Node, prefix string) map[string]int {
	out := map[string]int{}
	if n.Kind != yaml.MappingNode {
		return out
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		path := k.Value
		if prefix != "" {
			path = prefix + "." + k.Value
		}
		out[path] = k.Line
		for p, l := range fieldLines(v, path) {
			out[p] = l
		}
		if v.Kind == yaml.SequenceNode {
			for j, item := range v.Content {
				p := fmt.Sprintf("%s[%d]", path, j)
				out[p] = item.Line
				for q, l := range fieldLines(item, p) {
					out[q] = l
				}
			}
		}
	}
	return out
}

// badFunc reports a field's error at its line.
type badFunc func(field, format string, args ...any) error

func (s *Spec) validate(lines map[string]int) error {
	bad := func(field, format string, args ...any) error {
		// A missing field is reported at its parent's line.
		line := 0
		for f := field; f != "" && line == 0; {
			line = lines[f]
			if i := strings.LastIndexAny(f, ".["); i > 0 {
				f = f[:i]
			} else {
				f = ""
			}
		}
		return &SpecError{Line: line, Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	if s.Name == "" || len(s.Name) > 64 {
		return bad("name", "must be 1 to 64 bytes")
	}
	switch s.Version {
	case 0, 1:
		if err := s.validateV1(bad, lines); err != nil {
			return err
		}
	case 2:
		if err := s.validateV2(bad, lines); err != nil {
			return err
		}
	default:
		return bad("version", "%d: want 1 (or absent) or 2", s.Version)
	}
	switch {
	case s.Query.Every == 0:
		return bad("query.every", "must be at least 1 block")
	case s.Query.Sample < 0:
		return bad("query.sample", "must not be negative")
	case s.Query.Timeout < 100*time.Millisecond || s.Query.Timeout > 10*time.Minute:
		return bad("query.timeout", "must be 100ms to 10m")
	case !(s.Alpha > 0 && s.Alpha <= 1):
		return bad("alpha", "must be in (0, 1]")
	case s.WeightsEvery == 0:
		return bad("weights_every", "must be at least 1 block")
	}
	for name, v := range s.Hyperparameters {
		lo, hi, ok := chain.OwnerHyperparam(name)
		field := "hyperparameters." + name
		if !ok {
			if _, known := chain.HyperparamValue(chain.Hyperparams{}, name); known {
				return bad(field, "only the chain root sets it; a subnet owner may set %s", strings.Join(HyperparameterNames(), ", "))
			}
			return bad(field, "unknown hyperparameter (known: %s)", strings.Join(HyperparameterNames(), ", "))
		}
		if v < lo || v > hi {
			return bad(field, "%d is outside %d..%d", v, lo, hi)
		}
	}
	return nil
}

// validateV1 checks a v1 spec exactly as before v2, after refusing the
// fields only v2 has.
func (s *Spec) validateV1(bad badFunc, lines map[string]int) error {
	const needsV2 = "needs version: 2"
	for i, syn := range s.Synapses {
		if syn.custom {
			return bad(fmt.Sprintf("synapses[%d]", i), "a custom synapse (an object) %s", needsV2)
		}
	}
	for _, f := range []string{"judge", "evaluate", "mechanisms", "files", "tasks.cid", "tasks.command", "tasks.url", "tasks.limits"} {
		if lines[f] > 0 {
			return bad(f, needsV2)
		}
	}
	if s.Tasks.Source == FromExec || s.Tasks.Source == FromHTTP || s.Tasks.Source == FromCommitments {
		return bad("tasks.source", "%s tasks %s", s.Tasks.Source, needsV2)
	}
	if len(s.Synapses) == 0 {
		return bad("synapses", "name at least one of %s", strings.Join(Synapses, ", "))
	}
	names := s.SynapseNames()
	seen := map[string]bool{}
	for i, syn := range names {
		if !slices.Contains(Synapses, syn) {
			return bad(fmt.Sprintf("synapses[%d]", i), "unknown synapse %q (known: %s)", syn, strings.Join(Synapses, ", "))
		}
		if seen[syn] {
			return bad(fmt.Sprintf("synapses[%d]", i), "%q listed twice", syn)
		}
		seen[syn] = true
	}
	switch s.Tasks.Source {
	case FromKnowledge:
	case FromDataset:
		if s.Tasks.Path == "" {
			return bad("tasks.path", "a dataset source needs a path")
		}
	case FromGenerator:
		if !slices.Contains(Generators, s.Tasks.Generator) {
			return bad("tasks.generator", "unknown generator %q (known: %s)", s.Tasks.Generator, strings.Join(Generators, ", "))
		}
	default:
		return bad("tasks.source", "%q: want %s, %s or %s", s.Tasks.Source, FromKnowledge, FromDataset, FromGenerator)
	}
	if s.Tasks.Synapse != "" && !slices.Contains(names, s.Tasks.Synapse) {
		return bad("tasks.synapse", "%q is not one of the spec's synapses", s.Tasks.Synapse)
	}
	if want := taskSynapses[s.Tasks.Source]; !slices.Contains(want, s.TaskSynapse()) {
		field := "tasks.synapse"
		if s.Tasks.Synapse == "" {
			field = "tasks.source" // the default, the first synapse, does not fit
		}
		return bad(field, "%s tasks go to %s, not %s", s.Tasks.Source, strings.Join(want, " or "), s.TaskSynapse())
	}
	if err := checkDifficulty(bad, "tasks", s.Tasks); err != nil {
		return err
	}
	if _, err := NewReward(s.Reward); err != nil {
		return bad("reward", "%v", err)
	}
	return nil
}

func checkDifficulty(bad badFunc, prefix string, t Tasks) error {
	if d := t.Difficulty; d != 0 {
		switch {
		case t.Source != FromGenerator:
			return bad(prefix+".difficulty", "only generated tasks have a difficulty")
		case t.Generator == GenHashPreimage && d > MaxPreimageBits:
			return bad(prefix+".difficulty", "%d leading zero bits; at most %d", d, MaxPreimageBits)
		case t.Generator == GenArithmetic && d > MaxSquarings:
			return bad(prefix+".difficulty", "%d squarings; at most %d", d, MaxSquarings)
		}
	}
	return nil
}

// SynapseNames lists the names of the synapses the spec serves, in order.
func (s *Spec) SynapseNames() []string {
	out := make([]string, len(s.Synapses))
	for i, syn := range s.Synapses {
		out[i] = syn.Name
	}
	return out
}

// Synapse returns the spec's synapse of that name (a built-in with its
// table entry's limits), or nil if the spec does not serve it.
func (s *Spec) Synapse(name string) *Synapse {
	for i := range s.Synapses {
		if s.Synapses[i].Name != name {
			continue
		}
		if !s.Synapses[i].custom {
			if b := BuiltinSynapse(name); b != nil {
				return b
			}
		}
		return &s.Synapses[i]
	}
	return nil
}

// TaskSynapse is the synapse validators' tasks go to: Tasks.Synapse, or
// the first of Synapses.
func (s *Spec) TaskSynapse() string {
	if s.Tasks.Synapse != "" {
		return s.Tasks.Synapse
	}
	if len(s.Synapses) == 0 {
		return ""
	}
	return s.Synapses[0].Name
}

// Text is the spec as written.
func (s *Spec) Text() []byte { return s.text }

// Hash is SHA-256 of the spec's text: register_network's spec_hash.
func (s *Spec) Hash() [32]byte { return sha256.Sum256(s.text) }

// Fields is the parsed spec as a JSON-ready map keyed by the YAML field
// names (defaults filled in: each custom synapse's limits).
func (s *Spec) Fields() (map[string]any, error) {
	b, err := yaml.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("subnet: encoding the spec: %w", err)
	}
	var out map[string]any
	if err := yaml.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("subnet: encoding the spec: %w", err)
	}
	return out, nil
}
