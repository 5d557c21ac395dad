package chainlink

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// MaxSendAttempts bounds how often Send signs one message again after the
// chain said its sequence number was taken.
const MaxSendAttempts = 8

// Sender signs and submits messages for one key. It is safe for concurrent
// use; on a chain client that keeps a Sequences (both implementations do)
// every Sender of a key shares its sequence numbers.
type Sender struct {
	chain Chain
	key   *wallet.PrivateKey
	addr  wallet.Address
	seqs  *Sequences
}

// NewSender returns a sender for key on c.
func NewSender(c Chain, key *wallet.PrivateKey) *Sender {
	seqs := NewSequences()
	if s, ok := c.(sequencer); ok {
		seqs = s.Sequences()
	}
	return &Sender{chain: c, key: key, addr: key.PublicKey().Address(), seqs: seqs}
}

// Address is the signer's address.
func (s *Sender) Address() wallet.Address { return s.addr }

// Send signs msg with the account's next sequence number, submits it and
// waits for inclusion. When the number turns out to be taken (another
// client sends from the key: the chain names the number it wants, or holds
// an identical transaction, or dropped this one for another), it signs
// again, up to MaxSendAttempts times.
func (s *Sender) Send(ctx context.Context, msg *chainpb.Msg) (*Receipt, error) {
	var err error
	for attempt := range MaxSendAttempts {
		if attempt > 0 {
			// Let the other client's transactions in first.
			t := time.NewTimer(rand.N(time.Duration(attempt) * 20 * time.Millisecond))
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, fmt.Errorf("sending from %s: %w", s.addr, ctx.Err())
			case <-t.C:
			}
		}
		var rec *Receipt
		var again bool
		rec, again, err = s.try(ctx, msg)
		if !again {
			return rec, err
		}
	}
	return nil, fmt.Errorf("another client kept taking the sequence numbers of %s; gave up after %d attempts: %w", s.addr, MaxSendAttempts, err)
}

// try signs and submits msg once; again says the sequence number was taken
// and nothing of msg applied, so it may be signed again.
func (s *Sender) try(ctx context.Context, msg *chainpb.Msg) (_ *Receipt, again bool, _ error) {
	acc, err := s.seqs.acquire(ctx, s.addr)
	if err != nil {
		return nil, false, fmt.Errorf("sending from %s: %w", s.addr, err)
	}
	held := true
	release := func() {
		if held {
			held = false
			s.seqs.release(acc)
		}
	}
	defer release()
	seq, known := s.seqs.get(acc)
	if !known {
		a, err := s.chain.Account(ctx, s.addr)
		if err != nil {
			return nil, false, fmt.Errorf("reading the sequence number of %s: %w", s.addr, err)
		}
		seq = a.Sequence
	}
	raw, err := chain.SignTx(s.key, s.chain.ChainID(), seq, msg)
	if err != nil {
		return nil, false, err
	}
	var wait func(context.Context) (*Receipt, error)
	if a, ok := s.chain.(Admitter); ok {
		wait, err = a.Admit(ctx, raw)
	} else {
		// Without the two steps, the turn is held until the block.
		var rec *Receipt
		rec, err = s.chain.Submit(ctx, raw)
		wait = func(context.Context) (*Receipt, error) { return rec, err }
		if inBlock(err) {
			err = nil
		}
	}
	var te *TxError
	switch {
	case err == nil:
		s.seqs.set(acc, seq+1)
	case errors.Is(err, chain.ErrBadSequence) && errors.As(err, &te):
		if want, ok := te.ExpectedSequence(); ok {
			s.seqs.set(acc, want)
		} else {
			s.seqs.forget(acc)
		}
		return nil, true, err
	case errors.Is(err, ErrTxInCache):
		s.seqs.set(acc, seq+1)
		return nil, true, err
	case errors.As(err, &te):
		s.seqs.set(acc, seq) // refused: the number is still free
		return nil, false, err
	default:
		s.seqs.forget(acc) // outcome unknown
		return nil, false, err
	}
	release()
	rec, err := wait(ctx)
	switch {
	case err == nil:
		return rec, false, nil
	case errors.Is(err, ErrDropped), inBlock(err) && errors.Is(err, chain.ErrBadSequence):
		s.seqs.forget(acc) // nothing applied; the number was taken
		return nil, true, err
	case inBlock(err):
		return rec, false, err // failed in a block: the number was used
	default:
		s.seqs.forget(acc)
		return rec, false, err
	}
}

// inBlock says err is a transaction that failed in a block.
func inBlock(err error) bool {
	var te *TxError
	return errors.As(err, &te) && te.Receipt != nil && te.Receipt.Height != 0
}
