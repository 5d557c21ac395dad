package neuron

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/scoring"
	"github.com/cybertensor/cybertensor/subnet"
)

// This file is how a validator puts its weights on chain: directly with
// set_weights, or — when the subnet enables commit-reveal — as a
// commit_weights of their hash, revealed in the next interval so that no
// one can copy them before they count.

// WeightsVersion is the weights version key this release's validator
// sends with its weights. It goes up when a release changes how the
// validator scores, so that a subnet owner can raise the subnet's
// weights_version_key to it and refuse the weights of validators that
// have not upgraded.
const WeightsVersion uint64 = 1

// versionRefused explains an incorrect_version_key refusal: the subnet
// wants a newer validator than this one.
func (v *Validator) versionRefused(sub chain.SubnetInfo, err error) error {
	if !errors.Is(err, chain.ErrIncorrectVersionKey) {
		return err
	}
	return fmt.Errorf("subnet %d requires weights version %d or later and this validator sends %d: upgrade cybertensor (or set --weights-version if the subnet owner says so): %w",
		v.cfg.Netuid, sub.Params.WeightsVersionKey, v.cfg.WeightsVersion, err)
}

// weightsStep runs at every head, for each mechanism: it reveals a
// pending commit once its window opens, and otherwise sets (or commits)
// new weights, under the mechanism's id, when weightsDue says so: every
// WeightsEvery blocks, and just before each epoch.
func (v *Validator) weightsStep(ctx context.Context, height uint64) {
	v.mu.Lock()
	pipes := v.pipes
	v.mu.Unlock()
	for _, p := range pipes {
		v.mechanismWeightsStep(ctx, height, p)
	}
}

func (v *Validator) mechanismWeightsStep(ctx context.Context, height uint64, p *pipeline) {
	v.mu.Lock()
	pending, lastSet, schedule := p.pending, p.lastSet, v.epochs
	v.mu.Unlock()
	if pending != nil {
		if err := v.reveal(ctx, height, p, pending); err != nil {
			v.mechanismWeightsFailed(ctx, p, "revealing weights", err)
		}
		return
	}
	if !weightsDue(height, lastSet, v.cfg.WeightsEvery, schedule) {
		return
	}
	if err := v.submitWeights(ctx, height, p); err != nil {
		v.mechanismWeightsFailed(ctx, p, "setting weights", err)
		return
	}
	if f := v.streak(p); f.n > 0 {
		v.log.Info("weights on chain again", "block", height, "failed_attempts", f.n,
			"for", time.Since(f.since).Round(time.Second), "mechanism", p.name)
		*f = failureStreak{}
	}
}

// streak is the run of failures to set p's mechanism's weights.
func (v *Validator) streak(p *pipeline) *failureStreak {
	if p.id == 0 {
		return &v.weightsFailing
	}
	return &v.mechanismFailing[p.id]
}

// errNoWeightsYet is a round with nothing to set (no scores, nobody to
// copy): not a failure.
var errNoWeightsYet = errors.New("no weights to set yet")

// weightsWarnEvery bounds how often a run of failures to set weights is
// logged at warn level.
const weightsWarnEvery = time.Minute

// failureStreak is a run of failed attempts to put weights on chain.
type failureStreak struct {
	n            int
	since, noted time.Time
}

// weightsFailed logs a failed attempt to put weights on chain (the next
// head tries again): at warn level when failures start and then at most
// every weightsWarnEvery, at debug level otherwise.
func (v *Validator) weightsFailed(ctx context.Context, what string, err error) {
	v.failed(ctx, &v.weightsFailing, subnet.MainMechanism, what, err)
}

// mechanismWeightsFailed is weightsFailed for p's mechanism.
func (v *Validator) mechanismWeightsFailed(ctx context.Context, p *pipeline, what string, err error) {
	v.failed(ctx, v.streak(p), p.name, what, err)
}

