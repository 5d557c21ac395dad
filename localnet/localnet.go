package localnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// Adversary kinds.
const (
	Lazy    = "lazy"    // a miner that answers at random
	Offline = "offline" // a miner that goes offline a third of the way in (see offlineDue)
	Copier  = "copier"  // a validator that copies another validator's weights; on a model subnet, a miner that commits the leader's CID later
)

// Config configures a local network.
type Config struct {
	// Subnets are the built-in subnets to run (subnet.BuiltinNames), with
	// netuids 1, 2, … in this order.
	Subnets []string
	// Specs are subnet spec files to run after the built-ins (netuids
	// following theirs), each a subnet named by its spec. Their honest
	// miners answer built-in synapses as the built-in subnets' do and
	// custom synapses from the synapse's prompt with Upstream (required
	// then); their lazy miners answer custom synapses with schema-valid
	// junk. A spec's LLM judge asks JudgeURL.
	Specs []string
	// JudgeURL is the OpenAI-compatible base URL, with its version (e.g.
	// http://127.0.0.1:8080/v1), that the specs' LLM judges ask instead of
	// their spec's url (default: Upstream's BaseURL + "/v1", if set).
	JudgeURL string
	// Validators and Miners are per subnet; so are Adversaries: each
	// subnet has its lazy, offline and copier neurons.
	Validators  int
	Miners      int
	Adversaries []string
	// Tempo is the subnet's epoch length in blocks; BlockTime the time
	// between blocks.
	Tempo     uint64
	BlockTime time.Duration
	// For is how long to run; 0 runs until the context ends.
	For time.Duration
	// Epochs, if positive, ends the run after that many epochs.
	Epochs int
	// CommitReveal makes validators commit their weights' hash and reveal
	// them an interval (one tempo) later, so a weight copier only ever
	// copies stale weights.
	CommitReveal bool
	// Progress receives the human-readable log of the run (addresses, the
	// metagraph each epoch); nil discards it.
	Progress io.Writer
	Logger   *slog.Logger
	// Dashboard is the web dashboard's listen address ("127.0.0.1:0"
	// picks a free port); "" runs none. OnDashboard, if set, is called
	// with the dashboard's URL once it serves.
	Dashboard   string
	OnDashboard func(url string)
	// Gateway is the OpenAI-compatible gateway's listen address
	// ("127.0.0.1:0" picks a free port); "" runs none. It serves every
	// subnet whose miners serve text.chat (qa, or a spec serving
	// text.generate or text.chat: see Upstream), each as that subnet's
	// first validator, with an API key it makes and prints with the URL
	// and the models. OnGateway, if set, is called with the base URL
	// (http://ADDR/v1) and the key once it serves.
	Gateway   string
	OnGateway func(baseURL, key string)
	// GatewayDir holds the gateway's key file and usage ledger; "" puts
	// them in the run's temporary directory, removed at the end.
	GatewayDir string
	// OrganicFraction is the fraction of the gateway's requests whose
	// answers the validator serving it scores (organic scoring: a spec
	// mechanism for their synapse whose reward reads no expected answer,
	// e.g. examples/chat); see neuron.ValidatorConfig.OrganicFraction.
	OrganicFraction float64
	// Upstream, if its BaseURL is set, is an OpenAI-compatible model
	// server that the honest qa miners answer text.chat and text.embed
	// from. Without one they answer those from the retrieval model they
	// answer text.generate from (which stays what validators check).
	Upstream backend.OpenAIConfig

	onLastEpoch     func(hosts []host.Host) // for benchmarks: called after the last epoch, the neurons still up
	onEpoch         func(epochs int)        // for benchmarks: called after each epoch, with the epochs every subnet has had
	sequentialStart bool                    // for benchmarks: the baseline, one neuron after another
	// keepConnectedWithin, for benchmarks, is the validators'
	// ValidatorConfig.KeepConnectedWithin (0: its default).
	keepConnectedWithin time.Duration
}

// errGatewaySubnet: Config.Gateway needs a subnet whose miners serve text.chat.
var errGatewaySubnet = errors.New("localnet: want a subnet whose miners serve text.chat for the gateway (qa, or a spec serving text.chat such as examples/chat)")

// DefaultConfig is the qa subnet with 2 validators and 4 miners, tempo
// 10, 250 ms blocks.
func DefaultConfig() Config {
	return Config{Subnets: []string{"qa"}, Validators: 2, Miners: 4, Tempo: 10, BlockTime: 250 * time.Millisecond, Logger: slog.Default(),
		OrganicFraction: 0.1}
}

