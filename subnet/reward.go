package subnet

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/ipfs/go-cid"

	"github.com/cybertensor/cybertensor/backend"
)

// Response is what a reward expression sees of one query:
//
//	answer      string  the miner's answer
//	expected    string  the answer the validator knows ("" if none)
//	status      string  the response status ("ok", "timeout", …)
//	latency_ms  double  how long the answer took
//	timeout_ms  double  the query's deadline
//	valid       bool    the answer is OK and passed the task's own check: the
//	                    proof check of a storage challenge, the result check
//	                    of a compute job (see Task); any OK answer to a question
//	work        double  the task's size: expected hashes (hash-preimage) or
//	                    squarings (arithmetic) of a compute job, bytes proven
//	                    of a storage challenge, 0 for a question
//	commitment  string  what the miner's hotkey committed on the subnet
//	                    (commitments set): its text, or "0x" and lower-case
//	                    hex if it is not UTF-8; "" if it committed nothing
//	commitment_block double  the block of that commitment, 0 if none
//	block       double  the chain height the validator's round read
//
// and these functions:
//
//	exact(a, b) bool           equal after lower-casing and collapsing spaces
//	contains_text(a, b) bool   b occurs in a, compared the same way
//	similarity(a, b) double    overlap of the two texts' terms, 0..1 (Jaccard)
//	latency_score(l, t) double 1 at no latency, falling linearly to 0.5 at the deadline, 0 past it
//	rate_score(w, l, h) double work per millisecond as a score: r/(r+h) for
//	                           r = w/max(l, 1), so 0 for no work, 0.5 at h per
//	                           ms, towards 1 faster ("correct results per unit time")
//	is_cid(s) bool             s is a valid CID (e.g. a knowledge object's)
//
// A v2 spec's reward (NewRewardV2) also sees
//
//	judge          map     the judge's result: judge.score (double in [0, 1]),
//	                       judge.fields (map; what the judge added)
//	task           map     the task's request (empty for built-in task sources)
//	answer_json    dyn     the answer parsed as JSON; null if it is not JSON
//	expected_json  dyn     the task's expected value as JSON; null if none
//	mechanism      string  the mechanism's name ("main" without mechanisms)
//
// and, in a mechanism whose tasks come from commitments (the models
// miners commit, scored by its evaluate: section),
//
//	loss           double  this model's loss on the round's evaluation set
//	best_loss      double  the loss of the round's best model (is_best)
//	epsilon        double  the evaluate: section's epsilon
//	commit_block   double  the block of the commitment evaluated
//	win_rate       double  the share of the other evaluated models this one
//	                       beats under the epsilon rule (Beats); 1 alone
//	is_best        bool    this model beats all others: the first in commit
//	                       order among those with the most wins
//
// and these functions:
//
//	json_path(v, p) dyn        the value at p in v: a JSON pointer ("/a/0") or a
//	                           dotted path ("a.0"); null when missing
//	edit_ratio(a, b) double    1 − Levenshtein(a, b)/max length, in runes
//	rouge_l(a, b) double       ROUGE-L F1 of the texts' terms
//	word_count(s) int          runs of non-space characters
//	cosine(x, y) double        cosine of two number lists of one length
//
// A validator reads the subnet's commitments from the chain each round
// only when the expression names commitment or commitment_block
// (Reward.UsesCommitments).
//
// The expression must give a double or a bool (true = 1); results are
// clamped to [0, 1], and NaN is 0.
type Response struct {
	Answer, Expected, Status string
	LatencyMS, TimeoutMS     float64
	Valid                    bool
	Work                     float64
	// Commitment is the miner's commitment on the subnet as the reward
	// sees it (CommitmentText); CommitmentBlock the block that set it.
	Commitment      string
	CommitmentBlock float64
	// Block is the chain height the round read.
	Block float64

	// v2 (see NewRewardV2):

	// Judge is the judge's result (nil without a judge).
	Judge *JudgeResult
	// Task is the request as a map (the reward's task).
	Task map[string]any
	// AnswerJSON is the answer parsed as JSON; when nil, Score parses
	// Answer itself if the expression reads answer_json (null if the
	// answer is not one JSON value).
	AnswerJSON any
	// ExpectedJSON is the task's expected value as JSON, nil if none.
	ExpectedJSON any
	// Mechanism is the name of the mechanism the task belongs to.
	Mechanism string
	// Evaluation, for a mechanism whose tasks come from commitments: the
	// model's loss, the best model's, epsilon, the commit's block, the
	// model's win rate, and whether it is the best.
	Loss, BestLoss, Epsilon, CommitBlock, WinRate float64
	IsBest                                        bool
}

