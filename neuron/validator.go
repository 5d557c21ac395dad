package neuron

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/dht"
	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/judge"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/scoring"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// Task is a question whose answer the validator knows.
type Task struct {
	Prompt string
	Answer string
}

// Score rates an answer: 1 if it contains the expected answer (case and
// spacing ignored), scaled down by up to half for latency near the
// timeout; 0 otherwise.
func (t Task) Score(answer []byte, latency, timeout time.Duration) float64 {
	norm := func(s string) string { return strings.Join(strings.Fields(strings.ToLower(s)), " ") }
	if t.Answer == "" || !strings.Contains(norm(string(answer)), norm(t.Answer)) {
		return 0
	}
	speed := 1 - 0.5*min(1, float64(latency)/float64(timeout))
	return speed
}

// asTask is the question as a subnet task.
func (t Task) asTask() subnet.Task { return subnet.TextTask(t.Prompt, t.Answer) }

// ValidatorConfig configures a validator.
type ValidatorConfig struct {
	Netuid uint16
	Listen []string
	// Host sets the data dir and metrics of the validator's libp2p host.
	Host HostConfig
	// Tasks are the questions it asks, one per round to every miner, when
	// its tasks go to text.generate (no Spec, or a spec whose tasks do).
	Tasks []Task
	// Spec, if set, is the subnet's spec. Its reward scores answers unless
	// Reward is set, and its tasks say what the validator asks: questions
	// (Tasks) for text.generate; for storage.prove, challenges on random
	// byte ranges of the subnet's knowledge objects in its library
	// (KnowledgeDir and the swarm are required; it challenges what it
	// publishes); for compute.run, jobs from the spec's generator. The
	// cadence fields are the caller's to set (SpecValidatorConfig does).
	Spec *subnet.Spec
	// QueryEvery and WeightsEvery are in blocks.
	QueryEvery   uint64
	WeightsEvery uint64
	// Sample is how many miners each round queries (0: every miner): each
	// miner once per ceil(miners/Sample) rounds, in a random order; a
	// round also asks up to Sample miners never scored (newcomers) and
	// up to Sample asked again once connected (reaskDue).
	Sample int
	// Timeout is each query's deadline.
	Timeout time.Duration
	// RoundsInFlight is how many query rounds of a mechanism may wait on
	// answers at once (0: DefaultRoundsInFlight). A round starts on its
	// block whatever the earlier ones still wait for, so a miner that
	// answers late holds back neither the other miners' turns nor the
	// weights; a round due while that many are in flight is skipped, and
	// a miner a round still waits on is not asked again until it answers.
	RoundsInFlight int
	// KeepConnectedWithin: a miner whose next turn in the rotation comes
	// within this long (ceil(miners/Sample) rounds at the pace rounds
	// have come) stays connected between its turns; the connection to a
	// miner asked less often is let go once it answered, and made again
	// connectAhead rounds before its next turn, unless the validator
	// gossips with the miner (SwarmConfig.GossipValidators) or a stream
	// is open on it. A connection kept costs both ends two goroutines,
	// buffers and a file descriptor while idle; one let go costs a
	// handshake a turn (3.4–4.8 ms of CPU for the two ends together on
	// this project's 2-core benchmark machine, BENCHMARKS.md). 0:
	// DefaultKeepConnectedWithin.
	KeepConnectedWithin time.Duration
	// Alpha is the scores' moving-average weight of a new observation.
	Alpha float64
	// Seed makes the choice of questions reproducible (storage challenges
	// and compute jobs are always unpredictable).
	Seed uint64
	// Copier makes an adversary: it queries nobody and copies the weights
	// the highest-staked other validator has on chain.
	Copier bool
	// Reward, if set, is the subnet spec's reward expression, which scores
	// every answer instead of Task.Score.
	Reward *subnet.Reward
	// Swarm sets the validator's DHT membership and heartbeats.
	Swarm SwarmConfig
	// KnowledgeDir, if set (and the swarm enabled), holds the validator's
	// knowledge library, into which it publishes Publish (if not already
	// there) and from which the subnet learns: its tasks' answers come
	// from knowledge it shared.
	KnowledgeDir string
	Publish      []backend.Document
	// StateDir, if set, keeps the validator's scores and unrevealed weight
	// commit (file ValidatorStateFile) so a restart resumes them.
	StateDir string
	Logger   *slog.Logger
	// WeightsVersion is the version_key the validator's weights carry; a
	// subnet whose weights_version_key is above it refuses them (the
	// owner's way to force an upgrade). DefaultValidatorConfig sets
	// WeightsVersion, this release's.
	WeightsVersion uint64
	// Mechanism is the subnet's incentive mechanism the validator's
	// weights, commits and reveals are for (0, the default, is the only
	// one of a subnet that never set mechanisms), without a spec or with
	// a v1 spec. A v2 spec's mechanisms have the ids of their order in it.
	Mechanism uint8

	// For v2 specs (each mechanism a pipeline of its own: see pipeline.go):

	// SpecDir is the directory of the spec's file: the files it refers to
	// (datasets by path, task and judge programs, prompt files) are
	// relative to it, and hook programs run in it.
	SpecDir string
	// JudgeURL, if set, is the OpenAI-compatible base URL llm judges ask
	// instead of the spec's url (the validator's own model server).
	JudgeURL string
	// JudgeKey, if set, is the bearer key of http and llm judges, instead
	// of the environment variable the spec names (api_key_env).
	JudgeKey string
	// Getenv reads the environment variable a judge's api_key_env names
	// (cmd sets os.Getenv; nil reads nothing, so such a judge needs
	// JudgeKey).
	Getenv func(name string) string
	// Reference is the validator's own backend, answering a task as a
	// miner would: reference judges compare each answer with its answer.
	// ReferenceEmbedder embeds texts for reference judges that compare
	// embeddings.
	Reference         judge.Answerer
	ReferenceEmbedder judge.Embedder
	// OrganicFraction is the fraction of organic requests (a gateway's
	// traffic, handed over through the validator's gateway.Organic) whose
	// answers it scores with its spec's mechanism for their synapse, in
	// [0, 1] (default 0.1). See organic.go.
	OrganicFraction float64
	// FetchTimeout bounds fetching a dataset or a new spec (and its files)
	// by CID from the knowledge library or the swarm (default 2 minutes).
	FetchTimeout time.Duration
}

