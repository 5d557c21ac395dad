package chainlink

import (
	"context"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/wallet"
)

// Head is a committed block as neurons see it.
type Head struct {
	Height  uint64 `json:"height"`
	AppHash []byte `json:"app_hash"`
	// Hash is the block's hash (registrations bind proof of work to it).
	Hash []byte `json:"hash"`
	// Epochs lists the subnets whose epoch ran in this block.
	Epochs []uint16 `json:"epochs,omitempty"`
}

// Receipt says how a transaction ended.
type Receipt struct {
	TxHash [32]byte      `json:"tx_hash"`
	Height uint64        `json:"height"`
	Code   uint32        `json:"code"`
	Error  string        `json:"error,omitempty"`
	Events []chain.Event `json:"events,omitempty"`
}

// Reader reads chain state.
type Reader interface {
	// ChainID is the chain's ID, which transactions must carry.
	ChainID() string
	// Head returns the latest committed block.
	Head(ctx context.Context) (Head, error)
	// Account returns an address's balance and next sequence number.
	Account(ctx context.Context, a wallet.Address) (chain.Account, error)
	// Subnets lists the subnets.
	Subnets(ctx context.Context) ([]chain.SubnetInfo, error)
	// Subnet returns one subnet with its hyperparameters; ErrNotFound if
	// it does not exist.
	Subnet(ctx context.Context, netuid uint16) (chain.SubnetInfo, error)
	// Neuron returns the neuron a hotkey holds on a subnet; ErrNotFound
	// if it holds none.
	Neuron(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.NeuronInfo, error)
	// Metagraph returns a subnet's metagraph; lite leaves out weights and
	// bonds.
	Metagraph(ctx context.Context, netuid uint16, lite bool) (*chain.Metagraph, error)
	// Commitment returns the data a hotkey committed on a subnet;
	// ErrNotFound if it holds no uid there or committed nothing.
	Commitment(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.CommitmentInfo, error)
	// Commitments lists a subnet's commitments in uid order; ErrNotFound
	// if the subnet does not exist.
	Commitments(ctx context.Context, netuid uint16) ([]chain.CommitmentInfo, error)
	// Identity returns a coldkey's identity; ErrNotFound if it has none.
	Identity(ctx context.Context, coldkey wallet.Address) (chain.Identity, error)
	// SubnetIdentity returns a subnet's identity; ErrNotFound if the
	// subnet does not exist or has none.
	SubnetIdentity(ctx context.Context, netuid uint16) (chain.Identity, error)
	// Delegate returns a delegate with its take, stake and recent
	// payouts; ErrNotFound if the hotkey is not a delegate.
	Delegate(ctx context.Context, hotkey wallet.Address) (chain.DelegateInfo, error)
	// Delegates lists the delegates in hotkey address order.
	Delegates(ctx context.Context) ([]chain.DelegateInfo, error)
	// Delegations lists a coldkey's stakes on delegates.
	Delegations(ctx context.Context, coldkey wallet.Address) ([]chain.DelegationInfo, error)
	// BurnCost returns a subnet's registration burn and where its next
	// adjustment takes it; ErrNotFound if the subnet does not exist.
	BurnCost(ctx context.Context, netuid uint16) (chain.BurnCost, error)
	// LockCost returns what registering a subnet locks now.
	LockCost(ctx context.Context) (chain.LockCost, error)
	// Overview lists every hotkey a coldkey owns, in address order, with
	// its uid on each subnet (empty for an unknown coldkey).
	Overview(ctx context.Context, coldkey wallet.Address) ([]chain.OwnedHotkey, error)
	// StakesOf lists a coldkey's stake on each hotkey, in hotkey address
	// order, with the hotkey's owner and delegate take.
	StakesOf(ctx context.Context, coldkey wallet.Address) ([]chain.StakeEntry, error)
	// ChildKeys returns a hotkey's children (applied and pending, with
	// the block the change applies at), parents and childkey take on a
	// subnet; ErrNotFound if the subnet does not exist.
	ChildKeys(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.ChildKeysInfo, error)
	// Mechanisms returns a subnet's incentive mechanisms: their emission
	// shares, a pending change and each one's incentive by uid from the
	// last epoch; ErrNotFound if the subnet does not exist. Weights,
	// commits and reveals name a mechanism in their message's
	// mechanism field; SetMechanisms (owner only) changes the shares.
	Mechanisms(ctx context.Context, netuid uint16) (chain.MechanismsInfo, error)
}

// Submitter sends signed transactions.
type Submitter interface {
	// Submit sends an encoded, signed transaction and waits until a block
	// includes it. A transaction the chain rejects, before or in the
	// block, returns a *TxError naming the rule (errors.Is matches the
	// chain's named errors) and changed nothing but, if it reached a
	// block, the signer's sequence number.
	Submit(ctx context.Context, tx []byte) (*Receipt, error)
}

// Admitter is a Submitter whose two steps can be taken apart: Admit
// returns once the chain has accepted the transaction for a coming block
// (or refused it, with the errors Submit returns), and wait then waits for
// that block as Submit does. A Sender holds its account's next sequence
// number only over Admit, so one account's transactions share blocks.
type Admitter interface {
	Admit(ctx context.Context, tx []byte) (wait func(context.Context) (*Receipt, error), err error)
}

// Subscriber follows new blocks.
type Subscriber interface {
	// SubscribeHeads delivers every new head until ctx ends, then closes
	// the channel. A subscriber that falls behind skips to the latest head.
	SubscribeHeads(ctx context.Context) (<-chan Head, error)
}

// Chain is everything a neuron needs from the chain.
type Chain interface {
	Reader
	Submitter
	Subscriber
}
