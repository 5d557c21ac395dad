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

// Synapse types a subnet may serve.
var Synapses = []string{"text.generate", "text.chat", "text.embed", "knowledge.get", "storage.prove", "compute.run"}

// Task sources a validator may draw tasks from.
const (
	// FromKnowledge: fill-in-the-blank questions from documents the
	// validator publishes in the knowledge library.
	FromKnowledge = "knowledge"
	// FromDataset: question/answer pairs from a JSON lines file.
	FromDataset = "dataset"
	// FromGenerator: tasks a built-in generator makes and checks.
	FromGenerator = "generator"
)

// Spec is a subnet's declarative spec.
type Spec struct {
	// Name of the subnet, 1 to 64 bytes.
	Name string `yaml:"name"`
	// Synapses are the synapse types its miners serve.
	Synapses []string `yaml:"synapses"`
	Tasks    Tasks    `yaml:"tasks"`
	// Reward is a CEL expression scoring one response in [0, 1] (see
	// Reward for its variables and functions).
	Reward string `yaml:"reward"`
	Query  Query  `yaml:"query"`
	// Alpha is the moving-average weight of a new score, in (0, 1].
	Alpha float64 `yaml:"alpha"`
	// WeightsEvery is how often, in blocks, validators set weights.
	WeightsEvery uint64 `yaml:"weights_every"`
	// Hyperparameters the subnet owner sets at creation (by their chain
	// names, e.g. tempo, max_allowed_uids).
	Hyperparameters map[string]uint64 `yaml:"hyperparameters"`

	text []byte
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
	// Path of the dataset file (FromDataset).
	Path string `yaml:"path"`
	// Generator names the built-in generator (FromGenerator).
	Generator string `yaml:"generator"`
	// Difficulty of generated tasks (FromGenerator; 0: the generator's
	// default): leading zero bits of the hash for hash-preimage (1 to
	// MaxPreimageBits, default DefaultPreimageBits), sequential modular
	// squarings for arithmetic (1 to MaxSquarings, default
	// DefaultSquarings).
	Difficulty uint64 `yaml:"difficulty"`
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
				out[fmt.Sprintf("%s[%d]", path, j)] = item.Line
			}
		}
	}
	return out
}

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
	switch {
	case s.Name == "" || len(s.Name) > 64:
		return bad("name", "must be 1 to 64 bytes")
	case len(s.Synapses) == 0:
		return bad("synapses", "name at least one of %s", strings.Join(Synapses, ", "))
	}
	seen := map[string]bool{}
	for i, syn := range s.Synapses {
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
	if s.Tasks.Synapse != "" && !slices.Contains(s.Synapses, s.Tasks.Synapse) {
		return bad("tasks.synapse", "%q is not one of the spec's synapses", s.Tasks.Synapse)
	}
	if want := taskSynapses[s.Tasks.Source]; !slices.Contains(want, s.TaskSynapse()) {
		field := "tasks.synapse"
		if s.Tasks.Synapse == "" {
			field = "tasks.source" // the default, the first synapse, does not fit
		}
		return bad(field, "%s tasks go to %s, not %s", s.Tasks.Source, strings.Join(want, " or "), s.TaskSynapse())
	}
	if d := s.Tasks.Difficulty; d != 0 {
		switch {
		case s.Tasks.Source != FromGenerator:
			return bad("tasks.difficulty", "only generated tasks have a difficulty")
		case s.Tasks.Generator == GenHashPreimage && d > MaxPreimageBits:
			return bad("tasks.difficulty", "%d leading zero bits; at most %d", d, MaxPreimageBits)
		case s.Tasks.Generator == GenArithmetic && d > MaxSquarings:
			return bad("tasks.difficulty", "%d squarings; at most %d", d, MaxSquarings)
		}
	}
	if _, err := NewReward(s.Reward); err != nil {
		return bad("reward", "%v", err)
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

// TaskSynapse is the synapse validators' tasks go to: Tasks.Synapse, or
// the first of Synapses.
func (s *Spec) TaskSynapse() string {
	if s.Tasks.Synapse != "" {
		return s.Tasks.Synapse
	}
	if len(s.Synapses) == 0 {
		return ""
	}
	return s.Synapses[0]
}

// Text is the spec as written.
func (s *Spec) Text() []byte { return s.text }

// Hash is SHA-256 of the spec's text: register_network's spec_hash.
func (s *Spec) Hash() [32]byte { return sha256.Sum256(s.text) }