// DefaultKeepConnectedWithin is ValidatorConfig.KeepConnectedWithin's
// default: a validator of a 256-uid subnet asking 16 miners every 2 blocks
// reaches each miner every 28 s with 1 s blocks (and keeps it connected),
// every 5.6 minutes with 12 s blocks (and lets it go between turns).
const DefaultKeepConnectedWithin = time.Minute

// DefaultRoundsInFlight is ValidatorConfig.RoundsInFlight's default: a
// round every 2 blocks of 250 ms (a localnet's), each waiting out the
// default 2 s timeout on some miner, keeps 4 in flight.
const DefaultRoundsInFlight = 4

// DefaultValidatorConfig queries every 2 blocks and sets weights every 5.
func DefaultValidatorConfig(netuid uint16, tasks []Task) ValidatorConfig {
	return ValidatorConfig{Netuid: netuid, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Tasks: tasks, QueryEvery: 2, WeightsEvery: 5,
		Timeout: 2 * time.Second, RoundsInFlight: DefaultRoundsInFlight, Alpha: 0.3, Swarm: DefaultSwarmConfig(), Logger: slog.Default(), WeightsVersion: WeightsVersion,
		OrganicFraction: 0.1}
}

// SpecValidatorConfig is DefaultValidatorConfig running spec: its tasks
// and reward, its query cadence and timeout, alpha and weight interval.
// tasks are needed only if the spec's tasks go to text.generate.
func SpecValidatorConfig(netuid uint16, spec *subnet.Spec, tasks []Task) ValidatorConfig {
	cfg := DefaultValidatorConfig(netuid, tasks)
	cfg.Spec = spec
	cfg.QueryEvery, cfg.WeightsEvery, cfg.Timeout, cfg.Alpha = spec.Query.Every, spec.WeightsEvery, spec.Query.Timeout, spec.Alpha
	cfg.Sample = spec.Query.Sample
	return cfg
}

// Validator samples miners, scores them and sets weights.
type Validator struct {
	cfg    ValidatorConfig
	chain  chainlink.Chain
	hot    *wallet.PrivateKey
	sender *chainlink.Sender
	h      host.Host
	client *protocol.Client
	swarm  *Swarm
	lib    *knowledge.Library
	uid    uint16
	log    *slog.Logger
	// lastRounds is when the run loop last started rounds, and roundEvery
	// the time between its last two starts (letsGo); the run loop's.
	lastRounds time.Time
	roundEvery time.Duration
	// env builds pipelines (also those of a spec the chain switches to);
	// drops counts dropped tasks.
	env     pipelineEnv
	drops   *dropMetrics
	organic *organic

	mu sync.Mutex
	// spec is the spec the pipelines run (cfg.Spec until a switch).
	spec *subnet.Spec
	// pipes are the mechanisms' pipelines; scores is pipes[0].scores.
	pipes   []*pipeline
	scores  *scoring.Scores
	queries int64
	// evaluations counts the committed models judged by evaluation
	// rounds (scored, refused or dropped).
	evaluations int64
	sets        int64
	commits     int64
	// answers are each miner's last answers (answersKept); savedAt when a
	// round last saved the state.
	answers map[uint16][]Answer
	savedAt time.Time
	saveMu  sync.Mutex // orders state file writes
	// dropped counts tasks dropped, by mechanism and reason.
	dropped map[[2]string]int64
	// specWatch follows the spec hash on chain (run loop only).
	specWatch specWatch
	// weightsFailing is the current run of failures to set mechanism 0's
	// weights, mechanismFailing the other mechanisms' (run loop only).
	weightsFailing   failureStreak
	mechanismFailing [subnet.MaxMechanisms]failureStreak
	// epochs is the subnet's epoch schedule as of the last weights set
	// (mu).
	epochs epochSchedule

	cancel context.CancelFunc
	wg     sync.WaitGroup
	unlock func() // releases the state directories' locks
}

