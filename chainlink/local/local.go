// Package local is the embedded, in-process chain: it drives the chain
// application with its own block producer, in memory or on disk. It is the
// zero-setup default for localnet and the chain that tests use, where
// Advance steps a thousand blocks in milliseconds.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// Config configures a local chain.
type Config struct {
	// Genesis is the chain's genesis.
	Genesis chain.Genesis
	// Epoch computes Yuma consensus (chain.YumaEpoch).
	Epoch chain.EpochFunc
	// DataDir holds the chain database; empty keeps the chain in memory.
	DataDir string
	// BlockTime is the interval between produced blocks; 0 produces blocks
	// only when Advance is called.
	BlockTime time.Duration
	// MaxTxsPerBlock bounds a block; the rest wait for the next.
	MaxTxsPerBlock int
	// MaxPending bounds the transactions waiting for a block.
	MaxPending int
	// Logger receives the producer's logs.
	Logger *slog.Logger
}

// DefaultConfig produces a block every second.
func DefaultConfig(gen chain.Genesis, epoch chain.EpochFunc) Config {
	return Config{Genesis: gen, Epoch: epoch, BlockTime: time.Second, MaxTxsPerBlock: 10_000, MaxPending: 100_000, Logger: slog.Default()}
}

// DefaultTestConfig is in memory and produces blocks only on Advance.
func DefaultTestConfig(gen chain.Genesis, epoch chain.EpochFunc) Config {
	c := DefaultConfig(gen, epoch)
	c.BlockTime = 0
	c.Logger = slog.New(slog.DiscardHandler)
	return c
}

func (c Config) validate() error {
	if c.Epoch == nil {
		return errors.New("local chain: config: Epoch is nil")
	}
	if c.BlockTime < 0 || c.MaxTxsPerBlock < 1 || c.MaxPending < 1 {
		return errors.New("local chain: config: BlockTime must be >= 0, MaxTxsPerBlock and MaxPending >= 1")
	}
	if c.Logger == nil {
		return errors.New("local chain: config: Logger is nil")
	}
	return nil
}

// engine is what Local drives: a State, durable or not.
type engine interface {
	State() *chain.State
	ApplyBlock(chain.Block) (*chain.BlockResult, error)
	Close() error
}

type memEngine struct{ s *chain.State }

func (m memEngine) State() *chain.State                                  { return m.s }
func (m memEngine) ApplyBlock(b chain.Block) (*chain.BlockResult, error) { return m.s.ApplyBlock(b) }
func (m memEngine) Close() error                                         { return nil }

type pendingTx struct {
	raw  []byte
	hash [32]byte
}

// Local is an in-process chain implementing chainlink.Chain.
type Local struct {
	cfg Config
	log *slog.Logger

	mu       sync.Mutex
	eng      engine
	pending  []pendingTx
	nextSeq  map[wallet.Address]uint64
	waiters  map[[32]byte][]chan *chainlink.Receipt
	subs     map[chan chainlink.Head]struct{}
	lastHash []byte
	closed   bool
	failed   error
	seqs     *chainlink.Sequences

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var (
	_ chainlink.Chain           = (*Local)(nil)
	_ chainlink.Admitter        = (*Local)(nil)
	_ chainlink.MetagraphReader = (*Local)(nil)
)

// New opens (or creates) the chain and starts its block producer when
// BlockTime is set.
func New(cfg Config) (*Local, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	var eng engine
	if cfg.DataDir == "" {
		s, err := chain.NewState(cfg.Genesis, cfg.Epoch)
		if err != nil {
			return nil, err
		}
		eng = memEngine{s}
	} else {
		db, err := chain.OpenDB(filepath.Join(cfg.DataDir, "chain.db"), cfg.Genesis, cfg.Epoch)
		if err != nil {
			return nil, err
		}
		eng = db
	}
	ctx, cancel := context.WithCancel(context.Background())
	l := &Local{
		cfg: cfg, log: cfg.Logger.With("component", "chain"), eng: eng,
		nextSeq: map[wallet.Address]uint64{}, waiters: map[[32]byte][]chan *chainlink.Receipt{},
		subs: map[chan chainlink.Head]struct{}{}, seqs: chainlink.NewSequences(), ctx: ctx, cancel: cancel,
	}
	l.lastHash = blockHash(eng.State().Height(), eng.State().AppHash(), nil)
	if cfg.BlockTime > 0 {
		l.wg.Add(1)
		go l.run(ctx)
	}
	return l, nil
}

// Close stops the producer and closes the database. Waiting submitters get
// ErrClosed. It is safe to call more than once.
func (l *Local) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	l.mu.Unlock()
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for h, ws := range l.waiters {
		for _, w := range ws {
			close(w)
		}
		delete(l.waiters, h)
	}
	for s := range l.subs {
		close(s)
		delete(l.subs, s)
	}
	return l.eng.Close()
}

