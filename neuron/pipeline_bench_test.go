package neuron

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/judge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/scoring"
	"github.com/cybertensor/cybertensor/subnet"
)

// Rewards of the scoring benchmarks: the same latency term, judged by a
// trivial persistent exec judge (the test binary's "judge") or checked by
// CEL alone.
const (
	judgedReward  = `judge.score * latency_score(latency_ms, timeout_ms)`
	celOnlyReward = `answer == expected ? latency_score(latency_ms, timeout_ms) : 0.0`
)

// benchPipeline is the pipeline of a one-mechanism v2 spec on upper.v1
// with reward, judged by the test hook's exec judge judgeMode ("judge" or
// "judge-batched"; "": not judged), with the default hook limits.
func benchPipeline(b *testing.B, reward, judgeMode string) *pipeline {
	b.Helper()
	body := fmt.Sprintf("tasks: {source: exec, command: %s}\n", testHookCommand(b, "tasks", "upper", "1"))
	if judgeMode != "" {
		body += fmt.Sprintf("judge: {kind: exec, command: %s, limits: %s}\n", testHookCommand(b, judgeMode), hookLimitsYAML)
	}
	text := "version: 2\nname: bench\nsynapses:\n" + upperSynapse + body + "reward: '" + reward + "'\n" +
		"query: {every: 1, sample: 0, timeout: 2s}\nalpha: 0.5\nweights_every: 3\n"
	spec, err := subnet.Parse([]byte(text))
	if err != nil {
		b.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	cfg := SpecValidatorConfig(1, spec, nil)
	cfg.Logger = log
	env := pipelineEnv{judgeEnv: judgeEnv{cfg: cfg, specDir: b.TempDir(), hooks: hook.NewMetrics(nil), judges: judge.NewMetrics(nil), log: log}}
	pipes, err := buildPipelines(env, spec)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { closePipelines(pipes) })
	return pipes[0]
}

// benchRound is n tasks of upper.v1 and their answers, half right.
func benchRound(b *testing.B, p *pipeline, n int) ([]subnet.Task, []protocol.Result, []minerChain) {
	b.Helper()
	tasks := make([]subnet.Task, n)
	results := make([]protocol.Result, n)
	views := make([]minerChain, n)
	for i := range n {
		text := fmt.Sprintf("word%d", i)
		t, err := p.synapse.TaskFromLine(subnet.TaskLine{Request: []byte(fmt.Sprintf(`{"text": %q}`, text)), Expected: []byte(fmt.Sprintf("%q", strings.ToUpper(text)))})
		if err != nil {
			b.Fatal(err)
		}
		tasks[i] = t
		ans := strings.ToUpper(text)
		if i%2 == 1 {
			ans = "lazy"
		}
		results[i] = protocol.Result{Status: protocol.StatusOK, Body: []byte(ans), Latency: 20 * time.Millisecond}
	}
	return tasks, results, views
}

// scoreAndFold is what a round does once its answers are in: validate,
// judge, reward, and fold the scores in.
func scoreAndFold(ctx context.Context, p *pipeline, scores *scoring.Scores, tasks []subnet.Task, results []protocol.Result, views []minerChain, log *slog.Logger) {
	verdicts := p.scoreAnswers(ctx, tasks, results, views, 2*time.Second, log)
	for i, vd := range verdicts {
		if !vd.dropped {
			scores.Update(uint16(i), "hotkey", vd.score)
		}
	}
}

// BenchmarkScoringPipeline is the validator's scoring path after the
// answers are in, for a round of 64 answers: with a trivial persistent
// exec judge (judged) and, as the baseline in the same run, a CEL-only
// reward. answers/s is the judged answers scored per second. The judge
// writes each answer on its own (judged) or, as a judge that flushes only
// when it has read every request sent does, once per batch
// (judged/batched).
func BenchmarkScoringPipeline(b *testing.B) {
	const n = 64
	log := slog.New(slog.DiscardHandler)
	for _, c := range []struct {
		name   string
		reward string
		judge  string
	}{{"cel-only", celOnlyReward, ""}, {"judged", judgedReward, "judge"}, {"judged/batched", judgedReward, "judge-batched"}} {
		b.Run(c.name, func(b *testing.B) {
			p := benchPipeline(b, c.reward, c.judge)
			tasks, results, views := benchRound(b, p, n)
			scores, _ := scoring.RestoreScores(0.5, nil)
			ctx := context.Background()
			scoreAndFold(ctx, p, scores, tasks, results, views, log) // the judge's processes start
			if v := scores.Values(); v[0] == 0 || v[1] != 0 {
				b.Fatalf("scores %v", v[:2])
			}
			b.ResetTimer()
			for range b.N {
				scoreAndFold(ctx, p, scores, tasks, results, views, log)
			}
			b.ReportMetric(float64(b.N*n)/b.Elapsed().Seconds(), "answers/s")
		})
	}
}

