// Package chainlink is the thin bridge between neurons and the chain: a small
// interface for reading the metagraph and submitting signed transactions,
// implemented by an embedded in-process chain and by a CometBFT client.
//
// # Sending
//
// A Sender signs messages for one key. Every Sender of a key on one client
// shares the client's Sequences, so concurrent sends pick distinct
// sequence numbers; an account's number is held only until the chain
// admits or refuses the transaction (Admitter), so one account's
// transactions share blocks. Clients that share nothing (two processes on
// one coldkey) meet at the chain: when it says a number is taken, the
// Sender signs again with the one it names, at most MaxSendAttempts times.
//
// # Errors
//
// A transaction the chain refuses is a *TxError whose message is one
// sentence (the rule, its name and the chain's detail) and which
// errors.Is matches against the chain's named errors. A node's own answers
// have sentinels: ErrTxInCache, ErrMempoolFull, ErrDropped, ErrUnreachable.
package chainlink
