package neuron

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/model/charlm"
	"github.com/cybertensor/cybertensor/subnet"
)

// A mechanism whose tasks come from commitments (subnet.FromCommitments)
// queries no miner: each round its modelEvaluator fetches the models the
// miners committed, measures their loss on an evaluation set drawn from
// the round block's hash, ranks them by the epsilon rule and scores them
// with the mechanism's reward (docs/subnet-language.md, "Evaluate").

// Answer statuses of an evaluation round ("validator scores").
const (
	// statusEvaluated: the model was evaluated and scored.
	statusEvaluated = "EVALUATED"
	// statusRefused: the miner's fault (no object CID, an artifact over
	// the limit or not fetchable, a model that does not parse, a copy):
	// scored 0, the reason says why.
	statusRefused = "REFUSED"
	// statusNotEvaluated: the validator's or the evaluator's fault; the
	// miner was dropped from the round, its score unchanged.
	statusNotEvaluated = "NOT_EVALUATED"
)

// Reasons an evaluation drops a miner from the round (the tasks_dropped
// counter's reason label): evaluator_<hook failure> (timeout, crashed,
// too_large, bad_output, closed), evaluator_failed, fetch_failed.
const (
	dropEvaluatorFailed = "evaluator_failed"
	dropFetchFailed     = "fetch_failed"
)

// defaultEvaluateConcurrency is how many models are fetched and evaluated
// at once when evaluate.limits.concurrency is 0.
const defaultEvaluateConcurrency = 2

// maxEvaluationData bounds an evaluation dataset fetched by CID (as a
// file the spec locks is bounded).
const maxEvaluationData = subnet.MaxLockedFile

// modelEvaluator evaluates one mechanism's committed models. Its round
// runs on the validator's run loop, one at a time; Close may come from
// another goroutine once the loop has stopped.
type modelEvaluator struct {
	netuid    uint16
	mechanism string
	ev        subnet.Evaluate
	lib       func() *knowledge.Library
	specDir   string
	hooks     *hook.Metrics
	log       *slog.Logger
	// fetchTimeout bounds fetching one artifact or the dataset.
	fetchTimeout time.Duration

	mu sync.Mutex
	// shared guards dir, pinned and files against the round's workers
	// (mu held).
	shared sync.Mutex
	// dir holds the dataset fetched by CID, an exec evaluator's artifacts
	// and evaluation sets; removed on close.
	dir string
	// data is the evaluation dataset, opened on first use.
	data *os.File
	size int64
	// pinned are the artifacts this evaluator fetched and pinned, unpinned
	// when no miner commits them any more.
	pinned map[cid.Cid]bool
	// files are an exec evaluator's artifact files, by CID.
	files  map[cid.Cid]string
	closed bool
}

func newModelEvaluator(env pipelineEnv, m subnet.Mechanism) (*modelEvaluator, error) {
	cfg := env.cfg
	e := m.Evaluate
	if e == nil {
		return nil, errors.New("tasks from commitments need an evaluate: section")
	}
	if cfg.KnowledgeDir == "" || cfg.Swarm.Disabled {
		return nil, errors.New("evaluating committed models needs a knowledge library: the validator needs a KnowledgeDir and the swarm")
	}
	if e.Kind == subnet.EvaluateBuiltin && e.Model != subnet.BuiltinModelCharLM {
		return nil, fmt.Errorf("unknown built-in model family %q", e.Model)
	}
	if e.Kind == subnet.EvaluateExec && len(e.Command) == 0 {
		return nil, errors.New("an exec evaluator needs a command")
	}
	return &modelEvaluator{netuid: cfg.Netuid, mechanism: m.Name, ev: *e, lib: env.lib, specDir: env.specDir, hooks: env.hooks,
		log: env.log.With("mechanism", m.Name), fetchTimeout: cfg.FetchTimeout, pinned: map[cid.Cid]bool{}, files: map[cid.Cid]string{}}, nil
}

