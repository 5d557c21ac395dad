package neuron

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/judge"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/scoring"
	"github.com/cybertensor/cybertensor/subnet"
)

// A validator runs one pipeline per incentive mechanism of its spec
// (subnet.Spec.EffectiveMechanisms): the mechanism's task source, the
// synapse its tasks go to, its judge and reward, and its own scores and
// weights, set on chain under the mechanism's id (its index in the spec).
// A v1 spec, or none, is one pipeline, mechanism 0, scoring as before v2.

// pipeline is one mechanism's scoring.
type pipeline struct {
	// id is the mechanism's id on chain; name its name in the spec
	// (subnet.MainMechanism without a mechanisms: section).
	id   uint8
	name string
	// v2: answers are checked against synapse (ValidateAnswer) and judged,
	// and the reward sees v2's variables.
	v2      bool
	synapse *subnet.Synapse
	tasks   taskSource
	reward  *subnet.Reward
	// judge (nil: none) runs on every valid OK answer, bounded by
	// judgeLimits (the phase's deadline is computed from them).
	judge       judge.Judge
	judgeName   string
	judgeLimits judge.Limits
	// judgeInFlight is how many judgements the judge takes at once: its
	// concurrency, times an exec judge's calls in flight per process.
	judgeInFlight int
	// evaluator (tasks from commitments; then tasks is nil) evaluates the
	// models miners commit instead of querying them (evaluate.go).
	evaluator *modelEvaluator

	// rng and rotation belong to the run loop.
	rng      *rand.Rand
	rotation rotation

	// Guarded by Validator.mu: the moving averages, a weight commit to
	// reveal, the block of the last weights set and the weights.
	scores  *scoring.Scores
	pending *pendingCommit
	lastSet uint64
	weights *WeightsSet
	// Also guarded by Validator.mu: the rounds in flight and the miners
	// they wait on.
	inFlight int
	asking   map[uint16]bool
	// reask holds the miners whose last query ended before the
	// validator's connection to them was up: the next round after the
	// connection comes up asks them again (reaskDue), rather than leave
	// them to the rotation's next pass.
	reask map[uint16]roundTarget
	// introduced holds the hotkey each uid held when it was last asked
	// as a newcomer (newcomers): a newcomer is asked early once.
	introduced map[uint16]string
	// roundsWG counts the rounds in flight; a replaced pipeline is closed
	// once they are done.
	roundsWG sync.WaitGroup
}

// close stops the pipeline's judge and task hooks.
func (p *pipeline) close() error {
	var errs []error
	if p.judge != nil {
		errs = append(errs, p.judge.Close())
	}
	if c, ok := p.tasks.(io.Closer); ok {
		errs = append(errs, c.Close())
	}
	if p.evaluator != nil {
		errs = append(errs, p.evaluator.Close())
	}
	return errors.Join(errs...)
}

func closePipelines(ps []*pipeline) {
	for _, p := range ps {
		p.close()
	}
}

// pipelineEnv is what building pipelines needs besides the spec.
type pipelineEnv struct {
	judgeEnv
	uid uint16
	// lib is the validator's knowledge library once open (nil before, and
	// without one).
	lib func() *knowledge.Library
}

// buildPipelines makes the pipelines cfg runs with spec (cfg.Spec or a
// spec the chain switched to): one for a v1 spec or none, one per
// mechanism for a v2 spec. Task programs and judges are started (a missing
// or non-executable program is an error); on error nothing is left
// running.
func buildPipelines(env pipelineEnv, spec *subnet.Spec) (_ []*pipeline, err error) {
	cfg := env.cfg
	if spec == nil || spec.Version < 2 {
		reward := cfg.Reward
		if reward == nil && spec != nil {
			if reward, err = spec.CompileReward(spec.Reward); err != nil {
				return nil, fmt.Errorf("neuron: validator config: the spec's reward: %w", err)
			}
		}
		c := cfg
		c.Spec = spec
		if err := checkTaskConfig(c); err != nil {
			return nil, err
		}
		tasks, err := newTaskSource(c, env.uid, env.lib)
		if err != nil {
			return nil, err
		}
		scores, _ := scoring.RestoreScores(cfg.Alpha, nil)
		return []*pipeline{{id: cfg.Mechanism, name: subnet.MainMechanism, tasks: tasks, reward: reward, scores: scores,
			rng: rand.New(rand.NewPCG(cfg.Seed, uint64(env.uid)))}}, nil
	}
	var out []*pipeline
	defer func() {
		if err != nil {
			closePipelines(out)
		}
	}()
	for i, m := range spec.EffectiveMechanisms() {
		if m.Tasks.Source == subnet.FromCommitments {
			p, err := env.evaluationPipeline(spec, uint8(i), m)
			if err != nil {
				return nil, fmt.Errorf("neuron: mechanism %s: %w", m.Name, err)
			}
			out = append(out, p)
			continue
		}
		syn := spec.Synapse(spec.TaskSynapseOf(m.Tasks))
		if syn == nil {
			return nil, fmt.Errorf("neuron: mechanism %s: its tasks go to no synapse of the spec", m.Name)
		}
		reward, err := spec.CompileReward(m.Reward)
		if err != nil {
			return nil, fmt.Errorf("neuron: mechanism %s: reward: %w", m.Name, err)
		}
		scores, _ := scoring.RestoreScores(cfg.Alpha, nil)
		p := &pipeline{id: uint8(i), name: m.Name, v2: true, synapse: syn, reward: reward, scores: scores,
			rng: rand.New(rand.NewPCG(cfg.Seed+uint64(i), uint64(env.uid)))}
		out = append(out, p)
		if p.tasks, err = env.mechanismTasks(spec, m, syn, p.rng); err != nil {
			return nil, fmt.Errorf("neuron: mechanism %s: tasks: %w", m.Name, err)
		}
		if p.judge, p.judgeName, err = env.newJudge(spec, m, syn); err != nil {
			return nil, fmt.Errorf("neuron: %w", err)
		}
		if m.Judge != nil {
			p.judgeLimits = judgeLimits(m.Judge.Limits)
			p.judgeInFlight = p.judgeLimits.Concurrency
			if m.Judge.Kind == subnet.JudgeExec {
				p.judgeInFlight *= max(1, HookLimits(m.Judge.Limits).Pipeline)
			}
		}
	}
	return out, nil
}