// StartValidator starts the validator's host, registers the hotkey (if
// needed), stakes stake from the coldkey on it, joins the swarm, opens the
// knowledge library and starts the validation loop. Everything local
// comes first: its configuration is checked, its state directories locked
// (ErrInUse if another process runs a neuron on them) and its state
// loaded, and its listeners bound, so a validator that cannot run fails
// before it touches the chain.
//
// cold may be nil when the hotkey is registered already and stake is 0: a
// server that holds only the hotkey (ErrNotRegistered if it is not).
func StartValidator(ctx context.Context, c chainlink.Chain, cold, hot *wallet.PrivateKey, stake uint64, cfg ValidatorConfig) (_ *Validator, err error) {
	if cfg.QueryEvery == 0 || cfg.WeightsEvery == 0 || cfg.Timeout <= 0 || cfg.Logger == nil {
		return nil, errors.New("neuron: validator config: QueryEvery, WeightsEvery, Timeout and Logger are required")
	}
	if cfg.Spec == nil && len(cfg.Tasks) == 0 {
		return nil, errors.New("neuron: validator config: Tasks or a Spec is required")
	}
	if cfg.KeepConnectedWithin < 0 {
		return nil, fmt.Errorf("neuron: validator config: KeepConnectedWithin %v, want 0 (the default) or more", cfg.KeepConnectedWithin)
	}
	if cfg.KeepConnectedWithin == 0 {
		cfg.KeepConnectedWithin = DefaultKeepConnectedWithin
	}
	if cfg.RoundsInFlight < 0 {
		return nil, fmt.Errorf("neuron: validator config: RoundsInFlight %d, want 0 (the default) or more", cfg.RoundsInFlight)
	}
	if cfg.RoundsInFlight == 0 {
		cfg.RoundsInFlight = DefaultRoundsInFlight
	}
	if !(cfg.OrganicFraction >= 0 && cfg.OrganicFraction <= 1) {
		return nil, fmt.Errorf("neuron: validator config: OrganicFraction %v, want 0 to 1", cfg.OrganicFraction)
	}
	if cold == nil && stake > 0 {
		return nil, errors.New("neuron: staking needs the coldkey")
	}
	if cfg.Reward == nil && cfg.Spec != nil && cfg.Spec.Version < 2 {
		if cfg.Reward, err = subnet.NewReward(cfg.Spec.Reward); err != nil {
			return nil, fmt.Errorf("neuron: validator config: the spec's reward: %w", err)
		}
	}
	if err := cfg.Swarm.validate(); err != nil {
		return nil, err
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = defaultFetchTimeout
	}
	// What it holds until it runs, and gives up if it does not.
	var (
		unlock func()
		h      host.Host
		client *protocol.Client
		swarm  *Swarm
		lib    *knowledge.Library
		// publish: the documents to publish once the validator runs.
		publish []backend.Document
		pipes   []*pipeline
	)
	defer func() {
		if err == nil {
			return
		}
		closePipelines(pipes)
		if swarm != nil {
			swarm.Close()
		}
		if client != nil {
			client.Close()
		}
		if h != nil {
			h.Close()
		}
		if unlock != nil {
			unlock()
		}
	}()
	if unlock, err = lockDirs(cfg.Host.DataDir, cfg.KnowledgeDir, cfg.StateDir); err != nil {
		return nil, err
	}
	state := &validatorState{}
	if cfg.StateDir != "" {
		if state, err = loadValidatorState(cfg.StateDir, cfg.Netuid, hot.PublicKey().Address()); err != nil {
			return nil, err
		}
	}
	// The pipelines (task programs, judges) start before anything touches
	// the network: a spec this validator cannot run stops it here.
	env := pipelineEnv{judgeEnv: judgeEnv{cfg: cfg, specDir: cfg.SpecDir, hooks: hook.NewMetrics(cfg.Host.Registerer),
		judges: judge.NewMetrics(cfg.Host.Registerer), log: cfg.Logger.With("component", "validator")},
		lib: func() *knowledge.Library { return lib }}
	if pipes, err = buildPipelines(env, cfg.Spec); err != nil {
		return nil, err
	}
	if err = restorePipelines(pipes, state, cfg.Alpha); err != nil {
		return nil, fmt.Errorf("neuron: validator state: %w", err)
	}
	cfg.Host.Listen = cfg.Listen
	if h, err = newHost(hot, cfg.Host, cfg.Swarm); err != nil {
		return nil, err
	}
	if client, err = protocol.NewClient(h, protocol.DefaultClientConfig()); err != nil {
		return nil, err
	}
	uid, err := ensureRegistered(ctx, c, cold, hot, cfg.Netuid)
	if err != nil {
		return nil, err
	}
	if stake > 0 {
		a := hot.PublicKey().Address()
		if _, err := chainlink.NewSender(c, cold).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: a[:], Amount: stake}}}); err != nil {
			return nil, fmt.Errorf("neuron: staking: %w", err)
		}
	}
	if !cfg.Swarm.Disabled {
		if swarm, err = JoinSwarm(ctx, h, hot, c, cfg.Netuid, uid, "validator", nil, cfg.Swarm, cfg.Host.Registerer, cfg.Logger); err != nil {
			return nil, err
		}
		if cfg.KnowledgeDir != "" {
			if lib, publish, err = openValidatorLibrary(swarm, hot, cfg); err != nil {
				return nil, err
			}
		}
	}
	// The questions' order is reproducible per uid (known only now).
	for i, p := range pipes {
		p.rng = rand.New(rand.NewPCG(cfg.Seed+uint64(i), uint64(uid)))
		if q, ok := p.tasks.(*questions); ok {
			q.rng = rand.New(rand.NewPCG(cfg.Seed, uint64(uid)))
		}
		if d, ok := p.tasks.(*datasetTasks); ok {
			d.rng = p.rng
		}
	}
	env.uid = uid
	lctx, cancel := context.WithCancel(context.Background())
	heads, err := c.SubscribeHeads(lctx)
	if err != nil {
		cancel()
		return nil, err
	}
	v := &Validator{cfg: cfg, chain: c, hot: hot, sender: chainlink.NewSender(c, hot), h: h, client: client, swarm: swarm, lib: lib, uid: uid,
		log: cfg.Logger.With("component", "validator", "uid", uid), cancel: cancel, unlock: unlock,
		env: env, drops: newDropMetrics(cfg.Host.Registerer), organic: newOrganic(cfg.Host.Registerer), spec: cfg.Spec, pipes: pipes, scores: pipes[0].scores,
		answers: map[uint16][]Answer{}, dropped: map[[2]string]int64{}}
	for _, d := range state.Dropped {
		v.dropped[[2]string{d.Mechanism, d.Reason}] = d.Count
	}
	for _, a := range state.Answers {
		v.answers[a.UID] = append(v.answers[a.UID], a)
	}
	v.wg.Add(1 + organicWorkers)
	go v.run(lctx, heads)
	for range organicWorkers {
		go v.organicLoop(lctx)
	}
	if len(publish) > 0 {
		v.wg.Add(1)
		go v.publishDocuments(lctx, publish)
	}
	v.log.Info("validator running", "peer", h.ID())
	return v, nil
}

func (v *Validator) run(ctx context.Context, heads <-chan chainlink.Head) {
	defer v.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case head, ok := <-heads:
			if !ok {
				return
			}
			v.specStep(ctx, head.Height)
			if head.Height%v.cfg.QueryEvery == 0 && !v.cfg.Copier {
				v.rounds(ctx, head)
			}
			v.weightsStep(ctx, head.Height)
		}
	}
}

// rounds starts a query round of every mechanism, on one read of the
// metagraph, for the block head. The run loop picks each round's miners
// and tasks; the round asks them and scores their answers on a goroutine
// of its own, at most RoundsInFlight of a mechanism at once (one of a
// model evaluator), so the next rounds, the weights and the spec checks
// never wait on a slow miner.
func (v *Validator) rounds(ctx context.Context, head chainlink.Head) {
	m, err := v.chain.Metagraph(ctx, v.cfg.Netuid, true)
	if err != nil {
		v.log.Warn("reading the metagraph", "err", err)
		return
	}
	now := time.Now()
	if !v.lastRounds.IsZero() {
		v.roundEvery = now.Sub(v.lastRounds)
	}
	v.lastRounds = now
	v.mu.Lock()
	pipes := v.pipes
	v.mu.Unlock()
	// Whether every mechanism that asked miners lets go of them between
	// turns: then the swarm protects only the miners it gossips with.
	asked, letGo := false, true
	defer func() {
		if asked && v.swarm != nil {
			v.swarm.letGoOfOtherKind(letGo)
		}
	}()
	for _, p := range pipes {
		most := v.cfg.RoundsInFlight
		if p.evaluator != nil {
			most = 1
		}
		if !v.beginRound(p, most) {
			v.drops.skipped.WithLabelValues(fmt.Sprint(v.cfg.Netuid), p.name).Inc()
			v.log.Debug("query round skipped: earlier rounds still wait on answers", "mechanism", p.name, "in_flight", most, "block", head.Height)
			continue
		}
		var run func()
		if p.evaluator != nil {
			run = func() { v.evaluationRound(ctx, p, m, head) }
		} else {
			r := v.prepareRound(ctx, p, m)
			if r == nil {
				v.endRound(p)
				continue
			}
			asked, letGo = true, letGo && r.letGo
			run = func() { v.finishRound(ctx, p, r) }
		}
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			defer v.endRound(p)
			run()
		}()
	}
}