func (c *Config) validate() error {
	if !(c.OrganicFraction >= 0 && c.OrganicFraction <= 1) {
		return fmt.Errorf("localnet: OrganicFraction %v, want 0 to 1", c.OrganicFraction)
	}
	if len(c.Subnets) == 0 && len(c.Specs) == 0 {
		return fmt.Errorf("localnet: want at least one subnet (built in: %s) or spec file", strings.Join(subnet.BuiltinNames(), ", "))
	}
	seen := map[string]bool{}
	for _, name := range c.Subnets {
		if _, err := subnet.Builtin(name); err != nil {
			return fmt.Errorf("localnet: unknown subnet %q (built in: %s)", name, strings.Join(subnet.BuiltinNames(), ", "))
		}
		if seen[name] {
			return fmt.Errorf("localnet: subnet %q listed twice", name)
		}
		seen[name] = true
	}
	if c.Validators < 1 || c.Miners < 1 || c.Validators+c.Miners > maxSubnetSize {
		return fmt.Errorf("localnet: want at least 1 validator and 1 miner, at most %d neurons a subnet", maxSubnetSize)
	}
	if c.Tempo < 2 || c.BlockTime <= 0 || c.Logger == nil || c.Epochs < 0 || c.For < 0 {
		return errors.New("localnet: tempo must be at least 2, block time positive, epochs and duration not negative, a logger set")
	}
	for _, a := range c.Adversaries {
		if a != Lazy && a != Offline && a != Copier {
			return fmt.Errorf("localnet: unknown adversary %q (known: lazy, offline, copier)", a)
		}
	}
	if c.Gateway != "" && len(c.Specs) == 0 && !slices.ContainsFunc(c.Subnets, func(name string) bool {
		spec, _ := subnet.Builtin(name)
		return chatSubnet(spec)
	}) {
		return errGatewaySubnet
	}
	// The spec files' subnets are checked once loaded (Run).
	for _, name := range c.Subnets {
		spec, _ := subnet.Builtin(name)
		if err := c.checkAdversaries(spec); err != nil {
			return err
		}
	}
	return nil
}

// adversaryPlaces splits the adversaries between a subnet's miners and its
// validators: a copier copies weights as a validator, except on a model
// subnet (modelEvaluate), where it is a miner that commits the leader's
// CID later.
func adversaryPlaces(adversaries []string, spec *subnet.Spec) (miners, validators []string) {
	model := modelEvaluate(spec) != nil
	for _, a := range adversaries {
		if a == Copier && !model {
			validators = append(validators, a)
		} else {
			miners = append(miners, a)
		}
	}
	return miners, validators
}

// checkAdversaries checks each role of spec's subnet keeps an honest
// neuron.
func (c *Config) checkAdversaries(spec *subnet.Spec) error {
	miners, validators := adversaryPlaces(c.Adversaries, spec)
	if len(miners) >= c.Miners {
		return fmt.Errorf("localnet: %d miner adversaries need at least %d miners so one is honest", len(miners), len(miners)+1)
	}
	if len(validators) >= c.Validators {
		return fmt.Errorf("localnet: %d copiers need at least %d validators so one is honest", len(validators), len(validators)+1)
	}
	return nil
}

// NeuronSummary is one neuron at the end of a run.
type NeuronSummary struct {
	Netuid    uint16   `json:"netuid"`
	Subnet    string   `json:"subnet"`
	UID       uint16   `json:"uid"`
	Hotkey    string   `json:"hotkey"`
	Role      string   `json:"role"`
	Adversary string   `json:"adversary,omitempty"`
	Addrs     []string `json:"addrs"`
	Stake     uint64   `json:"stake"`
	Incentive float64  `json:"incentive"`
	Dividends float64  `json:"dividends"`
	Emission  uint64   `json:"emission"`
	Trust     float64  `json:"trust"`
	// MechanismIncentive is, on a subnet with several incentive
	// mechanisms, the neuron's incentive in each (Incentive is their
	// share-weighted mean).
	MechanismIncentive []float64 `json:"mechanism_incentive,omitempty"`
	QueriesServed      int64     `json:"queries_served"`
	QueriesSent        int64     `json:"queries_sent"`
	WeightSets         int64     `json:"weight_sets"`
	// OrganicScored counts the gateway's answers a validator scored
	// (organic scoring; Config.Gateway).
	OrganicScored int64 `json:"organic_scored,omitempty"`
	// Heard counts the neurons whose heartbeats it heard over gossip.
	Heard int `json:"heard"`
	// KnowledgeShared counts the knowledge objects it published;
	// KnowledgeFetched those it fetched from others and learned.
	KnowledgeShared  int   `json:"knowledge_shared"`
	KnowledgeFetched int64 `json:"knowledge_fetched"`
}

