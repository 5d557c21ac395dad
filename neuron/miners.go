package neuron

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// MinerError says which of the miners given to StartMiners kept them all
// from starting.
type MinerError struct {
	// Index is the miner's index in StartMiners' hots and cfgs.
	Index int
	// Registered are the indexes of the hotkeys this StartMiners
	// registered before the failure: their burn is spent, and they serve
	// nothing (a later start finds them registered).
	Registered []int
	Err        error
}

func (e *MinerError) Error() string { return fmt.Sprintf("neuron: miner %d: %v", e.Index, e.Err) }

func (e *MinerError) Unwrap() error { return e.Err }

// StartMiners starts one miner per hotkey in this process, hots[i] with
// cfgs[i], as StartMiner does each, all or none: every miner's local part
// comes first (the locks of its state directories, its listeners), then
// every hotkey is looked up on chain (without the coldkey, cold nil, each
// must be registered already: ErrNotRegistered otherwise; with it, the
// coldkey's balance must pay the current burn of each one not
// registered), and only then are the missing ones registered, one after
// the other, and all of them join the swarm and serve their axons. If any
// fails, every miner started is closed and the error is a *MinerError
// naming it; nothing is left locked or listening.
//
// The configs may share their backends (Generator, Chatter, Embedder,
// Caller), which must then be safe for concurrent use. Miners sharing a
// Generator that is a Learner (and given no Learner of their own) teach
// it each announced object once, not once per miner.
func StartMiners(ctx context.Context, c chainlink.Chain, cold *wallet.PrivateKey, hots []*wallet.PrivateKey, cfgs []MinerConfig) (_ []*Miner, err error) {
	if len(hots) == 0 || len(hots) != len(cfgs) {
		return nil, fmt.Errorf("neuron: StartMiners: %d hotkeys and %d configs", len(hots), len(cfgs))
	}
	cfgs = sharedLearners(cfgs)
	ms := make([]*Miner, 0, len(hots))
	defer func() {
		if err != nil {
			for _, m := range ms {
				m.Close()
			}
		}
	}()
	for i := range hots {
		m, err := prepareMiner(c, hots[i], cfgs[i])
		if err != nil {
			return nil, &MinerError{Index: i, Err: err}
		}
		ms = append(ms, m)
	}
	uids := make([]uint16, len(hots))
	var missing []int
	for i, hot := range hots {
		addr, netuid := hot.PublicKey().Address(), cfgs[i].Netuid
		n, err := c.Neuron(ctx, netuid, addr)
		switch {
		case err == nil:
			uids[i] = n.UID
		case !errors.Is(err, chainlink.ErrNotFound):
			return nil, &MinerError{Index: i, Err: err}
		case cold == nil:
			return nil, &MinerError{Index: i, Err: fmt.Errorf("%w (hotkey %s, subnet %d)", ErrNotRegistered, addr, netuid)}
		default:
			missing = append(missing, i)
		}
	}
	if len(missing) > 0 {
		var due uint64
		for _, i := range missing {
			bc, err := c.BurnCost(ctx, cfgs[i].Netuid)
			if err != nil {
				return nil, &MinerError{Index: i, Err: fmt.Errorf("neuron: the registration burn of subnet %d: %w", cfgs[i].Netuid, err)}
			}
			due += bc.Burn
		}
		acct, err := c.Account(ctx, cold.PublicKey().Address())
		if err != nil && !errors.Is(err, chainlink.ErrNotFound) {
			return nil, fmt.Errorf("neuron: the coldkey's balance: %w", err)
		}
		if acct.Balance < due {
			return nil, fmt.Errorf("neuron: registering the %d hotkeys not registered yet burns at least %d, and the coldkey holds %d: %w", len(missing), due, acct.Balance, chain.ErrInsufficientBalance)
		}
	}
	var registered []int
	for _, i := range missing {
		if uids[i], err = ensureRegistered(ctx, c, cold, hots[i], cfgs[i].Netuid); err != nil {
			return nil, &MinerError{Index: i, Registered: registered, Err: err}
		}
		registered = append(registered, i)
	}
	// Each joins the swarm and serves its axon (signed by its own hotkey),
	// all at once.
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = m.start(ctx, c, hots[i], uids[i], cfgs[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, &MinerError{Index: i, Registered: registered, Err: err}
		}
	}
	return ms, nil
}

// sharedLearners gives the configs whose Generator is the same Learner
// (and no Learner of their own) one onceLearner of it.
func sharedLearners(cfgs []MinerConfig) []MinerConfig {
	cfgs = append([]MinerConfig(nil), cfgs...)
	var shared []*onceLearner
	for i := range cfgs {
		l, ok := cfgs[i].Generator.(Learner)
		if cfgs[i].Learner != nil || !ok || !reflect.TypeOf(l).Comparable() {
			continue
		}
		var once *onceLearner
		for _, o := range shared {
			if o.l == l {
				once = o
			}
		}
		if once == nil {
			once = &onceLearner{l: l, seen: map[string]bool{}}
			shared = append(shared, once)
		}
		cfgs[i].Learner = once
	}
	return cfgs
}

// onceLearner adds each document (by ID) to l once.
type onceLearner struct {
	l    Learner
	mu   sync.Mutex
	seen map[string]bool
}

func (o *onceLearner) Add(d backend.Document) {
	o.mu.Lock()
	seen := d.ID != "" && o.seen[d.ID]
	o.seen[d.ID] = true
	o.mu.Unlock()
	if !seen {
		o.l.Add(d)
	}
}