func (v *Validator) failed(ctx context.Context, f *failureStreak, mechanism, what string, err error) {
	if ctx.Err() != nil || errors.Is(err, errNoWeightsYet) || errors.Is(err, chain.ErrRevealTooEarly) {
		v.log.Debug(what, "err", err, "mechanism", mechanism)
		return
	}
	now := time.Now()
	if f.n == 0 {
		f.since = now
	}
	f.n++
	if f.n > 1 && now.Sub(f.noted) < weightsWarnEvery {
		v.log.Debug(what+" failed; trying again at the next block", "err", err, "mechanism", mechanism)
		return
	}
	f.noted = now
	v.log.Warn(what+" failed; trying again at the next block", "err", err, "failed_attempts", f.n, "mechanism", mechanism)
}

// submitWeights computes this round's weights of p's mechanism (its own,
// or a copy for the copier) and sets or commits them.
func (v *Validator) submitWeights(ctx context.Context, height uint64, p *pipeline) error {
	sub, err := v.chain.Subnet(ctx, v.cfg.Netuid)
	if err != nil {
		return err
	}
	v.mu.Lock()
	v.epochs = epochSchedule{netuid: v.cfg.Netuid, tempo: sub.Params.Tempo, rateLimit: sub.Params.WeightsRateLimit,
		commitReveal: sub.Params.CommitRevealWeights != 0}
	v.mu.Unlock()
	var uids, values []uint16
	if v.cfg.Copier {
		uids, values, err = v.copiedWeights(ctx)
	} else {
		uids, values, err = v.ownWeights(sub, p)
	}
	if err != nil {
		return err
	}
	if sub.Params.CommitRevealWeights != 0 {
		return v.commit(ctx, sub, p, uids, values)
	}
	msg := &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{
		Netuid: uint32(v.cfg.Netuid), Uids: u32(uids), Values: u32(values), VersionKey: v.cfg.WeightsVersion,
		Mechanism: uint32(p.id),
	}}}
	if _, err := v.sender.Send(ctx, msg); err != nil {
		return v.versionRefused(sub, err)
	}
	v.mu.Lock()
	v.sets++
	p.lastSet = height
	p.weights = &WeightsSet{UIDs: uids, Values: values, Block: height, Time: time.Now().UnixMilli()}
	v.mu.Unlock()
	return v.saveState()
}

// ownWeights turns p's scores into weights the chain accepts.
func (v *Validator) ownWeights(sub chain.SubnetInfo, p *pipeline) (uids, values []uint16, err error) {
	v.mu.Lock()
	vals := p.scores.Values()
	v.mu.Unlock()
	scores := make([]float64, sub.N)
	copy(scores, vals)
	if int(v.uid) < len(scores) {
		scores[v.uid] = 0
	}
	var any bool
	for _, s := range scores {
		any = any || s > 0
	}
	if !any {
		return nil, nil, fmt.Errorf("%w: no scores yet", errNoWeightsYet)
	}
	return scoring.LegalWeights(scores, int(sub.Params.MinAllowedWeights), uint16(sub.Params.MaxWeightLimit))
}

// copiedWeights are the weights the highest-staked other validator has on
// chain: the weight-copying adversary Yuma's bonds (and commit-reveal,
// which hides fresh weights) are meant to defeat.
func (v *Validator) copiedWeights(ctx context.Context) (uids, values []uint16, err error) {
	m, err := v.chain.Metagraph(ctx, v.cfg.Netuid, false)
	if err != nil {
		return nil, nil, err
	}
	best := -1
	for i := range m.N {
		if uint16(i) != v.uid && len(m.Weights[i]) > 0 && (best < 0 || m.Stake[i] > m.Stake[best]) {
			best = i
		}
	}
	if best < 0 {
		return nil, nil, fmt.Errorf("%w: nobody to copy yet", errNoWeightsYet)
	}
	for _, e := range m.Weights[best] {
		if e.UID != v.uid {
			uids, values = append(uids, e.UID), append(values, e.Value)
		}
	}
	if len(uids) == 0 {
		return nil, nil, fmt.Errorf("%w: nothing to copy but weights on ourselves", errNoWeightsYet)
	}
	return uids, values, nil
}