func (l *Local) run(ctx context.Context) {
	defer l.wg.Done()
	t := time.NewTicker(l.cfg.BlockTime)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if _, err := l.produceBlock(); err != nil {
			if !errors.Is(err, chainlink.ErrClosed) {
				l.log.Error("block production stopped", "err", err)
			}
			return
		}
	}
}

// Advance produces n blocks now, the first including the waiting
// transactions (up to MaxTxsPerBlock).
func (l *Local) Advance(n int) error {
	for range n {
		if _, err := l.produceBlock(); err != nil {
			return err
		}
	}
	return nil
}

// blockHash derives a block's hash from its height, the previous app hash
// and its transactions.
func blockHash(height uint64, prevAppHash []byte, txs [][]byte) []byte {
	h := sha256.New()
	h.Write([]byte("cybertensor-local-block/1"))
	h.Write(binary.BigEndian.AppendUint64(nil, height))
	h.Write(prevAppHash)
	for _, tx := range txs {
		sum := sha256.Sum256(tx)
		h.Write(sum[:])
	}
	return h.Sum(nil)
}

func (l *Local) produceBlock() (*chain.BlockResult, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, chainlink.ErrClosed
	}
	if l.failed != nil {
		return nil, l.failed
	}
	take := min(len(l.pending), l.cfg.MaxTxsPerBlock)
	batch := l.pending[:take]
	txs := make([][]byte, take)
	for i, p := range batch {
		txs[i] = p.raw
	}
	s := l.eng.State()
	height := s.Height() + 1
	b := chain.Block{Height: height, Hash: blockHash(height, s.AppHash(), txs), Txs: txs}
	res, err := l.eng.ApplyBlock(b)
	if err != nil {
		l.failed = fmt.Errorf("local chain: block %d: %w", height, err)
		return nil, l.failed
	}
	l.pending = append([]pendingTx(nil), l.pending[take:]...)
	l.lastHash = b.Hash
	for _, r := range res.Txs {
		rec := &chainlink.Receipt{TxHash: r.Hash, Height: height, Code: r.Code, Error: r.Error, Events: r.Events}
		for _, w := range l.waiters[r.Hash] {
			w <- rec
		}
		delete(l.waiters, r.Hash)
	}
	if len(l.pending) == 0 {
		// Every waiting sequence reached the state.
		clear(l.nextSeq)
	}
	head := chainlink.Head{Height: height, AppHash: res.AppHash, Hash: b.Hash}
	for _, e := range res.Events {
		if e.Type == "epoch" {
			var n uint16
			fmt.Sscan(e.Attrs["netuid"], &n)
			head.Epochs = append(head.Epochs, n)
		}
	}
	for sub := range l.subs {
		select {
		case sub <- head:
		default:
			// Behind: replace the stale head with the latest.
			select {
			case <-sub:
			default:
			}
			sub <- head
		}
	}
	return res, nil
}

// ChainID implements chainlink.Reader.
func (l *Local) ChainID() string { return l.cfg.Genesis.ChainID }

// Broadcast checks a transaction and queues it for the next block,
// returning its hash. It does not wait for inclusion.
func (l *Local) Broadcast(raw []byte) ([32]byte, error) {
	_, hash, err := l.enqueue(raw)
	return hash, err
}

