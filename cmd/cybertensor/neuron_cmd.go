package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet"
	"github.com/cybertensor/cybertensor/localnet"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// neuronFlags are shared by miner run and validator run.
type neuronFlags struct {
	chain     chainFlags
	keys      keyFlags
	netuid    uint16
	listen    []string
	bootstrap []string
	metrics   string
	reusePort bool
	// hotkeyOnly runs without the coldkey: the hotkey must be registered.
	hotkeyOnly bool
}

func addNeuronFlags(a *app, cmd *cobra.Command, f *neuronFlags) {
	addChainConnFlags(cmd, &f.chain, a.env.getenv)
	addHotkeyFlags(cmd, &f.keys)
	netuidFlag(cmd, &f.netuid)
	cmd.Flags().StringArrayVar(&f.listen, "listen", []string{"/ip4/0.0.0.0/tcp/0"}, "libp2p listen address (repeatable); every one must be free, or the neuron does not start")
	cmd.Flags().BoolVar(&f.hotkeyOnly, "hotkey-only", false, "run with the hotkey alone: never open the coldkey (which may be absent from this machine); the hotkey must be registered on the subnet already (\"subnets register\" where the coldkey is)")
	cmd.Flags().BoolVar(&f.reusePort, "reuseport", false, "share the --listen TCP ports with other processes started with --reuseport (SO_REUSEPORT: the kernel splits connections between them); QUIC ports are never shared")
	cmd.Flags().StringArrayVar(&f.bootstrap, "bootstrap", nil, "peer to join the swarm through, a full multiaddr with /p2p/ (repeatable; the axons served on chain are always used)")
	cmd.Flags().StringVar(&f.metrics, "metrics", "", "serve Prometheus metrics (libp2p, DHT, gossip; a miner's queries served and backend failures by synapse) at http://ADDR/metrics, e.g. 127.0.0.1:9100")
	addCheck(cmd, func() error {
		if err := checkMultiaddrs("listen", f.listen); err != nil {
			return err
		}
		if err := checkPeers("bootstrap", f.bootstrap); err != nil {
			return err
		}
		return checkHostPort("metrics", f.metrics)
	})
}

// minerSpec loads the spec a miner serves. One already locked (its files:
// section set, as "subnets spec" prints it) is taken as it is: a miner
// needs none of the files it names, and the hash on chain still checks it
// (subnetSpec). Otherwise it is loaded as loadSpec does, locked against
// its files.
func minerSpec(file, builtin string) (*subnet.Spec, error) {
	if file == "" || builtin != "" {
		return loadSpec(file, builtin)
	}
	s, err := parseSpecFile(file)
	if err != nil || len(s.Files) > 0 {
		return s, err
	}
	return lockSpecFile(file, s)
}

// subnetSpec checks that spec, if any, is the subnet's (by the hash on
// chain, when the subnet has one).
func subnetSpec(cmd *cobra.Command, c chainlink.Reader, netuid uint16, spec *subnet.Spec) (*subnet.Spec, error) {
	if spec == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
	defer cancel()
	info, err := c.Subnet(ctx, netuid)
	if err != nil {
		return nil, err
	}
	if h := spec.Hash(); len(info.SpecHash) != 0 && !bytes.Equal(info.SpecHash, h[:]) {
		return nil, usageError(fmt.Errorf("spec %q is not subnet %d's: the chain holds spec hash %x, this one is %x", spec.Name, netuid, info.SpecHash, h))
	}
	return spec, nil
}

// judgeFlags are validator run's flags for a version 2 spec's judges.
type judgeFlags struct {
	url, keyFile      string
	reference, refKey string
	refTimeout        time.Duration
	closeReference    func()
}

// check refuses judge flags without a version 2 spec.
func (jf *judgeFlags) check(spec *subnet.Spec) error {
	if (spec == nil || spec.Version < 2) && (jf.url != "" || jf.keyFile != "" || jf.reference != "" || jf.refKey != "") {
		return usageError(errors.New("--judge-url, --judge-key-file, --reference-backend and --reference-key-file are for a version 2 spec (--spec FILE with version: 2)"))
	}
	return nil
}

