package chainlink

import (
	"context"
	"sync"

	"github.com/cybertensor/cybertensor/wallet"
)

// Sequences keeps, for each account a client signs for, the next sequence
// number and whose turn it is to use it. A chain client holds one and all
// its Senders share it (NewSender finds it), so transactions from one key
// sent at once through one client never pick the same number. Clients that
// share nothing (two processes on one coldkey) meet at the chain, which
// names the number it wants; Send signs again with it.
type Sequences struct {
	mu       sync.Mutex
	accounts map[wallet.Address]*account
}

type account struct {
	// turn is held from reserving a number until the chain admitted or
	// refused the transaction signed with it.
	turn chan struct{}
	// next and known are guarded by Sequences.mu; known is false until
	// read from the chain and after an outcome left it in doubt.
	next  uint64
	known bool
}

// NewSequences returns an empty table.
func NewSequences() *Sequences {
	return &Sequences{accounts: map[wallet.Address]*account{}}
}

// sequencer is a chain client that keeps a Sequences for its Senders.
type sequencer interface {
	Sequences() *Sequences
}

func (s *Sequences) account(a wallet.Address) *account {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc, ok := s.accounts[a]
	if !ok {
		acc = &account{turn: make(chan struct{}, 1)}
		s.accounts[a] = acc
	}
	return acc
}

// acquire waits for a's turn.
func (s *Sequences) acquire(ctx context.Context, a wallet.Address) (*account, error) {
	acc := s.account(a)
	select {
	case acc.turn <- struct{}{}:
		return acc, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (s *Sequences) release(acc *account) { <-acc.turn }

// get returns the next number and whether it is known.
func (s *Sequences) get(acc *account) (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return acc.next, acc.known
}

// set records the next number.
func (s *Sequences) set(acc *account, next uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc.next, acc.known = next, true
}

// forget makes the next sender read the number from the chain.
func (s *Sequences) forget(acc *account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	acc.known = false
}