// beginRound takes one of p's most rounds in flight, if one is free.
func (v *Validator) beginRound(p *pipeline, most int) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if p.inFlight >= most {
		return false
	}
	p.inFlight++
	p.roundsWG.Add(1)
	return true
}

// endRound gives back a round's turn.
func (v *Validator) endRound(p *pipeline) {
	v.mu.Lock()
	p.inFlight--
	v.mu.Unlock()
	p.roundsWG.Done()
}

// learnAxon gives the host the addresses of miner id's axon (for a few
// minutes).
func (v *Validator) learnAxon(id peer.ID, axon *chain.Axon) {
	var addrs []ma.Multiaddr
	for _, s := range axon.Multiaddrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			addrs = append(addrs, a)
		}
	}
	v.h.Peerstore().AddAddrs(id, addrs, peerstore.TempAddrTTL)
}

// queryRound is a round the run loop prepared: the miners to ask, a task
// each, and the chain's view of each.
type queryRound struct {
	targets []roundTarget
	tasks   []subnet.Task
	reqIDs  []uint32
	views   []minerChain
	// letGo is set when the rotation's cycle is longer than the rounds
	// it connects ahead: a miner's next turn is rounds away, and the
	// connection to it is let go once it answered (Validator.letGo).
	letGo bool
}

type roundTarget struct {
	uid    uint16
	hotkey string
	id     peer.ID
}

// prepareRound picks the miners p's rotation gives next among those
// serving and not already waited on, and a task of its own for each; nil
// if there is nobody to ask or no task. The miners it returns are marked
// as asked until each answers (or its query fails).
func (v *Validator) prepareRound(ctx context.Context, p *pipeline, m *chain.Metagraph) *queryRound {
	v.mu.Lock()
	// Miners whose last query found no connection are asked again once
	// it is up, besides the rotation's (at most Sample of them a round).
	due, redial := reaskDue(p.reask, m, p.asking, v.connected, v.cfg.Sample)
	r := &queryRound{targets: due}
	var serving []int
	miners := 0 // serving an axon, asked or not
	for uid, axon := range m.Axons {
		if axon == nil || uint16(uid) == v.uid {
			continue
		}
		miners++
		if !p.asking[uint16(uid)] && !slices.ContainsFunc(r.targets, func(t roundTarget) bool { return int(t.uid) == uid }) {
			serving = append(serving, uid)
		}
	}
	v.mu.Unlock()
	if len(r.targets) > 0 {
		v.drops.reasked.WithLabelValues(fmt.Sprint(v.cfg.Netuid), p.name).Add(float64(len(r.targets)))
	}
	// The others are dialed again (a dial under way is shared; one that
	// failed lately waits out the host's dial backoff, which grows with
	// each failure), so that they are asked once they can be reached.
	for _, t := range redial {
		v.dialMiner(t.id, m.Axons[t.uid])
	}
	if p.rotation.cycles <= 1 {
		rank, of := validatorRank(m, v.uid)
		p.rotation.stagger(p.rng, rank, of, connectAhead*max(v.cfg.Sample, 1))
	}
	for _, uid := range p.rotation.next(p.rng, serving, v.cfg.Sample) {
		id, err := peer.Decode(m.Axons[uid].PeerID)
		if err != nil {
			continue
		}
		v.learnAxon(id, m.Axons[uid])
		r.targets = append(r.targets, roundTarget{uint16(uid), m.Hotkeys[uid].String(), id})
	}
	// The miners next in the rotation get connected meanwhile (a few
	// dials at a time: protocol.ClientConfig.MaxDials), so their round
	// finds them up instead of spending its deadline on handshakes.
	ahead := connectAhead * max(v.cfg.Sample, 1)
	for _, uid := range p.rotation.peek(ahead) {
		if uid >= len(m.Axons) || m.Axons[uid] == nil || uint16(uid) == v.uid {
			continue
		}
		if id, err := peer.Decode(m.Axons[uid].PeerID); err == nil {
			v.dialMiner(id, m.Axons[uid])
		}
	}
	r.targets = append(r.targets, v.newcomers(p, m, p.rotation.beyond(ahead, serving), r.targets)...)
	if len(r.targets) == 0 {
		return nil
	}
	r.letGo = v.letsGo(miners)
	// Every miner gets a task of its own (its own question, byte range
	// and nonce, or seed): miners that share answers gain nothing.
	if nr, ok := p.tasks.(interface{ newRound() }); ok {
		nr.newRound()
	}
	r.tasks = make([]subnet.Task, len(r.targets))
	r.reqIDs = make([]uint32, len(r.targets))
	for i := range r.targets {
		r.reqIDs[i] = p.rng.Uint32()
		var err error
		if r.tasks[i], err = p.tasks.next(ctx); err != nil {
			if errors.Is(err, errTaskSource) && ctx.Err() == nil {
				v.log.Warn("no tasks this round: the task source failed; nobody is scored", "mechanism", p.name, "err", err)
				v.countDrop(p.name, dropTaskSource, 1)
				return nil
			}
			v.log.Debug("no task this round", "mechanism", p.name, "err", err)
			return nil
		}
	}
	// A reward that reads commitments gets the miners' commitments as of
	// this round; one that does not costs no query.
	seen := roundChain{block: float64(m.Block)}
	if p.reward.UsesCommitments() {
		cs, err := v.chain.Commitments(ctx, v.cfg.Netuid)
		if err != nil {
			v.log.Warn("reading commitments; skipping the round", "err", err)
			return nil
		}
		seen.commitments = make(map[uint16]chain.CommitmentInfo, len(cs))
		for _, c := range cs {
			seen.commitments[c.UID] = c
		}
	}
	r.views = make([]minerChain, len(r.targets))
	for i, t := range r.targets {
		r.views[i] = seen.of(t.uid, t.hotkey)
	}
	v.mu.Lock()
	if p.asking == nil {
		p.asking = make(map[uint16]bool)
	}
	for _, t := range r.targets {
		p.asking[t.uid] = true
	}
	v.mu.Unlock()
	return r
}