// specJudges sets what a v2 spec's judges need beside the spec: the
// directory its files are relative to, the llm judges' URL and key, the
// environment their api_key_env names, and the validator's own backend for
// reference judges.
func (a *app) specJudges(file string, spec *subnet.Spec, jf *judgeFlags, cfg *neuron.ValidatorConfig) error {
	if err := jf.check(spec); err != nil || spec == nil || spec.Version < 2 {
		return err
	}
	if file != "" {
		cfg.SpecDir = filepath.Dir(file)
	}
	cfg.JudgeURL, cfg.Getenv = jf.url, a.env.getenv
	if jf.keyFile != "" {
		key, err := readKeyFile("judge-key-file", jf.keyFile)
		if err != nil {
			return usageError(err)
		}
		cfg.JudgeKey = key
	}
	needsReference := false
	for _, m := range spec.EffectiveMechanisms() {
		needsReference = needsReference || (m.Judge != nil && m.Judge.Kind == subnet.JudgeReference)
	}
	switch {
	case jf.reference == "" && needsReference:
		return usageError(fmt.Errorf("spec %q has a reference judge: give the validator's own backend with --reference-backend (retrieval, openai:MODEL@URL or exec:COMMAND)", spec.Name))
	case jf.reference == "":
		if jf.refKey != "" {
			return usageError(errors.New("--reference-key-file needs --reference-backend openai:MODEL@URL"))
		}
		return nil
	}
	gen, closeBackend, err := parseBackend(jf.reference, openaiFlags{keyFile: jf.refKey, keyFlag: "reference-key-file", timeout: jf.refTimeout}, a.env.getenv)
	if err != nil {
		return usageError(fmt.Errorf("--reference-backend: %w", err))
	}
	if cfg.Reference, err = neuron.NewBackendAnswerer(spec, gen); err != nil {
		closeBackend()
		return usageError(fmt.Errorf("--reference-backend: %w", err))
	}
	if e, ok := gen.(backend.Embedder); ok {
		cfg.ReferenceEmbedder = neuron.EmbedderOf{Embedder: e}
	}
	jf.closeReference = closeBackend
	return nil
}

// applySpec makes the validator run a subnet spec, if one is given (see
// subnetSpec): its tasks go to its synapse, its reward scores answers and
// its cadence applies where no flag overrides it. A version 2 spec runs its
// mechanisms, with what its judges need from jf (specJudges).
func (a *app) applySpec(cmd *cobra.Command, c chainlink.Reader, netuid uint16, file, builtin string, jf *judgeFlags, cfg *neuron.ValidatorConfig) error {
	spec, err := loadSpec(file, builtin)
	if err != nil {
		return err
	}
	if err := jf.check(spec); err != nil {
		return err
	}
	if spec, err = subnetSpec(cmd, c, netuid, spec); err != nil {
		return err
	}
	if err := a.specJudges(file, spec, jf, cfg); err != nil || spec == nil {
		return err
	}
	cfg.Spec = spec
	if spec.Version >= 2 {
		if err := checkSpecFiles(file, spec); err != nil {
			return err
		}
	} else if cfg.Reward, err = subnet.NewReward(spec.Reward); err != nil {
		return err
	}
	if spec.Version < 2 && spec.Tasks.Source == subnet.FromDataset {
		if cfg.Tasks, err = datasetTasks(file, spec.Tasks.Path); err != nil {
			return usageError(err)
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "asking the %d questions of dataset %s\n", len(cfg.Tasks), spec.Tasks.Path)
	}
	flags := cmd.Flags()
	if !flags.Changed("query-every") {
		cfg.QueryEvery = spec.Query.Every
	}
	if !flags.Changed("weights-every") {
		cfg.WeightsEvery = spec.WeightsEvery
	}
	if !flags.Changed("query-timeout") {
		cfg.Timeout = spec.Query.Timeout
	}
	if !flags.Changed("sample") {
		cfg.Sample = spec.Query.Sample
	}
	cfg.Alpha = spec.Alpha
	if spec.Version >= 2 {
		for _, m := range spec.EffectiveMechanisms() {
			if e := m.Evaluate; e != nil && m.Tasks.Source == subnet.FromCommitments {
				evaluator := e.Kind + " evaluator " + e.Model
				if e.Kind == subnet.EvaluateExec {
					evaluator = "exec evaluator " + strings.Join(e.Command, " ")
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "running spec %q mechanism %s (share %g): the models the miners commit, %s, reward %s\n", spec.Name, m.Name, m.Share, evaluator, m.Reward)
				continue
			}
			judge := "no judge"
			if m.Judge != nil {
				judge = m.Judge.Kind + " judge"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "running spec %q mechanism %s (share %g): %s tasks to %s, %s, reward %s\n", spec.Name, m.Name, m.Share, m.Tasks.Source, spec.TaskSynapseOf(m.Tasks), judge, m.Reward)
		}
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "running spec %q: %s tasks, reward %s\n", spec.Name, spec.TaskSynapse(), spec.Reward)
	return nil
}