// commit sends commit_weights of p's mechanism for uids and values with a
// fresh salt. The commit is saved before it is sent, so a validator that
// stops right after still reveals it when it restarts.
func (v *Validator) commit(ctx context.Context, sub chain.SubnetInfo, p *pipeline, uids, values []uint16) error {
	salt := make([]byte, 32)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	hash := chain.CommitHashMechanism(v.hot.PublicKey().Address(), v.cfg.Netuid, p.id, uids, values, salt, v.cfg.WeightsVersion)
	pc := &pendingCommit{UIDs: uids, Values: values, Salt: salt, VersionKey: v.cfg.WeightsVersion, Hash: hash[:]}
	v.mu.Lock()
	p.pending = pc
	v.mu.Unlock()
	if err := v.saveState(); err != nil {
		v.dropPending(p, pc)
		return fmt.Errorf("saving the commit before sending it: %w", err)
	}
	rec, err := v.sender.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_CommitWeights{CommitWeights: &chainpb.CommitWeights{
		Netuid: uint32(v.cfg.Netuid), Hash: hash[:], Mechanism: uint32(p.id),
	}}})
	var te *chainlink.TxError
	switch {
	case errors.As(err, &te):
		v.dropPending(p, pc) // the chain refused it: nothing to reveal
		return err
	case err != nil:
		return err // outcome unknown: reveal asks the chain
	}
	v.mu.Lock()
	pc.Block = rec.Height
	v.commits++
	v.mu.Unlock()
	v.log.Debug("weights committed", "block", rec.Height, "uids", len(uids), "mechanism", p.name)
	return v.saveState()
}

// reveal reveals p's pending commit pc once its window is open (the
// transaction lands in the block after height) and drops it once it can no
// longer be revealed.
func (v *Validator) reveal(ctx context.Context, height uint64, p *pipeline, pc *pendingCommit) error {
	sub, err := v.chain.Subnet(ctx, v.cfg.Netuid)
	if err != nil {
		return err
	}
	if sub.Params.CommitRevealWeights == 0 {
		v.dropPending(p, pc)
		return errors.New("the subnet turned commit-reveal off; dropped the commit")
	}
	v.mu.Lock()
	block := pc.Block
	v.mu.Unlock()
	if block == 0 {
		// Sent before a restart or a lost receipt: the chain says whether
		// it holds the commit, and since when.
		n, err := v.chain.Neuron(ctx, v.cfg.Netuid, v.hot.PublicKey().Address())
		if err != nil {
			return err
		}
		mn, _ := n.Mechanism(p.id)
		if mn.Commit == nil || !bytes.Equal(mn.Commit.Hash[:], pc.Hash) {
			v.dropPending(p, pc)
			return errors.New("the chain holds no such commit; dropped it")
		}
		block = mn.Commit.Block
		v.mu.Lock()
		pc.Block = block
		v.mu.Unlock()
	}
	first, last := chain.RevealWindow(block, sub.Params.CommitRevealInterval)
	next := height + 1
	if next < first {
		return nil
	}
	if next > last {
		v.dropPending(p, pc)
		return fmt.Errorf("the commit of block %d expired at block %d", block, last)
	}
	_, err = v.sender.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_RevealWeights{RevealWeights: &chainpb.RevealWeights{
		Netuid: uint32(v.cfg.Netuid), Uids: u32(pc.UIDs), Values: u32(pc.Values), Salt: pc.Salt, VersionKey: pc.VersionKey,
		Mechanism: uint32(p.id),
	}}})
	var te *chainlink.TxError
	switch {
	case errors.Is(err, chain.ErrRevealTooEarly):
		return err // try again next block
	case errors.As(err, &te):
		v.dropPending(p, pc)
		return v.versionRefused(sub, err)
	case err != nil:
		return err
	}
	v.mu.Lock()
	if p.pending == pc {
		p.pending = nil
	}
	v.sets++
	p.lastSet = height
	p.weights = &WeightsSet{UIDs: pc.UIDs, Values: pc.Values, Block: height, Time: time.Now().UnixMilli(), Revealed: true}
	v.mu.Unlock()
	v.log.Debug("weights revealed", "commit_block", block, "uids", len(pc.UIDs), "mechanism", p.name)
	return v.saveState()
}