// Close removes the evaluator's files. Pins stay: a validator restarted
// on the same library keeps what its miners commit.
func (me *modelEvaluator) Close() error {
	me.mu.Lock()
	defer me.mu.Unlock()
	if me.closed {
		return nil
	}
	me.closed = true
	var errs []error
	if me.data != nil {
		errs = append(errs, me.data.Close())
	}
	if me.dir != "" {
		errs = append(errs, os.RemoveAll(me.dir))
	}
	return errors.Join(errs...)
}

// evaluation is the outcome of one miner in a round.
type evaluation struct {
	uid    uint16
	hotkey string
	vd     verdict
	status string
	took   time.Duration
	// loss is the model's measured loss (status EVALUATED).
	loss float64
}

// candidate is a committed model of a round.
type candidate struct {
	uid     uint16
	hotkey  string
	commit  chain.CommitmentInfo
	cid     cid.Cid
	text    string // the commitment as the reward's commitment variable
	loss    float64
	weights [32]byte // charlm's weights hash
	hasHash bool
	out     *evaluation
	// providers are asked for the artifact first: the committing miner,
	// then the subnet's validators, which fetch it too and serve each
	// other the blocks they have (knowledge's swarm fetch).
	providers []peer.AddrInfo
}

// maxArtifactPeers bounds the validators named as providers of an
// artifact besides its miner (a fetch asks at most 16 peers at once).
const maxArtifactPeers = 15

// axonInfo is uid's axon in m as a peer to dial (false: none usable).
func axonInfo(m *chain.Metagraph, uid int) (peer.AddrInfo, bool) {
	if uid >= len(m.Axons) || m.Axons[uid] == nil {
		return peer.AddrInfo{}, false
	}
	id, err := peer.Decode(m.Axons[uid].PeerID)
	if err != nil {
		return peer.AddrInfo{}, false
	}
	info := peer.AddrInfo{ID: id}
	for _, s := range m.Axons[uid].Multiaddrs {
		if a, err := ma.NewMultiaddr(s); err == nil && len(info.Addrs) < 8 {
			info.Addrs = append(info.Addrs, a)
		}
	}
	return info, len(info.Addrs) > 0
}

// validatorPeers are the other validators of m (a validator permit, or
// stake) with a usable axon, at most maxArtifactPeers, most staked first.
func validatorPeers(m *chain.Metagraph, self uint16) []peer.AddrInfo {
	var uids []int
	for uid := range m.Axons {
		permit := uid < len(m.ValidatorPermit) && m.ValidatorPermit[uid]
		staked := uid < len(m.Stake) && m.Stake[uid] > 0
		if uint16(uid) != self && (permit || staked) {
			uids = append(uids, uid)
		}
	}
	slices.SortStableFunc(uids, func(a, b int) int {
		var sa, sb uint64
		if a < len(m.Stake) {
			sa = m.Stake[a]
		}
		if b < len(m.Stake) {
			sb = m.Stake[b]
		}
		return cmp.Compare(sb, sa)
	})
	var out []peer.AddrInfo
	for _, uid := range uids {
		if info, ok := axonInfo(m, uid); ok && len(out) < maxArtifactPeers {
			out = append(out, info)
		}
	}
	return out
}