// allRegistered registers every caller.
type allRegistered struct{}

func (allRegistered) Caller(context.Context, uint16, peer.ID) (protocol.Caller, error) {
	return protocol.Caller{Registered: true, Stake: 1}, nil
}

// BenchmarkRound is a whole round of 16 loopback miners (libp2p over TCP
// on 127.0.0.1), as Validator.round runs it: the queries, each answer
// judged as it arrives, the rewards and the score updates. Each iteration
// runs the same round (same miners, same tasks) twice, CEL-only and then
// judged by a trivial persistent exec judge, and times each, so both see
// the same machine load: cel-ms/round, judged-ms/round and
// judged-overhead-% (the judged rounds' time over the CEL-only ones', in
// the same iterations). Miners answer at once (instant: the round is all
// overhead) or after 20 ms of work (a small model), during which earlier
// answers are judged. The judge writes each answer on its own, or once per
// batch (batched; see BenchmarkScoringPipeline).
func BenchmarkRound(b *testing.B) {
	const miners = 16
	log := slog.New(slog.DiscardHandler)
	var work atomic.Int64 // how long each miner works on an answer
	vh, err := newHost(testKey(b, "bench validator", 0), HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, SwarmConfig{Disabled: true})
	if err != nil {
		b.Fatal(err)
	}
	defer vh.Close()
	client, err := protocol.NewClient(vh, protocol.DefaultClientConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer client.Close()
	var ids []peer.ID
	for i := range miners {
		key := testKey(b, "bench miner", i)
		h, err := newHost(key, HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, SwarmConfig{Disabled: true})
		if err != nil {
			b.Fatal(err)
		}
		defer h.Close()
		lazy := i%2 == 1
		scfg := protocol.DefaultServerConfig()
		scfg.Logger = log
		srv, err := protocol.NewServer(h, key, allRegistered{}, map[string]protocol.Handler{"upper.v1": answer(func(s string) string {
			time.Sleep(time.Duration(work.Load())) // the miner's model at work
			if lazy {
				return "lazy"
			}
			return strings.ToUpper(s)
		})}, scfg)
		if err != nil {
			b.Fatal(err)
		}
		defer srv.Close()
		vh.Peerstore().AddAddrs(h.ID(), h.Addrs(), time.Hour)
		ids = append(ids, h.ID())
	}
	for _, c := range []struct {
		name  string
		work  time.Duration
		judge string
	}{{"instant", 0, "judge"}, {"instant/batched", 0, "judge-batched"}, {"work=20ms", 20 * time.Millisecond, "judge"}} {
		b.Run(c.name, func(b *testing.B) {
			work.Store(int64(c.work))
			type variant struct {
				p      *pipeline
				tasks  []subnet.Task
				views  []minerChain
				scores *scoring.Scores
				spent  time.Duration
			}
			var variants [2]*variant // CEL-only, judged
			for i, judge := range []string{"", c.judge} {
				reward := celOnlyReward
				if judge != "" {
					reward = judgedReward
				}
				v := &variant{p: benchPipeline(b, reward, judge)}
				v.tasks, _, v.views = benchRound(b, v.p, miners)
				v.scores, _ = scoring.RestoreScores(0.5, nil)
				variants[i] = v
			}
			ctx := context.Background()
			round := func(v *variant) {
				query := func(ctx context.Context, i int) protocol.Result {
					req := &pb.Request{RequestId: fmt.Sprintf("b%d", i), Netuid: 1, Synapse: v.tasks[i].Synapse, Body: v.tasks[i].Body, TimeoutMs: 2000}
					return client.Query(ctx, ids[i:i+1], req)[0]
				}
				// The round's code: queries, each answer judged as it
				// arrives, rewards; then the scores folded in.
				start := time.Now()
				_, verdicts := v.p.queryAndScore(ctx, query, v.tasks, v.views, 2*time.Second, log)
				for i, vd := range verdicts {
					if !vd.dropped {
						v.scores.Update(uint16(i), "hotkey", vd.score)
					}
				}
				v.spent += time.Since(start)
			}
			for _, v := range variants {
				round(v) // connections and the judge's processes start
				if s := v.scores.Values(); s[0] == 0 || s[1] != 0 {
					b.Fatalf("scores %v", s[:2])
				}
				v.spent = 0
			}
			b.ResetTimer()
			for range b.N {
				round(variants[0])
				round(variants[1])
			}
			cel, judged := variants[0].spent, variants[1].spent
			b.ReportMetric(float64(cel.Microseconds())/float64(b.N)/1000, "cel-ms/round")
			b.ReportMetric(float64(judged.Microseconds())/float64(b.N)/1000, "judged-ms/round")
			b.ReportMetric(100*(float64(judged)/float64(cel)-1), "judged-overhead-%")
		})
	}
}
