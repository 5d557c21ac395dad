package chainlink

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cybertensor/cybertensor/chain"
)

// ErrNotFound is returned for a subnet or neuron that does not exist.
var ErrNotFound = errors.New("chainlink: not found")

// ErrClosed is returned after the chain connection was closed.
var ErrClosed = errors.New("chainlink: closed")

// ErrTxInCache is a node's answer to a transaction identical to one it
// already holds: another client signed the same message with the same
// sequence number. A Sender signs again with the next number.
var ErrTxInCache = errors.New("an identical transaction is already waiting for a block")

// ErrMempoolFull is a node's answer when it holds as many waiting
// transactions as it can.
var ErrMempoolFull = errors.New("the chain node holds too many waiting transactions; try again later")

// ErrDropped says a transaction the chain had admitted will never be in a
// block: the node lost it (it restarted) and no longer admits it, or
// another transaction took its sequence number. Nothing of it was applied.
var ErrDropped = errors.New("the transaction was dropped before reaching a block")

// ErrUnreachable wraps the failures to reach a chain node at all.
var ErrUnreachable = errors.New("cannot reach the chain node")

// TxError is a transaction the chain rejected.
type TxError struct {
	Receipt *Receipt
	// Err is the chain's named error (a *chain.TxError), if known.
	Err error
}

// Error says in one sentence what was refused and why: the rule's
// description, then its name and the chain's detail in parentheses.
func (e *TxError) Error() string {
	if e.Receipt != nil && e.Receipt.Height != 0 {
		return fmt.Sprintf("transaction %X failed in block %d: %s", e.Receipt.TxHash[:6], e.Receipt.Height, e.reason())
	}
	return "the chain refused the transaction: " + e.reason()
}

// reason is the named rule's description with its name and detail, e.g.
// "the hotkey is already registered on this subnet (already_registered:
// 5F… on netuid 1)".
func (e *TxError) reason() string {
	var named *chain.TxError
	if !errors.As(e.Err, &named) {
		if e.Err == nil && e.Receipt != nil {
			return e.Receipt.Error
		}
		return fmt.Sprint(e.Err)
	}
	text := e.Err.Error()
	if e.Receipt != nil && e.Receipt.Error != "" {
		text = e.Receipt.Error
	}
	detail := text
	if strings.HasPrefix(text, named.Error()) {
		detail = strings.TrimPrefix(text[len(named.Error()):], ": ")
	}
	if detail == "" {
		return fmt.Sprintf("%s (%s)", named.Msg, named.Name)
	}
	return fmt.Sprintf("%s (%s: %s)", named.Msg, named.Name, detail)
}

func (e *TxError) Unwrap() error { return e.Err }

// ExpectedSequence is, for a bad_sequence rejection, the sequence number
// the chain wanted.
func (e *TxError) ExpectedSequence() (uint64, bool) {
	if !errors.Is(e.Err, chain.ErrBadSequence) {
		return 0, false
	}
	if e.Receipt != nil {
		if want, ok := chain.ExpectedSequence(e.Receipt.Error); ok {
			return want, true
		}
	}
	return chain.ExpectedSequence(e.Err.Error())
}

// FailedReceipt turns a failed receipt into a *TxError.
func FailedReceipt(r *Receipt) error {
	var named error = errors.New(r.Error)
	if ce := chain.ErrorByCode(r.Code); ce != nil {
		named = ce
	}
	return &TxError{Receipt: r, Err: named}
}
