package judge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Input is one miner's answer to one task, as a judge sees it. It never
// names the miner (no uid, no hotkey).
type Input struct {
	// Request is the task's request (JSON, valid for the synapse's
	// request schema).
	Request json.RawMessage
	// Expected is the task's expected value (any JSON), or empty.
	Expected json.RawMessage
	// Meta is the task's meta value (any JSON), or empty.
	Meta json.RawMessage
	// Synapse names the synapse the task was asked on.
	Synapse string
	// Answer is the miner's answer: its UTF-8 text when AnswerIsText,
	// otherwise its JSON (already valid for the answer schema).
	Answer []byte
	// AnswerIsText tells a text answer from a JSON one.
	AnswerIsText bool
}

// Result is a judge's verdict: a score in [0,1] and any fields the judge
// adds, which the reward expression sees as judge.score and judge.fields.
type Result struct {
	Score  float64
	Fields map[string]any
}

// Judge scores answers. An error is a judge failure (it wraps
// ErrJudgeFailed): the task is dropped from the round for every miner and
// counted, never scored 0. The exception is a caller that gives up: then
// the error is its context's, not counted.
type Judge interface {
	Judge(ctx context.Context, in Input) (Result, error)
	Close() error
}

// ErrJudgeFailed is wrapped by every judge failure: a judge program or
// endpoint that fails, times out, or answers garbage; a model reply without
// a score; a reference that cannot be computed.
var ErrJudgeFailed = errors.New("judge failed")

// ErrBadInput is an Input the caller should not have passed (a request or
// a JSON answer that is not JSON, an answer that is not UTF-8 text). It
// wraps ErrJudgeFailed too, so a pipeline that drops failed tasks drops it.
var ErrBadInput = fmt.Errorf("%w: bad input", ErrJudgeFailed)

// Reasons of failure, as counted (cybertensor_judge_failures_total's reason
// label) and carried by *Failure.
const (
	ReasonBadInput   = "bad_input"   // the Input is not what a judge takes
	ReasonCall       = "call"        // the judge program or endpoint failed
	ReasonTimeout    = "timeout"     // the judge did not answer in time
	ReasonStatus     = "status"      // an HTTP status other than 200
	ReasonTooLarge   = "too_large"   // a reply over its bound
	ReasonBadReply   = "bad_reply"   // a reply that breaks the protocol
	ReasonJudgeError = "judge_error" // the judge said "error"
	ReasonNoScore    = "no_score"    // a model reply with no score, or two conflicting ones
	ReasonReference  = "reference"   // the reference answer or embedding failed
)

// Failure is a judge failure: which judge, why, and what happened. It
// wraps ErrJudgeFailed (and ErrBadInput for ReasonBadInput).
type Failure struct {
	Judge  string
	Reason string
	Err    error
}

func (f *Failure) Error() string {
	return fmt.Sprintf("judge %s: %s: %v", f.Judge, f.Reason, f.Err)
}

// Unwrap gives the sentinel and the cause.
func (f *Failure) Unwrap() []error {
	if f.Reason == ReasonBadInput {
		return []error{ErrBadInput, f.Err}
	}
	return []error{ErrJudgeFailed, f.Err}
}

// Limits bound a judge. The pipeline maps a spec's judge limits
// (timeout, max_output_bytes, concurrency) to them; CPU and memory limits
// belong to the hook that runs a judge program.
type Limits struct {
	// Timeout bounds one judgement (default 30s).
	Timeout time.Duration
	// MaxOutput bounds a judge's reply in bytes (default 64 KiB).
	MaxOutput int
	// Concurrency bounds the judgements running at once (default 4).
	Concurrency int
}

// DefaultLimits returns 30s, 64 KiB and 4 at once.
func DefaultLimits() Limits {
	return Limits{Timeout: 30 * time.Second, MaxOutput: 64 << 10, Concurrency: 4}
}

// orDefault fills the zero fields of l from DefaultLimits and refuses
// negative ones.
func (l Limits) orDefault() (Limits, error) {
	if l.Timeout < 0 || l.MaxOutput < 0 || l.Concurrency < 0 {
		return l, fmt.Errorf("judge: negative limits %+v", l)
	}
	d := DefaultLimits()
	if l.Timeout == 0 {
		l.Timeout = d.Timeout
	}
	if l.MaxOutput == 0 {
		l.MaxOutput = d.MaxOutput
	}
	if l.Concurrency == 0 {
		l.Concurrency = d.Concurrency
	}
	return l, nil
}

// observer counts and logs one judge's calls and failures.
type observer struct {
	name    string
	metrics *Metrics
	log     *slog.Logger
}

func newObserver(name, kind string, m *Metrics, log *slog.Logger) observer {
	if name == "" {
		name = kind
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return observer{name: name, metrics: m, log: log.With("component", "judge", "judge", name)}
}

// finish counts a judgement that started at start and ended with err,
// which it returns: a failure as a *Failure (counted under the reason err
// carries, ReasonCall if none, and logged), a caller's cancellation as its
// context error (neither).
func (o observer) finish(ctx context.Context, start time.Time, err error) error {
	o.metrics.observe(o.name, time.Since(start))
	if err == nil {
		return nil
	}
	reason := reasonOf(err, ReasonCall)
	if ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled) {
		return fmt.Errorf("judge %s: %w", o.name, ctx.Err())
	}
	if ctx.Err() != nil || reason == ReasonCall && isTimeout(err) {
		reason = ReasonTimeout
	}
	o.metrics.fail(o.name, reason)
	o.log.Warn("judge failed", "reason", reason, "err", err)
	return &Failure{Judge: o.name, Reason: reason, Err: err}
}

// isTimeout tells a timeout apart from other failures of a caller.
func isTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &t) && t.Timeout()
}

// failed is an error with the reason it is counted under.
type failed struct {
	reason string
	err    error
}

func (f *failed) Error() string { return f.err.Error() }
func (f *failed) Unwrap() error { return f.err }

func fail(reason, format string, args ...any) error {
	return &failed{reason: reason, err: fmt.Errorf(format, args...)}
}

// reasonOf is the reason err carries, or def.
func reasonOf(err error, def string) string {
	var f *failed
	if errors.As(err, &f) {
		return f.reason
	}
	return def
}