// newcomers picks, from candidates (uids in the order the rotation reaches
// them, none it asks within connectAhead rounds), the miners p has never
// scored under their current hotkey nor asked as newcomers. It returns up
// to Sample of those the validator is connected to, to be asked this
// round besides the rotation's, and dials up to Sample others (as many as
// the client has dial slots spare), to be asked by a later round. The
// rotation alone reaches a miner within a whole cycle, ceil(miners/Sample)
// rounds, and an epoch pays only the miners that validators holding a
// majority of stake have scored: a validator's first cycle would leave
// most of a large subnet unpaid for several epochs where its connections
// could keep up with more, and a miner new to the subnet would wait up to
// a cycle for its first score. Asking newcomers sooner cannot be gamed:
// each is asked a fresh task as the rotation would ask it, once, and
// again at its rotation turn.
func (v *Validator) newcomers(p *pipeline, m *chain.Metagraph, candidates []int, taken []roundTarget) []roundTarget {
	most := v.cfg.Sample
	if most <= 0 {
		return nil // every round asks every miner
	}
	type fresh struct {
		t    roundTarget
		axon *chain.Axon
	}
	var pick []fresh
	v.mu.Lock()
	for _, uid := range candidates {
		if len(pick) >= 4*most {
			break
		}
		if uid >= len(m.Axons) || m.Axons[uid] == nil || uint16(uid) == v.uid || p.asking[uint16(uid)] {
			continue
		}
		hotkey := m.Hotkeys[uid].String()
		if p.scores.Holder(uint16(uid)) == hotkey || p.introduced[uint16(uid)] == hotkey ||
			slices.ContainsFunc(taken, func(t roundTarget) bool { return int(t.uid) == uid }) {
			continue
		}
		if id, err := peer.Decode(m.Axons[uid].PeerID); err == nil {
			pick = append(pick, fresh{roundTarget{uint16(uid), hotkey, id}, m.Axons[uid]})
		}
	}
	v.mu.Unlock()
	// Newcomers are dialed with the dial slots the rotation leaves
	// spare: its next rounds' miners, dialed first, must not wait behind
	// them (on a machine whose cores are full, handshakes are slow).
	var out []roundTarget
	spare := v.client.SpareDials()
	if spare < 0 {
		spare = most
	}
	dials := 0
	for _, f := range pick {
		switch {
		case v.connected(f.t.id):
			if len(out) < most {
				out = append(out, f.t)
			}
		case dials < min(most, spare):
			v.dialMiner(f.t.id, f.axon)
			dials++
		}
	}
	if len(out) == 0 {
		return nil
	}
	v.mu.Lock()
	if p.introduced == nil {
		p.introduced = make(map[uint16]string)
	}
	for _, t := range out {
		p.introduced[t.uid] = t.hotkey
	}
	v.mu.Unlock()
	v.drops.newcomers.WithLabelValues(fmt.Sprint(v.cfg.Netuid), p.name).Add(float64(len(out)))
	return out
}

// finishRound asks r's miners their tasks and folds the scores of their
// answers into p's.
func (v *Validator) finishRound(ctx context.Context, p *pipeline, r *queryRound) {
	query := func(ctx context.Context, i int) protocol.Result {
		// The miner may be asked again by the next round once it answered.
		defer func() {
			v.mu.Lock()
			delete(p.asking, r.targets[i].uid)
			v.mu.Unlock()
		}()
		req := &pb.Request{RequestId: fmt.Sprintf("v%d-%d", v.uid, r.reqIDs[i]), Netuid: uint32(v.cfg.Netuid), Synapse: r.tasks[i].Synapse,
			Body: r.tasks[i].Body, TimeoutMs: uint32(v.cfg.Timeout / time.Millisecond)}
		res := v.client.Stream(ctx, r.targets[i].id, req, nil)
		if r.letGo {
			v.letGo(r.targets[i].id)
		}
		return res
	}
	results, verdicts := p.queryAndScore(ctx, query, r.tasks, r.views, v.cfg.Timeout, v.log)
	if ctx.Err() != nil {
		return // stopping: what was cut short is not scored
	}
	now := time.Now()
	v.mu.Lock()
	for i, res := range results {
		vd := verdicts[i]
		if errors.Is(res.Err, protocol.ErrNotConnected) {
			if p.reask == nil {
				p.reask = make(map[uint16]roundTarget)
			}
			p.reask[r.targets[i].uid] = r.targets[i]
		} else {
			delete(p.reask, r.targets[i].uid)
		}
		if vd.dropped {
			v.dropped[[2]string{p.name, vd.dropReason}]++
			v.drops.dropped.WithLabelValues(fmt.Sprint(v.cfg.Netuid), p.name, vd.dropReason).Inc()
		} else {
			p.scores.Update(r.targets[i].uid, r.targets[i].hotkey, vd.score)
		}
		v.noteAnswer(p, r.targets[i].uid, r.targets[i].hotkey, res, vd, now, false)
	}
	v.queries += int64(len(r.targets))
	save := v.dueSave(now)
	v.mu.Unlock()
	if save {
		v.saveNow()
	}
}

// dueSave reports whether the state file is due to be saved after new
// scores at now, and if so takes the turn; v.mu is held. "validator
// scores" reads the file: it is kept fresh, within bounds.
func (v *Validator) dueSave(now time.Time) bool {
	if now.Sub(v.savedAt) < statusSaveEvery {
		return false
	}
	v.savedAt = now
	return true
}

// saveNow saves the state file, logging a failure.
func (v *Validator) saveNow() {
	if err := v.saveState(); err != nil {
		v.log.Warn("saving validator state", "err", err)
	}
}