// round evaluates the models committed as of head: m is the metagraph,
// commits the subnet's commitments, self the validator's uid. It returns
// one evaluation per uid with a commitment (none for the others).
func (me *modelEvaluator) round(ctx context.Context, head chainlink.Head, m *chain.Metagraph, commits []chain.CommitmentInfo, self uint16, reward *subnet.Reward) []evaluation {
	me.mu.Lock()
	defer me.mu.Unlock()
	if me.closed {
		return nil
	}
	var cands []*candidate
	for _, c := range commits {
		if int(c.UID) >= len(m.Hotkeys) || c.UID == self || c.Block > head.Height {
			continue // not a miner of this metagraph, or committed after the round's block
		}
		hotkey := m.Hotkeys[c.UID].String()
		if c.Hotkey.String() != hotkey {
			continue // made by the uid's former holder
		}
		cands = append(cands, &candidate{uid: c.UID, hotkey: hotkey, commit: c, text: subnet.CommitmentText(c.Data)})
	}
	slices.SortFunc(cands, func(a, b *candidate) int {
		return cmp.Or(cmp.Compare(a.commit.Block, b.commit.Block), cmp.Compare(a.uid, b.uid))
	})
	out := make([]evaluation, len(cands))
	refuse := func(c *candidate, format string, args ...any) {
		*c.out = evaluation{uid: c.uid, hotkey: c.hotkey, status: statusRefused, vd: verdict{reason: fmt.Sprintf(format, args...)}}
	}
	drop := func(c *candidate, reason, format string, args ...any) {
		*c.out = evaluation{uid: c.uid, hotkey: c.hotkey, status: statusNotEvaluated,
			vd: verdict{dropped: true, dropReason: reason, reason: "not evaluated: " + fmt.Sprintf(format, args...)}}
	}
	committed := map[cid.Cid]int{} // the first candidate committing each CID
	var unique []*candidate
	validators := validatorPeers(m, self)
	for i, c := range cands {
		c.out = &out[i]
		c.out.uid, c.out.hotkey = c.uid, c.hotkey
		id, err := knowledge.ParseCID(strings.TrimSpace(c.text))
		if err != nil || id.Type() != knowledge.CodecObject {
			refuse(c, "the commitment %q is not a knowledge object's CID (commit the CID that knowledge publish printed)", clipText(c.text, 80))
			continue
		}
		c.cid = id
		if first, ok := committed[id]; ok {
			refuse(c, "duplicate of uid %d's model (the same CID, committed earlier)", cands[first].uid)
			continue
		}
		committed[id] = i
		if miner, ok := axonInfo(m, int(c.uid)); ok {
			c.providers = append(c.providers, miner)
		}
		c.providers = append(c.providers, validators...)
		unique = append(unique, c)
	}
	me.release(committed)
	if len(unique) == 0 {
		return out
	}
	lib := me.lib()
	if lib == nil {
		for _, c := range unique {
			drop(c, dropFetchFailed, "the knowledge library is not open")
		}
		return out
	}
	set, err := me.evaluationSet(ctx, lib, head)
	if err != nil {
		if ctx.Err() == nil {
			me.log.Warn("no evaluation set this round: nobody is scored", "err", err)
		}
		for _, c := range unique {
			drop(c, dropFetchFailed, "no evaluation set: %v", err)
		}
		return out
	}
	setPath := ""
	if me.ev.Kind == subnet.EvaluateExec {
		if setPath, err = me.writeSet(set); err != nil {
			me.log.Warn("writing the evaluation set: nobody is scored", "err", err)
			for _, c := range unique {
				drop(c, dropEvaluatorFailed, "writing the evaluation set: %v", err)
			}
			return out
		}
	}
	conc := me.ev.Limits.Concurrency
	if conc <= 0 {
		conc = defaultEvaluateConcurrency
	}
	work := make(chan *candidate)
	var wg sync.WaitGroup
	for range min(conc, len(unique)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				start := time.Now()
				me.evaluate(ctx, lib, c, set, setPath, refuse, drop)
				c.out.took = time.Since(start)
			}
		}()
	}
	for _, c := range unique {
		work <- c
	}
	close(work)
	wg.Wait()
	if ctx.Err() != nil {
		return nil // stopping: nothing is scored
	}
	// Identical weights count once, for the earliest committer.
	var contenders []subnet.Contender
	var scored []*candidate
	for i, c := range unique {
		if c.out.status != "" {
			continue
		}
		if c.hasHash {
			dup := false
			for _, prev := range unique[:i] {
				if prev.hasHash && prev.weights == c.weights && prev.out.status == "" {
					refuse(c, "duplicate of uid %d's model (the same weights, committed earlier)", prev.uid)
					dup = true
					break
				}
			}
			if dup {
				continue
			}
		}
		contenders = append(contenders, subnet.Contender{UID: c.uid, Block: c.commit.Block, Loss: c.loss})
		scored = append(scored, c)
	}
	standings, best := subnet.Compete(contenders, me.ev.EpsilonValue())
	for i, c := range scored {
		st := standings[i]
		resp := subnet.Response{Status: "ok", Valid: true, Block: float64(head.Height), Commitment: c.text,
			CommitmentBlock: float64(c.commit.Block), Mechanism: me.mechanism,
			Loss: c.loss, BestLoss: contenders[best].Loss, Epsilon: me.ev.EpsilonValue(), CommitBlock: float64(c.commit.Block),
			WinRate: st.WinRate, IsBest: st.IsBest}
		score, err := reward.Score(resp)
		if err != nil {
			me.log.Warn("reward expression failed", "uid", c.uid, "err", err)
		}
		what := fmt.Sprintf("loss %.4f, %d of %d others beaten (win rate %.2f)", c.loss, st.Wins, len(contenders)-1, st.WinRate)
		if st.IsBest {
			what += ", the best"
		}
		*c.out = evaluation{uid: c.uid, hotkey: c.hotkey, status: statusEvaluated, vd: verdict{score: score, reason: what}, took: c.out.took, loss: c.loss}
	}
	for _, c := range cands {
		switch c.out.status {
		case statusRefused:
			me.log.Info("model refused: scored 0", "uid", c.uid, "commitment", clipText(c.text, 80), "reason", c.out.vd.reason)
		case statusNotEvaluated:
			me.log.Warn("model not evaluated: dropped from the round", "uid", c.uid, "cid", c.cid, "reason", c.out.vd.dropReason, "err", c.out.vd.reason)
		}
	}
	return out
}