func (l *Local) enqueue(raw []byte) (chan *chainlink.Receipt, [32]byte, error) {
	hash := chain.TxHash(raw)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, hash, chainlink.ErrClosed
	}
	if len(l.pending) >= l.cfg.MaxPending {
		return nil, hash, fmt.Errorf("local chain: %d transactions waiting; try again", len(l.pending))
	}
	s := l.eng.State()
	tx, err := s.CheckTxSequence(raw, func(a wallet.Address) uint64 {
		if n, ok := l.nextSeq[a]; ok {
			return n
		}
		return s.Account(a).Sequence
	})
	if err != nil {
		return nil, hash, &chainlink.TxError{Receipt: &chainlink.Receipt{TxHash: hash, Code: chain.CodeOf(err), Error: err.Error()}, Err: err}
	}
	l.nextSeq[tx.Signer] = tx.Body.Sequence + 1
	l.pending = append(l.pending, pendingTx{raw: raw, hash: hash})
	w := make(chan *chainlink.Receipt, 1)
	l.waiters[hash] = append(l.waiters[hash], w)
	return w, hash, nil
}

// Submit implements chainlink.Submitter.
func (l *Local) Submit(ctx context.Context, raw []byte) (*chainlink.Receipt, error) {
	wait, err := l.Admit(ctx, raw)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

// Admit implements chainlink.Admitter.
func (l *Local) Admit(ctx context.Context, raw []byte) (func(context.Context) (*chainlink.Receipt, error), error) {
	w, _, err := l.enqueue(raw)
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*chainlink.Receipt, error) { return l.await(ctx, w) }, nil
}

// Sequences is the table every Sender on l shares.
func (l *Local) Sequences() *chainlink.Sequences { return l.seqs }

func (l *Local) await(ctx context.Context, w chan *chainlink.Receipt) (*chainlink.Receipt, error) {
	select {
	case rec, ok := <-w:
		if !ok {
			return nil, chainlink.ErrClosed
		}
		if rec.Code != 0 {
			return rec, chainlink.FailedReceipt(rec)
		}
		return rec, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for inclusion: %w", ctx.Err())
	}
}

// Head implements chainlink.Reader.
func (l *Local) Head(ctx context.Context) (chainlink.Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.eng.State()
	return chainlink.Head{Height: s.Height(), AppHash: s.AppHash(), Hash: append([]byte(nil), l.lastHash...)}, nil
}

// Account implements chainlink.Reader.
func (l *Local) Account(ctx context.Context, a wallet.Address) (chain.Account, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng.State().Account(a), nil
}

// Subnets implements chainlink.Reader.
func (l *Local) Subnets(ctx context.Context) ([]chain.SubnetInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng.State().Subnets(), nil
}

// Subnet implements chainlink.Reader.
func (l *Local) Subnet(ctx context.Context, netuid uint16) (chain.SubnetInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	info, ok := l.eng.State().Subnet(netuid)
	if !ok {
		return info, fmt.Errorf("subnet %d: %w", netuid, chainlink.ErrNotFound)
	}
	return info, nil
}

// Neuron implements chainlink.Reader.
func (l *Local) Neuron(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.NeuronInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, ok := l.eng.State().NeuronByHotkey(netuid, hotkey)
	if !ok {
		return n, fmt.Errorf("hotkey %s on subnet %d: %w", hotkey, netuid, chainlink.ErrNotFound)
	}
	return n, nil
}

// Metagraph implements chainlink.Reader.
func (l *Local) Metagraph(ctx context.Context, netuid uint16, lite bool) (*chain.Metagraph, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	m, ok := l.eng.State().Metagraph(netuid, lite)
	if !ok {
		return nil, fmt.Errorf("subnet %d: %w", netuid, chainlink.ErrNotFound)
	}
	return m, nil
}