// Summary is the outcome of a run.
type Summary struct {
	Block    uint64          `json:"block"`
	Epochs   int             `json:"epochs"`
	Timeline Timeline        `json:"timeline"`
	Neurons  []NeuronSummary `json:"neurons"`
	// Gateway is the gateway's URL and usage (nil without Config.Gateway).
	Gateway *GatewaySummary `json:"gateway,omitempty"`
	// Specs are the subnets from spec files (Config.Specs).
	Specs []SpecSummary `json:"specs,omitempty"`
	// Models are the model subnets' miners, each subnet's ranked by
	// incentive: what each committed, its loss and its incentive.
	Models []ModelSummary `json:"models,omitempty"`
}

// Timeline says how long the network took, from the start of Run, to be
// up and to do its first work; a zero duration did not happen.
type Timeline struct {
	// Ready: every neuron registered, serving and in the swarm.
	Ready time.Duration `json:"ready_ns"`
	// FirstEpoch: the first epoch after Ready.
	FirstEpoch time.Duration `json:"first_epoch_ns"`
	// FirstPaid: the first epoch that paid a miner incentive for
	// validated work.
	FirstPaid time.Duration `json:"first_paid_ns"`
	// MostPaid: the first epoch by which every subnet had paid at least
	// 95% of its honest miners; MostPaidEpoch counts the epochs after
	// Ready up to it (the first only gives validators their permits, so
	// 2 is the earliest).
	MostPaid      time.Duration `json:"most_paid_ns"`
	MostPaidEpoch int           `json:"most_paid_epoch"`
	// Paid is, for each epoch after Ready (the first at index 0), the
	// share of honest miners paid at it, the smallest of the subnets'
	// (an epoch the run did not see has the share of the one before).
	Paid []float64 `json:"paid_share"`
}

// notePaid records that subnet k paid share of its honest miners at its
// epoch-th epoch after Ready; paid holds each subnet's shares so far.
func (t *Timeline) notePaid(paid [][]float64, k, epoch int, share float64) {
	for len(paid[k]) < epoch-1 {
		last := 0.0
		if n := len(paid[k]); n > 0 {
			last = paid[k][n-1]
		}
		paid[k] = append(paid[k], last)
	}
	paid[k] = append(paid[k][:epoch-1], share)
	t.Paid = t.Paid[:0]
	for i := range epoch {
		low := 1.0
		for _, shares := range paid {
			if i >= len(shares) {
				low = -1 // not seen yet on every subnet
				break
			}
			low = min(low, shares[i])
		}
		if low < 0 {
			break
		}
		t.Paid = append(t.Paid, low)
	}
}

// lazyGenerator answers with words drawn at random: a miner that does not
// do the work.
type lazyGenerator struct {
	mu  sync.Mutex
	rng *mrand.Rand
}

var lazyWords = strings.Fields("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore")

func (l *lazyGenerator) Generate(_ context.Context, _ string, emit func(string) error) error {
	l.mu.Lock()
	var words []string
	for range 8 {
		words = append(words, lazyWords[l.rng.IntN(len(lazyWords))])
	}
	l.mu.Unlock()
	return emit(strings.Join(words, " "))
}

type member struct {
	netuid          uint16
	spec            *subnet.Spec
	specDir         string // the spec file's directory ("" for a built-in)
	stopped         bool
	role, adversary string
	cold, hot       *wallet.PrivateKey
	miner           *neuron.Miner
	validator       *neuron.Validator
	// corpus is a model subnet's evaluation corpus (nil on others): its
	// validators publish it, its honest miners train on it; model is what
	// such a miner committed.
	corpus []byte
	model  *modelWork
}