// countDrop counts n tasks of mechanism dropped for reason.
func (v *Validator) countDrop(mechanism, reason string, n int64) {
	v.mu.Lock()
	v.dropped[[2]string{mechanism, reason}] += n
	v.mu.Unlock()
	v.drops.dropped.WithLabelValues(fmt.Sprint(v.cfg.Netuid), mechanism, reason).Add(float64(n))
}

// statusSaveEvery bounds how often query rounds save the state file (the
// answers and scores "validator scores" shows); setting weights and Close
// save it too.
const statusSaveEvery = 5 * time.Second

// noteAnswer keeps r (to p's task, or an organic request's, scored or
// dropped as vd says) among uid's last answers; v.mu is held.
func (v *Validator) noteAnswer(p *pipeline, uid uint16, hotkey string, r protocol.Result, vd verdict, at time.Time, organic bool) {
	reason := r.Message
	if r.Err != nil {
		reason = r.Err.Error()
	}
	if vd.reason != "" {
		reason = vd.reason
	}
	if len(reason) > 200 {
		reason = strings.ToValidUTF8(reason[:200], "") + "…"
	}
	v.keepAnswer(p, Answer{UID: uid, Hotkey: hotkey, Status: r.Status.String(), Reason: reason, Score: vd.score,
		LatencyMs: r.Latency.Milliseconds(), Time: at.UnixMilli(), Dropped: vd.dropped, Organic: organic})
}

// keepAnswer keeps a among its miner's last answers (naming p's mechanism
// if the validator runs several or p is not main); v.mu is held.
func (v *Validator) keepAnswer(p *pipeline, a Answer) {
	uid, hotkey := a.UID, a.Hotkey
	if len(v.pipes) > 1 || p.name != subnet.MainMechanism {
		a.Mechanism = p.name
	}
	last := v.answers[uid]
	if len(last) > 0 && last[0].Hotkey != hotkey {
		last = nil // a new miner took the uid
	}
	last = append(last, a)
	if len(last) > answersKept {
		last = last[len(last)-answersKept:]
	}
	v.answers[uid] = last
}

// defaultReward scores checked tasks without a spec's reward.
var defaultReward, _ = subnet.NewReward(`valid ? latency_score(latency_ms, timeout_ms) : 0.0`)

// rotation draws k members of a changing set at a time so that each is
// drawn once per cycle, in an order shuffled anew every cycle: every miner
// is scored within ceil(n/k) rounds, and no one can predict when.
//
// The first cycle may be staggered (stagger): the members, by uid, are cut
// into segments, one per validator; validator rank of them starts at
// segment rank and goes on through the next ones, each segment shuffled.
// Validators that start together, as when a subnet opens, so reach every
// miner in step: when each has asked a share f > 1/2 of the miners, every
// miner has been asked by about f of them, where independent shuffles
// leave a miner asked by at most half with a binomial's chance (19% of
// the miners for 28 validators at f = 0.6, 7% at 0.65), and an epoch pays
// only the miners that validators holding a majority of stake weigh.
// Which segment comes when is public (the validators' uids are), the
// order within it is not. A validator's view of the validators can change
// during its first cycle (some were still staking at its first draw, as
// when a subnet opens on fast blocks): it then takes its new place for the
// members it has not drawn yet, so validators come into step as their
// views agree.
type rotation struct {
	order []int
	pos   int
	// cycles counts the orders drawn.
	cycles int
	// rank and of, if of > 1, stagger the first cycle: this validator is
	// the rank-th of of.
	rank, of int
}

// stagger places the rotation's first cycle as the rank-th of of
// validators (of < 2 or rank out of range: no stagger). Before the first
// draw it records the place; during the first cycle, a place other than
// the recorded one redraws the members not drawn yet in the new place's
// order, after the next ahead ones (the validator is connecting to them
// already); after the first cycle it does nothing.
func (r *rotation) stagger(rng *rand.Rand, rank, of, ahead int) {
	if r.cycles > 1 || rank < 0 || rank >= of || of < 2 || (rank == r.rank && of == r.of) {
		return
	}
	r.rank, r.of = rank, of
	if r.cycles == 0 {
		return
	}
	kept := min(len(r.order), r.pos+max(ahead, 0))
	drawn := make(map[int]bool, kept)
	for _, m := range r.order[:kept] {
		drawn[m] = true
	}
	rest := r.order[:kept]
	for _, m := range r.staggered(rng, slices.Clone(r.order)) {
		if !drawn[m] {
			rest = append(rest, m)
		}
	}
	r.order = rest
}

// draw makes the next cycle's order of members.
func (r *rotation) draw(rng *rand.Rand, members []int) {
	r.order = append(r.order[:0], members...)
	r.pos = 0
	r.cycles++
	if r.cycles > 1 || r.of < 2 {
		rng.Shuffle(len(r.order), func(i, j int) { r.order[i], r.order[j] = r.order[j], r.order[i] })
		return
	}
	r.order = r.staggered(rng, r.order)
}

// staggered orders members (reordered in place) as the first cycle of
// the rank-th of of validators: by uid, cut into of segments, from
// segment rank on, each segment shuffled.
func (r *rotation) staggered(rng *rand.Rand, members []int) []int {
	slices.Sort(members)
	n := len(members)
	out := make([]int, 0, n)
	for i := range r.of {
		j := (r.rank + i) % r.of
		segment := members[j*n/r.of : (j+1)*n/r.of]
		rng.Shuffle(len(segment), func(a, b int) { segment[a], segment[b] = segment[b], segment[a] })
		out = append(out, segment...)
	}
	return out
}

// peek returns up to k of the members next returns next (fewer at the
// end of the current order, which is drawn anew after it).
func (r *rotation) peek(k int) []int {
	if r.pos >= len(r.order) {
		return nil
	}
	return r.order[r.pos:min(len(r.order), r.pos+k)]
}

// connectAhead is how many rounds ahead a validator connects to the
// miners its rotation asks next.
const connectAhead = 2