// Commitment implements chainlink.Reader.
func (l *Local) Commitment(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.CommitmentInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.eng.State().Commitment(netuid, hotkey)
	if !ok {
		return c, fmt.Errorf("commitment of %s on subnet %d: %w", hotkey, netuid, chainlink.ErrNotFound)
	}
	return c, nil
}

// Commitments implements chainlink.Reader.
func (l *Local) Commitments(ctx context.Context, netuid uint16) ([]chain.CommitmentInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	list, ok := l.eng.State().Commitments(netuid)
	if !ok {
		return nil, fmt.Errorf("subnet %d: %w", netuid, chainlink.ErrNotFound)
	}
	return list, nil
}

// Identity implements chainlink.Reader.
func (l *Local) Identity(ctx context.Context, coldkey wallet.Address) (chain.Identity, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.eng.State().Identity(coldkey)
	if !ok {
		return id, fmt.Errorf("identity of %s: %w", coldkey, chainlink.ErrNotFound)
	}
	return id, nil
}

// SubnetIdentity implements chainlink.Reader.
func (l *Local) SubnetIdentity(ctx context.Context, netuid uint16) (chain.Identity, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	id, ok := l.eng.State().SubnetIdentity(netuid)
	if !ok {
		return id, fmt.Errorf("identity of subnet %d: %w", netuid, chainlink.ErrNotFound)
	}
	return id, nil
}

// BurnCost implements chainlink.Reader.
func (l *Local) BurnCost(ctx context.Context, netuid uint16) (chain.BurnCost, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	bc, ok := l.eng.State().BurnCost(netuid)
	if !ok {
		return bc, fmt.Errorf("subnet %d: %w", netuid, chainlink.ErrNotFound)
	}
	return bc, nil
}

// LockCost implements chainlink.Reader.
func (l *Local) LockCost(ctx context.Context) (chain.LockCost, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng.State().LockCostInfo(), nil
}

// Overview implements chainlink.Reader.
func (l *Local) Overview(ctx context.Context, coldkey wallet.Address) ([]chain.OwnedHotkey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng.State().Overview(coldkey), nil
}

// StakesOf implements chainlink.Reader.
func (l *Local) StakesOf(ctx context.Context, coldkey wallet.Address) ([]chain.StakeEntry, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng.State().StakesOf(coldkey), nil
}

// SubscribeHeads implements chainlink.Subscriber.
func (l *Local) SubscribeHeads(ctx context.Context) (<-chan chainlink.Head, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, chainlink.ErrClosed
	}
	ch := make(chan chainlink.Head, 1)
	l.subs[ch] = struct{}{}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case <-ctx.Done():
		case <-l.ctx.Done():
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[ch]; ok {
			delete(l.subs, ch)
			close(ch)
		}
	}()
	return ch, nil
}

// View runs f with the current state under the chain's lock, for queries
// the Reader interface does not offer. f must not keep the state.
func (l *Local) View(f func(*chain.State)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l.eng.State())
}

// MetagraphAt implements chainlink.MetagraphReader. A chain with a data
// directory answers past heights from its database's history (the last
// chain.DefaultHistoryBlocks blocks); an in-memory one only the latest
// height, and a *chain.HeightError saying so for any other.
func (l *Local) MetagraphAt(ctx context.Context, q chainlink.MetagraphQuery) (*chain.Metagraph, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.eng.State()
	height := q.Height
	if height == 0 {
		height = s.Height()
	}
	var m *chain.Metagraph
	var ok bool
	if db, durable := l.eng.(*chain.DB); durable {
		var err error
		if m, ok, err = db.MetagraphAt(q.Netuid, height, q.FieldsOrLite()); err != nil {
			return nil, err
		}
	} else if height != s.Height() {
		return nil, &chain.HeightError{Height: height, Oldest: s.Height(), Latest: s.Height()}
	} else {
		m, ok = s.MetagraphColumns(q.Netuid, q.FieldsOrLite())
	}
	if !ok {
		return nil, fmt.Errorf("subnet %d at block %d: %w", q.Netuid, height, chainlink.ErrNotFound)
	}
	return m, nil
}