// JudgeResult is what a judge says of one answer: a score in [0, 1] and
// any fields it adds (the reward's judge.score and judge.fields).
type JudgeResult struct {
	Score  float64        `json:"score"`
	Fields map[string]any `json:"fields,omitempty"`
}

// CommitmentText is a commitment's data as the reward's commitment
// variable: the text if it is UTF-8, else "0x" and lower-case hex.
func CommitmentText(data []byte) string {
	if utf8.Valid(data) {
		return string(data)
	}
	return "0x" + hex.EncodeToString(data)
}

// Reward is a compiled reward expression.
type Reward struct {
	prg  cel.Program
	bool bool
	// v2: compiled in the v2 environment; judge: it reads judge;
	// answerJSON: it reads answer_json.
	v2, judge, answerJSON bool
	// commitments: the expression reads commitment or commitment_block.
	commitments bool
	// expected: the expression reads expected or expected_json.
	expected bool
	// evaluation: the expression reads an evaluation variable (loss, …).
	evaluation bool
}

// UsesEvaluation says whether the expression reads an evaluation variable
// (loss, best_loss, epsilon, commit_block, win_rate, is_best): only a
// mechanism whose tasks come from commitments gives them.
func (rw *Reward) UsesEvaluation() bool { return rw != nil && rw.evaluation }

// UsesCommitments says whether the expression reads the miner's
// commitment, so a validator fetches commitments only when it must.
func (rw *Reward) UsesCommitments() bool { return rw != nil && rw.commitments }

// UsesExpected says whether the expression reads the task's expected
// answer (expected or expected_json): it cannot score answers to tasks
// that have none, such as organic requests.
func (rw *Reward) UsesExpected() bool { return rw != nil && rw.expected }

// UsesJudge says whether the expression reads judge (a spec whose reward
// does needs a judge).
func (rw *Reward) UsesJudge() bool { return rw != nil && rw.judge }

var (
	rewardEnv   = mustRewardEnv()
	rewardEnvV2 = mustRewardEnvV2(rewardEnv)
)