// evaluate fetches c's artifact and measures its loss on set (setPath
// its file, for an exec evaluator), recording a refusal or a drop in c.out
// on failure, else c.loss (and for charlm c.weights).
func (me *modelEvaluator) evaluate(ctx context.Context, lib *knowledge.Library, c *candidate,
	set []byte, setPath string, refuse func(*candidate, string, ...any), drop func(*candidate, string, string, ...any)) {
	maxSize := me.ev.MaxArtifact()
	if me.ev.Kind == subnet.EvaluateBuiltin {
		maxSize = min(maxSize, charlm.DefaultLimits().MaxSize) // no larger charlm model decodes
	}
	fetched := !lib.Has(c.cid)
	fctx, cancel := context.WithTimeout(ctx, me.fetchTimeout)
	err := lib.Fetch(fctx, c.cid, knowledge.WithMaxSize(maxSize), knowledge.Pinned(), knowledge.WithProviders(c.providers...))
	cancel()
	if err == nil && fetched {
		me.shared.Lock()
		me.pinned[c.cid] = true
		me.shared.Unlock()
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		drop(c, "canceled", "the validator is stopping")
		return
	case errors.Is(err, knowledge.ErrTooLarge):
		refuse(c, "artifact %s is over the subnet's limit of %d bytes: %v", c.cid, maxSize, err)
		return
	case errors.Is(err, knowledge.ErrClosed), errors.Is(err, knowledge.ErrOffline), errors.Is(err, knowledge.ErrStoreFull):
		drop(c, dropFetchFailed, "fetching artifact %s: %v", c.cid, err)
		return
	case errors.Is(err, context.DeadlineExceeded):
		refuse(c, "artifact %s could not be fetched from anyone within %v: %v", c.cid, me.fetchTimeout, err)
		return
	default:
		refuse(c, "artifact %s could not be fetched from anyone: %v", c.cid, err)
		return
	}
	switch me.ev.Kind {
	case subnet.EvaluateBuiltin:
		w := &boundedBuffer{max: int(maxSize)}
		if _, err := lib.Get(ctx, c.cid, w); err != nil {
			if ctx.Err() != nil {
				drop(c, "canceled", "the validator is stopping")
			} else {
				drop(c, dropFetchFailed, "reading artifact %s: %v", c.cid, err)
			}
			return
		}
		model, err := charlm.Decode(w.b.Bytes(), charlm.DefaultLimits())
		if err != nil {
			refuse(c, "artifact %s is not a %s model: %v", c.cid, me.ev.Model, err)
			return
		}
		c.weights, c.hasHash = model.WeightsHash(), true
		loss, err := model.Loss(ctx, set)
		if err != nil {
			drop(c, dropEvaluatorFailed, "evaluating %s: %v", c.cid, err)
			return
		}
		c.loss = loss
	case subnet.EvaluateExec:
		path, err := me.artifactFile(ctx, lib, c.cid)
		if err != nil {
			drop(c, dropFetchFailed, "writing artifact %s to disk: %v", c.cid, err)
			return
		}
		loss, err := me.runEvaluator(ctx, path, setPath)
		var refusal *artifactRefusal
		if errors.As(err, &refusal) {
			refuse(c, "the evaluator refused artifact %s: %s", c.cid, refusal.reason)
			return
		}
		if err != nil {
			reason := evaluatorDropReason(err)
			if ctx.Err() != nil {
				reason = "canceled"
			}
			drop(c, reason, "the evaluator failed on %s: %v", c.cid, err)
			return
		}
		c.loss = loss
	}
}

