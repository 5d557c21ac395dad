package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// minersConfigs are configs for n miners sharing gen and one metrics
// registry (each miner's own series labelled with its index), each with
// its own state under root.
func minersConfigs(root string, n int, gen backend.Generator, reg *prometheus.Registry) []MinerConfig {
	cfgs := make([]MinerConfig, n)
	for i := range cfgs {
		cfg := DefaultMinerConfig(1, gen)
		cfg.Swarm, cfg.Logger = fastSwarm(), slog.New(slog.DiscardHandler)
		cfg.Host.DataDir = filepath.Join(root, fmt.Sprint(i))
		cfg.KnowledgeDir = filepath.Join(cfg.Host.DataDir, "knowledge")
		cfg.Host.NodeRegisterer = reg
		cfg.Host.Registerer = prometheus.WrapRegistererWith(prometheus.Labels{"hotkey": fmt.Sprint(i)}, reg)
		cfgs[i] = cfg
	}
	return cfgs
}

// StartMiners starts all of its miners or none: one hotkey whose state is
// in use, or (without the coldkey) not registered, leaves nothing
// registered, locked or running; otherwise every miner registers, serves
// its own axon and shares the backend and the metrics registry.
func TestStartMinersAllOrNothing(t *testing.T) {
	cold := testKey(t, "miners cold", 0)
	hots := []*wallet.PrivateKey{testKey(t, "miners hot", 0), testKey(t, "miners hot", 1), testKey(t, "miners hot", 2)}
	c := testChain(t, []*wallet.PrivateKey{cold})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	root := t.TempDir()
	gen := backend.NewRetrieval(backend.Document{ID: "sky", Text: "The sky is blue because of Rayleigh scattering."})
	registered := func(i int) bool {
		_, err := c.Neuron(ctx, 1, hots[i].PublicKey().Address())
		if err != nil && !errors.Is(err, chainlink.ErrNotFound) {
			t.Fatal(err)
		}
		return err == nil
	}
	unlocked := func() {
		t.Helper()
		for i := range hots {
			release, err := lockDirs(filepath.Join(root, fmt.Sprint(i)))
			if err != nil {
				t.Fatalf("miner %d's state is left locked: %v", i, err)
			}
			release()
		}
	}

	// Another process (here, a lock) holds the second hotkey's state.
	release, err := lockDirs(filepath.Join(root, "1"))
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	_, err = StartMiners(ctx, c, cold, hots, minersConfigs(root, 3, gen, reg))
	var me *MinerError
	if !errors.As(err, &me) || me.Index != 1 || !errors.Is(err, ErrInUse) || len(me.Registered) != 0 {
		t.Fatalf("a hotkey in use: %v", err)
	}
	release()
	for i := range hots {
		if registered(i) {
			t.Fatalf("hotkey %d was registered though the miners could not all start", i)
		}
	}
	unlocked()
	// What a miner registers of its own is gone (libp2p's collectors are
	// the process's and stay).
	if n := labelled(t, reg); n != 0 {
		t.Fatalf("the failed start left %d series of the miners registered", n)
	}

	// A coldkey that cannot pay every burn registers none.
	poor := testKey(t, "miners poor", 0)
	if _, err = StartMiners(ctx, c, poor, hots, minersConfigs(root, 3, gen, reg)); !errors.Is(err, chain.ErrInsufficientBalance) {
		t.Fatalf("a coldkey without the burns: %v", err)
	}
	for i := range hots {
		if registered(i) {
			t.Fatalf("hotkey %d was registered by a coldkey without the burns", i)
		}
	}
	unlocked()

	ms, err := StartMiners(ctx, c, cold, hots, minersConfigs(root, 3, gen, reg))
	if err != nil {
		t.Fatal(err)
	}
	uids := map[uint16]bool{}
	for i, m := range ms {
		n, err := c.Neuron(ctx, 1, hots[i].PublicKey().Address())
		if err != nil || n.UID != m.UID() || n.Axon == nil || n.Axon.PeerID != m.ID().String() {
			t.Fatalf("miner %d (uid %d, peer %s) on chain: %+v %v", i, m.UID(), m.ID(), n, err)
		}
		uids[m.UID()] = true
	}
	if len(uids) != 3 {
		t.Fatalf("uids %v", uids)
	}
	// Each miner's own counters carry its label; libp2p's are the
	// process's, once.
	if n, err := testutil.GatherAndCount(reg, "cybertensor_gossip_rpc_sent_total"); err != nil || n != 3 {
		t.Fatalf("gossip's RPCs sent: %d series, want one a miner (%v)", n, err)
	}
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	libp2p := false
	for _, f := range fams {
		libp2p = libp2p || strings.HasPrefix(f.GetName(), "libp2p_")
	}
	if !libp2p {
		t.Fatal("no libp2p metrics gathered")
	}
	for _, m := range ms {
		m.Close()
	}
	unlocked()
	if n := labelled(t, reg); n != 0 {
		t.Fatalf("closed miners left %d series registered", n)
	}

	// Without the coldkey, a fourth hotkey not registered keeps all four
	// from starting.
	hots = append(hots, testKey(t, "miners hot", 3))
	_, err = StartMiners(ctx, c, nil, hots, minersConfigs(root, 4, gen, prometheus.NewRegistry()))
	if !errors.As(err, &me) || me.Index != 3 || !errors.Is(err, ErrNotRegistered) {
		t.Fatalf("an unregistered hotkey without the coldkey: %v", err)
	}
	if registered(3) {
		t.Fatal("the fourth hotkey was registered")
	}
	unlocked()
}

// labelled counts the series in reg with a hotkey label.
func labelled(t *testing.T, reg *prometheus.Registry) int {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "hotkey" {
					n++
				}
			}
		}
	}
	return n
}

// Miners sharing a learning backend teach it each object once.
func TestSharedLearnerLearnsOnce(t *testing.T) {
	gen := backend.NewRetrieval()
	cfgs := sharedLearners(minersConfigs(t.TempDir(), 3, gen, prometheus.NewRegistry()))
	if cfgs[0].Learner == nil || cfgs[0].Learner != cfgs[1].Learner || cfgs[1].Learner != cfgs[2].Learner {
		t.Fatalf("learners %v %v %v", cfgs[0].Learner, cfgs[1].Learner, cfgs[2].Learner)
	}
	for _, cfg := range cfgs {
		cfg.Learner.Add(backend.Document{ID: "zebra", Text: "Zebras sleep standing up."})
	}
	if hits := gen.Search("zebras sleep", 10); len(hits) != 1 {
		t.Fatalf("the object was learned %d times: %+v", len(hits), hits)
	}
	// A miner with its own backend keeps it.
	other := backend.NewRetrieval()
	cfgs = minersConfigs(t.TempDir(), 2, gen, prometheus.NewRegistry())
	cfgs[1].Generator = other
	cfgs = sharedLearners(cfgs)
	if cfgs[0].Learner == cfgs[1].Learner {
		t.Fatal("miners with different backends share a learner")
	}
}
