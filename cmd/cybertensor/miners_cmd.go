package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// maxHotkeys bounds the miners one process runs: a subnet's uids.
const maxHotkeys = 256

// hotkeysFlags are miner run's flags for several hotkeys in one process.
type hotkeysFlags struct {
	list []string
	file string
}

func addHotkeysFlags(cmd *cobra.Command, hk *hotkeysFlags) {
	cmd.Flags().StringSliceVar(&hk.list, "hotkeys", nil, "run one miner for each of these hotkeys of --wallet in this process (comma-separated, e.g. h1,h2,h3), sharing the backend and --metrics; the N-th hotkey (from 0) listens on each --listen port plus N")
	cmd.Flags().StringVar(&hk.file, "hotkeys-file", "", "as --hotkeys, the hotkey names read from this file: one a line; blank lines and lines starting with # are skipped")
}

// resolve returns the hotkeys to run (--hotkeys, --hotkeys-file, else
// --hotkey) and each one's listen addresses (listenFor), refusing
// ambiguous combinations.
func (hk *hotkeysFlags) resolve(cmd *cobra.Command, f *neuronFlags) (names []string, listens [][]string, err error) {
	flags := cmd.Flags()
	switch {
	case flags.Changed("hotkeys") && flags.Changed("hotkeys-file"):
		return nil, nil, usageError(errors.New("--hotkeys and --hotkeys-file: give the hotkeys one way"))
	case flags.Changed("hotkey") && (flags.Changed("hotkeys") || flags.Changed("hotkeys-file")):
		return nil, nil, usageError(errors.New("--hotkey names one hotkey, --hotkeys and --hotkeys-file several: give one of them"))
	case flags.Changed("hotkeys"):
		names = hk.list
		if len(names) == 0 {
			return nil, nil, usageError(errors.New("--hotkeys: no hotkey named"))
		}
	case flags.Changed("hotkeys-file"):
		if names, err = readHotkeysFile(hk.file); err != nil {
			return nil, nil, usageError(err)
		}
	default:
		names = []string{f.keys.hotkey}
	}
	seen := map[string]bool{}
	for _, n := range names {
		switch {
		case strings.TrimSpace(n) == "":
			return nil, nil, usageError(errors.New("--hotkeys: an empty hotkey name"))
		case seen[n]:
			return nil, nil, usageError(fmt.Errorf("--hotkeys: hotkey %q is named twice", n))
		}
		seen[n] = true
	}
	if len(names) > maxHotkeys {
		return nil, nil, usageError(fmt.Errorf("--hotkeys: %d hotkeys; one process runs at most %d", len(names), maxHotkeys))
	}
	if listens, err = listenFor(f.listen, len(names)); err != nil {
		return nil, nil, usageError(err)
	}
	return names, listens, nil
}

// readHotkeysFile reads hotkey names, one a line; blank lines and lines
// starting with # are skipped.
func readHotkeysFile(path string) ([]string, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--hotkeys-file: %w", err)
	}
	defer fh.Close()
	var names []string
	sc := bufio.NewScanner(fh)
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if name == "" || strings.HasPrefix(name, "#") {
			continue
		}
		if strings.ContainsAny(name, " \t,") {
			return nil, fmt.Errorf("--hotkeys-file %s line %d: %q is not one hotkey name (one a line)", path, line, name)
		}
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--hotkeys-file %s: %w", path, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("--hotkeys-file %s names no hotkey", path)
	}
	return names, nil
}

// listenFor gives each of n hotkeys its listen addresses: hotkey i (from
// 0, in the order named) listens on every --listen address with its TCP or
// UDP port plus i; port 0 stays 0 (each picks a free port). Refused: a
// range that passes 65535, and two addresses of the same transport whose
// ranges overlap (tcp/4001 and tcp/4002 for 3 hotkeys), which would give
// two hotkeys one port.
func listenFor(listen []string, n int) ([][]string, error) {
	out := make([][]string, n)
	if n == 1 {
		out[0] = listen
		return out, nil
	}
	type span struct {
		addr, proto string
		port        int
		at          int // the index of the port in the address's parts
	}
	var spans []span
	for _, a := range listen {
		parts := strings.Split(a, "/")
		s := span{addr: a, at: -1}
		for i := 0; i+1 < len(parts); i++ {
			if parts[i] == "tcp" || parts[i] == "udp" {
				p, err := strconv.Atoi(parts[i+1])
				if err != nil || p < 0 || p > 65535 {
					return nil, fmt.Errorf("--listen %s: port %q", a, parts[i+1])
				}
				s.proto, s.port, s.at = parts[i], p, i+1
				break
			}
		}
		if s.at < 0 {
			return nil, fmt.Errorf("--listen %s: with several hotkeys every address needs a /tcp/ or /udp/ port (each hotkey listens on the port plus its index)", a)
		}
		if s.port > 0 && s.port+n-1 > 65535 {
			return nil, fmt.Errorf("--listen %s: %d hotkeys need %s ports %d to %d, past 65535", a, n, s.proto, s.port, s.port+n-1)
		}
		for _, o := range spans {
			if o.proto == s.proto && o.port > 0 && s.port > 0 && o.port < s.port+n && s.port < o.port+n {
				return nil, fmt.Errorf("--listen %s and %s: with %d hotkeys they take %s ports %d-%d and %d-%d, which overlap (hotkey N listens on each port plus N): give ports at least %d apart, or port 0",
					o.addr, a, n, s.proto, o.port, o.port+n-1, s.port, s.port+n-1, n)
			}
		}
		spans = append(spans, s)
	}
	for i := range out {
		for _, s := range spans {
			if s.port == 0 {
				out[i] = append(out[i], s.addr)
				continue
			}
			parts := strings.Split(s.addr, "/")
			parts[s.at] = strconv.Itoa(s.port + i)
			out[i] = append(out[i], strings.Join(parts, "/"))
		}
	}
	return out, nil
}