// evaluationPipeline is the pipeline of a mechanism whose tasks come from
// commitments: no synapse, no task source, no judge; an evaluator.
func (env pipelineEnv) evaluationPipeline(spec *subnet.Spec, id uint8, m subnet.Mechanism) (*pipeline, error) {
	reward, err := spec.CompileReward(m.Reward)
	if err != nil {
		return nil, fmt.Errorf("reward: %w", err)
	}
	ev, err := newModelEvaluator(env, m)
	if err != nil {
		return nil, fmt.Errorf("evaluate: %w", err)
	}
	scores, _ := scoring.RestoreScores(env.cfg.Alpha, nil)
	return &pipeline{id: id, name: m.Name, v2: true, reward: reward, scores: scores, evaluator: ev,
		rng: rand.New(rand.NewPCG(env.cfg.Seed+uint64(id), uint64(env.uid)))}, nil
}

// mechanismTasks makes a v2 mechanism's task source.
func (env pipelineEnv) mechanismTasks(spec *subnet.Spec, m subnet.Mechanism, syn *subnet.Synapse, rng *rand.Rand) (taskSource, error) {
	cfg := env.cfg
	t := m.Tasks
	switch t.Source {
	case subnet.FromExec:
		hc := hook.DefaultExecConfig(hookName(cfg.Netuid, m.Name, "tasks"), t.Command...)
		hc.Dir, hc.Limits, hc.Logger, hc.Metrics = env.specDir, HookLimits(t.Limits), env.log.With("mechanism", m.Name), env.hooks
		if len(t.Command) == 0 {
			return nil, errors.New("an exec task source needs a command")
		}
		return execTasks(hc, syn), nil
	case subnet.FromHTTP:
		hc := hook.DefaultHTTPConfig(hookName(cfg.Netuid, m.Name, "tasks"), t.URL)
		hc.Limits, hc.Logger, hc.Metrics = HookLimits(t.Limits), env.log.With("mechanism", m.Name), env.hooks
		return newHTTPTasks(hc, syn)
	case subnet.FromDataset:
		d := &datasetTasks{syn: syn, cid: t.CID, lib: env.lib, rng: rng}
		if t.Path != "" && (t.CID == "" || env.specDir != "") {
			data, err := readSpecBytes(env.specDir, t.Path, subnet.MaxTaskLinesBytes)
			switch {
			case err == nil:
				if d.tasks, err = tasksFromLines(syn, data, subnet.MaxTaskLines); err != nil {
					return nil, fmt.Errorf("dataset %s: %w", t.Path, err)
				}
				return d, nil
			case t.CID == "":
				return nil, fmt.Errorf("dataset: %w", err)
			}
			// Not here: fetched by its CID.
		}
		if cfg.KnowledgeDir == "" || cfg.Swarm.Disabled {
			return nil, fmt.Errorf("the dataset %s is fetched by its CID: the validator needs a KnowledgeDir and the swarm", t.CID)
		}
		return d, nil
	case subnet.FromKnowledge, subnet.FromGenerator:
		// v1's sources, for this mechanism's synapse.
		c := cfg
		c.Spec = &subnet.Spec{Synapses: []subnet.Synapse{{Name: syn.Name}}, Tasks: t}
		if err := checkTaskConfig(c); err != nil {
			return nil, err
		}
		return newTaskSource(c, env.uid, env.lib)
	}
	return nil, fmt.Errorf("unknown task source %q", t.Source)
}