// runEvaluator runs the exec evaluator on one artifact and reads its loss.
func (me *modelEvaluator) runEvaluator(ctx context.Context, artifact, set string) (float64, error) {
	argv := append(slices.Clone(me.ev.Command), artifact, set)
	hc := hook.DefaultExecConfig(hookName(me.netuid, me.mechanism, "evaluate"), argv...)
	hc.Dir, hc.Limits, hc.Logger, hc.Metrics = me.specDir, HookLimits(me.ev.Limits), me.log, me.hooks
	lines, err := hook.Run(ctx, hc, nil, 1)
	if err != nil {
		return 0, err
	}
	if len(lines) != 1 {
		return 0, fmt.Errorf("%w: printed no line", hook.ErrBadOutput)
	}
	return parseEvaluatorLine(lines[0])
}

// artifactRefusal is an exec evaluator's verdict that the artifact is not
// a model it evaluates ({"refused": reason}): the miner's fault.
type artifactRefusal struct{ reason string }

func (r *artifactRefusal) Error() string { return "the evaluator refused the artifact: " + r.reason }

// maxRefusal bounds the reason of a refusal kept.
const maxRefusal = 200

// parseEvaluatorLine reads an exec evaluator's line {"loss": x, …}: x
// must be a finite number, at least 0. A line {"refused": reason} (a
// non-empty string, and no loss) is an *artifactRefusal.
func parseEvaluatorLine(line []byte) (float64, error) {
	var reply map[string]json.RawMessage
	if err := json.Unmarshal(line, &reply); err != nil {
		return 0, fmt.Errorf("%w: not a JSON object: %v", hook.ErrBadOutput, err)
	}
	if raw, ok := reply["refused"]; ok {
		var reason string
		if _, both := reply["loss"]; both || json.Unmarshal(raw, &reason) != nil || strings.TrimSpace(reason) == "" {
			return 0, fmt.Errorf("%w: refused must be a non-empty string, without a loss: %s", hook.ErrBadOutput, clipText(string(line), 200))
		}
		return 0, &artifactRefusal{reason: clipText(strings.ToValidUTF8(strings.TrimSpace(reason), "?"), maxRefusal)}
	}
	raw, ok := reply["loss"]
	if !ok {
		return 0, fmt.Errorf("%w: no loss in %s", hook.ErrBadOutput, clipText(string(line), 200))
	}
	var loss float64
	if err := json.Unmarshal(raw, &loss); err != nil || bytes.Equal(raw, []byte("null")) || math.IsNaN(loss) || math.IsInf(loss, 0) || loss < 0 {
		return 0, fmt.Errorf("%w: loss %s is not a finite number ≥ 0", hook.ErrBadOutput, clipText(string(raw), 40))
	}
	return loss, nil
}

