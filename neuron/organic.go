package neuron

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
)

// Organic scoring: a validator that runs the gateway (package gateway)
// scores a sample of the answers miners give the gateway's clients as it
// scores the answers to its own tasks, and folds the scores into the same
// moving averages, so the quality of real traffic earns incentive.
//
// An organic request is scored by the mechanism whose tasks go to its
// synapse (a version 2 spec's), with that mechanism's judge and reward, as
// a task with no expected answer: only a mechanism whose reward does not
// read expected or expected_json can score it (its judge, if any, is
// given none: an exec, http or llm judge that scores the answer alone, or
// a reference judge, which asks the validator's own backend). Requests
// no mechanism can score are not sampled.

var _ gateway.Organic = (*Validator)(nil)

// Organic scoring's bounds.
const (
	// organicQueue bounds the answers waiting to be scored; past it the
	// gateway's hand-overs are dropped (and counted).
	organicQueue = 256
	// organicWorkers score at once (each one answer, judge included).
	organicWorkers = 4
	// organicViewEvery is how often the metagraph the scores are checked
	// against is read again.
	organicViewEvery = 2 * time.Second
)

// Outcomes of an organic answer handed to the validator
// (cybertensor_validator_organic_total's outcome label).
const (
	organicScored    = "scored"     // folded into the miner's score
	organicDropped   = "dropped"    // its judge failed: not scored
	organicQueueFull = "queue_full" // too many waiting
	organicStale     = "stale"      // the uid has another hotkey now, or the spec changed
	organicFailed    = "failed"     // the chain could not be read
)

// organic is a validator's organic scoring.
type organic struct {
	queue   chan gateway.OrganicAnswer
	outcome *prometheus.CounterVec
	scored  atomic.Int64
	// pending counts the answers queued or being scored.
	pending atomic.Int64

	mu   sync.Mutex // guards the view
	view organicView
}

// organicView is what of the chain organic scoring checks answers against.
type organicView struct {
	read    time.Time
	block   uint64
	hotkeys []string
	chain   roundChain
}

func newOrganic(reg prometheus.Registerer) *organic {
	return &organic{queue: make(chan gateway.OrganicAnswer, organicQueue), outcome: registeredCounterVec(reg, prometheus.NewCounterVec(
		prometheus.CounterOpts{Namespace: "cybertensor", Subsystem: "validator", Name: "organic_total",
			Help: "Organic answers (a sample of the gateway's traffic) handed to a validator, by netuid, mechanism and outcome: scored, dropped (the judge failed), queue_full, stale (the uid changed hands or the spec changed), failed (the chain could not be read)."},
		[]string{"netuid", "mechanism", "outcome"}))}
}

// registeredCounterVec registers c with reg (nil: none) and returns it, or
// the counter registered already under its name (several neurons in one
// process share a registry).
func registeredCounterVec(reg prometheus.Registerer, c *prometheus.CounterVec) *prometheus.CounterVec {
	if reg == nil {
		return c
	}
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if prev, ok := dup.ExistingCollector.(*prometheus.CounterVec); ok {
			return prev
		}
	}
	return c
}

// organicPipeline is the pipeline that scores organic answers of synapse
// (nil: none can); v.mu is held.
func (v *Validator) organicPipeline(synapse string) *pipeline {
	for _, p := range v.pipes {
		if p.v2 && p.synapse != nil && p.synapse.Name == synapse && !p.reward.UsesExpected() {
			return p
		}
	}
	return nil
}

// WantOrganic implements gateway.Organic: requests of the validator's
// subnet that a mechanism can score, at random with probability
// ValidatorConfig.OrganicFraction.
func (v *Validator) WantOrganic(netuid uint16, synapse string) bool {
	if netuid != v.cfg.Netuid || v.cfg.OrganicFraction <= 0 {
		return false
	}
	v.mu.Lock()
	p := v.organicPipeline(synapse)
	v.mu.Unlock()
	return p != nil && rand.Float64() < v.cfg.OrganicFraction
}

// Organic implements gateway.Organic: a is queued for scoring, or dropped
// and counted when organicQueue are waiting.
func (v *Validator) Organic(a gateway.OrganicAnswer) {
	v.organic.pending.Add(1)
	select {
	case v.organic.queue <- a:
	default:
		v.organic.pending.Add(-1)
		v.organic.outcome.WithLabelValues(fmt.Sprint(v.cfg.Netuid), "", organicQueueFull).Inc()
	}
}