// beyond returns, in the order the rotation reaches them, the members it
// does not draw within its next ahead draws: the rest of its current
// order after them, then the members its order does not hold yet (they
// joined during the cycle). Drawn members and former ones are left out.
func (r *rotation) beyond(ahead int, members []int) []int {
	in := make(map[int]bool, len(members))
	for _, m := range members {
		in[m] = true
	}
	ordered := make(map[int]bool, len(r.order))
	for _, m := range r.order {
		ordered[m] = true
	}
	var out []int
	for _, m := range r.order[min(len(r.order), r.pos+max(ahead, 0)):] {
		if in[m] {
			out = append(out, m)
		}
	}
	for _, m := range members {
		if !ordered[m] {
			out = append(out, m)
		}
	}
	return out
}

// next returns k of members (all of them if k is 0 or at least their
// number), skipping drawn ones that have since left the set.
func (r *rotation) next(rng *rand.Rand, members []int, k int) []int {
	if k <= 0 || k >= len(members) {
		return members
	}
	in := make(map[int]bool, len(members))
	for _, m := range members {
		in[m] = true
	}
	drawn := make(map[int]bool, k)
	out := make([]int, 0, k)
	for len(out) < k {
		if r.pos >= len(r.order) {
			r.draw(rng, members)
		}
		m := r.order[r.pos]
		r.pos++
		if in[m] && !drawn[m] {
			drawn[m] = true
			out = append(out, m)
		}
	}
	return out
}

// validatorRank is uid's place among the subnet's validators in m, and
// their number: the uids that serve no axon and hold stake, by uid. A
// validator not among them (it serves an axon, or holds no stake) has
// rank -1.
func validatorRank(m *chain.Metagraph, uid uint16) (rank, of int) {
	rank = -1
	for u := range m.Axons {
		if m.Axons[u] != nil || u >= len(m.Stake) || m.Stake[u] == 0 {
			continue
		}
		if u == int(uid) {
			rank = of
		}
		of++
	}
	return rank, of
}

// reaskDue takes from reask, and returns in uid order, up to most (0:
// all) of the miners the connected function says the validator is now
// connected to and no round waits on (due), and the ones it is not
// connected to (redial, left in reask); it forgets those whose uid has
// since changed hands or stopped serving. m is the round's metagraph.
// Asking them again cannot be gamed: each is asked a fresh task as the
// rotation would ask it, only sooner, and only once its connection is up.
func reaskDue(reask map[uint16]roundTarget, m *chain.Metagraph, asking map[uint16]bool, connected func(peer.ID) bool, most int) (due, redial []roundTarget) {
	for _, uid := range slices.Sorted(maps.Keys(reask)) {
		t := reask[uid]
		if int(uid) >= len(m.Axons) || m.Axons[uid] == nil || m.Axons[uid].PeerID != t.id.String() || m.Hotkeys[uid].String() != t.hotkey {
			delete(reask, uid)
			continue
		}
		switch {
		case !connected(t.id):
			redial = append(redial, t)
		case (most > 0 && len(due) >= most) || asking[uid]:
		default:
			delete(reask, uid)
			due = append(due, t)
		}
	}
	return due, redial
}

// dialMiner starts connecting to miner id at its axon's addresses, unless
// the validator is connected to it (Client.Dial shares a dial under way).
func (v *Validator) dialMiner(id peer.ID, axon *chain.Axon) {
	if v.connected(id) {
		return
	}
	v.learnAxon(id, axon)
	v.client.Dial(id)
}

// letsGo reports whether the validator lets go of its connections to
// miners between their turns, given how many miners serve: when its
// rotation takes more than connectAhead+1 rounds (fewer, and the next
// turn's dial would come right after) and longer than KeepConnectedWithin
// at the pace rounds have come (false before two rounds have).
func (v *Validator) letsGo(miners int) bool {
	sample := v.cfg.Sample
	if sample <= 0 || v.roundEvery <= 0 {
		return false
	}
	cycle := (miners + sample - 1) / sample
	return cycle > connectAhead+1 && time.Duration(cycle)*v.roundEvery > v.cfg.KeepConnectedWithin
}

// letGo closes the validator's connection to miner id, asked its round's
// task, unless the swarm keeps it (the miner is one the validator gossips
// with), something else protects it, or a stream is open on it (an
// organic request, a fetch). A validator asks each miner about once a
// rotation (ceil(miners/Sample) rounds) and connects to it again
// connectAhead rounds before its next turn: kept between turns, a
// validator of a 256-uid subnet held a connection to each of its 224
// miners, each costing both ends two goroutines and buffers.
func (v *Validator) letGo(id peer.ID) {
	if v.swarm != nil {
		if v.swarm.keeps(id) {
			return
		}
		// Protected as a miner before the validator began letting go.
		v.swarm.unkeep(id)
	}
	if v.h.ConnManager().IsProtected(id, "") {
		return
	}
	v.client.Release(id)
	for _, c := range v.h.Network().ConnsToPeer(id) {
		for _, st := range c.GetStreams() {
			if holdsConn(string(st.Protocol())) {
				return
			}
		}
	}
	v.h.Network().ClosePeer(id)
}

// holdsConn reports whether a stream of protocol p keeps its connection
// from letGo: every stream but the DHT's, which kad-dht keeps open after a
// request for the next one (a minute on the server's side), identify's,
// and gossip's. A new connection's identify exchange and the DHT's check
// that the peer answers FIND_NODE leave such streams on nearly every
// connection; and gossip runs on a connection to a miner the validator
// does not gossip with only where the two ends decided so before they
// knew the subnet (gossipsub asks once a connection, as it comes up), a
// decision the next connection makes again.
func holdsConn(p string) bool {
	switch {
	case p == "", p == dht.KadProtocol:
		return false
	case strings.HasPrefix(p, "/ipfs/id/"), strings.HasPrefix(p, "/meshsub/"), strings.HasPrefix(p, "/floodsub/"):
		return false
	}
	return true
}

// connected reports whether the validator's host is connected to id.
func (v *Validator) connected(id peer.ID) bool {
	return v.h.Network().Connectedness(id) == network.Connected
}

// roundChain is what a round read from the chain for the reward: the
// height, and the miners' commitments when the reward reads them.
type roundChain struct {
	block       float64
	commitments map[uint16]chain.CommitmentInfo
}

// minerChain is the chain's view of one miner in a round.
type minerChain struct {
	block, commitmentBlock float64
	commitment             string
}

