// Package abci serves the chain application to CometBFT v0.38 over ABCI++,
// so the chain runs under real BFT consensus across machines, and runs a
// CometBFT node in-process with it (one binary).
//
// FinalizeBlock applies a decided block to the in-memory state and returns
// the app hash; Commit persists it in one fsynced bbolt transaction. After
// a crash between the two, the disk holds the previous block and
// CometBFT's handshake replays the missing one. CheckTx runs every rule
// against the committed state, counting the sequence numbers of
// transactions already in the mempool, so a transaction that would fail is
// rejected before it spreads.
//
// # Queries
//
// Query paths return JSON (Code 0) or Code 1 with a message for a missing
// object:
//
//	/account/<address>          chain.Account
//	/hotkey/<address>           chain.HotkeyInfo
//	/stake/<coldkey>/<hotkey>   {"amount": N}
//	/subnets                    []chain.SubnetInfo
//	/subnet/<netuid>            chain.SubnetInfo
//	/neuron/<netuid>/<hotkey>   chain.NeuronInfo
//	/metagraph/<netuid>[/lite]  chain.Metagraph
//	/metagraph/<netuid>?fields=uids,stake,...  the chosen columns, chain.EncodeMetagraph
//	/commitment/<netuid>/<hotkey>  chain.CommitmentInfo
//	/commitments/<netuid>       []chain.CommitmentInfo in uid order
//	/identity/<coldkey>         chain.Identity
//	/subnetidentity/<netuid>    chain.Identity
//	/overview/<coldkey>         []chain.OwnedHotkey: its hotkeys and their uids
//	/stakes/<coldkey>           []chain.StakeEntry: its stake on each hotkey
//	/children/<netuid>/<hotkey>  chain.ChildKeysInfo: children, pending change, parents, childkey take
//	/weights/<netuid>           [][]chain.Entry (mechanism 0's)
//	/bonds/<netuid>             [][]chain.Entry (mechanism 0's)
//	/weights/<netuid>/<mech>    [][]chain.Entry of one mechanism (and /bonds/<netuid>/<mech>)
//	/mechanisms/<netuid>        chain.MechanismsInfo: shares, pending shares, incentive per mechanism
//	/delegates                  []chain.DelegateInfo in hotkey order
//	/delegate/<hotkey>          chain.DelegateInfo (take, payouts, return)
//	/delegations/<coldkey>      []chain.DelegationInfo, its stakes on delegates
//	/globals                    chain.Globals
//	/supply                     chain.Supply
//	/blockhash/<height>         {"hash": bytes} for the last 8 blocks
//	/lockcost                   chain.LockCost: the subnet lock cost ("amount") and its decay
//	/burncost/<netuid>          chain.BurnCost: the registration burn and its next adjustment
//
// The metagraph paths honour the request's Height (0 = the latest) and
// answer with the height they were computed at; a height the node does
// not keep is Code 3 (CodeHeightNotKept) with chain.HeightError's JSON.
// A node keeps chain.DefaultHistoryBlocks blocks of history unless
// StartNode is given chain.WithHistory.
package abci