// dropPending forgets p's commit pc (if still pending) and saves that.
func (v *Validator) dropPending(p *pipeline, pc *pendingCommit) {
	v.mu.Lock()
	if p.pending == pc {
		p.pending = nil
	}
	v.mu.Unlock()
	if err := v.saveState(); err != nil {
		v.log.Warn("saving validator state", "err", err)
	}
}

// saveState writes the scores and pending commits to StateDir, if set:
// in version 1's layout for a validator running one mechanism, id 0,
// named main (v1 specs, no spec, v2 specs without mechanisms), in version
// 2's (one entry per mechanism) otherwise.
func (v *Validator) saveState() error {
	if v.cfg.StateDir == "" {
		return nil
	}
	v.mu.Lock()
	s := &validatorState{Version: 1, Netuid: v.cfg.Netuid, Hotkey: v.hot.PublicKey().Address().String()}
	mechs := make([]mechanismState, len(v.pipes))
	for i, p := range v.pipes {
		mechs[i] = mechanismState{Name: p.name, ID: p.id, Scores: p.scores.Entries(), LastSet: p.lastSet, Weights: p.weights}
		if p.pending != nil {
			pc := *p.pending
			mechs[i].Pending = &pc
		}
	}
	if len(mechs) == 1 && mechs[0].ID == 0 && mechs[0].Name == subnet.MainMechanism {
		m := mechs[0]
		s.Scores, s.LastSet, s.Weights, s.Pending = m.Scores, m.LastSet, m.Weights, m.Pending
	} else {
		s.Version, s.Mechanisms = 2, mechs
	}
	for _, uid := range slices.Sorted(maps.Keys(v.answers)) {
		s.Answers = append(s.Answers, v.answers[uid]...)
	}
	s.Dropped = v.droppedLocked()
	v.mu.Unlock()
	v.saveMu.Lock()
	defer v.saveMu.Unlock()
	return saveValidatorState(v.cfg.StateDir, s)
}

func u32(v []uint16) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = uint32(x)
	}
	return out
}

// epochSchedule is what a validator knows of its subnet's epochs, from the
// subnet's hyperparameters as of its last weights set: when the epochs run
// (chain.BlocksUntilNextEpoch) and how often the chain takes weights. The
// zero value, before the first set, has tempo 0: no epoch is ever near.
type epochSchedule struct {
	netuid           uint16
	tempo, rateLimit uint64
	// commitReveal: the subnet's weights are committed and revealed
	// later, so a set just before an epoch is not what that epoch sees.
	commitReveal bool
}

// weightsLead is how many blocks before an epoch a validator sets weights
// for it: an epoch runs at the start of its block, and weights sent at a
// head are in the next block at the earliest, so weights sent two blocks
// ahead are the last the epoch can see.
const weightsLead = 2

// weightsDue reports whether a validator that last set weights at lastSet
// sets them at height: every every blocks (and at once if lastSet is
// ahead of height: state from before the chain was reset), and also
// weightsLead blocks before each epoch of schedule, if the chain's rate
// limit allows and the subnet does not commit and reveal its weights.
// Weights every 5 blocks on a tempo of 10 fell 0 to 4 blocks before each
// epoch, in step on every validator started together, so an epoch weighed
// scores up to 4 blocks old; while a large subnet's validators are still
// reaching their miners, that leaves out the miners they reached last.
func weightsDue(height, lastSet, every uint64, schedule epochSchedule) bool {
	if height < lastSet || height-lastSet >= every {
		return true
	}
	return !schedule.commitReveal && height > lastSet && height-lastSet >= schedule.rateLimit &&
		chain.BlocksUntilNextEpoch(schedule.netuid, schedule.tempo, height) == weightsLead
}
