package chainlink

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// fakeChain admits transactions as a node's mempool does: in sequence
// order per signer, refusing others with the number it wants. Hooks play
// another client and the block's verdict.
type fakeChain struct {
	Chain // the rest of the interface is not used

	mu       sync.Mutex
	seqs     *Sequences
	pending  map[wallet.Address]uint64 // next sequence counting admitted txs
	admitted []uint64
	refusals int
	// before runs before each admission: another client's move.
	before func(f *fakeChain, seq uint64) error
	// verdict decides what waiting for the block returns.
	verdict func(seq uint64) error
}

func newFakeChain() *fakeChain {
	return &fakeChain{seqs: NewSequences(), pending: map[wallet.Address]uint64{}}
}

func (f *fakeChain) ChainID() string       { return "fake" }
func (f *fakeChain) Sequences() *Sequences { return f.seqs }

func (f *fakeChain) Account(_ context.Context, a wallet.Address) (chain.Account, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return chain.Account{Sequence: f.pending[a]}, nil // as if all were committed
}

func (f *fakeChain) Submit(ctx context.Context, raw []byte) (*Receipt, error) {
	wait, err := f.Admit(ctx, raw)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

func (f *fakeChain) Admit(_ context.Context, raw []byte) (func(context.Context) (*Receipt, error), error) {
	tx, err := chain.DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	seq := tx.Body.Sequence
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.before != nil {
		if err := f.before(f, seq); err != nil {
			f.refusals++
			return nil, err
		}
	}
	if want := f.pending[tx.Signer]; seq != want {
		f.refusals++
		log := fmt.Sprintf("%s: got %d, want %d", chain.ErrBadSequence.Error(), seq, want)
		return nil, FailedReceipt(&Receipt{TxHash: tx.Hash, Code: chain.ErrBadSequence.Code, Error: log})
	}
	f.pending[tx.Signer] = seq + 1
	f.admitted = append(f.admitted, seq)
	return func(context.Context) (*Receipt, error) {
		if f.verdict != nil {
			if err := f.verdict(seq); err != nil {
				return nil, err
			}
		}
		return &Receipt{TxHash: tx.Hash, Height: 1}, nil
	}, nil
}

// takeOne is another client's transaction taking the next number.
func (f *fakeChain) takeOne(a wallet.Address) { f.pending[a]++ }

func testKey(t *testing.T) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte("sender test"))
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var faucet = &chainpb.Msg{Sum: &chainpb.Msg_Faucet{Faucet: &chainpb.Faucet{}}}

// Senders of one key on one client, however many and however concurrent,
// never pick the same number: the chain refuses none.
func TestSendersOfOneClientShareSequences(t *testing.T) {
	f, key := newFakeChain(), testKey(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := NewSender(f, key).Send(context.Background(), faucet)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if f.refusals != 0 || len(f.admitted) != 32 {
		t.Fatalf("%d refusals, %d admitted", f.refusals, len(f.admitted))
	}
	for i, seq := range f.admitted {
		if seq != uint64(i) {
			t.Fatalf("admitted %v", f.admitted)
		}
	}
}

// Another client on the key: Send signs again with the number the chain
// wants (or the next, for an identical transaction it holds), at most
// MaxSendAttempts times, and says so when it gives up.
func TestSendRetriesWhenAnotherClientTakesTheNumber(t *testing.T) {
	key := testKey(t)
	addr := key.PublicKey().Address()
	for _, tc := range []struct {
		name   string
		before func(f *fakeChain, seq uint64) error
		fails  bool
	}{
		{"three numbers taken", func() func(*fakeChain, uint64) error {
			n := 0
			return func(f *fakeChain, _ uint64) error {
				if n++; n <= 3 {
					f.takeOne(addr)
				}
				return nil
			}
		}(), false},
		{"an identical transaction held", func() func(*fakeChain, uint64) error {
			n := 0
			return func(f *fakeChain, _ uint64) error {
				if n++; n == 1 {
					f.takeOne(addr)
					return ErrTxInCache
				}
				return nil
			}
		}(), false},
		{"always taken", func(f *fakeChain, _ uint64) error { f.takeOne(addr); return nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeChain()
			f.pending[addr] = 5
			f.before = tc.before
			_, err := NewSender(f, key).Send(context.Background(), faucet)
			if !tc.fails {
				if err != nil {
					t.Fatal(err)
				}
				if last := f.admitted[len(f.admitted)-1]; last != f.pending[addr]-1 {
					t.Fatalf("admitted %v, chain next %d", f.admitted, f.pending[addr])
				}
				return
			}
			if err == nil || f.refusals != MaxSendAttempts || !errors.Is(err, chain.ErrBadSequence) ||
				!strings.Contains(err.Error(), fmt.Sprintf("gave up after %d attempts", MaxSendAttempts)) {
				t.Fatalf("after %d refusals: %v", f.refusals, err)
			}
		})
	}
}

// What happened to a number decides the next one: a refused message
// leaves it free, a message failed in a block used it, a dropped
// transaction is signed again with a number read from the chain.
func TestSendOutcomesAndTheNextNumber(t *testing.T) {
	key := testKey(t)
	addr := key.PublicKey().Address()
	f := newFakeChain()
	s := NewSender(f, key)
	ctx := context.Background()

	refuse := errors.New("insufficient")
	f.before = func(*fakeChain, uint64) error {
		return FailedReceipt(&Receipt{Code: chain.ErrInsufficientBalance.Code, Error: chain.ErrInsufficientBalance.Error() + ": " + refuse.Error()})
	}
	if _, err := s.Send(ctx, faucet); !errors.Is(err, chain.ErrInsufficientBalance) || f.refusals != 1 {
		t.Fatalf("refused: %v after %d refusals", err, f.refusals)
	}
	f.before = nil
	f.verdict = func(seq uint64) error {
		return FailedReceipt(&Receipt{Height: 3, Code: chain.ErrNotRegistered.Code, Error: chain.ErrNotRegistered.Error()})
	}
	if _, err := s.Send(ctx, faucet); !errors.Is(err, chain.ErrNotRegistered) {
		t.Fatalf("failed in a block: %v", err)
	}
	dropped := 0
	f.verdict = func(seq uint64) error {
		if dropped++; dropped == 1 {
			return fmt.Errorf("%w: lost", ErrDropped)
		}
		return nil
	}
	if _, err := s.Send(ctx, faucet); err != nil {
		t.Fatalf("dropped once: %v", err)
	}
	f.verdict = nil
	if _, err := s.Send(ctx, faucet); err != nil {
		t.Fatal(err)
	}
	// The refused message left 0 free; 0 failed in a block; 1 was
	// dropped (the fake chain counts it taken) and signed again as 2; 3.
	if fmt.Sprint(f.admitted) != "[0 1 2 3]" || f.refusals != 1 || f.pending[addr] != 4 {
		t.Fatalf("admitted %v, %d refusals, next %d", f.admitted, f.refusals, f.pending[addr])
	}
}