// datasetTasks reads a spec's dataset file: path is relative to the spec
// file's directory (to the working directory for a built-in spec).
func datasetTasks(specFile, path string) ([]neuron.Task, error) {
	if !filepath.IsAbs(path) && specFile != "" {
		path = filepath.Join(filepath.Dir(specFile), path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("the spec's dataset: %w", err)
	}
	defer f.Close()
	items, err := subnet.ParseDataset(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	tasks := make([]neuron.Task, len(items))
	for i, it := range items {
		tasks[i] = neuron.Task{Prompt: it.Prompt, Answer: it.Answer}
	}
	return tasks, nil
}

// hostConfig is the neuron's host setup: peers kept under the home, per
// wallet and hotkey, and metrics if asked for. stop ends the metrics
// server.
func (a *app) hostConfig(cmd *cobra.Command, f *neuronFlags) (hc neuron.HostConfig, swarm neuron.SwarmConfig, stop func(), err error) {
	hc.DataDir = filepath.Join(a.home, "neurons", f.keys.wallet, f.keys.hotkey)
	hc.ReusePort = f.reusePort
	swarm = neuron.DefaultSwarmConfig()
	swarm.Bootstrap = f.bootstrap
	for _, b := range f.bootstrap {
		if _, err := peer.AddrInfoFromString(b); err != nil {
			return hc, swarm, nil, usageError(fmt.Errorf("--bootstrap %q: %w", b, err))
		}
	}
	stop = func() {}
	if f.metrics != "" {
		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		ln, err := net.Listen("tcp", f.metrics)
		if err != nil {
			return hc, swarm, nil, fmt.Errorf("--metrics: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go srv.Serve(ln)
		fmt.Fprintf(cmd.ErrOrStderr(), "metrics at http://%s/metrics\n", ln.Addr())
		hc.Registerer = reg
		stop = func() { srv.Close() }
	}
	return hc, swarm, stop, nil
}

// neuronStartError explains why a neuron did not start, when the cause is
// another process: one running a neuron on its state (in dir), or
// listening on its port.
func neuronStartError(f *neuronFlags, dir string, err error) error {
	if errors.Is(err, neuron.ErrNotRegistered) {
		return fmt.Errorf("hotkey %q of wallet %q is not registered on subnet %d, and --hotkey-only keeps the coldkey out: register it where the coldkey is (cybertensor subnets register --netuid %d --wallet %s --hotkey %s), then start again", f.keys.hotkey, f.keys.wallet, f.netuid, f.netuid, f.keys.wallet, f.keys.hotkey)
	}
	if errors.Is(err, node.ErrAddrInUse) {
		return fmt.Errorf("--listen: %w (another process listens there; to share a TCP port, start every process on it with --reuseport)", err)
	}
	return inUseAs(fmt.Sprintf("wallet %q hotkey %q (state in %s)", f.keys.wallet, f.keys.hotkey, dir), err)
}

// neuronKeys opens the coldkey (unless --hotkey-only: cold is nil) and
// the hotkey, and connects to the chain.
func (a *app) neuronKeys(cmd *cobra.Command, f *neuronFlags) (cold, hot *wallet.PrivateKey, c *comet.Client, err error) {
	if !f.hotkeyOnly {
		if cold, err = a.coldkey(&f.keys); err != nil {
			return nil, nil, nil, err
		}
	}
	if hot, err = a.hotkey(&f.keys); err != nil {
		return nil, nil, nil, err
	}
	if c, err = a.dialChain(cmd.Context(), &f.chain); err != nil {
		return nil, nil, nil, err
	}
	return cold, hot, c, nil
}

// The API key of an OpenAI-compatible backend, when --openai-key-file is
// not given: CYBERTENSOR_OPENAI_KEY, else OpenAI's own OPENAI_API_KEY.
const (
	envOpenAIKey       = "CYBERTENSOR_OPENAI_KEY"
	envOpenAIKeyCommon = "OPENAI_API_KEY"
)

// openaiFlags tune the OpenAI-compatible backend.
type openaiFlags struct {
	keyFile    string
	embedModel string
	timeout    time.Duration
	// keyFlag names the key file's flag in errors (default
	// "openai-key-file").
	keyFlag string
}

// maxKeyFileSize bounds what is read from a key file.
const maxKeyFileSize = 64 << 10

// apiKey reads the key: the first line of --openai-key-file, else the
// environment. It is never printed.
func (o openaiFlags) apiKey(getenv func(string) string) (string, error) {
	if o.keyFile == "" {
		if k := getenv(envOpenAIKey); k != "" {
			return k, nil
		}
		return getenv(envOpenAIKeyCommon), nil
	}
	flag := o.keyFlag
	if flag == "" {
		flag = "openai-key-file"
	}
	return readKeyFile(flag, o.keyFile)
}

// readKeyFile reads a key: the first line of the file given to --flag,
// which must not be empty. The key is never printed.
func readKeyFile(flag, path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	if st.Size() > maxKeyFileSize {
		return "", fmt.Errorf("--%s %s: %d bytes is not a key file", flag, path, st.Size())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("--%s: %w", flag, err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	if line = strings.TrimSpace(line); line == "" {
		return "", fmt.Errorf("--%s %s: the first line is empty", flag, path)
	}
	return line, nil
}

// parseBackend builds a miner backend from --backend (and the --openai-*
// flags for openai:MODEL@URL).
func parseBackend(spec string, of openaiFlags, getenv func(string) string) (backend.Generator, func(), error) {
	kind, arg, _ := strings.Cut(spec, ":")
	if kind != "openai" && (of.keyFile != "" || of.embedModel != "") {
		return nil, nil, fmt.Errorf("--openai-key-file and --openai-embed-model need --backend openai:MODEL@URL")
	}
	switch kind {
	case "retrieval":
		return backend.NewRetrieval(localnet.Documents()...), func() {}, nil
	case "openai":
		model, url, ok := strings.Cut(arg, "@")
		if !ok {
			return nil, nil, fmt.Errorf("--backend openai:MODEL@URL, e.g. openai:llama3@http://127.0.0.1:8080")
		}
		key, err := of.apiKey(getenv)
		if err != nil {
			return nil, nil, err
		}
		if of.timeout <= 0 {
			return nil, nil, fmt.Errorf("--openai-timeout %v: want a positive duration", of.timeout)
		}
		o, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: url, Model: model, EmbeddingModel: of.embedModel, APIKey: key, Timeout: of.timeout})
		if err != nil {
			return nil, nil, err
		}
		return o, o.Close, nil
	case "exec":
		fields := strings.Fields(arg)
		if len(fields) == 0 {
			return nil, nil, fmt.Errorf("--backend exec:COMMAND [ARGS…]")
		}
		e, err := backend.StartExec(fields[0], fields[1:]...)
		if err != nil {
			return nil, nil, err
		}
		return e, func() { e.Close() }, nil
	default:
		return nil, nil, fmt.Errorf("--backend %q: want retrieval, openai:MODEL@URL or exec:COMMAND", spec)
	}
}

func (a *app) minerCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "miner", Short: "Run a miner"}
	var f neuronFlags
	var backendSpec, specFile, builtinSpec string
	var replicaMiB uint64
	var of openaiFlags
	var hk hotkeysFlags
	run := &cobra.Command{
		Use:   "run",
		Short: "Register the hotkey (burning), serve its address on chain and answer queries until interrupted",
		Long: `Register the hotkey (burning), serve its address on chain and answer queries
until interrupted. Everything local comes first: the hotkey's state in
<home>/neurons/WALLET/HOTKEY is locked (a second miner for a running hotkey
exits at once, naming the process that runs it) and every --listen address
bound (one in use is refused unless all its processes give --reuseport); only
then does the miner register and, last, serve its axon on chain. With
--hotkey-only it never opens the coldkey (a server may hold only the hotkey):
the hotkey must be registered already ("subnets register" where the coldkey is).

--hotkeys h1,h2,… (or --hotkeys-file, one name a line) runs one miner per
hotkey of --wallet in this one process: one backend and one --metrics server
(each miner's series labelled hotkey="NAME"), and for each hotkey its own
libp2p identity, state directory and lock, knowledge library, registration
(burned from the wallet's coldkey, unless --hotkey-only) and axon. The N-th
hotkey (from 0) listens on every --listen port plus N (port 0: a free port
each), so --listen /ip4/0.0.0.0/tcp/4001 gives 4001, 4002, …; addresses whose
port ranges would overlap are refused. Start is all or nothing: every hotkey's
state is locked and its ports bound, then every hotkey is looked up on chain
(with --hotkey-only each must be registered; otherwise the coldkey must hold
the burn of every one not registered) before the first registers; if any
cannot run, the error names it and no miner is left running or locked.

A version 2 spec's custom synapses (e.g. summarize.v1) are answered by the
--backend: exec:COMMAND gets every one as a JSON line {"id", "synapse",
"body"} (the request, already checked against the synapse's request schema)
and answers {"id", "body"} (a JSON string for a text answer, else the JSON
answer) or {"id", "error"}; openai:MODEL@URL answers a synapse that has a
prompt with the prompt filled from the request as the user message (streamed
if the synapse streams; a JSON answer may come in a Markdown code fence).
A request that fails its schema or size is refused BAD_REQUEST naming the
failing path; an answer of the backend's that fails the answer schema or
max_answer_bytes is never sent (INTERNAL, logged and counted as a backend
failure). The retrieval backend answers only synapses with a prompt, with a
passage; a custom synapse without a prompt needs --backend exec.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if replicaMiB == 0 || replicaMiB > 1<<24 {
				return usageError(fmt.Errorf("--replica-budget %d: want 1 to %d MiB", replicaMiB, 1<<24))
			}
			hotkeys, listens, err := hk.resolve(cmd, &f)
			if err != nil {
				return err
			}
			f.keys.hotkey = hotkeys[0]
			spec, err := minerSpec(specFile, builtinSpec)
			if err != nil {
				return err
			}
			// The backend answers text.generate (served without a spec),
			// text.chat and text.embed, and a v2 spec's custom synapses.
			var gen backend.Generator
			if spec == nil || slices.ContainsFunc(spec.SynapseNames(), func(name string) bool {
				return name == "text.generate" || name == subnet.SynapseChat || name == subnet.SynapseEmbed || !spec.Synapse(name).Builtin()
			}) {
				var closeBackend func()
				if gen, closeBackend, err = parseBackend(backendSpec, of, a.env.getenv); err != nil {
					return usageError(err)
				}
				defer closeBackend()
			}
			if len(hotkeys) > 1 {
				return a.runMiners(cmd, &f, hotkeys, listens, spec, gen, replicaMiB<<20)
			}
			cold, hot, c, err := a.neuronKeys(cmd, &f)
			if err != nil {
				return err
			}
			defer c.Close()
			if spec, err = subnetSpec(cmd, c, f.netuid, spec); err != nil {
				return err
			}
			cfg := neuron.DefaultMinerConfig(f.netuid, gen)
			if spec != nil {
				cfg = neuron.SpecMinerConfig(f.netuid, spec, gen)
				fmt.Fprintf(cmd.ErrOrStderr(), "running spec %q: serving %s\n", spec.Name, strings.Join(spec.SynapseNames(), ", "))
			}
			cfg.Listen, cfg.Logger = f.listen, a.log
			cfg.ReplicaBudget = replicaMiB << 20
			var stopMetrics func()
			if cfg.Host, cfg.Swarm, stopMetrics, err = a.hostConfig(cmd, &f); err != nil {
				return err
			}
			defer stopMetrics()
			if col, ok := gen.(prometheus.Collector); ok && cfg.Host.Registerer != nil {
				// The OpenAI backend's upstream failures, by endpoint and kind.
				if err := cfg.Host.Registerer.Register(col); err != nil {
					return fmt.Errorf("backend metrics: %w", err)
				}
				defer cfg.Host.Registerer.Unregister(col)
			}
			cfg.KnowledgeDir = filepath.Join(cfg.Host.DataDir, "knowledge")
			ctx, cancel := context.WithTimeout(cmd.Context(), f.chain.timeout)
			m, err := neuron.StartMiner(ctx, c, cold, hot, cfg)
			cancel()
			if err != nil {
				return neuronStartError(&f, cfg.Host.DataDir, err)
			}
			defer m.Close()
			fmt.Fprintf(cmd.OutOrStdout(), "miner uid %d on subnet %d serving at %s (Ctrl-C to stop)\n", m.UID(), f.netuid, strings.Join(m.Addrs(), " "))
			<-cmd.Context().Done()
			fmt.Fprintf(cmd.OutOrStdout(), "served %d queries\n", m.QueriesServed())
			return nil
		},
	}
	addNeuronFlags(a, run, &f)
	addHotkeysFlags(run, &hk)
	run.Flags().Uint64Var(&replicaMiB, "replica-budget", neuron.DefaultReplicaBudget>>20, "MiB of other neurons' knowledge objects a storage miner keeps at most")
	run.Flags().StringVar(&backendSpec, "backend", "retrieval", "what answers text.generate, text.chat, text.embed and a v2 spec's custom synapses: retrieval (built-in library; hashed bag-of-words embeddings), openai:MODEL@URL (an OpenAI-compatible server; custom synapses with a prompt), exec:COMMAND (text.generate and custom synapses, as JSON lines)")
	run.Flags().StringVar(&of.keyFile, "openai-key-file", "", "file whose first line is the API key of the openai backend (default: $"+envOpenAIKey+", else $"+envOpenAIKeyCommon+")")
	run.Flags().StringVar(&of.embedModel, "openai-embed-model", "", "model the openai backend asks for embeddings (default: the --backend model)")
	run.Flags().DurationVar(&of.timeout, "openai-timeout", 2*time.Minute, "how long the openai backend waits for one answer of its server")
	run.Flags().StringVar(&specFile, "spec", "", "serve the synapses of the subnet's spec file (storage.prove from the knowledge it replicates, compute.run by doing the jobs, text.generate and a v2 spec's custom synapses with --backend); it must be the spec whose hash the chain holds, if any")
	run.Flags().StringVar(&builtinSpec, "builtin", "", "a built-in spec instead of --spec: "+strings.Join(subnet.BuiltinNames(), ", "))
	cmd.AddCommand(run)
	return cmd
}

func (a *app) validatorCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "validator", Short: "Run a validator, and show its scores"}
	var f neuronFlags
	var stake string
	var queryEvery, weightsEvery, weightsVersion uint64
	var sample int
	var keepWithin time.Duration
	var timeout time.Duration
	var specFile, builtinSpec string
	var jf judgeFlags
	var gf validatorGatewayFlags
	run := &cobra.Command{
		Use:   "run",
		Short: "Register and stake the hotkey, then query miners, score them and set weights until interrupted",
		Long: `Register and stake the hotkey, then query miners, score them and set weights
until interrupted. Everything local comes first: the hotkey's state in
<home>/neurons/WALLET/HOTKEY is locked (a second validator for a running
hotkey exits at once, naming the process that runs it), its scores loaded and
every --listen address bound (one in use is refused unless all its processes
give --reuseport); only then does it register and stake. With --hotkey-only
it never opens the coldkey: the hotkey must be registered already, and --stake
is refused (stake with "stake add" where the coldkey is).

With --gateway it also serves the subnet's miners to applications through the
OpenAI-compatible gateway (as "cybertensor gateway" does, with its key file and
usage ledger), and scores --organic-fraction of those requests' answers with
the mechanism of its version 2 spec whose tasks go to their synapse (one whose
reward does not read expected: a judge scores the answer alone), folding them
into the same scores as its own tasks' (docs/gateway.md, "Organic scoring").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			amount, err := parseAmount(stake)
			if err != nil {
				return usageError(fmt.Errorf("--stake: %w", err))
			}
			if amount > 0 && f.hotkeyOnly {
				return usageError(errors.New("--stake needs the coldkey: stake from where it is (cybertensor stake add), or drop --hotkey-only"))
			}
			if sample < 0 {
				return usageError(fmt.Errorf("--sample %d: must not be negative", sample))
			}
			if timeout <= 0 {
				return usageError(fmt.Errorf("--query-timeout %v: must be positive", timeout))
			}
			if keepWithin <= 0 {
				return usageError(fmt.Errorf("--keep-connected-within %v: must be positive", keepWithin))
			}
			if _, err := loadSpec(specFile, builtinSpec); err != nil {
				return err
			}
			cold, hot, c, err := a.neuronKeys(cmd, &f)
			if err != nil {
				return err
			}
			defer c.Close()
			// Its questions: the library's curated ones, and fill-in-the-blank
			// ones built from the documents it publishes.
			tasks := append(localnet.Tasks(), neuron.ClozeTasks(localnet.Documents(), 32)...)
			cfg := neuron.DefaultValidatorConfig(f.netuid, tasks)
			cfg.Listen, cfg.Logger, cfg.QueryEvery, cfg.WeightsEvery, cfg.Timeout = f.listen, a.log, queryEvery, weightsEvery, timeout
			cfg.Sample, cfg.WeightsVersion, cfg.OrganicFraction = sample, weightsVersion, gf.fraction
			cfg.KeepConnectedWithin = keepWithin
			err = a.applySpec(cmd, c, f.netuid, specFile, builtinSpec, &jf, &cfg)
			if jf.closeReference != nil {
				defer jf.closeReference()
			}
			if err != nil {
				return err
			}
			var stopMetrics func()
			if cfg.Host, cfg.Swarm, stopMetrics, err = a.hostConfig(cmd, &f); err != nil {
				return err
			}
			defer stopMetrics()
			vg, err := a.openValidatorGateway(&gf, cfg.Host.Registerer)
			if err != nil {
				return err
			}
			// The validator shares the documents its questions come from
			// (a v2 spec's, only if some mechanism asks from knowledge).
			cfg.KnowledgeDir = filepath.Join(cfg.Host.DataDir, "knowledge")
			if cfg.Spec == nil || cfg.Spec.Version < 2 || slices.ContainsFunc(cfg.Spec.EffectiveMechanisms(), func(m subnet.Mechanism) bool { return m.Tasks.Source == subnet.FromKnowledge }) {
				cfg.Publish = localnet.Documents()
			}
			// Its scores and any unrevealed weight commit survive a restart.
			cfg.StateDir = cfg.Host.DataDir
			ctx, cancel := context.WithTimeout(cmd.Context(), f.chain.timeout)
			v, err := neuron.StartValidator(ctx, c, cold, hot, amount, cfg)
			cancel()
			if err != nil {
				vg.close()
				return neuronStartError(&f, cfg.Host.DataDir, err)
			}
			defer v.Close()
			if vg != nil {
				stop, err := vg.serve(cmd.Context(), a, cmd.OutOrStdout(), c, v, f.netuid)
				if err != nil {
					return err
				}
				defer stop()
			}
			fmt.Fprintf(cmd.OutOrStdout(), "validator uid %d on subnet %d running (Ctrl-C to stop)\n", v.UID(), f.netuid)
			<-cmd.Context().Done()
			q, s := v.Stats()
			evaluated := ""
			if n := v.Evaluations(); n > 0 {
				evaluated = fmt.Sprintf(", evaluated %d committed models", n)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sent %d queries%s, set weights %d times (%d commits); state kept in %s\n", q, evaluated, s, v.Commits(), cfg.StateDir)
			return nil
		},
	}
	addNeuronFlags(a, run, &f)
	run.Flags().StringVar(&stake, "stake", "0", "tokens to stake on the hotkey at start")
	run.Flags().Uint64Var(&queryEvery, "query-every", 2, "blocks between query rounds")
	run.Flags().Uint64Var(&weightsEvery, "weights-every", 5, "blocks between weight settings")
	run.Flags().DurationVar(&timeout, "query-timeout", 2*time.Second, "deadline of each query")
	run.Flags().IntVar(&sample, "sample", 0, "miners queried each round, at random (0: all)")
	run.Flags().DurationVar(&keepWithin, "keep-connected-within", neuron.DefaultKeepConnectedWithin, "a miner whose next turn comes within this long stays connected between its turns; the connection to one asked less often (the miners divided by --sample, times the rounds' pace) is closed once it answered and made again just before its next turn, unless the validator gossips with it")
	run.Flags().Uint64Var(&weightsVersion, "weights-version", neuron.WeightsVersion, "version key sent with the weights; a subnet whose weights_version_key is higher refuses them (its owner asks validators to upgrade)")
	run.Flags().StringVar(&specFile, "spec", "", "run the subnet's spec file: its tasks (questions, storage challenges on the knowledge it publishes, or compute jobs) go to its synapse, its reward expression scores answers, and its query cadence, timeout, alpha and weight interval apply unless given as flags (it must be the spec whose hash the chain holds, if any)")
	run.Flags().StringVar(&builtinSpec, "builtin", "", "a built-in spec instead of --spec: "+strings.Join(subnet.BuiltinNames(), ", "))
	run.Flags().StringVar(&jf.url, "judge-url", "", "OpenAI-compatible base URL, with its version (e.g. http://127.0.0.1:8080/v1), that a version 2 spec's llm judges ask instead of the spec's url: your own model server")
	run.Flags().StringVar(&jf.keyFile, "judge-key-file", "", "file whose first line is the bearer key of a version 2 spec's http and llm judges (default: the environment variable the judge's api_key_env names)")
	run.Flags().StringVar(&jf.reference, "reference-backend", "", "the validator's own backend for a version 2 spec's reference judges, as miner run --backend: retrieval, openai:MODEL@URL or exec:COMMAND; it answers each task as a miner would, and embeds the answers for compare: embedding (openai)")
	run.Flags().StringVar(&jf.refKey, "reference-key-file", "", "file whose first line is the API key of --reference-backend openai:MODEL@URL (default: $"+envOpenAIKey+", else $"+envOpenAIKeyCommon+")")
	run.Flags().DurationVar(&jf.refTimeout, "reference-timeout", 2*time.Minute, "how long --reference-backend openai waits for one answer of its server")
	addValidatorGatewayFlags(run, &gf)
	cmd.AddCommand(run, a.validatorScores())
	return cmd
}