// start starts the neuron, the i-th of its role on its subnet (its
// place decides which documents a validator publishes).
//
// up, if not nil, answers the honest qa miners' text.chat and text.embed.
func (m *member) start(ctx context.Context, c chainlink.Chain, cfg Config, i int, dir string, docs []backend.Document, up *backend.OpenAI) error {
	name := fmt.Sprintf("%s-%s-%d", m.spec.Name, m.role, i)
	var err error
	switch m.role {
	case "validator":
		// Every subnet's validators ask, challenge or set jobs as its spec
		// says (cadence, sample, timeout) and score with its reward; qa's
		// questions are the library's.
		vcfg := neuron.SpecValidatorConfig(m.netuid, m.spec, Tasks())
		vcfg.Logger, vcfg.Seed, vcfg.Copier = cfg.Logger, uint64(i), m.adversary == Copier
		vcfg.OrganicFraction, vcfg.KeepConnectedWithin = cfg.OrganicFraction, cfg.keepConnectedWithin
		if m.specDir != "" {
			// A spec file's validators read its files from its
			// directory; its LLM judges ask the run's judge URL.
			vcfg.SpecDir, vcfg.JudgeURL = m.specDir, cfg.judgeURL()
		}
		// Validators share the library between them (qa's miners learn
		// it, storage's keep it).
		vcfg.KnowledgeDir = filepath.Join(dir, name)
		vcfg.StateDir = vcfg.KnowledgeDir
		for j, d := range docs {
			if j%cfg.Validators == i {
				vcfg.Publish = append(vcfg.Publish, d)
			}
		}
		if m.corpus != nil {
			// A model subnet's validators each publish its evaluation
			// corpus (built in, or the spec's file), so that anyone
			// on the subnet can fetch it by its CID (they read it
			// from their binary or the spec's directory themselves).
			vcfg.Publish = append(vcfg.Publish, backend.Document{ID: corpusTitle, Text: string(m.corpus)})
		}
		m.validator, err = neuron.StartValidator(ctx, c, m.cold, m.hot, 1_000_000_000_000, vcfg)
	default:
		// Honest qa miners start with the documents and also learn what
		// the validators publish, over gossip and the transfer protocol.
		// (Starting empty works too — the neuron tests do — but the
		// first epochs then score every miner zero, which blurs the
		// copier's disadvantage this run demonstrates.)
		var g backend.Generator
		if slices.Contains(m.spec.SynapseNames(), "text.generate") {
			g = backend.NewRetrieval(docs...)
			if m.adversary == Lazy {
				g = &lazyGenerator{rng: mrand.New(mrand.NewPCG(uint64(i), 7))}
			}
		}
		mcfg := neuron.SpecMinerConfig(m.netuid, m.spec, g)
		mcfg.Logger = cfg.Logger
		mcfg.KnowledgeDir = filepath.Join(dir, name)
		if m.adversary == Lazy {
			mcfg.Handlers = lazyHandlers(m.spec, uint64(i))
		} else if up != nil && m.specDir != "" {
			// Honest spec miners answer custom synapses from their
			// prompt with the upstream model.
			mcfg.Chatter = up
		}
		if m.adversary != Lazy && chatSubnet(m.spec) {
			// Honest qa miners also serve the gateway's synapses: from
			// the retrieval model (a Chatter and an Embedder), or from
			// the upstream model server.
			for _, syn := range []string{subnet.SynapseChat, subnet.SynapseEmbed} {
				if !slices.Contains(mcfg.Synapses, syn) {
					mcfg.Synapses = append(mcfg.Synapses, syn)
				}
			}
			if up != nil {
				mcfg.Chatter, mcfg.Embedder = up, up
			}
		}
		m.miner, err = neuron.StartMiner(ctx, c, m.cold, m.hot, mcfg)
	}
	if err != nil {
		return fmt.Errorf("localnet: starting %s: %w", name, err)
	}
	return nil
}