// mustRewardEnvV2 extends v1's environment with v2's variables and
// functions.
func mustRewardEnvV2(v1 *cel.Env) *cel.Env {
	env, err := v1.Extend(append([]cel.EnvOption{
		cel.Variable("judge", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("task", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("answer_json", cel.DynType),
		cel.Variable("expected_json", cel.DynType),
		cel.Variable("mechanism", cel.StringType),
		cel.Variable("loss", cel.DoubleType),
		cel.Variable("best_loss", cel.DoubleType),
		cel.Variable("epsilon", cel.DoubleType),
		cel.Variable("commit_block", cel.DoubleType),
		cel.Variable("win_rate", cel.DoubleType),
		cel.Variable("is_best", cel.BoolType),
	}, v2Functions...)...,
	)
	if err != nil {
		panic(fmt.Sprintf("subnet: reward environment v2: %v", err))
	}
	return env
}

func mustRewardEnv() *cel.Env {
	norm := func(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }
	str2 := func(f func(a, b string) ref.Val) func(a, b ref.Val) ref.Val {
		return func(a, b ref.Val) ref.Val {
			x, ok1 := a.(types.String)
			y, ok2 := b.(types.String)
			if !ok1 || !ok2 {
				return types.NewErr("want two strings")
			}
			return f(string(x), string(y))
		}
	}
	env, err := cel.NewEnv(
		cel.Variable("answer", cel.StringType),
		cel.Variable("expected", cel.StringType),
		cel.Variable("status", cel.StringType),
		cel.Variable("latency_ms", cel.DoubleType),
		cel.Variable("timeout_ms", cel.DoubleType),
		cel.Variable("valid", cel.BoolType),
		cel.Variable("work", cel.DoubleType),
		cel.Variable("commitment", cel.StringType),
		cel.Variable("commitment_block", cel.DoubleType),
		cel.Variable("block", cel.DoubleType),
		cel.Function("is_cid", cel.Overload("is_cid_string", []*cel.Type{cel.StringType}, cel.BoolType,
			cel.UnaryBinding(func(a ref.Val) ref.Val {
				x, ok := a.(types.String)
				if !ok {
					return types.NewErr("want a string")
				}
				_, err := cid.Decode(string(x))
				return types.Bool(err == nil)
			}))),
		cel.Function("exact", cel.Overload("exact_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(str2(func(a, b string) ref.Val { return types.Bool(norm(a) == norm(b)) })))),
		cel.Function("contains_text", cel.Overload("contains_text_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.BoolType,
			cel.BinaryBinding(str2(func(a, b string) ref.Val { return types.Bool(norm(b) != "" && strings.Contains(norm(a), norm(b))) })))),
		cel.Function("similarity", cel.Overload("similarity_string_string", []*cel.Type{cel.StringType, cel.StringType}, cel.DoubleType,
			cel.BinaryBinding(str2(func(a, b string) ref.Val { return types.Double(backend.TermOverlap(a, b)) })))),
		cel.Function("latency_score", cel.Overload("latency_score_double_double", []*cel.Type{cel.DoubleType, cel.DoubleType}, cel.DoubleType,
			cel.BinaryBinding(func(a, b ref.Val) ref.Val {
				l, ok1 := a.(types.Double)
				t, ok2 := b.(types.Double)
				if !ok1 || !ok2 {
					return types.NewErr("want two doubles")
				}
				return types.Double(latencyScore(float64(l), float64(t)))
			}))),
		cel.Function("rate_score", cel.Overload("rate_score_double_double_double", []*cel.Type{cel.DoubleType, cel.DoubleType, cel.DoubleType}, cel.DoubleType,
			cel.FunctionBinding(func(args ...ref.Val) ref.Val {
				var x [3]float64
				for i, a := range args {
					d, ok := a.(types.Double)
					if !ok || len(args) != 3 {
						return types.NewErr("want three doubles")
					}
					x[i] = float64(d)
				}
				return types.Double(rateScore(x[0], x[1], x[2]))
			}))),
	)
	if err != nil {
		panic(fmt.Sprintf("subnet: reward environment: %v", err))
	}
	return env
}

// MaxRewardSize bounds a reward expression's text.
const MaxRewardSize = 4 << 10

// NewReward compiles a v1 reward expression, rejecting one that does not
// parse, does not type-check, or gives neither a double nor a bool.
func NewReward(expr string) (*Reward, error) { return compileReward(rewardEnv, expr, false) }

// NewRewardV2 compiles a reward expression of a v2 spec: v1's variables and
// functions and v2's (see Response).
func NewRewardV2(expr string) (*Reward, error) { return compileReward(rewardEnvV2, expr, true) }

// CompileReward compiles a reward expression (the spec's or one of its
// mechanisms') in the environment of the spec's version.
func (s *Spec) CompileReward(expr string) (*Reward, error) {
	if s.Version >= 2 {
		return NewRewardV2(expr)
	}
	return NewReward(expr)
}

func compileReward(env *cel.Env, expr string, v2 bool) (*Reward, error) {
	if strings.TrimSpace(expr) == "" {
		return nil, errors.New("empty expression")
	}
	if len(expr) > MaxRewardSize {
		return nil, fmt.Errorf("%d bytes, at most %d", len(expr), MaxRewardSize)
	}
	ast, iss := env.Compile(expr)
	if iss.Err() != nil {
		return nil, fmt.Errorf("%s", strings.ReplaceAll(iss.Err().Error(), "\n", " "))
	}
	out := ast.OutputType()
	isBool := out.IsExactType(cel.BoolType)
	if !isBool && !out.IsExactType(cel.DoubleType) && !(v2 && out.IsExactType(cel.DynType)) {
		return nil, fmt.Errorf("gives %s; want double or bool", out)
	}
	prg, err := env.Program(ast, cel.CostLimit(100_000))
	if err != nil {
		return nil, err
	}
	rw := &Reward{prg: prg, bool: isBool, v2: v2}
	for _, r := range ast.NativeRep().ReferenceMap() {
		switch r.Name {
		case "commitment", "commitment_block":
			rw.commitments = true
		case "judge":
			rw.judge = true
		case "answer_json":
			rw.answerJSON = true
		case "expected", "expected_json":
			rw.expected = true
		case "loss", "best_loss", "epsilon", "commit_block", "win_rate", "is_best":
			rw.evaluation = true
		}
	}
	return rw, nil
}

// Score evaluates the expression on r, in [0, 1]. An evaluation error
// (e.g. over its cost limit) scores 0 and is returned.
func (rw *Reward) Score(r Response) (float64, error) {
	val, err := rw.eval(r)
	if err != nil {
		return 0, err
	}
	var x float64
	switch v := val.(type) {
	case types.Bool:
		if v {
			x = 1
		}
	case types.Double:
		x = float64(v)
	case types.Int: // a v2 dyn result
		x = float64(v)
	case types.Uint:
		x = float64(v)
	default:
		return 0, fmt.Errorf("subnet: reward gave %s", val.Type())
	}
	if math.IsNaN(x) {
		return 0, nil
	}
	return min(1, max(0, x)), nil
}

// eval evaluates the expression on r, unclamped.
func (rw *Reward) eval(r Response) (ref.Val, error) {
	vars := map[string]any{
		"answer": r.Answer, "expected": r.Expected, "status": r.Status,
		"latency_ms": r.LatencyMS, "timeout_ms": r.TimeoutMS, "valid": r.Valid, "work": r.Work,
		"commitment": r.Commitment, "commitment_block": r.CommitmentBlock, "block": r.Block,
	}
	if rw.v2 {
		if rw.judge && r.Judge == nil {
			return nil, errors.New("subnet: reward reads judge, but the answer was not judged")
		}
		judge := map[string]any{"score": 0.0, "fields": map[string]any{}}
		if r.Judge != nil {
			judge["score"] = r.Judge.Score
			if r.Judge.Fields != nil {
				judge["fields"] = r.Judge.Fields
			}
		}
		task := r.Task
		if task == nil {
			task = map[string]any{}
		}
		vars["judge"], vars["task"], vars["mechanism"] = judge, task, r.Mechanism
		vars["loss"], vars["best_loss"], vars["epsilon"], vars["commit_block"] = r.Loss, r.BestLoss, r.Epsilon, r.CommitBlock
		vars["win_rate"], vars["is_best"] = r.WinRate, r.IsBest
		aj := r.AnswerJSON
		if aj == nil && rw.answerJSON {
			aj = answerJSON([]byte(r.Answer))
		}
		vars["answer_json"], vars["expected_json"] = jsonOrNull(aj), jsonOrNull(r.ExpectedJSON)
	}
	val, _, err := rw.prg.Eval(vars)
	if err != nil {
		return nil, fmt.Errorf("subnet: reward: %w", err)
	}
	return val, nil
}

func jsonOrNull(v any) any {
	if v == nil {
		return types.NullValue
	}
	return v
}

func latencyScore(latency, timeout float64) float64 {
	if timeout <= 0 || latency > timeout {
		return 0
	}
	return 1 - 0.5*max(0, latency)/timeout
}

// rateScore is r/(r+half) for the rate r = work per millisecond (at least
// 1 ms): 0 without work, 0.5 at half, towards 1. Nonsense (negative or
// NaN inputs) scores 0.
func rateScore(work, ms, half float64) float64 {
	if !(work > 0) || !(half > 0) || math.IsNaN(ms) {
		return 0
	}
	r := work / max(ms, 1)
	if math.IsInf(r, 1) {
		return 1
	}
	return r / (r + half)
}
