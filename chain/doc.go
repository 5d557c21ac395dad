// Package chain is the cybertensor chain application: a pure,
// deterministic state machine holding balances, subnets, neurons, stake and
// weights, with the message set of the original system's chain contract
// (cybercongress/cybernet, a port of opentensor/subtensor).
//
// # State machine
//
// State.ApplyBlock(Block) runs the block step (registration difficulty and
// burn adjustment, the root epoch that splits emission between subnets,
// emission accrual and each subnet's Yuma epoch at its tempo) and then the
// block's transactions, and returns the new app hash. It reads no clock,
// does no I/O and never lets map order reach a result: every node that
// applies the same blocks reaches the same state and app hash.
//
// The app hash is SHA-256 over the height and, in key order, each stored
// object's key and the SHA-256 of its canonical binary encoding (codec.go).
// Object hashes are cached and recomputed only for objects a block changed.
//
// # Transactions
//
// A transaction is a protobuf TxRaw (chainpb/tx.proto): body bytes, the
// signer's compressed secp256k1 public key and a 64-byte signature over
// "cybertensor-tx/1\x00" || body. The body carries the chain ID, the
// signer's next sequence number (no replays) and one message. A transaction
// whose envelope is invalid changes nothing; one whose message breaks a rule
// is rejected with a named TxError, consumes its sequence number and changes
// nothing else. CheckTx runs every check without changing the state, so an
// engine rejects such transactions before they reach a block.
//
// # Commitments
//
// SetCommitment (Msg field 16) lets a hotkey registered on a subnet publish
// 1 to 512 bytes there, as subtensor's commitments pallet does: the CID of
// a knowledge object, a model identifier, an endpoint. The transaction
// must be signed by the hotkey it names (signer_not_hotkey otherwise); the
// hotkey must hold a uid on the subnet (not_registered); the data must be
// 1 to 512 bytes (invalid_commitment); and a hotkey that committed at block
// b may commit again from block b + commitment_rate_limit on
// (commitment_rate_limit_exceeded before; the subnet hyperparameter, set by
// the owner or the root, defaults to 100 blocks; 0 disables it). The
// commitment replaces the previous one and lives in the neuron's record,
// so it is in the app hash, survives a restart and goes with the uid when
// a new registration replaces the neuron. It is read one by one, as a
// subnet's list (abci paths /commitment and /commitments), in the neuron
// and in the full metagraph.
//
// # Identities
//
// SetIdentity (Msg field 23) sets the signer coldkey's identity and
// SetSubnetIdentity (field 24) a subnet's: a name of 1 to 64 bytes, a URL
// of at most 256 and a description of at most 1024, valid UTF-8 without
// control characters (Unicode Cc), except that the description may contain
// newlines (invalid_identity otherwise). The chain checks nothing else: the
// URL is not fetched. Following subtensor, a coldkey sets an identity only
// while it owns a hotkey holding a uid on some subnet, the root network
// included (no_registered_hotkey), and keeps it when its hotkeys are
// deregistered; a subnet's identity is set by the subnet's owner only, not
// the chain root (not_subnet_owner), and the root network has none
// (operation_not_permitted_on_root). There is no fee and no rate limit.
// Sending an identity with every field empty removes the stored one (for a
// coldkey, without the registration check; removing none is accepted and
// changes nothing): its record (key i/<coldkey> or j/<netuid>) is
// deleted from the store and leaves the app hash. Subnets are never
// removed, so a subnet identity lives as long as its subnet. Identities are
// read one by one (abci paths /identity and /subnetidentity), in
// SubnetInfo and in the metagraph (the subnet's, and in the full metagraph
// each uid's coldkey's identity name).
// # Delegation and takes
//
// A hotkey's owner opens it to others' stake with BecomeDelegate, choosing
// its take: the u16 share (of 65535) of the hotkey's validator emission
// it keeps. The rest is paid into every staker's stake (the owner's own
// included) in proportion to it; the take and the rounding remainder go
// to the owner. Takes lie in [min_take, max_take], chain globals that
// default to subtensor's 0 and 18% (11796); default_take, 18%, is the take
// of a delegate that names none.
//
// SetTake (Msg field 17), signed by the owner coldkey, changes the take of
// a delegate (not_delegate otherwise): above max_take is invalid_take,
// below min_take take_too_low, the same take take_unchanged. Lowering
// applies at once and at any block. Raising is allowed from block
// b + take_rate_limit on, where b is the block the delegate opened or
// last raised its take (take_rate_limit_exceeded before; 0 disables the
// limit). take_rate_limit defaults to 2,592,000 blocks, 30 days of the
// 1 s blocks "chain init" makes (subtensor: 30 days of 12 s blocks); a
// localnet genesis uses 1000.
//
// Each delegate's record keeps its last 16 epoch payouts (oldest first;
// epochs of several subnets in one block make one payout): the block,
// the validator emission paid to its stakers net of the take, and its
// total stake just before the payout. From them, the return per 1,000
// tokens over the last epochs is
//
//	return_per_1000 = Σ_i floor(paid_i × 1000 × 10^9 / stake_i)
//
// in base units: what 1,000 tokens staked on the delegate through those
// payouts earned, without compounding. It is read with the delegate
// (abci paths /delegates, /delegate/<hotkey>) and with a coldkey's
// delegations (/delegations/<coldkey>).
// # Root network and emission shares
//
// RootRegister (Msg 5) puts a hotkey on the root network (netuid 0), at
// most max_root_validators of them; a full root network takes a hotkey
// with more stake than its lowest member, which it replaces. A root
// member's weights are set_weights on netuid 0 with netuids for uids: each
// must be an existing subnet other than the root (invalid_uid), each once
// (duplicate_uids), at least one; values are u16 and stored max-upscaled
// as on any subnet. At every root epoch (blocks b with (b + 1) mod
// (root_tempo + 1) = 0) the chain splits block_emission between subnets
// as cybernet's root_epoch does: rank_j = Σ_i stake_i/Σstake · w_ij/Σ_k w_ik
// over members i, consensus_j = σ(rho · (Σ_{i voting for j} stake_i/Σstake
// − kappa)), share_j = rank_j·consensus_j normalized; no members, no stake
// or no weights split it equally. Each subnet's EmissionPerBlock is
// floor(block_emission · share_j) until the next root epoch, so new root
// weights count from the next root epoch on.
//
// # Registration price
//
// A burned registration pays the subnet's burn; it adjusts with demand by
// cybernet's rule (adjust_burn). Every adjustment_interval blocks — in the
// first block b with b − last_adjustment_block ≥ adjustment_interval,
// before that block's transactions — with r the registrations of the
// interval (burned and proof of work), t = target_regs_per_interval and
// α = adjustment_alpha / 2^64:
//
//	next = floor(α·burn + (1 − α)·burn·(r + t) / (2t)), clamped to [min_burn, max_burn]
//
// computed exactly in integers. Which price moves depends on the
// interval's registrations: r > t with more burned than proof-of-work
// registrations moves the burn only; r > t with more by proof of work,
// the difficulty only; r ≤ t with more burned, the difficulty only; r ≤ t
// with more by proof of work, the burn only; equal counts (none at all
// included) move both, by the same formula. With α = 0 the burn doubles
// at r = 3t (the most an interval admits: too_many_registrations_this_interval)
// and halves at r = 0. The interval counters then reset. The query
// BurnCost (abci /burncost/<netuid>) gives the burn, the block of the next
// adjustment and the burn it makes given the registrations so far.
//
// A subnet's lock cost is twice the previous subnet registration's lock,
// falling by last_lock / network_lock_reduction_interval per block since
// it, never below network_min_lock_cost (LockCostInfo, abci /lockcost).
//
// BurnedRegister carries max_burn and RegisterNetwork max_lock (0: no
// limit): a price at inclusion above the limit refuses the registration
// with burn_above_limit or lock_above_limit instead of charging it, so a
// client quoting a price pays at most that (subtensor's register_limit).
//
// # Weights version key and serving rate limit
//
// A subnet's weights_version_key (set by its owner or the root) is the
// lowest version_key set_weights and reveal_weights accept
// (incorrect_version_key below it; a commit binds the version it will
// reveal); raising it refuses validators that have not upgraded. The
// project's validator sends neuron.WeightsVersion. A neuron that served
// its axon at block b may serve again from block b + serving_rate_limit
// (serving_rate_limit_exceeded before; 0 disables it).
//
// # Stake moves and hotkey swaps
//
// MoveStake (Msg field 20) moves a coldkey's stake from one hotkey to
// another, TransferStake (21) gives it to another coldkey on the same
// hotkey, as subtensor's move_stake and transfer_stake do within a
// subnet; neither touches a balance or the total stake. The destination
// must be able to receive it as add_stake would: a hotkey owned by the
// staking coldkey, or a delegate (non_associated_coldkey otherwise). The
// origin and destination differ (same_hotkey, same_coldkey), the amount is
// positive and at most the stake (invalid_amount, not_enough_stake), and
// both count against the coldkey's tx_rate_limit like add and remove.
//
// SwapHotkey (22), signed by the owner coldkey, moves everything of a
// hotkey to a new one the chain has never seen (new_hotkey_in_use): the
// Hotkey record (owner, delegation, take, every coldkey's stake) and the
// uid on every subnet and the root network with its neuron (weights,
// bonds, scores, weight commit, commitment), clearing the axon, which is
// the old key's libp2p identity. The old hotkey's record is deleted. The
// coldkey pays hotkey_swap_cost (a global, 0.1 token by default, as
// subtensor's KeySwapCost), which is burned from the issuance
// (not_enough_balance_to_swap_hotkey), and the swap counts against its
// tx_rate_limit, as subtensor's swap_hotkey does.
//
// Overview (abci /overview/<coldkey>) lists a coldkey's hotkeys with
// their uid, stake, emission, axon and last update on each subnet;
// StakesOf (/stakes/<coldkey>) its stake on every hotkey with the
// delegate's take. Both are in address order.
//
// # Child hotkeys
//
// SetChildren (Msg field 18), signed by a hotkey's owner coldkey, replaces
// the hotkeys it lends stake weight to on a subnet (not the root): at most
// 5 children (too_many_children), none twice (duplicate_child), none the
// parent (invalid_child) or a parent of the parent there
// (child_parent_cycle), each proportion (of 2^64−1) positive and their sum
// at most 2^64−1 (invalid_child_proportion). As in subtensor, neither
// needs a uid on the subnet. The change is pending until the block step
// of block b + children_cooldown (b its block; the global defaults to
// 86,400, a day of 1 s blocks as subtensor's 7,200 are of 12 s blocks; 15
// on a localnet) and a later one replaces it; an empty list revokes. At
// that step it is re-checked for a cycle and dropped if one appeared.
// SetChildkeyTake (field 19), signed by the child's owner, sets the share
// of dividends from lent stake the child keeps, 0 to max_childkey_take
// (11796, 18%; invalid_childkey_take); raising it waits
// childkey_take_rate_limit blocks (2,592,000, 30 days of 1 s blocks as
// subtensor's 216,000 are of 12 s blocks; 5 on a localnet) since it was
// last set (childkey_take_rate_limit_exceeded). Both live in one record
// per (netuid, hotkey) under "c/".
//
// A subnet's epoch counts each neuron's effective stake: its stake less
// floor(stake · p / (2^64−1)) for each proportion p it lends, plus that
// amount from each parent. Of a child's validator emission V, each parent
// gets floor(V · lent / effective), less floor(· take / 65535) when the two
// hotkeys have different owners, paid like a validator's own emission to
// the parent and its nominators; the child keeps the rest, so nothing is
// created or lost. A subnet without children pays as before at the cost of
// one map lookup. /children/<netuid>/<hotkey> reads it all back. A
// swap_hotkey moves the old hotkey's child keys and take to the new one
// and renames it in its parents' lists; it is refused (invalid_child) if
// the old hotkey lends to the new one, which would lend to itself.
//
// # Mechanisms
//
// A subnet runs 1 to MaxMechanisms (16) incentive mechanisms, as
// subtensor's mechanisms do: one set of uids and stake, and per mechanism
// its own weights, bonds, consensus and incentive. SetMechanisms (Msg field
// 25), signed by the subnet's owner (not_subnet_owner; not the root
// network, operation_not_permitted_on_root), sets 1 to 16 shares, each
// positive (invalid_mechanism_shares): mechanism i gets shares[i] / Σ
// shares of the subnet's emission. The change is pending until the
// subnet's next epoch block and applies in that block's step after its
// epoch, before its transactions (a later SetMechanisms before then
// replaces it). SetWeights, CommitWeights and RevealWeights carry a
// mechanism (0 by default); one at or above the current count is refused
// with mechanism_does_not_exist. A commit on mechanism m > 0 is
// CommitHashMechanism: CommitHash's bytes followed by m as one byte.
//
// At an epoch block, a subnet with several mechanisms splits its pending
// emission E by SplitEmission: mechanism i gets floor(E·s_i/S) and the
// remainder (less than the count) goes to mechanism 0, so the parts sum
// to E exactly. Each mechanism's epoch runs on its part with its own
// weights, bonds and last-update blocks (a uid that never set weights
// there counts from its registration); the neuron is paid the sum of its
// emissions in one payment, its columns (rank, trust, consensus,
// incentive, dividends, validator trust, pruning score) become the
// share-weighted means floor(Σ v_i·s_i / S), active and validator permit
// the OR. Each mechanism's incentive is kept (Mechanisms, abci
// /mechanisms/<netuid>; the metagraph's MechanismIncentive). Reducing the
// count deletes the dropped mechanisms' weights, bonds and commits at the
// boundary; a new neuron taking a uid starts with none on any mechanism.
//
// Mechanism 0 lives in each neuron's record, as before mechanisms existed.
// A subnet that never set mechanisms, or whose change to one share
// applied, holds no mechanism record and stores, hashes and pays bit for
// bit as before.
//
// # Subnet spec lifecycle
//
// SetSubnetSpec (Msg field 26), signed by the owner, names a new 32-byte
// spec hash (invalid_spec_hash otherwise). It is pending until the
// subnet's next epoch block (its tempo boundary), whose block step makes
// it the subnet's spec_hash, so validators and miners switch at one block;
// a second SetSubnetSpec before then replaces the pending one. Its
// optional mechanism_shares schedule the spec's mechanisms as
// SetMechanisms does, in the same transaction, so both switch at the same
// block (invalid_mechanism_shares as for SetMechanisms). SubnetInfo
// shows spec_hash, pending_spec_hash and spec_effective_block (the block a
// pending hash takes effect; without one, the block the current hash took
// effect, or the registration block).
//
// # State records
//
// Keys of the stored records: "g" globals, "a/" accounts, "h/" hotkeys,
// "s/" subnet headers, "n/" neurons, "i/" coldkey and "j/" subnet
// identities, "c/" child keys, "e/" a subnet's mechanisms (shares, pending
// shares, per-mechanism incentive), "w/" a neuron's row on a mechanism
// other than 0 (netuid, mechanism byte, uid: weights, bonds, last update,
// commit), "u/" a subnet's spec change (pending hash, block the current
// one took effect).
//
// # Durability
//
// DB wraps a State with a bbolt file: each block's changed objects, its
// height, app hash and the block itself are written in one fsynced
// transaction, so a crash loses no committed block and a restart resumes
// at the last one.
//
// # History and the metagraph
//
// Commit also writes each changed record's previous value to an undo log
// (history.go), so DB.MetagraphAt answers a subnet's metagraph as it was
// at any of the last WithHistory blocks (DefaultHistoryBlocks by default;
// 0 keeps none) and names the oldest height kept otherwise. The history
// is node-local, not in the app hash. A metagraph holds only the columns
// a client chose (MetagraphFields, lite by default) and travels in a
// compact binary encoding (EncodeMetagraph, DecodeMetagraph).
package chain