// evaluatorDropReason is the tasks_dropped reason of an exec evaluator's
// failure: evaluator_<the hook's kind of failure>.
func evaluatorDropReason(err error) string {
	for _, k := range []struct {
		err    error
		reason string
	}{
		{hook.ErrTimeout, "timeout"}, {hook.ErrCrashed, "crashed"}, {hook.ErrTooLarge, "too_large"},
		{hook.ErrBadOutput, "bad_output"}, {hook.ErrClosed, "closed"},
	} {
		if errors.Is(err, k.err) {
			return "evaluator_" + k.reason
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "evaluator_timeout"
	}
	return dropEvaluatorFailed
}

// workDir is the evaluator's directory of files, made on first use.
func (me *modelEvaluator) workDir() (string, error) {
	me.shared.Lock()
	defer me.shared.Unlock()
	if me.dir == "" {
		dir, err := os.MkdirTemp("", "cybertensor-evaluate-")
		if err != nil {
			return "", err
		}
		me.dir = dir
	}
	return me.dir, nil
}

// artifactFile writes c's body to a file of its own (once) for an exec
// evaluator.
func (me *modelEvaluator) artifactFile(ctx context.Context, lib *knowledge.Library, c cid.Cid) (string, error) {
	me.shared.Lock()
	path, ok := me.files[c]
	me.shared.Unlock()
	if ok {
		return path, nil
	}
	dir, err := me.workDir()
	if err != nil {
		return "", err
	}
	path = filepath.Join(dir, "artifact-"+c.String())
	if err := writeBodyFile(ctx, lib, c, path, me.ev.MaxArtifact()); err != nil {
		return "", err
	}
	me.shared.Lock()
	me.files[c] = path
	me.shared.Unlock()
	return path, nil
}

// writeBodyFile writes c's body to path (through a temporary file), at
// most max bytes.
func writeBodyFile(ctx context.Context, lib *knowledge.Library, c cid.Cid, path string, max int64, opts ...knowledge.FetchOption) error {
	f, err := os.CreateTemp(filepath.Dir(path), ".part-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = lib.Get(ctx, c, &boundedWriter{w: f, left: max, over: fmt.Errorf("%w: more than %d bytes", knowledge.ErrTooLarge, max)}, opts...)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// writeSet writes the round's evaluation set for an exec evaluator.
func (me *modelEvaluator) writeSet(set []byte) (string, error) {
	dir, err := me.workDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "evaluation-set")
	if err := os.WriteFile(path, set, 0o644); err != nil {
		return "", err
	}
	return path, nil
}

// release unpins and forgets the artifacts no miner commits any more.
func (me *modelEvaluator) release(committed map[cid.Cid]int) {
	lib := me.lib()
	for c := range me.pinned {
		if _, ok := committed[c]; ok {
			continue
		}
		if lib != nil {
			if err := lib.Unpin(c); err != nil {
				me.log.Warn("unpinning an artifact no miner commits", "cid", c, "err", err)
				continue
			}
		}
		delete(me.pinned, c)
	}
	for c, path := range me.files {
		if _, ok := committed[c]; !ok {
			os.Remove(path)
			delete(me.files, c)
		}
	}
}

// evaluationSet draws the round's evaluation set: Sample() bytes of the
// dataset at an offset drawn from the SHA-256 of the round block's hash
// and the mechanism's name (the whole dataset if it is smaller).
func (me *modelEvaluator) evaluationSet(ctx context.Context, lib *knowledge.Library, head chainlink.Head) ([]byte, error) {
	if err := me.openData(ctx, lib); err != nil {
		return nil, err
	}
	n := min(me.ev.Sample(), me.size)
	if n == 0 {
		return nil, errors.New("the evaluation dataset is empty")
	}
	off := sampleOffset(head, me.mechanism, me.size, n)
	buf := make([]byte, n)
	if _, err := me.data.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("reading the evaluation dataset: %w", err)
	}
	return buf, nil
}

// sampleOffset is where a sample of n bytes of a dataset of size bytes
// starts in the round of head.
func sampleOffset(head chainlink.Head, mechanism string, size, n int64) int64 {
	h := sha256.New()
	h.Write(head.Hash)
	binary.Write(h, binary.BigEndian, head.Height)
	h.Write([]byte(mechanism))
	sum := h.Sum(nil)
	return int64(binary.BigEndian.Uint64(sum[:8]) % uint64(size-n+1))
}

// openData opens the evaluation dataset: the file by path in the spec's
// directory, or by CID a built-in dataset (subnet.BuiltinDataByCID) or
// the body fetched (once, pinned), copied into the work directory.
func (me *modelEvaluator) openData(ctx context.Context, lib *knowledge.Library) error {
	if me.data != nil {
		return nil
	}
	d := me.ev.Data
	var f *os.File
	var err error
	if d.Path != "" && (d.CID == "" || me.specDir != "") {
		f, err = os.Open(filepath.Join(me.specDir, filepath.FromSlash(d.Path)))
		if err != nil && d.CID == "" {
			return fmt.Errorf("the evaluation dataset: %w", err)
		}
	}
	if f == nil {
		c, perr := knowledge.ParseCID(d.CID)
		if perr != nil {
			return fmt.Errorf("the evaluation dataset's cid: %w", perr)
		}
		dir, derr := me.workDir()
		if derr != nil {
			return derr
		}
		path := filepath.Join(dir, "dataset")
		if data, ok := subnet.BuiltinDataByCID(c.String()); ok {
			// A built-in spec's dataset: in the binary, no download.
			err = os.WriteFile(path, data, 0o600)
		} else {
			fctx, cancel := context.WithTimeout(ctx, me.fetchTimeout)
			err = writeBodyFile(fctx, lib, c, path, maxEvaluationData, knowledge.Pinned())
			cancel()
		}
		if err != nil {
			return fmt.Errorf("fetching the evaluation dataset %s: %w", c, err)
		}
		if f, err = os.Open(path); err != nil {
			return err
		}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return err
	}
	me.data, me.size = f, fi.Size()
	return nil
}

func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// evaluationRound is a round of p, a mechanism whose tasks come from
// commitments: its evaluator's verdicts folded into p's scores like a
// query round's (a drop leaves the score as it was and is counted).
func (v *Validator) evaluationRound(ctx context.Context, p *pipeline, m *chain.Metagraph, head chainlink.Head) {
	commits, err := v.chain.Commitments(ctx, v.cfg.Netuid)
	if err != nil {
		v.log.Warn("reading commitments; skipping the evaluation round", "mechanism", p.name, "err", err)
		return
	}
	evals := p.evaluator.round(ctx, head, m, commits, v.uid, p.reward)
	if ctx.Err() != nil || len(evals) == 0 {
		return
	}
	now := time.Now()
	v.mu.Lock()
	for _, e := range evals {
		if e.vd.dropped {
			v.dropped[[2]string{p.name, e.vd.dropReason}]++
			v.drops.dropped.WithLabelValues(fmt.Sprint(v.cfg.Netuid), p.name, e.vd.dropReason).Inc()
		} else {
			p.scores.Update(e.uid, e.hotkey, e.vd.score)
		}
		a := Answer{UID: e.uid, Hotkey: e.hotkey, Status: e.status, Reason: clipText(e.vd.reason, 200), Score: e.vd.score,
			LatencyMs: e.took.Milliseconds(), Time: now.UnixMilli(), Dropped: e.vd.dropped}
		if e.status == statusEvaluated {
			a.Loss = &e.loss
		}
		v.keepAnswer(p, a)
	}
	v.evaluations += int64(len(evals))
	save := v.dueSave(now)
	v.mu.Unlock()
	if save {
		v.saveNow()
	}
}