// Run starts the network, runs it for cfg.For (or until ctx ends) and
// returns the final summary.
func Run(ctx context.Context, cfg Config) (*Summary, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	began := time.Now()
	out := cfg.Progress
	if out == nil {
		out = io.Discard
	}
	root, err := wallet.GenerateKey()
	if err != nil {
		return nil, err
	}
	var members []*member
	balances := []chain.GenesisBalance{{Address: root.PublicKey().Address(), Amount: 1e15}}
	// Adversaries take the last places of their role.
	place := func(i, n int, adv []string) string {
		if i >= n-len(adv) {
			return adv[i-(n-len(adv))]
		}
		return ""
	}
	gen := chain.LocalnetGenesis("cybertensor-localnet", root.PublicKey().Address(), nil)
	var names []string
	subnets, err := subnetsOf(cfg)
	if err != nil {
		return nil, err
	}
	for k, sn := range subnets {
		name, spec := sn.name, sn.spec
		netuid := uint16(k + 1)
		if err := cfg.checkAdversaries(spec); err != nil {
			return nil, err
		}
		minerAdv, validatorAdv := adversaryPlaces(cfg.Adversaries, spec)
		add := func(role, adversary string) error {
			cold, err := wallet.GenerateKey()
			if err != nil {
				return err
			}
			hot, err := wallet.GenerateKey()
			if err != nil {
				return err
			}
			members = append(members, &member{netuid: netuid, spec: spec, specDir: sn.dir, role: role, adversary: adversary, cold: cold, hot: hot, corpus: sn.corpus})
			balances = append(balances, chain.GenesisBalance{Address: cold.PublicKey().Address(), Amount: 1e13})
			return nil
		}
		for i := range cfg.Validators {
			if err := add("validator", place(i, cfg.Validators, validatorAdv)); err != nil {
				return nil, err
			}
		}
		for i := range cfg.Miners {
			if err := add("miner", place(i, cfg.Miners, minerAdv)); err != nil {
				return nil, err
			}
		}
		params, err := subnetParams(gen.SubnetDefaults, spec, cfg)
		if err != nil {
			return nil, err
		}
		gen.Subnets = append(gen.Subnets, chain.GenesisSubnet{Name: name, Owner: root.PublicKey().Address(), Params: &params})
		names = append(names, fmt.Sprintf("%d %q", netuid, name))
	}
	gen.Balances = balances
	lcfg := local.DefaultConfig(gen, chain.NewYumaEpoch())
	lcfg.BlockTime, lcfg.Logger = cfg.BlockTime, cfg.Logger
	c, err := local.New(lcfg)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	fmt.Fprintf(out, "localnet: chain %q with subnet %s (tempo %d, %v blocks)\n", gen.ChainID, strings.Join(names, ", subnet "), cfg.Tempo, cfg.BlockTime)
	if err := setMechanisms(ctx, c, root, subnets, out); err != nil {
		return nil, err
	}
	dash, err := startBoard(ctx, cfg, out, c, members)
	if err != nil {
		return nil, err
	}
	defer dash.close()

	dir, err := os.MkdirTemp("", "cybertensor-localnet-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// Neurons close 32 at a time: each host waits for its goroutines, and
	// one after another, 256 neurons took minutes.
	closeAll := func() {
		var wg sync.WaitGroup
		slots := make(chan struct{}, 32)
		for _, m := range members {
			wg.Add(1)
			slots <- struct{}{}
			go func() {
				defer func() { <-slots; wg.Done() }()
				if m.miner != nil {
					m.miner.Close()
				}
				if m.validator != nil {
					m.validator.Close()
				}
			}()
		}
		wg.Wait()
	}
	defer closeAll()
	var up *backend.OpenAI
	if cfg.Upstream.BaseURL != "" {
		if up, err = backend.NewOpenAI(cfg.Upstream); err != nil {
			return nil, fmt.Errorf("localnet: upstream: %w", err)
		}
		defer up.Close()
	}
	setup, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	docs := Documents()
	// Every neuron starts at once: their registrations share blocks, so
	// the network is up in a few blocks whatever its size.
	var wg sync.WaitGroup
	errs := make([]error, len(members))
	for i, m := range members {
		place := i % (cfg.Validators + cfg.Miners) // its place on its subnet
		if m.role == "miner" {
			place -= cfg.Validators
		}
		if cfg.sequentialStart {
			errs[i] = m.start(setup, c, cfg, place, dir, docs, up)
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.start(setup, c, cfg, place, dir, docs, up)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	timeline := Timeline{Ready: time.Since(began)}
	sort.SliceStable(members, func(i, j int) bool {
		a, b := members[i], members[j]
		return a.netuid < b.netuid || a.netuid == b.netuid && a.uid() < b.uid()
	})
	fmt.Fprintf(out, "localnet: %d neurons registered, serving and in the swarm after %v\n", len(members), timeline.Ready.Round(time.Millisecond))
	for _, m := range members {
		uid, addrs := m.uid(), m.addrs()
		label := m.role
		if m.adversary != "" {
			label += " (" + m.adversary + ")"
		}
		fmt.Fprintf(out, "  %-8s uid %-3d %-18s %s\n", m.spec.Name, uid, label, strings.Join(addrs, " "))
	}
	// Each spec file's first validator publishes the locked spec and its
	// files to the subnet's knowledge library.
	var specs []SpecSummary
	for k, sn := range subnets {
		if sn.file == "" {
			continue
		}
		i := slices.IndexFunc(members, func(m *member) bool { return m.role == "validator" && m.netuid == uint16(k+1) })
		sum, err := publishSpec(setup, members[i].validator.Library(), uint16(k+1), sn)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(out, "localnet: subnet %d %q from %s: spec hash %s, %d files locked and published\n", sum.Netuid, sum.Name, sum.File, sum.SpecHash[:16], len(sum.Files))
		specs = append(specs, sum)
	}
	// The model subnets' honest and lazy miners commit their models.
	if err := commitModels(setup, c, members, out); err != nil {
		return nil, err
	}
	var gw *localGateway
	if cfg.Gateway != "" {
		// It serves every subnet whose miners serve text.chat, each
		// through its first validator's host: stopped before the
		// validators close (and again, harmlessly, by the defer).
		var vs []*member
		for _, m := range members {
			if m.role == "validator" && chatSubnet(m.spec) && !slices.ContainsFunc(vs, func(v *member) bool { return v.netuid == m.netuid }) {
				vs = append(vs, m)
			}
		}
		if len(vs) == 0 {
			return nil, errGatewaySubnet // the spec files serve no text.chat
		}
		if gw, err = startGateway(ctx, cfg, out, c, vs, dir); err != nil {
			return nil, err
		}
		defer gw.stop(cfg.Logger)
		dash.gatewayUsage(gw.usage)
	}

	heads, err := c.SubscribeHeads(ctx)
	if err != nil {
		return nil, err
	}
	var deadline <-chan time.Time
	if cfg.For > 0 {
		t := time.NewTimer(cfg.For)
		defer t.Stop()
		deadline = t.C
	}
	running := time.Now()
	epochs := make([]int, len(subnets)) // by netuid - 1
	// Epochs are read from each subnet's last epoch block, not from the
	// heads' Epochs: a subscriber that falls behind skips heads, and a
	// 256-neuron localnet on two cores kept the loop so far behind that
	// it saw one epoch head in sixty.
	lastEpoch := make([]uint64, len(subnets))
	mostPaid := make([]bool, len(subnets))  // 95% of honest miners paid
	paid := make([][]float64, len(subnets)) // the share paid at each epoch
	for k := range subnets {
		if info, err := c.Subnet(ctx, uint16(k+1)); err == nil {
			lastEpoch[k] = info.LastEpochBlock
		}
	}
	// copies are the model subnets' copiers' commits under way; outMu
	// guards out against their reports.
	var copies sync.WaitGroup
	var outMu sync.Mutex
	leaders := map[uint16]int{} // the model subnets' leaders at their last epoch
	defer copies.Wait()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-deadline:
			break loop
		case h, ok := <-heads:
			if !ok {
				break loop
			}
			dash.head(h)
			for k := range subnets {
				info, err := c.Subnet(ctx, uint16(k+1))
				if err != nil || info.LastEpochBlock <= lastEpoch[k] {
					continue
				}
				ran := 1 // epochs since the last one seen
				if lastEpoch[k] > 0 {
					ran = max(1, int((info.LastEpochBlock-lastEpoch[k])/(info.Params.Tempo+1)))
				}
				lastEpoch[k] = info.LastEpochBlock
				n := uint16(k + 1)
				epochs[n-1] += ran
				if timeline.FirstEpoch == 0 {
					timeline.FirstEpoch = time.Since(began)
				}
				if mg, err := c.Metagraph(ctx, n, true); err == nil {
					if timeline.FirstPaid == 0 && paysMiners(mg) {
						timeline.FirstPaid = time.Since(began)
					}
					share := honestPaid(mg, members, n)
					timeline.notePaid(paid, k, epochs[n-1], share)
					if !mostPaid[k] && share >= 0.95 {
						mostPaid[k] = true
						timeline.MostPaidEpoch = max(timeline.MostPaidEpoch, epochs[n-1])
						if !slices.Contains(mostPaid, false) {
							timeline.MostPaid = time.Since(began)
						}
					}
					outMu.Lock()
					printTable(out, h.Height, subnets[n-1].name, epochs[n-1], mg, members)
					fmt.Fprintf(out, "  honest miners paid: %.0f%%\n", 100*share)
					if epochs[n-1] == 1 && !paysMiners(mg) {
						fmt.Fprintln(out, "  (this epoch gave the validators their permits; the weights they set from now on pay miners at the next)")
					}
					if subnets[n-1].corpus != nil {
						if ms, err := modelSummaries(ctx, c, members, map[uint16]*chain.Metagraph{n: mg}); err == nil {
							printModels(out, ms)
						}
					}
					outMu.Unlock()
					copyLeaders(ctx, c, mg, members, leaders, &copies, out, &outMu)
					dash.epoch(ctx, h.Height, mg)
				}
				if cfg.onEpoch != nil {
					cfg.onEpoch(slices.Min(epochs))
				}
				if cfg.Epochs > 0 && slices.Min(epochs) >= cfg.Epochs {
					break loop
				}
			}
			if done := slices.Min(epochs); offlineDue(cfg, time.Since(running), done) {
				for _, m := range members {
					if m.adversary == Offline && !m.stopped {
						fmt.Fprintf(out, "block %d, after epoch %d: the offline miner (%s uid %d) goes offline\n", h.Height, done, m.spec.Name, m.miner.UID())
						m.miner.Close()
						m.stopped = true
					}
				}
			}
		}
	}
	copies.Wait()
	if cfg.onLastEpoch != nil {
		cfg.onLastEpoch(hostsOf(members))
	}
	gsum := gw.stop(cfg.Logger)
	s, err := summarize(c, members, slices.Min(epochs))
	if s != nil {
		s.Timeline, s.Gateway, s.Specs = timeline, gsum, specs
	}
	return s, err
}

// hostsOf is the running neurons' hosts.
func hostsOf(members []*member) []host.Host {
	var hosts []host.Host
	for _, m := range members {
		if m.miner != nil && !m.stopped {
			hosts = append(hosts, m.miner.Host())
		}
		if m.validator != nil {
			hosts = append(hosts, m.validator.Host())
		}
	}
	return hosts
}

// offlineAfterEpochs is when the offline miners leave a run of no set
// length: once they have earned for a few epochs (the first pays no
// miner), so that their incentive is seen to fade.
const offlineAfterEpochs = 4

// offlineDue reports whether the offline miners are due to leave, elapsed
// into the run with epochs complete on every subnet: a third of the way
// through it, by time (For) or by epochs (Epochs, at least one),
// whichever comes first; a run of neither after offlineAfterEpochs.
func offlineDue(cfg Config, elapsed time.Duration, epochs int) bool {
	if cfg.For > 0 && elapsed >= cfg.For/3 {
		return true
	}
	switch {
	case cfg.Epochs > 0:
		return epochs >= max(1, cfg.Epochs/3)
	case cfg.For > 0:
		return false
	}
	return epochs >= offlineAfterEpochs
}

// maxSubnetSize is the most neurons a localnet subnet holds.
const maxSubnetSize = 256

// subnetParams are a localnet subnet's hyperparameters: the run's tempo,
// room for every neuron, permits for every validator, then the spec's own.
func subnetParams(defaults chain.Hyperparams, spec *subnet.Spec, cfg Config) (chain.Hyperparams, error) {
	params := defaults
	params.Tempo = cfg.Tempo
	params.MaxAllowedValidators = uint64(cfg.Validators)
	params.ActivityCutoff = 10_000
	params.MaxAllowedUIDs = maxSubnetSize
	// Every neuron registers at once, in the first blocks.
	params.MaxRegsPerBlock, params.TargetRegsPerInterval = maxSubnetSize, maxSubnetSize
	params.MinAllowedWeights = 1
	params.Kappa = 32767
	for _, name := range slices.Sorted(maps.Keys(spec.Hyperparameters)) {
		if name == "max_allowed_validators" {
			continue // every localnet validator gets a permit
		}
		if err := chain.SetHyperparam(&params, name, spec.Hyperparameters[name]); err != nil {
			return params, fmt.Errorf("localnet: subnet %q: %w", spec.Name, err)
		}
	}
	if cfg.CommitReveal {
		params.CommitRevealWeights, params.CommitRevealInterval = 1, cfg.Tempo
	}
	return params, nil
}

// paysMiners reports whether the epoch gave some neuron incentive.
// honestPaid is the share of subnet netuid's honest miners that mg pays
// (1 without honest miners).
func honestPaid(mg *chain.Metagraph, members []*member, netuid uint16) float64 {
	honest, paid := 0, 0
	for _, m := range members {
		if m.netuid != netuid || m.role != "miner" || m.adversary != "" || m.miner == nil {
			continue
		}
		honest++
		if uid := int(m.miner.UID()); uid < len(mg.Incentive) && mg.Incentive[uid] > 0 {
			paid++
		}
	}
	if honest == 0 {
		return 1
	}
	return float64(paid) / float64(honest)
}

func paysMiners(mg *chain.Metagraph) bool {
	for _, v := range mg.Incentive {
		if v > 0 {
			return true
		}
	}
	return false
}

func (m *member) uid() uint16 {
	if m.miner != nil {
		return m.miner.UID()
	}
	return m.validator.UID()
}

func (m *member) addrs() []string {
	if m.miner != nil {
		return m.miner.Addrs()
	}
	return m.validator.Addrs()
}

func frac(v uint16) float64 { return float64(v) / 65535 }

func printTable(out io.Writer, block uint64, name string, epoch int, mg *chain.Metagraph, members []*member) {
	roles := map[string]string{}
	for _, m := range members {
		label := m.role
		if m.adversary != "" {
			label += "/" + m.adversary
		}
		roles[m.hot.PublicKey().Address().String()] = label
	}
	fmt.Fprintf(out, "\nepoch %d of subnet %d %q at block %d\n  %-4s %-18s %14s %9s %9s %7s\n", epoch, mg.Netuid, name, block, "UID", "ROLE", "STAKE", "INCENTIVE", "DIVIDENDS", "TRUST")
	for i := range mg.N {
		fmt.Fprintf(out, "  %-4d %-18s %14.3f %9.4f %9.4f %7.4f\n", i, roles[mg.Hotkeys[i].String()],
			float64(mg.Stake[i])/1e9, frac(mg.Incentive[i]), frac(mg.Dividends[i]), frac(mg.Trust[i]))
	}
}

func summarize(c chainlink.Chain, members []*member, epochs int) (*Summary, error) {
	ctx := context.Background()
	graphs := map[uint16]*chain.Metagraph{}
	s := &Summary{Epochs: epochs}
	for _, m := range members {
		mg := graphs[m.netuid]
		if mg == nil {
			var err error
			if mg, err = c.Metagraph(ctx, m.netuid, true); err != nil {
				return nil, err
			}
			graphs[m.netuid] = mg
			s.Block = max(s.Block, mg.Block)
		}
		addr := m.hot.PublicKey().Address()
		uid := slices.Index(mg.Hotkeys, addr)
		if uid < 0 {
			continue
		}
		ns := NeuronSummary{Netuid: m.netuid, Subnet: m.spec.Name, UID: uint16(uid), Hotkey: addr.String(), Role: m.role, Adversary: m.adversary,
			Stake: mg.Stake[uid], Incentive: frac(mg.Incentive[uid]), Dividends: frac(mg.Dividends[uid]),
			Emission: mg.Emission[uid], Trust: frac(mg.Trust[uid])}
		for _, inc := range mg.MechanismIncentive {
			ns.MechanismIncentive = append(ns.MechanismIncentive, frac(inc[uid]))
		}
		if m.miner != nil {
			ns.Addrs, ns.QueriesServed = m.miner.Addrs(), m.miner.QueriesServed()
			if sw := m.miner.Swarm(); sw != nil {
				ns.Heard, ns.KnowledgeShared, ns.KnowledgeFetched = len(sw.Heard()), sw.KnowledgeShared(), sw.KnowledgeFetched()
			}
		}
		if m.validator != nil {
			ns.Addrs = m.validator.Addrs()
			ns.QueriesSent, ns.WeightSets = m.validator.Stats()
			ns.OrganicScored = m.validator.OrganicScored()
			if sw := m.validator.Swarm(); sw != nil {
				ns.Heard, ns.KnowledgeShared, ns.KnowledgeFetched = len(sw.Heard()), sw.KnowledgeShared(), sw.KnowledgeFetched()
			}
		}
		s.Neurons = append(s.Neurons, ns)
	}
	sort.Slice(s.Neurons, func(i, j int) bool {
		a, b := s.Neurons[i], s.Neurons[j]
		return a.Netuid < b.Netuid || a.Netuid == b.Netuid && a.UID < b.UID
	})
	models, err := modelSummaries(ctx, c, members, graphs)
	if err != nil {
		return nil, err
	}
	s.Models = models
	return s, nil
}

// lazyHandlers answer a subnet's checked synapses without doing the work:
// a storage proof of random bytes, a compute result with a random nonce,
// a custom synapse's schema-valid junk (lazyCustom).
// (text.generate's lazy miner is a lazyGenerator.)
func lazyHandlers(spec *subnet.Spec, seed uint64) map[string]protocol.Handler {
	rng := mrand.New(mrand.NewPCG(seed, 11))
	var mu sync.Mutex
	random := func(n int) []byte {
		mu.Lock()
		defer mu.Unlock()
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	out := map[string]protocol.Handler{}
	for _, syn := range spec.SynapseNames() {
		if s := spec.Synapse(syn); s != nil && (!s.Builtin() || syn == subnet.SynapseChat) {
			out[syn] = lazyCustom(s, rng, &mu)
			continue
		}
		switch syn {
		case "storage.prove":
			out[syn] = protocol.HandlerFunc(func(_ context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
				return w.Write(subnet.StorageProof{Proof: random(32)}.Encode())
			})
		case "compute.run":
			out[syn] = protocol.HandlerFunc(func(_ context.Context, _ *protocol.Request, w protocol.ResponseWriter) error {
				return w.Write(subnet.ComputeResult{Nonce: random(8)}.Encode())
			})
		}
	}
	return out
}
