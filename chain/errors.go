package chain

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// TxError is a named reason a transaction is rejected. Each has a stable
// code reported in TxResult.Code and to CometBFT.
type TxError struct {
	Code uint32
	Name string
	Msg  string
}

func (e *TxError) Error() string { return e.Name + ": " + e.Msg }

var txErrors = map[uint32]*TxError{}

func newTxError(code uint32, name, msg string) *TxError {
	if _, dup := txErrors[code]; dup {
		panic(fmt.Sprintf("chain: duplicate error code %d", code))
	}
	e := &TxError{Code: code, Name: name, Msg: msg}
	txErrors[code] = e
	return e
}

// ErrorByCode returns the named error with code, or nil.
func ErrorByCode(code uint32) *TxError { return txErrors[code] }

// Transaction errors, checked with errors.Is.
var (
	ErrTxDecode             = newTxError(1, "tx_decode", "the transaction is not a valid encoded transaction")
	ErrTxTooLarge           = newTxError(2, "tx_too_large", "the transaction exceeds the size limit")
	ErrBadSignature         = newTxError(3, "bad_signature", "the signature does not verify")
	ErrWrongChainID         = newTxError(4, "wrong_chain_id", "the transaction is for another chain")
	ErrBadSequence          = newTxError(5, "bad_sequence", "the sequence number is not the signer's next")
	ErrUnknownMessage       = newTxError(6, "unknown_message", "the transaction carries no known message")
	ErrInsufficientBalance  = newTxError(7, "insufficient_balance", "the balance is too low")
	ErrInvalidAmount        = newTxError(8, "invalid_amount", "the amount must be positive")
	ErrInvalidAddress       = newTxError(9, "invalid_address", "an address is not 20 bytes")
	ErrNetworkDoesNotExist  = newTxError(10, "network_does_not_exist", "no subnet has this netuid")
	ErrNotRegistered        = newTxError(11, "not_registered", "the hotkey is not registered")
	ErrAlreadyRegistered    = newTxError(12, "already_registered", "the hotkey is already registered on this subnet")
	ErrRegistrationDisabled = newTxError(13, "registration_disabled", "the subnet does not accept registrations")
	ErrTooManyRegsBlock     = newTxError(14, "too_many_registrations_this_block", "max_regs_per_block reached")
	ErrTooManyRegsInterval  = newTxError(15, "too_many_registrations_this_interval", "3 × target_regs_per_interval reached")
	ErrNotEnoughBalanceBurn = newTxError(16, "not_enough_balance_to_burn", "the balance does not cover the burn")
	ErrNonAssociatedColdkey = newTxError(17, "non_associated_coldkey", "the hotkey belongs to another coldkey")
	ErrInvalidWorkBlock     = newTxError(18, "invalid_work_block", "the work's block is not one of the last 3 blocks")
	ErrInvalidDifficulty    = newTxError(19, "invalid_difficulty", "the work does not meet the difficulty")
	ErrWorkReused           = newTxError(20, "work_reused", "this proof of work was already used")
	ErrOnRootNetwork        = newTxError(21, "operation_not_permitted_on_root", "not allowed on the root network")
	ErrStakeTooLowForRoot   = newTxError(22, "stake_too_low_for_root", "the hotkey's stake does not exceed the lowest root member's")
	ErrNotEnoughStake       = newTxError(23, "not_enough_stake_to_withdraw", "the stake is lower than the amount")
	ErrAlreadyDelegate      = newTxError(24, "already_delegate", "the hotkey is already a delegate")
	ErrInvalidTake          = newTxError(25, "invalid_take", "the take exceeds max_take")
	ErrTxRateLimit          = newTxError(26, "tx_rate_limit_exceeded", "too soon after this coldkey's last staking transaction")
	ErrWeightVecNotEqual    = newTxError(27, "weight_vec_not_equal_size", "uids and values differ in length")
	ErrTooManyUIDs          = newTxError(28, "too_many_uids", "more weights than neurons on the subnet")
	ErrDuplicateUIDs        = newTxError(29, "duplicate_uids", "a uid appears twice")
	ErrInvalidUID           = newTxError(30, "invalid_uid", "a uid does not exist on the subnet")
	ErrNotEnoughWeights     = newTxError(31, "not_setting_enough_weights", "fewer weights than min_allowed_weights")
	ErrMaxWeightExceeded    = newTxError(32, "max_weight_exceeded", "a normalized weight exceeds max_weight_limit")
	ErrIncorrectVersionKey  = newTxError(33, "incorrect_version_key", "the version key is below the subnet's weights_version_key")
	ErrNoValidatorPermit    = newTxError(34, "no_validator_permit", "only neurons with a validator permit set non-self weights")
	ErrWeightsRateLimit     = newTxError(35, "setting_weights_too_fast", "weights_rate_limit blocks have not passed")
	ErrInvalidWeightValue   = newTxError(36, "invalid_weight_value", "a uid or weight does not fit 16 bits")
	ErrCommitRevealEnabled  = newTxError(37, "commit_reveal_enabled", "this subnet takes weights by commit and reveal")
	ErrCommitRevealDisabled = newTxError(38, "commit_reveal_disabled", "this subnet takes weights with set_weights")
	ErrNoWeightsCommit      = newTxError(39, "no_weights_commit", "no commit to reveal")
	ErrRevealTooEarly       = newTxError(40, "reveal_too_early", "reveal in the interval after the commit's")
	ErrRevealExpired        = newTxError(41, "reveal_expired", "the commit's reveal interval has passed")
	ErrRevealMismatch       = newTxError(42, "reveal_mismatch", "the revealed weights do not match the commit")
	ErrInvalidCommitHash    = newTxError(43, "invalid_commit_hash", "the commit hash is not 32 bytes")
	ErrServingRateLimit     = newTxError(44, "serving_rate_limit_exceeded", "serving_rate_limit blocks have not passed")
	ErrInvalidAxon          = newTxError(45, "invalid_axon", "the peer ID or multiaddrs are invalid")
	ErrNotOwnerOrRoot       = newTxError(46, "not_subnet_owner_or_root", "only the subnet owner or the chain root may do this")
	ErrNotRoot              = newTxError(47, "not_root", "only the chain root may do this")
	ErrUnknownParam         = newTxError(48, "unknown_parameter", "no parameter has this name")
	ErrInvalidParamValue    = newTxError(49, "invalid_parameter_value", "the value is out of range")
	ErrSubnetLimit          = newTxError(50, "subnet_limit_reached", "the chain has subnet_limit subnets")
	ErrNetworkRateLimit     = newTxError(51, "network_rate_limit", "too soon after the last subnet registration")
	ErrInvalidName          = newTxError(52, "invalid_name", "the name or spec hash is too long")
	ErrFaucetDisabled       = newTxError(53, "faucet_disabled", "this chain has no faucet")
	ErrFaucetRateLimit      = newTxError(54, "faucet_rate_limit", "faucet_interval blocks have not passed")
	ErrOverflow             = newTxError(55, "overflow", "an amount would overflow")
	ErrInvalidCommitment    = newTxError(56, "invalid_commitment", "a commitment is 1 to 512 bytes")
	ErrCommitmentRateLimit  = newTxError(57, "commitment_rate_limit_exceeded", "commitment_rate_limit blocks have not passed")
	ErrSignerNotHotkey      = newTxError(58, "signer_not_hotkey", "the hotkey itself must sign this transaction")
	ErrInvalidIdentity      = newTxError(78, "invalid_identity", "an identity is a name of 1 to 64 bytes, a URL of at most 256 and a description of at most 1024, UTF-8 without control characters")
	ErrNotSubnetOwner       = newTxError(79, "not_subnet_owner", "only the subnet's owner may do this")
	ErrNoRegisteredHotkey   = newTxError(80, "no_registered_hotkey", "the coldkey owns no hotkey registered on a subnet")
	ErrNotDelegate          = newTxError(59, "not_delegate", "the hotkey is not a delegate")
	ErrTakeTooLow           = newTxError(60, "take_too_low", "the take is below min_take")
	ErrTakeRateLimit        = newTxError(61, "take_rate_limit_exceeded", "take_rate_limit blocks have not passed since the take was last raised")
	ErrTakeUnchanged        = newTxError(62, "take_unchanged", "the take is already this value")
	ErrSameHotkey           = newTxError(70, "same_hotkey", "the origin and destination hotkeys are the same")
	ErrSameColdkey          = newTxError(71, "same_coldkey", "stake cannot be transferred to the coldkey that holds it")
	ErrHotkeyInUse          = newTxError(72, "new_hotkey_in_use", "the new hotkey already has an owner, stake or a registration")
	ErrNotEnoughBalanceSwap = newTxError(73, "not_enough_balance_to_swap_hotkey", "the balance does not cover hotkey_swap_cost")
	// Child hotkeys (#23).
	ErrTooManyChildren        = newTxError(63, "too_many_children", "a parent has at most 5 children on a subnet")
	ErrDuplicateChild         = newTxError(64, "duplicate_child", "a child appears twice")
	ErrInvalidChild           = newTxError(65, "invalid_child", "a hotkey cannot be its own child")
	ErrChildParentCycle       = newTxError(66, "child_parent_cycle", "a child is a parent of the parent on this subnet")
	ErrInvalidChildProportion = newTxError(67, "invalid_child_proportion", "each proportion is positive and they sum to at most 2^64−1")
	ErrInvalidChildkeyTake    = newTxError(68, "invalid_childkey_take", "the childkey take exceeds max_childkey_take")
	ErrChildkeyTakeRateLimit  = newTxError(69, "childkey_take_rate_limit_exceeded", "childkey_take_rate_limit blocks have not passed since the take was last set")
)

