package subnet

import (
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
)

// FromCommitments (v2): a mechanism's tasks are the miners' commitments on
// the subnet, each the knowledge CID of a model artifact, which the
// mechanism's evaluate: section scores.
const FromCommitments = "commitments"

// Evaluator kinds: what measures a committed model's loss.
const (
	// EvaluateBuiltin: a model family built into the validator (Model).
	EvaluateBuiltin = "builtin"
	// EvaluateExec: the subnet's program, run once per model with the
	// artifact's path and the evaluation set's path as its last two
	// arguments; it prints one JSON line {"loss": x, …}.
	EvaluateExec = "exec"
)

// BuiltinModelCharLM is the built-in byte-level n-gram language model
// family (package model/charlm): loss in bits per byte.
const BuiltinModelCharLM = "charlm"

// BuiltinModels are the model families a builtin evaluator knows.
var BuiltinModels = []string{BuiltinModelCharLM}

// Evaluation bounds and defaults.
const (
	DefaultSampleBytes      = 64 << 10
	MaxSampleBytes          = 16 << 20
	DefaultMaxArtifactBytes = 64 << 20
	MaxArtifactBytes        = 4 << 30
	DefaultEpsilon          = 0.005
	MaxEpsilon              = 0.5
)

// Evaluate says how a mechanism whose tasks come from commitments
// evaluates the committed models (v2).
type Evaluate struct {
	// Kind is builtin or exec.
	Kind string `yaml:"kind"`
	// Model names a builtin evaluator's model family (charlm).
	Model string `yaml:"model"`
	// Command is an exec evaluator's argv, run in the spec's directory;
	// the artifact's path and the evaluation set's path are appended.
	Command []string `yaml:"command"`
	// Limits bound an exec evaluator's run on one model (its timeout, CPU
	// time, memory and output), and (both kinds) how many models are
	// evaluated at once (concurrency).
	Limits HookLimits `yaml:"limits"`
	// Data is the evaluation dataset: a file by path (locked by files:),
	// a knowledge CID, or both (they must agree).
	Data EvaluationData `yaml:"data"`
	// SampleBytes is the size of the evaluation set drawn from Data each
	// round (0: DefaultSampleBytes; at most MaxSampleBytes).
	SampleBytes int64 `yaml:"sample_bytes"`
	// MaxArtifactBytes bounds a committed artifact (0:
	// DefaultMaxArtifactBytes; at most MaxArtifactBytes).
	MaxArtifactBytes int64 `yaml:"max_artifact_bytes"`
	// Epsilon is the advantage of the earlier commit (absent:
	// DefaultEpsilon; 0 to MaxEpsilon): see Beats.
	Epsilon *float64 `yaml:"epsilon"`
}

// EvaluationData names an evaluation dataset.
type EvaluationData struct {
	// Path of the file, relative to the spec's directory.
	Path string `yaml:"path"`
	// CID of its bytes in the knowledge library (a body's CID, as the
	// files: lock has it, or an object's).
	CID string `yaml:"cid"`
}

// Sample is the evaluation set's size in bytes.
func (e *Evaluate) Sample() int64 {
	if e.SampleBytes > 0 {
		return e.SampleBytes
	}
	return DefaultSampleBytes
}

// MaxArtifact is the largest artifact evaluated, in bytes.
func (e *Evaluate) MaxArtifact() int64 {
	if e.MaxArtifactBytes > 0 {
		return e.MaxArtifactBytes
	}
	return DefaultMaxArtifactBytes
}

// EpsilonValue is Epsilon, or DefaultEpsilon when absent.
func (e *Evaluate) EpsilonValue() float64 {
	if e.Epsilon != nil {
		return *e.Epsilon
	}
	return DefaultEpsilon
}