// of returns uid's view; a commitment counts only if the hotkey that made
// it still holds the uid.
func (rc roundChain) of(uid uint16, hotkey string) minerChain {
	mc := minerChain{block: rc.block}
	if c, ok := rc.commitments[uid]; ok && c.Hotkey.String() == hotkey {
		mc.commitment, mc.commitmentBlock = subnet.CommitmentText(c.Data), float64(c.Block)
	}
	return mc
}

// scoreResult scores one miner's answer to task: with the subnet spec's
// reward expression if there is one; else a question with Task.Score and
// a checked task (proof, job) by its check and latency.
func scoreResult(task subnet.Task, r protocol.Result, reward *subnet.Reward, timeout time.Duration, mc minerChain, log *slog.Logger) float64 {
	if reward == nil {
		if r.Status != protocol.StatusOK {
			return 0
		}
		if task.Check == nil {
			return Task{Answer: task.Expected}.Score(r.Body, r.Latency, timeout)
		}
		reward = defaultReward
	}
	resp := task.Response(strings.ToLower(r.Status.String()), r.Body, r.Latency, timeout)
	resp.Block, resp.Commitment, resp.CommitmentBlock = mc.block, mc.commitment, mc.commitmentBlock
	score, err := reward.Score(resp)
	if err != nil {
		log.Warn("reward expression failed", "err", err)
	}
	return score
}

// ID is the validator's peer ID.
func (v *Validator) ID() peer.ID { return v.h.ID() }

// Host is the validator's libp2p host, whose identity is its hotkey; a
// gateway may query miners through it as the validator (it must not close
// it: Close does).
func (v *Validator) Host() host.Host { return v.h }

// Client is the validator's query client on Host (closed by Close).
func (v *Validator) Client() *protocol.Client { return v.client }

// UID is the validator's uid.
func (v *Validator) UID() uint16 { return v.uid }

// Addrs are the validator's full addresses.
func (v *Validator) Addrs() []string { return FullAddrs(v.h) }

// openValidatorLibrary opens the library and returns the documents of
// cfg.Publish it does not hold yet (by title: a restarted validator keeps
// its objects), which the validator publishes once it runs
// (publishDocuments).
func openValidatorLibrary(swarm *Swarm, hot *wallet.PrivateKey, cfg ValidatorConfig) (*knowledge.Library, []backend.Document, error) {
	lib, err := swarm.OpenLibrary(cfg.KnowledgeDir, hot, nil)
	if err != nil {
		return nil, nil, err
	}
	entries, err := lib.List()
	if err != nil {
		lib.Close()
		return nil, nil, err
	}
	have := map[string]bool{}
	for _, e := range entries {
		if e.Object != nil && e.Object.Netuid == cfg.Netuid {
			have[e.Object.Title] = true
		}
	}
	var todo []backend.Document
	for _, d := range cfg.Publish {
		if !have[d.ID] {
			todo = append(todo, d)
		}
	}
	return lib, todo, nil
}

// publishDocuments publishes docs to the validator's library, on a
// goroutine of its own: an object is announced on the subnet at once,
// but its DHT provides walk the network, which on a 256-neuron localnet
// starting up took up to 27 s, and the validator's first rounds waited
// for them. An object whose provide failed is provided again by the
// library's next reprovide (knowledge.Config.ReprovideEvery).
func (v *Validator) publishDocuments(ctx context.Context, docs []backend.Document) {
	defer v.wg.Done()
	err := PublishDocuments(ctx, v.lib, v.cfg.Netuid, docs)
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, knowledge.ErrNotShared):
		v.log.Debug("documents published, not yet provided on the DHT", "documents", len(docs), "err", err)
	default:
		v.log.Warn("publishing documents", "err", err)
	}
}

// Library is the validator's knowledge library; nil without KnowledgeDir.
func (v *Validator) Library() *knowledge.Library { return v.lib }

// Swarm is the validator's swarm membership; nil if disabled.
func (v *Validator) Swarm() *Swarm { return v.swarm }

// Stats reports queries sent and weight sets made (of every mechanism).
func (v *Validator) Stats() (queries, weightSets int64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.queries, v.sets
}

// Evaluations is how many committed models its evaluation rounds have
// judged (a model subnet's: scored, refused or dropped), each round's each.
func (v *Validator) Evaluations() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.evaluations
}

// Dropped reports the tasks dropped from rounds without scoring anyone
// (a judge failed on the answer, or the task source failed), by mechanism
// and reason, sorted.
func (v *Validator) Dropped() []DropCount {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.droppedLocked()
}

func (v *Validator) droppedLocked() []DropCount {
	out := make([]DropCount, 0, len(v.dropped))
	for k, n := range v.dropped {
		out = append(out, DropCount{Mechanism: k[0], Reason: k[1], Count: n})
	}
	slices.SortFunc(out, func(a, b DropCount) int {
		return cmp.Or(cmp.Compare(a.Mechanism, b.Mechanism), cmp.Compare(a.Reason, b.Reason))
	})
	return out
}

// LastAnswers is each miner's last answer (or evaluation) as "validator
// scores" shows it, by uid.
func (v *Validator) LastAnswers() []Answer {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]Answer, 0, len(v.answers))
	for _, as := range v.answers {
		if len(as) > 0 {
			out = append(out, as[len(as)-1])
		}
	}
	slices.SortFunc(out, func(a, b Answer) int { return cmp.Compare(a.UID, b.UID) })
	return out
}

// Mechanisms names the mechanisms the validator runs, by id.
func (v *Validator) Mechanisms() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make([]string, len(v.pipes))
	for i, p := range v.pipes {
		out[i] = p.name
	}
	return out
}

// Spec is the spec the validator runs: ValidatorConfig.Spec, or the one
// the chain switched it to.
func (v *Validator) Spec() *subnet.Spec {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.spec
}

// Commits counts the weight commits it made (commit-reveal subnets).
func (v *Validator) Commits() int64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.commits
}

// Close stops the loop, saves the state, stops the host and releases the
// state directories.
func (v *Validator) Close() error {
	v.cancel()
	v.wg.Wait()
	if err := v.saveState(); err != nil {
		v.log.Warn("saving validator state", "err", err)
	}
	v.mu.Lock()
	pipes := v.pipes
	v.mu.Unlock()
	closePipelines(pipes)
	if v.swarm != nil {
		v.swarm.Close()
	}
	v.client.Close()
	err := v.h.Close()
	v.unlock()
	return err
}