// verdict is what scoring made of one miner's answer: a score, or a drop
// (the miner's score is left as it was).
type verdict struct {
	score float64
	// reason, if set, says why the answer scored as it did (an invalid
	// answer) or why it was dropped.
	reason     string
	dropped    bool
	dropReason string // the counter's reason label
}

// check is what p makes of answer r to task before any judge: a final
// verdict (done: an invalid answer, or no answer to judge), or the judge's
// input when the answer is to be judged (in != nil), or neither (the
// reward scores it alone).
func (p *pipeline) check(task subnet.Task, r protocol.Result) (vd verdict, done bool, in *judge.Input) {
	if !p.v2 {
		return verdict{}, false, nil
	}
	if r.Status != protocol.StatusOK {
		// With a judge, only answers are judged: no answer, no score.
		return verdict{}, p.judge != nil, nil
	}
	if err := p.synapse.ValidateAnswer(r.Body); err != nil {
		return verdict{reason: "invalid answer: " + err.Error()}, true, nil
	}
	if p.judge == nil {
		return verdict{}, false, nil
	}
	return verdict{}, false, &judge.Input{Request: task.Body, Expected: task.ExpectedJSON, Meta: task.Meta, Synapse: task.Synapse,
		Answer: r.Body, AnswerIsText: p.synapse.AnswerIsText()}
}

// judgingContext bounds the judging of n answers: the judge's timeout for
// each batch of its concurrency, after the queries' own timeout.
func (p *pipeline) judgingContext(ctx context.Context, n int, queryTimeout time.Duration) (context.Context, context.CancelFunc) {
	conc := max(1, p.judgeLimits.Concurrency)
	batches := (n + conc - 1) / conc
	return context.WithTimeout(ctx, queryTimeout+time.Duration(batches)*max(p.judgeLimits.Timeout, time.Second))
}

// answerState is one answer on its way through the pipeline.
type answerState struct {
	vd     verdict
	done   bool
	judged *subnet.JudgeResult
}

// judgeOne judges in, recording the result or the drop in st.
func (p *pipeline) judgeOne(ctx context.Context, in *judge.Input, st *answerState) {
	res, err := p.judge.Judge(ctx, *in)
	if err != nil {
		st.vd, st.done = verdict{dropped: true, dropReason: dropReason(err), reason: "not scored: " + err.Error()}, true
		return
	}
	st.judged = &subnet.JudgeResult{Score: res.Score, Fields: res.Fields}
}

// finish gives each answer not yet final its reward.
func (p *pipeline) finish(states []answerState, tasks []subnet.Task, results []protocol.Result, views []minerChain, timeout time.Duration, log *slog.Logger) []verdict {
	out := make([]verdict, len(states))
	for i, st := range states {
		switch {
		case st.done:
			out[i] = st.vd
		case !p.v2:
			out[i].score = scoreResult(tasks[i], results[i], p.reward, timeout, views[i], log)
		default:
			out[i].score = p.rewardOf(tasks[i], results[i], st.judged, timeout, views[i], log)
		}
	}
	return out
}

// queryAndScore asks each task of a round (query(ctx, i) asks tasks[i]
// of its miner) and scores the answers: each answer is checked and judged
// as soon as it arrives, while slower miners are still answering, and the
// rewards computed once all are in.
func (p *pipeline) queryAndScore(ctx context.Context, query func(ctx context.Context, i int) protocol.Result, tasks []subnet.Task, views []minerChain, timeout time.Duration, log *slog.Logger) ([]protocol.Result, []verdict) {
	results := make([]protocol.Result, len(tasks))
	states := make([]answerState, len(tasks))
	jctx := ctx
	if p.judge != nil {
		var cancel context.CancelFunc
		jctx, cancel = p.judgingContext(ctx, len(tasks), timeout)
		defer cancel()
	}
	var wg sync.WaitGroup
	for i := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = query(ctx, i)
			st := &states[i]
			var in *judge.Input
			st.vd, st.done, in = p.check(tasks[i], results[i])
			if in != nil {
				p.judgeOne(jctx, in, st)
			}
		}()
	}
	wg.Wait()
	return results, p.finish(states, tasks, results, views, timeout, log)
}

