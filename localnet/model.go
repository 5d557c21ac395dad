package localnet

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/model/charlm"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/subnet"
)

// A model subnet (the built-in "model", or a spec whose mechanism takes its
// tasks from commitments and evaluates them with the built-in charlm
// family) pays miners for language models. Its localnet miners:
//   - honest: each trains a charlm model (order modelOrder) on a share of
//     the subnet's evaluation corpus, the first honest miner on all of it,
//     each next one on a quarter of the previous one's text spread over
//     the whole corpus (trainingText), publishes the
//     artifact in its knowledge library and commits its CID;
//   - lazy: commits a model trained on a few words of lorem ipsum, which
//     beats nobody, once the honest models are committed (committed
//     first, it would lead while alone);
//   - copier: commits nothing of its own; once two epochs in a row have
//     paid the same miner most (the leader), it commits that miner's CID,
//     later than the leader did, which validators refuse as a duplicate
//     (and again whenever another miner leads two epochs in a row);
//   - offline: an honest miner that goes offline; its artifact stays
//     committed and held by the validators that fetched it, so it keeps
//     its place (a committed model is the work, not a served query).

// modelOrder is the n-gram order of the localnet miners' models.
const modelOrder = 4

// minModelTraining is the least text an honest localnet miner trains on.
const minModelTraining = 1024

// corpusTitle is the title of the evaluation corpus the model subnets'
// validators publish.
const corpusTitle = "model subnet: evaluation corpus"

// modelEvaluate is the evaluate: section of spec's first mechanism that
// localnet's miners can serve (tasks from commitments, the built-in
// charlm evaluator), nil if none.
func modelEvaluate(spec *subnet.Spec) *subnet.Evaluate {
	for _, m := range spec.EffectiveMechanisms() {
		if m.Tasks.Source == subnet.FromCommitments && m.Evaluate != nil && m.Evaluate.Kind == subnet.EvaluateBuiltin && m.Evaluate.Model == subnet.BuiltinModelCharLM {
			return m.Evaluate
		}
	}
	return nil
}

