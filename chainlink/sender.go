package chainlink

import (
	"context"
	"errors"
	"sync"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// Sender signs and submits messages for one key, keeping its sequence
// number. It is safe for concurrent use: sends are serialized.
type Sender struct {
	chain Chain
	key   *wallet.PrivateKey
	addr  wallet.Address

	mu     sync.Mutex
	next   uint64
	synced bool
}

// NewSender returns a sender for key on c.
func NewSender(c Chain, key *wallet.PrivateKey) *Sender {
	return &Sender{chain: c, key: key, addr: key.PublicKey().Address()}
}

// Address is the signer's address.
func (s *Sender) Address() wallet.Address { return s.addr }

// Send signs msg with the next sequence number, submits it and waits for
// inclusion. After a sequence mismatch (another client used the key) it
// reloads the sequence and tries once more.
func (s *Sender) Send(ctx context.Context, msg *chainpb.Msg) (*Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := 0; ; attempt++ {
		if !s.synced {
			acc, err := s.chain.Account(ctx, s.addr)
			if err != nil {
				return nil, err
			}
			s.next, s.synced = acc.Sequence, true
		}
		raw, err := chain.SignTx(s.key, s.chain.ChainID(), s.next, msg)
		if err != nil {
			return nil, err
		}
		rec, err := s.chain.Submit(ctx, raw)
		switch {
		case err == nil:
			s.next++
			return rec, nil
		case errors.Is(err, chain.ErrBadSequence) && attempt == 0:
			s.synced = false
			continue
		default:
			var te *TxError
			if errors.As(err, &te) && te.Receipt != nil && te.Receipt.Height != 0 {
				s.next++ // failed in a block: the sequence was consumed
			} else if !errors.As(err, &te) {
				s.synced = false // unknown outcome: reload next time
			}
			return rec, err
		}
	}
}
