package comet

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
)

// Submit implements chainlink.Submitter: Admit, then wait for the block.
func (c *Client) Submit(ctx context.Context, raw []byte) (*chainlink.Receipt, error) {
	wait, err := c.Admit(ctx, raw)
	if err != nil {
		return nil, err
	}
	return wait(ctx)
}

// Admit implements chainlink.Admitter: the node's CheckTx. While the node
// is unreachable it tries again, with backoff, until ctx ends. The wait it
// returns polls for the block that includes the transaction, sends the
// transaction again if the node lost it (after a restart, and every
// RebroadcastEvery), and returns chainlink.ErrDropped once the chain will
// never include it.
func (c *Client) Admit(ctx context.Context, raw []byte) (func(context.Context) (*chainlink.Receipt, error), error) {
	hash := chain.TxHash(raw)
	var head chainlink.Head
	err := c.retry(ctx, func() (err error) {
		head, err = c.Head(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	lost := false // an attempt may have reached the node
	err = c.retry(ctx, func() error {
		err := c.broadcast(ctx, raw, hash)
		switch {
		case errors.Is(err, chainlink.ErrUnreachable):
			lost = true
		case lost && errors.Is(err, chainlink.ErrTxInCache):
			return nil // the earlier attempt got there
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context) (*chainlink.Receipt, error) {
		return c.await(ctx, raw, hash, head.Height)
	}, nil
}

// broadcast runs CheckTx on the node once.
func (c *Client) broadcast(ctx context.Context, raw []byte, hash [32]byte) error {
	res, err := c.rpc.BroadcastTxSync(ctx, raw)
	if err != nil {
		return c.observe(ctx, "sending the transaction", err)
	}
	c.observe(ctx, "", nil)
	if res.Code != 0 {
		return chainlink.FailedReceipt(&chainlink.Receipt{TxHash: hash, Code: res.Code, Error: res.Log})
	}
	return nil
}

// await waits for the block including the transaction admitted after
// block from.
func (c *Client) await(ctx context.Context, raw []byte, hash [32]byte, from uint64) (*chainlink.Receipt, error) {
	delay := c.cfg.PollInterval
	sent, away := time.Now(), false
	for {
		res, err := c.rpc.Tx(ctx, hash[:], false)
		if err == nil {
			c.observe(ctx, "", nil)
			return receiptOf(hash, res.Height, &res.TxResult)
		}
		err = c.observe(ctx, fmt.Sprintf("waiting for transaction %X", hash[:6]), err)
		switch {
		case ctx.Err() != nil:
			return nil, err
		case errors.Is(err, chainlink.ErrUnreachable):
			away = true
			delay = c.backoff(delay)
		default: // not in a block yet
			delay = c.cfg.PollInterval
			if away || time.Since(sent) >= c.cfg.RebroadcastEvery {
				away, sent = false, time.Now()
				if rec, done, err := c.rebroadcast(ctx, raw, hash, from); done {
					return rec, err
				}
			}
		}
		if err := c.sleep(ctx, delay); err != nil {
			return nil, fmt.Errorf("waiting for transaction %X: %w", hash[:6], err)
		}
	}
}

// rebroadcast sends an admitted transaction again: a node that restarted
// has forgotten it. If the node refuses it now, the transaction is either
// in a block already or will never be, and settle says which.
func (c *Client) rebroadcast(ctx context.Context, raw []byte, hash [32]byte, from uint64) (*chainlink.Receipt, bool, error) {
	err := c.broadcast(ctx, raw, hash)
	var refused *chainlink.TxError
	switch {
	case err == nil:
		c.log.Debug("sent a waiting transaction again", "tx", fmt.Sprintf("%X", hash[:6]))
		return nil, false, nil
	case !errors.As(err, &refused):
		return nil, false, nil // still held (ErrTxInCache), or try later
	}
	return c.settle(ctx, raw, hash, from, refused)
}

// settle decides the fate of a transaction the node no longer admits: it
// looks for it in every block since it was admitted (the node's index of
// transactions may lag or have missed it in a crash) and otherwise, since
// the node refuses it, reports it dropped. done is false when the node
// could not be asked; the caller tries later.
func (c *Client) settle(ctx context.Context, raw []byte, hash [32]byte, from uint64, refused *chainlink.TxError) (_ *chainlink.Receipt, done bool, _ error) {
	tx, err := chain.DecodeTx(raw)
	if err != nil {
		return nil, true, err
	}
	acc, err := c.Account(ctx, tx.Signer)
	if err != nil {
		return nil, false, nil
	}
	head, err := c.Head(ctx)
	if err != nil {
		return nil, false, nil
	}
	for h := int64(from) + 1; h <= int64(head.Height); h++ {
		blk, err := c.rpc.Block(ctx, &h)
		if err != nil {
			return nil, false, nil
		}
		for i, t := range blk.Block.Txs {
			if chain.TxHash(t) != hash {
				continue
			}
			res, err := c.rpc.BlockResults(ctx, &h)
			if err != nil || i >= len(res.TxsResults) {
				return nil, false, nil
			}
			rec, err := receiptOf(hash, h, res.TxsResults[i])
			return rec, true, err
		}
	}
	if acc.Sequence > tx.Body.Sequence {
		return nil, true, fmt.Errorf("%w: another transaction took its sequence number %d", chainlink.ErrDropped, tx.Body.Sequence)
	}
	return nil, true, fmt.Errorf("%w: the node no longer admits it: %w", chainlink.ErrDropped, refused)
}