// organicLoop scores queued organic answers until ctx ends.
func (v *Validator) organicLoop(ctx context.Context) {
	defer v.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case a := <-v.organic.queue:
			v.scoreOrganic(ctx, a)
			v.organic.pending.Add(-1)
		}
	}
}

// organicView returns the chain as organic scoring sees it, read again
// when older than organicViewEvery; commitments are read only if
// withCommitments.
func (v *Validator) organicView(ctx context.Context, withCommitments bool) (organicView, error) {
	o := v.organic
	o.mu.Lock()
	defer o.mu.Unlock()
	if time.Since(o.view.read) < organicViewEvery && (!withCommitments || o.view.chain.commitments != nil) {
		return o.view, nil
	}
	m, err := v.chain.Metagraph(ctx, v.cfg.Netuid, true)
	if err != nil {
		return organicView{}, err
	}
	view := organicView{read: time.Now(), block: m.Block, chain: roundChain{block: float64(m.Block)}}
	for _, h := range m.Hotkeys {
		view.hotkeys = append(view.hotkeys, h.String())
	}
	if withCommitments {
		cs, err := v.chain.Commitments(ctx, v.cfg.Netuid)
		if err != nil {
			return organicView{}, err
		}
		view.chain.commitments = make(map[uint16]chain.CommitmentInfo, len(cs))
		for _, c := range cs {
			view.chain.commitments[c.UID] = c
		}
	}
	o.view = view
	return view, nil
}

// scoreOrganic scores one organic answer with its synapse's pipeline and
// folds the score into that mechanism's moving averages.
func (v *Validator) scoreOrganic(ctx context.Context, a gateway.OrganicAnswer) {
	netuid := fmt.Sprint(v.cfg.Netuid)
	v.mu.Lock()
	p := v.organicPipeline(a.Synapse)
	v.mu.Unlock()
	if p == nil || a.Netuid != v.cfg.Netuid {
		v.organic.outcome.WithLabelValues(netuid, "", organicStale).Inc()
		return
	}
	count := func(outcome string) { v.organic.outcome.WithLabelValues(netuid, p.name, outcome).Inc() }
	view, err := v.organicView(ctx, p.reward.UsesCommitments())
	if err != nil {
		if ctx.Err() == nil {
			v.log.Warn("organic scoring: reading the chain", "err", err)
			count(organicFailed)
		}
		return
	}
	if int(a.UID) >= len(view.hotkeys) || view.hotkeys[a.UID] != a.Hotkey {
		count(organicStale)
		return
	}
	task, err := p.synapse.TaskFromLine(subnet.TaskLine{Request: a.Request})
	res := protocol.Result{Status: a.Status, Body: a.Answer, Latency: a.Latency}
	var vd verdict
	switch {
	case err != nil:
		// The gateway sends what the synapse takes; a request it cannot
		// be is not the miner's doing.
		v.log.Warn("organic scoring: the request is not a task of its synapse", "synapse", a.Synapse, "err", err)
		count(organicStale)
		return
	case a.Invalid != "":
		vd = verdict{reason: "invalid answer: " + a.Invalid}
	default:
		vd = p.scoreAnswers(ctx, []subnet.Task{task}, []protocol.Result{res}, []minerChain{view.chain.of(a.UID, a.Hotkey)}, a.Timeout, v.log)[0]
	}
	if ctx.Err() != nil {
		return // stopping
	}
	now := time.Now()
	v.mu.Lock()
	if !slices.Contains(v.pipes, p) {
		v.mu.Unlock()
		count(organicStale) // the spec changed while it was judged
		return
	}
	if vd.dropped {
		v.dropped[[2]string{p.name, vd.dropReason}]++
		v.drops.dropped.WithLabelValues(netuid, p.name, vd.dropReason).Inc()
		count(organicDropped)
	} else {
		p.scores.Update(a.UID, a.Hotkey, vd.score)
		count(organicScored)
		v.organic.scored.Add(1)
	}
	v.noteAnswer(p, a.UID, a.Hotkey, res, vd, now, true)
	save := v.dueSave(now)
	v.mu.Unlock()
	if save {
		v.saveNow()
	}
}

// OrganicScored is how many organic answers the validator has scored.
func (v *Validator) OrganicScored() int64 { return v.organic.scored.Load() }