// runMiners runs a miner for each hotkey in names in this process, as
// miner run does one (cfg is the miner's config but for its hotkey's
// state, listen addresses and metrics), sharing gen and the chain
// connection: all start, or none (neuron.StartMiners).
func (a *app) runMiners(cmd *cobra.Command, f *neuronFlags, names []string, listens [][]string, spec *subnet.Spec, gen backend.Generator, replicaBudget uint64) error {
	var cold *wallet.PrivateKey
	var err error
	if !f.hotkeyOnly {
		if cold, err = a.coldkey(&f.keys); err != nil {
			return err
		}
	}
	hots := make([]*wallet.PrivateKey, len(names))
	for i, name := range names {
		k := f.keys
		k.hotkey = name
		if hots[i], err = a.hotkey(&k); err != nil {
			return fmt.Errorf("hotkey %q: %w", name, err)
		}
	}
	c, err := a.dialChain(cmd.Context(), &f.chain)
	if err != nil {
		return err
	}
	defer c.Close()
	if spec, err = subnetSpec(cmd, c, f.netuid, spec); err != nil {
		return err
	}
	base := neuron.DefaultMinerConfig(f.netuid, gen)
	if spec != nil {
		base = neuron.SpecMinerConfig(f.netuid, spec, gen)
		fmt.Fprintf(cmd.ErrOrStderr(), "running spec %q: serving %s\n", spec.Name, strings.Join(spec.SynapseNames(), ", "))
	}
	base.Logger, base.ReplicaBudget = a.log, replicaBudget
	hc, swarm, stopMetrics, err := a.hostConfig(cmd, f)
	if err != nil {
		return err
	}
	defer stopMetrics()
	base.Swarm = swarm
	if col, ok := gen.(prometheus.Collector); ok && hc.Registerer != nil {
		// The shared backend's upstream failures, once for all miners.
		if err := hc.Registerer.Register(col); err != nil {
			return fmt.Errorf("backend metrics: %w", err)
		}
		defer hc.Registerer.Unregister(col)
	}
	cfgs := make([]neuron.MinerConfig, len(names))
	for i, name := range names {
		cfg := base
		cfg.Listen = listens[i]
		cfg.Logger = a.log.With("hotkey", name)
		cfg.Host = hc
		cfg.Host.DataDir = filepath.Join(a.home, "neurons", f.keys.wallet, name)
		if hc.Registerer != nil {
			// libp2p's metrics are the process's; each miner's own
			// (queries, backend failures, gossip) carry its hotkey.
			cfg.Host.NodeRegisterer = hc.Registerer
			cfg.Host.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"hotkey": name}, hc.Registerer)
		}
		cfg.KnowledgeDir = filepath.Join(cfg.Host.DataDir, "knowledge")
		cfgs[i] = cfg
	}
	// Registrations go one after the other: --timeout is per hotkey.
	ctx, cancel := context.WithTimeout(cmd.Context(), f.chain.timeout*time.Duration(len(names)))
	ms, err := neuron.StartMiners(ctx, c, cold, hots, cfgs)
	cancel()
	if err != nil {
		return minersStartError(f, names, cfgs, err)
	}
	defer func() {
		for _, m := range ms {
			m.Close()
		}
	}()
	out := cmd.OutOrStdout()
	for i, m := range ms {
		fmt.Fprintf(out, "miner uid %d on subnet %d as %s serving at %s\n", m.UID(), f.netuid, names[i], strings.Join(m.Addrs(), " "))
	}
	fmt.Fprintf(out, "%d miners running (Ctrl-C to stop)\n", len(ms))
	<-cmd.Context().Done()
	var total int64
	for i, m := range ms {
		q := m.QueriesServed()
		total += q
		fmt.Fprintf(out, "miner uid %d (%s) served %d queries\n", m.UID(), names[i], q)
	}
	fmt.Fprintf(out, "served %d queries in all\n", total)
	return nil
}

// minersStartError explains why the miners did not start, naming the
// hotkey that kept them from it (see neuronStartError) and any hotkeys
// registered on the way.
func minersStartError(f *neuronFlags, names []string, cfgs []neuron.MinerConfig, err error) error {
	var me *neuron.MinerError
	if !errors.As(err, &me) {
		return fmt.Errorf("no miner started: %w", err)
	}
	g := *f
	g.keys.hotkey = names[me.Index]
	err = neuronStartError(&g, cfgs[me.Index].Host.DataDir, me.Err)
	if !errors.Is(me.Err, neuron.ErrNotRegistered) && !errors.Is(me.Err, neuron.ErrInUse) {
		err = fmt.Errorf("hotkey %q: %w", names[me.Index], err)
	}
	if len(me.Registered) > 0 {
		var reg []string
		for _, i := range me.Registered {
			reg = append(reg, names[i])
		}
		return fmt.Errorf("no miner started: %w (registered on the way, their burn spent, serving nothing: %s)", err, strings.Join(reg, ", "))
	}
	return fmt.Errorf("no miner started: %w", err)
}