// Price limits (#23 registration price): a registration names the most it
// pays, and is refused rather than charged more.
var (
	ErrBurnAboveLimit = newTxError(75, "burn_above_limit", "the registration burn is above the transaction's max_burn")
	ErrLockAboveLimit = newTxError(76, "lock_above_limit", "the subnet lock cost is above the transaction's max_lock")
)

// Mechanisms and subnet specs (#21).
var (
	ErrInvalidMechanismShares = newTxError(81, "invalid_mechanism_shares", "a subnet has 1 to 16 mechanisms, each with a positive share")
	ErrMechanismDoesNotExist  = newTxError(82, "mechanism_does_not_exist", "the mechanism is not below the subnet's mechanism count")
	ErrInvalidSpecHash        = newTxError(83, "invalid_spec_hash", "a spec hash is 32 bytes")
)

// Is lets errors.Is match a TxError by code.
func (e *TxError) Is(target error) bool {
	var t *TxError
	return errors.As(target, &t) && t.Code == e.Code
}

// txErr wraps a named error with detail.
func txErr(e *TxError, format string, args ...any) error {
	return fmt.Errorf("%w: %s", e, fmt.Sprintf(format, args...))
}

// badSequence is ErrBadSequence for a transaction signed with got when
// the chain wants want; ExpectedSequence reads want back from its text.
func badSequence(got, want uint64) error {
	return txErr(ErrBadSequence, "got %d, want %d", got, want)
}

// ExpectedSequence returns the sequence number a bad_sequence error's text
// (as a node reports it in a transaction's log) says the chain wanted: a
// client that shares its key with another one signs again with it.
func ExpectedSequence(msg string) (uint64, bool) {
	if !strings.HasPrefix(msg, ErrBadSequence.Error()) {
		return 0, false
	}
	i := strings.LastIndex(msg, ", want ")
	if i < 0 {
		return 0, false
	}
	want, err := strconv.ParseUint(msg[i+len(", want "):], 10, 64)
	return want, err == nil
}

// CodeOf returns the code of the named error in err, or 0 for nil and an
// unnamed error's 1000.
func CodeOf(err error) uint32 {
	if err == nil {
		return 0
	}
	var t *TxError
	if errors.As(err, &t) {
		return t.Code
	}
	return 1000
}