func validateEvaluate(bad badFunc, p string, e *Evaluate) error {
	switch e.Kind {
	case EvaluateBuiltin:
		if !slices.Contains(BuiltinModels, e.Model) {
			return bad(p+".model", "%q: want %s", e.Model, strings.Join(BuiltinModels, ", "))
		}
		if len(e.Command) > 0 {
			return bad(p+".command", "a builtin evaluator has no command")
		}
		if l := e.Limits; l.Timeout != 0 || l.CPUSeconds != 0 || l.MemoryMB != 0 || l.MaxOutputBytes != 0 {
			return bad(p+".limits", "a builtin evaluator takes only limits.concurrency")
		}
	case EvaluateExec:
		if e.Model != "" {
			return bad(p+".model", "an exec evaluator has no model (its command evaluates the artifact)")
		}
		if err := checkCommand(bad, p+".command", e.Command); err != nil {
			return err
		}
	default:
		return bad(p+".kind", "%q: want %s or %s", e.Kind, EvaluateBuiltin, EvaluateExec)
	}
	if err := checkLimits(bad, p+".limits", e.Limits); err != nil {
		return err
	}
	d := e.Data
	switch {
	case d.Path == "" && d.CID == "":
		return bad(p+".data", "the evaluation dataset needs a path or a cid")
	case d.Path != "" && !filepath.IsLocal(d.Path):
		return bad(p+".data.path", "%q: want a path inside the spec's directory", d.Path)
	}
	if d.CID != "" {
		if _, err := cid.Decode(d.CID); err != nil {
			return bad(p+".data.cid", "%q is not a CID: %v", d.CID, err)
		}
	}
	switch {
	case e.SampleBytes < 0 || e.SampleBytes > MaxSampleBytes:
		return bad(p+".sample_bytes", "%d: want 0 (the default, %d) to %d", e.SampleBytes, DefaultSampleBytes, MaxSampleBytes)
	case e.MaxArtifactBytes < 0 || e.MaxArtifactBytes > MaxArtifactBytes:
		return bad(p+".max_artifact_bytes", "%d: want 0 (the default, %d) to %d", e.MaxArtifactBytes, DefaultMaxArtifactBytes, MaxArtifactBytes)
	case e.Epsilon != nil && !(*e.Epsilon >= 0 && *e.Epsilon <= MaxEpsilon):
		return bad(p+".epsilon", "%v: want 0 to %v", *e.Epsilon, MaxEpsilon)
	}
	return nil
}

// evaluationSpec checks the pairing of a mechanism's task source and its
// evaluate: section: tasks from commitments need one (and have no judge);
// other sources have none.
func evaluationSpec(bad badFunc, prefix string, t Tasks, j *Judge, e *Evaluate) error {
	if t.Source != FromCommitments {
		if e != nil {
			return bad(prefix+"evaluate", "only a mechanism whose tasks come from commitments evaluates models (tasks: {source: commitments})")
		}
		return nil
	}
	if e == nil {
		return bad(prefix+"evaluate", "tasks from commitments are models to evaluate: add an evaluate: section (kind, model or command, data)")
	}
	if j != nil {
		return bad(prefix+"judge", "a mechanism whose tasks come from commitments has no judge: its evaluate: section scores the models")
	}
	return validateEvaluate(bad, prefix+"evaluate", e)
}

// Contender is one evaluated model in the epsilon rule: the uid that
// committed it, the block of its commit and its loss on the round's
// evaluation set.
type Contender struct {
	UID   uint16
	Block uint64
	Loss  float64
}

// Standing is a contender's result against the others.
type Standing struct {
	// Wins counts the other contenders it beats (Beats).
	Wins int
	// WinRate is Wins/(n−1); 1 when it is alone.
	WinRate float64
	// IsBest marks the winner: the first in commit order (block, then
	// uid) among those with the most wins.
	IsBest bool
}

// Beats is the epsilon rule (taoverse's iswin): the contender that
// committed at a strictly earlier block has its loss multiplied by
// (1−epsilon); then a beats b if its loss is strictly lower. So a later
// model beats an earlier one only with loss < earlier·(1−epsilon), and
// one committed in the same block only with a strictly lower loss; equal
// adjusted losses beat neither. A NaN loss counts as +Inf (it beats no
// one, and two infinite losses beat neither).
func Beats(a, b Contender, epsilon float64) bool {
	la, lb := ruleLoss(a.Loss), ruleLoss(b.Loss)
	switch {
	case a.Block < b.Block:
		la *= 1 - epsilon
	case b.Block < a.Block:
		lb *= 1 - epsilon
	}
	return la < lb
}

func ruleLoss(x float64) float64 {
	if math.IsNaN(x) {
		return math.Inf(1)
	}
	return x
}

// Compete runs the epsilon rule over every pair of cs: out[i] is cs[i]'s
// standing; best is the index in cs of the winner (-1 if cs is empty).
// It depends only on the contenders, not on their order in cs.
func Compete(cs []Contender, epsilon float64) (out []Standing, best int) {
	out = make([]Standing, len(cs))
	best = -1
	for i := range cs {
		for j := range cs {
			if i != j && Beats(cs[i], cs[j], epsilon) {
				out[i].Wins++
			}
		}
		out[i].WinRate = 1
		if len(cs) > 1 {
			out[i].WinRate = float64(out[i].Wins) / float64(len(cs)-1)
		}
		if best < 0 || out[i].Wins > out[best].Wins || out[i].Wins == out[best].Wins && commitsBefore(cs[i], cs[best]) {
			best = i
		}
	}
	if best >= 0 {
		out[best].IsBest = true
	}
	return out, best
}

// commitsBefore orders commits by block, then uid.
func commitsBefore(a, b Contender) bool {
	if a.Block != b.Block {
		return a.Block < b.Block
	}
	return a.UID < b.UID
}

// evaluationError describes a reward reading evaluation variables where
// there are none.
func evaluationError(source string) string {
	return fmt.Sprintf("reads an evaluation variable (loss, best_loss, epsilon, commit_block, win_rate, is_best), which only tasks from commitments have, not %s tasks", source)
}