// modelCorpus is a model subnet's evaluation corpus: the built-in's data,
// or the spec file's dataset (by path, in its directory); nil for a
// subnet that is not a model subnet.
func modelCorpus(sn runSubnet) ([]byte, error) {
	ev := modelEvaluate(sn.spec)
	if ev == nil {
		return nil, nil
	}
	if sn.file == "" {
		data, ok := subnet.BuiltinData(sn.name)
		if !ok {
			return nil, fmt.Errorf("localnet: built-in subnet %q has no evaluation data built in", sn.name)
		}
		return data, nil
	}
	if ev.Data.Path == "" {
		return nil, fmt.Errorf("localnet: spec %s: its miners train on the evaluation dataset: want evaluate.data.path", sn.file)
	}
	f, err := os.Open(filepath.Join(sn.dir, filepath.FromSlash(ev.Data.Path)))
	if err != nil {
		return nil, fmt.Errorf("localnet: spec %s: %w", sn.file, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, subnet.MaxLockedFile+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("localnet: spec %s: %w", sn.file, err)
	case len(data) > subnet.MaxLockedFile:
		return nil, fmt.Errorf("localnet: spec %s: the evaluation dataset is over %d bytes", sn.file, subnet.MaxLockedFile)
	}
	return data, nil
}

// modelWork is what a model subnet's miner committed.
type modelWork struct {
	mu sync.Mutex
	// trained is how many bytes of the corpus an honest miner trained on.
	trained int64
	// cid is the object it committed; copied the uid whose CID a copier
	// committed last (-1: none yet), copying set while its commit is
	// under way.
	cid     string
	copying bool
	copied  int
}

func newModelWork() *modelWork { return &modelWork{copied: -1} }

// modelChunk is the unit the honest miners' shares of the corpus are made
// of.
const modelChunk = 256

// trainingText is what the honest miner of rank r (0 the first) trains on:
// every modelChunk of the corpus for rank 0, every 4th chunk for rank 1,
// every 16th for rank 2, … (at least minModelTraining bytes: else the
// corpus's first bytes). Each share spreads over the whole corpus, so the
// round's evaluation sample, drawn anywhere in it, holds about the same
// share of every miner's training text, and more text is a lower loss
// wherever the sample falls; a share that is a prefix would know its own
// region better than the model of the whole corpus does.
func trainingText(corpus []byte, r int) []byte {
	step := modelChunk
	for range r {
		if step > len(corpus) {
			break
		}
		step *= 4
	}
	var out []byte
	for i := 0; i < len(corpus); i += step {
		out = append(out, corpus[i:min(i+modelChunk, len(corpus))]...)
	}
	if len(out) < minModelTraining {
		return corpus[:min(len(corpus), minModelTraining)]
	}
	return out
}

// lazyModelText is what the lazy miner's model learns from.
var lazyModelText = []byte(strings.Repeat(strings.Join(lazyWords, " ")+" ", 2))

// commitModels has each honest miner of the model subnets, then each lazy
// one, train its model, publish it in its library and commit its CID (all
// the honest at once, then all the lazy); it prints what each did.
func commitModels(ctx context.Context, c chainlink.Chain, members []*member, out io.Writer) error {
	ranks := map[uint16]int{}
	var honest, lazy []*member
	var honestText, lazyText [][]byte
	for _, m := range members {
		if m.corpus == nil || m.role != "miner" || m.adversary == Copier {
			continue
		}
		m.model = newModelWork()
		if m.adversary == Lazy {
			lazy, lazyText = append(lazy, m), append(lazyText, lazyModelText)
			continue
		}
		text := trainingText(m.corpus, ranks[m.netuid])
		ranks[m.netuid]++
		m.model.trained = int64(len(text))
		honest, honestText = append(honest, m), append(honestText, text)
	}
	if err := trainAndCommit(ctx, c, honest, honestText, out); err != nil {
		return err
	}
	return trainAndCommit(ctx, c, lazy, lazyText, out)
}

// trainAndCommit has each of todo train a model on its text and publish
// it, all at once, then commit them all at once, so that the commits
// share a block (a model committed alone would lead the rounds before the
// others').
func trainAndCommit(ctx context.Context, c chainlink.Chain, todo []*member, text [][]byte, out io.Writer) error {
	errs := make([]error, len(todo))
	lines := make([]string, len(todo))
	objs := make([]cid.Cid, len(todo))
	var wg sync.WaitGroup
	for i, m := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			objs[i], lines[i], errs[i] = m.publishModel(ctx, text[i])
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for i, m := range todo {
		wg.Add(1)
		go func() {
			defer wg.Done()
			block, err := neuron.CommitModel(ctx, c, m.hot, m.netuid, objs[i])
			if err != nil {
				errs[i] = fmt.Errorf("localnet: %w", err)
				return
			}
			m.model.mu.Lock()
			m.model.cid = objs[i].String()
			m.model.mu.Unlock()
			lines[i] += fmt.Sprintf(", committed %s at block %d", objs[i], block)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return nil
}

// publishModel trains m's model on text and publishes it in m's library;
// it returns the object's CID and says what it did.
func (m *member) publishModel(ctx context.Context, text []byte) (cid.Cid, string, error) {
	uid := m.miner.UID()
	cfg := charlm.DefaultTrainConfig()
	cfg.Order, cfg.MaxEntries = modelOrder, 1<<20
	cfg.Name = fmt.Sprintf("localnet-%s-uid%d", m.spec.Name, uid)
	what := fmt.Sprintf("trained on %d bytes of the corpus", len(text))
	if m.adversary == Lazy {
		cfg.Order, cfg.Name, what = 1, cfg.Name+"-lazy", "lazy: trained on a line of lorem ipsum"
	}
	model, err := charlm.Train(ctx, bytes.NewReader(text), cfg)
	if err != nil {
		return cid.Undef, "", fmt.Errorf("localnet: training uid %d's model: %w", uid, err)
	}
	art := model.Encode()
	obj, err := m.miner.Library().Publish(ctx, bytes.NewReader(art), knowledge.Meta{Title: cfg.Name, MediaType: "application/octet-stream",
		Tags: []string{"model", subnet.BuiltinModelCharLM}, Netuid: m.netuid})
	if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
		return cid.Undef, "", fmt.Errorf("localnet: publishing uid %d's model: %w", uid, err)
	}
	if obj == nil {
		return cid.Undef, "", fmt.Errorf("localnet: publishing uid %d's model gave no object", uid)
	}
	return obj.CID, fmt.Sprintf("localnet: subnet %d %q: miner uid %d %s (charlm order %d, %d bytes)", m.netuid, m.spec.Name, uid, what, cfg.Order, len(art)), nil
}

// copyLeaders has each model subnet copier commit the CID of the leader,
// the miner mg pays most, once the epoch before (whose leader is in
// leaders, by netuid) paid it most too, unless it copied that leader
// already: in a goroutine of wg, printing what it did to out (lock held).
func copyLeaders(ctx context.Context, c chainlink.Chain, mg *chain.Metagraph, members []*member, leaders map[uint16]int, wg *sync.WaitGroup, out io.Writer, lock *sync.Mutex) {
	var copiers []*member
	for _, m := range members {
		if m.netuid == mg.Netuid && m.corpus != nil && m.role == "miner" && m.adversary == Copier {
			if m.model == nil {
				m.model = newModelWork()
			}
			m.model.mu.Lock()
			busy := m.model.copying
			m.model.mu.Unlock()
			if !busy {
				copiers = append(copiers, m)
			}
		}
	}
	if len(copiers) == 0 {
		return
	}
	commits, err := c.Commitments(ctx, mg.Netuid)
	if err != nil {
		return
	}
	leader := -1
	for i, cm := range commits {
		if int(cm.UID) >= len(mg.Incentive) || mg.Incentive[cm.UID] == 0 || slices.ContainsFunc(copiers, func(m *member) bool { return m.miner.UID() == cm.UID }) {
			continue
		}
		if leader < 0 || mg.Incentive[cm.UID] > mg.Incentive[commits[leader].UID] {
			leader = i
		}
	}
	if leader < 0 {
		delete(leaders, mg.Netuid)
		return // nobody paid yet: no leader to copy
	}
	lc := commits[leader]
	if prev, ok := leaders[mg.Netuid]; !ok || prev != int(lc.UID) {
		leaders[mg.Netuid] = int(lc.UID)
		return // a new leader: wait for the next epoch to confirm it
	}
	id, err := knowledge.ParseCID(subnet.CommitmentText(lc.Data))
	if err != nil {
		return
	}
	for _, m := range copiers {
		m.model.mu.Lock()
		done := m.model.copied == int(lc.UID) && m.model.cid == id.String()
		if !done {
			m.model.copying, m.model.copied = true, int(lc.UID)
		}
		m.model.mu.Unlock()
		if done {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			block, err := neuron.CommitModel(ctx, c, m.hot, m.netuid, id)
			m.model.mu.Lock()
			m.model.copying = false
			if err == nil {
				m.model.cid = id.String()
			}
			m.model.mu.Unlock()
			lock.Lock()
			defer lock.Unlock()
			if err != nil {
				fmt.Fprintf(out, "localnet: the copier (subnet %d uid %d) failed to commit: %v\n", m.netuid, m.miner.UID(), err)
				return
			}
			fmt.Fprintf(out, "localnet: the copier (subnet %d uid %d) commits the leader's (uid %d, committed at block %d) CID %s at block %d\n",
				m.netuid, m.miner.UID(), lc.UID, lc.Block, id, block)
		}()
	}
}

// ModelSummary is a model subnet's miner at the end of a run: what it
// committed, its loss as a validator last measured it, and its incentive.
type ModelSummary struct {
	Netuid    uint16 `json:"netuid"`
	UID       uint16 `json:"uid"`
	Hotkey    string `json:"hotkey"`
	Adversary string `json:"adversary,omitempty"`
	// TrainedBytes is how much of the corpus an honest miner trained on.
	TrainedBytes int64 `json:"trained_bytes,omitempty"`
	// CID is its commitment's text (a model's CID), CommitBlock its block;
	// CopiedUID the uid whose CID a copier committed.
	CID         string `json:"cid,omitempty"`
	CommitBlock uint64 `json:"commit_block,omitempty"`
	CopiedUID   *int   `json:"copied_uid,omitempty"`
	// Loss (bits per byte), Status (EVALUATED, REFUSED, NOT_EVALUATED) and
	// Reason are the first honest validator's last evaluation of it; Loss
	// is nil for a model it did not evaluate (refused: a copy, say).
	Loss      *float64 `json:"loss,omitempty"`
	Status    string   `json:"status,omitempty"`
	Reason    string   `json:"reason,omitempty"`
	Score     float64  `json:"score"`
	Incentive float64  `json:"incentive"`
}

// modelSummaries are the model subnets' miners, each subnet's ranked by
// incentive (highest first), then loss, then uid.
func modelSummaries(ctx context.Context, c chainlink.Chain, members []*member, graphs map[uint16]*chain.Metagraph) ([]ModelSummary, error) {
	var out []ModelSummary
	commits := map[uint16][]chain.CommitmentInfo{}
	answers := map[uint16][]neuron.Answer{}
	for _, m := range members {
		if m.corpus == nil {
			continue
		}
		if _, ok := commits[m.netuid]; !ok {
			cs, err := c.Commitments(ctx, m.netuid)
			if err != nil {
				return nil, err
			}
			commits[m.netuid] = cs
		}
		if m.role == "validator" && m.adversary == "" && answers[m.netuid] == nil {
			answers[m.netuid] = m.validator.LastAnswers()
		}
	}
	for _, m := range members {
		mg := graphs[m.netuid]
		if m.corpus == nil || m.role != "miner" || mg == nil {
			continue
		}
		addr := m.hot.PublicKey().Address()
		uid := slices.Index(mg.Hotkeys, addr)
		if uid < 0 {
			continue
		}
		s := ModelSummary{Netuid: m.netuid, UID: uint16(uid), Hotkey: addr.String(), Adversary: m.adversary, Incentive: frac(mg.Incentive[uid])}
		if w := m.model; w != nil {
			w.mu.Lock()
			s.TrainedBytes = w.trained
			if m.adversary == Copier && w.cid != "" {
				s.CopiedUID = &w.copied
			}
			w.mu.Unlock()
		}
		for _, cm := range commits[m.netuid] {
			if cm.Hotkey == addr {
				s.CID, s.CommitBlock = subnet.CommitmentText(cm.Data), cm.Block
			}
		}
		for _, a := range answers[m.netuid] {
			if a.UID == uint16(uid) && a.Hotkey == s.Hotkey {
				s.Loss, s.Status, s.Reason, s.Score = a.Loss, a.Status, a.Reason, a.Score
			}
		}
		out = append(out, s)
	}
	loss := func(s ModelSummary) float64 {
		if s.Loss == nil {
			return 1e308
		}
		return *s.Loss
	}
	slices.SortStableFunc(out, func(a, b ModelSummary) int {
		return cmp.Or(cmp.Compare(a.Netuid, b.Netuid), -cmp.Compare(a.Incentive, b.Incentive), cmp.Compare(loss(a), loss(b)), cmp.Compare(a.UID, b.UID))
	})
	return out, nil
}

// printModels prints the model subnets' ranking.
func printModels(out io.Writer, models []ModelSummary) {
	var netuid uint16
	for _, s := range models {
		if s.Netuid != netuid {
			netuid = s.Netuid
			fmt.Fprintf(out, "\nmodels of subnet %d, by incentive (loss in bits per byte, as its first honest validator last measured):\n  %-4s %-8s %9s %9s %7s %9s  %s\n",
				netuid, "UID", "MINER", "TRAINED", "LOSS", "SCORE", "INCENTIVE", "STATUS")
		}
		who := "honest"
		if s.Adversary != "" {
			who = s.Adversary
		}
		trained, loss := "-", "-"
		if s.TrainedBytes > 0 {
			trained = fmt.Sprint(s.TrainedBytes)
		}
		if s.Loss != nil {
			loss = fmt.Sprintf("%.4f", *s.Loss)
		}
		fmt.Fprintf(out, "  %-4d %-8s %9s %9s %7.3f %9.4f  %s\n", s.UID, who, trained, loss, s.Score, s.Incentive, s.StatusText())
	}
}

// StatusText is the model's status as the rankings print it: the
// validator's status and note, or "committed nothing".
func (s ModelSummary) StatusText() string {
	switch {
	case s.CID == "":
		return "committed nothing"
	case s.Reason != "":
		return s.Status + ": " + s.Reason
	}
	return s.Status
}
