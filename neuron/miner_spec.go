package neuron

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/subnet"
)

// This file is how a miner follows its subnet's spec, as a validator does
// (validator_spec.go): at each tempo boundary it reads the subnet's spec
// hash on chain, and when the owner set a new one (SetSubnetSpec,
// effective at the boundary) it loads that spec from its knowledge
// library (fetched from the swarm through it, verified by its CID, which
// is the hash) and serves the new spec's synapses from then on. A spec it
// cannot load, or whose synapses it cannot serve (a custom synapse its
// backend cannot answer), is logged and the running handlers stay; it is
// tried again only when the hash on chain changes again.

// specFollower is the state of a miner following its subnet's spec; only
// its goroutine uses it.
type specFollower struct {
	m     *Miner
	chain chainlink.Reader
	cfg   MinerConfig // the handlers' config; Spec is the running spec
	lib   *knowledge.Library
	log   *slog.Logger
	watch specWatch
}

// follow runs until ctx ends, stepping at every head.
func (f *specFollower) follow(ctx context.Context, heads <-chan chainlink.Head) {
	for {
		select {
		case <-ctx.Done():
			return
		case h, ok := <-heads:
			if !ok {
				return
			}
			f.step(ctx, h.Height)
		}
	}
}

// step reads the spec hash on chain at the subnet's tempo boundaries (and
// at the first head) and switches to a new spec.
func (f *specFollower) step(ctx context.Context, height uint64) {
	var cur [32]byte
	hash, ok := f.watch.changed(ctx, f.chain, f.cfg.Netuid, height, func() [32]byte {
		cur = f.cfg.Spec.Hash()
		return cur
	}, f.log)
	if !ok {
		return
	}
	want := hex.EncodeToString(hash)
	spec, err := f.switchSpec(ctx, hash)
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		f.watch.failed = want
		f.log.Error("the subnet's spec changed on chain and this miner cannot serve it: it keeps serving the old spec's synapses (it tries again when the hash on chain changes, or restart it with the new spec)",
			"spec_hash", want, "old_spec_hash", hex.EncodeToString(cur[:]), "err", err)
		return
	}
	f.watch.failed = ""
	f.log.Info("serving the subnet's new spec", "spec", spec.Name, "spec_hash", want, "block", height, "synapses", spec.SynapseNames())
}

// switchSpec loads the spec of hash, makes its handlers and puts them in
// place of the running ones.
func (f *specFollower) switchSpec(ctx context.Context, hash []byte) (*subnet.Spec, error) {
	ctx, cancel := context.WithTimeout(ctx, defaultFetchTimeout)
	defer cancel()
	spec, err := fetchSpec(ctx, f.lib, hash)
	if err != nil {
		return nil, err
	}
	cfg := f.cfg
	cfg.Spec, cfg.Synapses = spec, spec.SynapseNames()
	handlers, replicate, err := f.m.handlers(cfg)
	if err != nil {
		return nil, err
	}
	if replicate && !f.m.replicating {
		return nil, errors.New("the new spec serves storage.prove, and this miner did not start as a storage miner: restart it with the new spec")
	}
	f.m.srv.SetHandlers(handlers)
	f.cfg = cfg
	f.m.spec.Store(spec)
	return spec, nil
}

// specWatch is how a neuron (a miner's specFollower, a validator) follows
// the spec hash on chain: it reads it at the subnet's tempo boundaries (and
// at the first head), and does not try again a hash it failed to switch to
// until the hash on chain changes. Only the neuron's run loop uses it.
type specWatch struct {
	// next is the block at which it reads the spec hash next; failed the
	// last hash (hex) the neuron could not switch to (it sets it).
	next   uint64
	failed string
}

// subnetReader reads a subnet's info; chainlink.Reader is one.
type subnetReader interface {
	Subnet(ctx context.Context, netuid uint16) (chain.SubnetInfo, error)
}

// changed reads the spec hash of netuid when a check is due at height and
// returns it if it is set, not the running spec's (cur, asked only then)
// and not the last that failed.
func (w *specWatch) changed(ctx context.Context, c subnetReader, netuid uint16, height uint64, cur func() [32]byte, log *slog.Logger) (hash []byte, ok bool) {
	if height < w.next {
		return nil, false
	}
	sub, err := c.Subnet(ctx, netuid)
	if err != nil {
		log.Debug("reading the subnet's spec hash", "err", err)
		w.next = height + 1
		return nil, false
	}
	w.next = nextSpecCheck(sub, height)
	if len(sub.SpecHash) == 0 || hex.EncodeToString(sub.SpecHash) == w.failed {
		return nil, false
	}
	if running := cur(); bytes.Equal(running[:], sub.SpecHash) {
		return nil, false
	}
	return sub.SpecHash, true
}

// nextSpecCheck is the block at which a neuron that read sub at height
// next reads the spec hash on chain: the subnet's next tempo boundary,
// where a pending spec takes effect, or the epoch after the last.
func nextSpecCheck(sub chain.SubnetInfo, height uint64) uint64 {
	next := sub.LastEpochBlock + sub.Params.Tempo + 1
	if sub.PendingSpecHash != nil && sub.SpecEffectiveBlock > height {
		next = sub.SpecEffectiveBlock
	}
	return max(next, height+1)
}

// fetchSpec fetches the spec of hash from lib (from the swarm if not
// held), verified by its CID, and parses it.
func fetchSpec(ctx context.Context, lib *knowledge.Library, hash []byte) (*subnet.Spec, error) {
	c, err := SpecCID(hash)
	if err != nil {
		return nil, fmt.Errorf("spec hash %x: %w", hash, err)
	}
	text := &boundedBuffer{max: subnet.MaxSpecSize}
	if _, err := lib.Get(ctx, c, text); err != nil {
		return nil, fmt.Errorf("fetching the spec %s: %w", c, err)
	}
	spec, err := subnet.Parse(text.b.Bytes())
	if err != nil {
		return nil, fmt.Errorf("the spec %s: %w", c, err)
	}
	if h := spec.Hash(); !bytes.Equal(h[:], hash) {
		return nil, fmt.Errorf("the spec %s does not hash to %x", c, hash)
	}
	return spec, nil
}