// scoreAnswers scores the answers of one round once they are all in
// (results[i] to tasks[i], views[i] the chain's view of its miner):
// answer validation, the judge (at most the judgements it takes at once
// in flight), then the reward. It does not touch the validator's state.
func (p *pipeline) scoreAnswers(ctx context.Context, tasks []subnet.Task, results []protocol.Result, views []minerChain, timeout time.Duration, log *slog.Logger) []verdict {
	states := make([]answerState, len(results))
	var work []int
	inputs := make([]*judge.Input, len(results))
	for i, r := range results {
		states[i].vd, states[i].done, inputs[i] = p.check(tasks[i], r)
		if inputs[i] != nil {
			work = append(work, i)
		}
	}
	if len(work) > 0 {
		jctx, cancel := p.judgingContext(ctx, len(work), 0)
		defer cancel()
		next := make(chan int)
		var wg sync.WaitGroup
		for range min(max(1, p.judgeInFlight), len(work)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range next {
					p.judgeOne(jctx, inputs[i], &states[i])
				}
			}()
		}
		for _, i := range work {
			next <- i
		}
		close(next)
		wg.Wait()
	}
	return p.finish(states, tasks, results, views, timeout, log)
}

// rewardOf is the reward of one answer (judged by j, if not nil).
func (p *pipeline) rewardOf(task subnet.Task, r protocol.Result, j *subnet.JudgeResult, timeout time.Duration, mc minerChain, log *slog.Logger) float64 {
	resp := task.Response(strings.ToLower(r.Status.String()), r.Body, r.Latency, timeout)
	resp.Block, resp.Commitment, resp.CommitmentBlock = mc.block, mc.commitment, mc.commitmentBlock
	resp.Judge, resp.Mechanism = j, p.name
	score, err := p.reward.Score(resp)
	if err != nil {
		log.Warn("reward expression failed", "mechanism", p.name, "err", err)
	}
	return score
}

// dropReason is the tasks_dropped reason label of a judge's failure: the
// hook's kind of failure when a hook failed (judge_timeout, judge_crashed,
// judge_too_large, judge_bad_output, judge_status, judge_unreachable),
// else the judge's reason (judge_bad_reply, judge_no_score, …).
func dropReason(err error) string {
	for _, k := range []struct {
		err    error
		reason string
	}{
		{hook.ErrTimeout, "timeout"}, {hook.ErrCrashed, "crashed"}, {hook.ErrTooLarge, "too_large"},
		{hook.ErrBadOutput, "bad_output"}, {hook.ErrStatus, "status"}, {hook.ErrUnreachable, "unreachable"},
		{hook.ErrClosed, "closed"},
	} {
		if errors.Is(err, k.err) {
			return "judge_" + k.reason
		}
	}
	var f *judge.Failure
	switch {
	case errors.As(err, &f):
		return "judge_" + f.Reason
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "judge_timeout"
	}
	return "judge_call"
}

// Reasons a task is dropped besides a judge's (judge_<reason>).
const (
	// dropTaskSource: a task program or endpoint failed; the round is
	// skipped (counted once).
	dropTaskSource = "task_source"
)

// dropMetrics counts dropped tasks,
// cybertensor_validator_tasks_dropped_total{netuid,mechanism,reason},
// skipped rounds, cybertensor_validator_rounds_skipped_total{netuid,mechanism},
// miners asked again once connected,
// cybertensor_validator_queries_reasked_total{netuid,mechanism}, and
// miners asked early because the validator never scored them,
// cybertensor_validator_queries_newcomers_total{netuid,mechanism}.
type dropMetrics struct {
	dropped   *prometheus.CounterVec
	skipped   *prometheus.CounterVec
	reasked   *prometheus.CounterVec
	newcomers *prometheus.CounterVec
}

func newDropMetrics(reg prometheus.Registerer) *dropMetrics {
	return &dropMetrics{
		dropped: registeredCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "validator",
			Name: "tasks_dropped_total", Help: "Tasks a validator dropped from a round without scoring anyone: a judge failed on the answer, or the task source failed, by netuid, mechanism and reason."},
			[]string{"netuid", "mechanism", "reason"})),
		skipped: registeredCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "validator",
			Name: "rounds_skipped_total", Help: "Query rounds a validator skipped because as many rounds of the mechanism as it runs at once (RoundsInFlight) still waited on answers, by netuid and mechanism."},
			[]string{"netuid", "mechanism"})),
		reasked: registeredCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "validator",
			Name: "queries_reasked_total", Help: "Miners a validator asked again, out of its rotation's turn, because their last query ended before the validator's connection to them was up and the connection has come up since, by netuid and mechanism."},
			[]string{"netuid", "mechanism"})),
		newcomers: registeredCounterVec(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "validator",
			Name: "queries_newcomers_total", Help: "Miners a validator asked out of its rotation's turn because it had never scored them under their hotkey (its first cycle, or miners new to the subnet), once each, by netuid and mechanism."},
			[]string{"netuid", "mechanism"})),
	}
}

// DropCount is how many tasks a mechanism dropped for one reason.
type DropCount struct {
	Mechanism string `json:"mechanism"`
	Reason    string `json:"reason"`
	Count     int64  `json:"count"`
}
