package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
	"strconv"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// Event is something a transaction or block step did, for clients to
// follow.
type Event struct {
	Type  string            `json:"type"`
	Attrs map[string]string `json:"attrs,omitempty"`
}

func event(typ string, kv ...string) Event {
	e := Event{Type: typ, Attrs: map[string]string{}}
	for i := 0; i+1 < len(kv); i += 2 {
		e.Attrs[kv[i]] = kv[i+1]
	}
	return e
}

func u64s(v uint64) string { return strconv.FormatUint(v, 10) }

// txContext is one transaction being checked or executed. Every handler
// checks everything first and returns before changing anything when check
// is set; so a failed check leaves the state as it was.
type txContext struct {
	tx    *Tx
	check bool
}

// CheckTx verifies a transaction against the current state without
// changing it: signature, chain ID, sequence and every rule of its message.
// Engines call it before accepting a transaction into a block.
func (s *State) CheckTx(raw []byte) error {
	tx, err := DecodeTx(raw)
	if err != nil {
		return err
	}
	if err := s.checkEnvelope(tx); err != nil {
		return err
	}
	_, err = s.dispatch(&txContext{tx: tx, check: true})
	return err
}

func (s *State) checkEnvelope(tx *Tx) error {
	if tx.Body.ChainId != s.g.ChainID {
		return txErr(ErrWrongChainID, "%q, this chain is %q", tx.Body.ChainId, s.g.ChainID)
	}
	var seq uint64
	if acc, ok := s.accounts[tx.Signer]; ok {
		seq = acc.Sequence
	}
	if tx.Body.Sequence != seq {
		return badSequence(tx.Body.Sequence, seq)
	}
	return nil
}

// deliverTx applies one transaction of a block. A transaction whose
// envelope (encoding, signature, chain ID, sequence) is invalid changes
// nothing; one whose message fails consumes the sequence number and
// changes nothing else.
func (s *State) deliverTx(raw []byte) TxResult {
	res := TxResult{Hash: TxHash(raw)}
	tx, err := DecodeTx(raw)
	if err == nil {
		err = s.checkEnvelope(tx)
	}
	if err != nil {
		res.Code, res.Error = CodeOf(err), err.Error()
		return res
	}
	res.Signer = tx.Signer
	if _, err := s.dispatch(&txContext{tx: tx, check: true}); err != nil {
		s.account(tx.Signer).Sequence++
		s.markAccount(tx.Signer)
		res.Code, res.Error = CodeOf(err), err.Error()
		return res
	}
	s.account(tx.Signer).Sequence++
	s.markAccount(tx.Signer)
	events, err := s.dispatch(&txContext{tx: tx})
	if err != nil {
		// The check passed, so execution cannot fail; a failure here is a
		// bug that would fork the chain if ignored.
		panic(fmt.Sprintf("chain: tx %x passed its check but failed: %v", res.Hash, err))
	}
	res.Events = events
	return res
}

func (s *State) dispatch(c *txContext) ([]Event, error) {
	switch m := c.tx.Body.Msg.Sum.(type) {
	case *chainpb.Msg_Transfer:
		return s.execTransfer(c, m.Transfer)
	case *chainpb.Msg_RegisterNetwork:
		return s.execRegisterNetwork(c, m.RegisterNetwork)
	case *chainpb.Msg_BurnedRegister:
		return s.execBurnedRegister(c, m.BurnedRegister)
	case *chainpb.Msg_Register:
		return s.execRegister(c, m.Register)
	case *chainpb.Msg_RootRegister:
		return s.execRootRegister(c, m.RootRegister)
	case *chainpb.Msg_AddStake:
		return s.execAddStake(c, m.AddStake)
	case *chainpb.Msg_RemoveStake:
		return s.execRemoveStake(c, m.RemoveStake)
	case *chainpb.Msg_BecomeDelegate:
		return s.execBecomeDelegate(c, m.BecomeDelegate)
	case *chainpb.Msg_SetWeights:
		return s.execSetWeights(c, m.SetWeights)
	case *chainpb.Msg_CommitWeights:
		return s.execCommitWeights(c, m.CommitWeights)
	case *chainpb.Msg_RevealWeights:
		return s.execRevealWeights(c, m.RevealWeights)
	case *chainpb.Msg_ServeAxon:
		return s.execServeAxon(c, m.ServeAxon)
	case *chainpb.Msg_SudoSetHyperparam:
		return s.execSudoSetHyperparam(c, m.SudoSetHyperparam)
	case *chainpb.Msg_SudoSetGlobal:
		return s.execSudoSetGlobal(c, m.SudoSetGlobal)
	case *chainpb.Msg_Faucet:
		return s.execFaucet(c)
	case *chainpb.Msg_SetCommitment:
		return s.execSetCommitment(c, m.SetCommitment)
	case *chainpb.Msg_SetIdentity:
		return s.execSetIdentity(c, m.SetIdentity)
	case *chainpb.Msg_SetSubnetIdentity:
		return s.execSetSubnetIdentity(c, m.SetSubnetIdentity)
	case *chainpb.Msg_SetTake:
		return s.execSetTake(c, m.SetTake)
	case *chainpb.Msg_MoveStake:
		return s.execMoveStake(c, m.MoveStake)
	case *chainpb.Msg_TransferStake:
		return s.execTransferStake(c, m.TransferStake)
	case *chainpb.Msg_SwapHotkey:
		return s.execSwapHotkey(c, m.SwapHotkey)
	case *chainpb.Msg_SetChildren:
		return s.execSetChildren(c, m.SetChildren)
	case *chainpb.Msg_SetChildkeyTake:
		return s.execSetChildkeyTake(c, m.SetChildkeyTake)
	case *chainpb.Msg_SetMechanisms:
		return s.execSetMechanisms(c, m.SetMechanisms)
	case *chainpb.Msg_SetSubnetSpec:
		return s.execSetSubnetSpec(c, m.SetSubnetSpec)
	default:
		return nil, txErr(ErrUnknownMessage, "%T", m)
	}
}

func (s *State) balance(a Address) uint64 {
	if acc, ok := s.accounts[a]; ok {
		return acc.Balance
	}
	return 0
}

func (s *State) debit(a Address, amount uint64) {
	s.account(a).Balance -= amount
	s.markAccount(a)
}

func (s *State) credit(a Address, amount uint64) {
	s.account(a).Balance += amount
	s.markAccount(a)
}

func (s *State) execTransfer(c *txContext, m *chainpb.Transfer) ([]Event, error) {
	to, err := addressFrom("to", m.To)
	if err != nil {
		return nil, err
	}
	if m.Amount == 0 {
		return nil, txErr(ErrInvalidAmount, "transfer of 0")
	}
	if bal := s.balance(c.tx.Signer); bal < m.Amount {
		return nil, txErr(ErrInsufficientBalance, "balance %s < %s", tokens(bal), tokens(m.Amount))
	}
	if c.check {
		return nil, nil
	}
	s.debit(c.tx.Signer, m.Amount)
	s.credit(to, m.Amount)
	return []Event{event("transfer", "from", c.tx.Signer.String(), "to", to.String(), "amount", u64s(m.Amount))}, nil
}

func (s *State) execFaucet(c *txContext) ([]Event, error) {
	amount := s.g.Globals.FaucetAmount
	if amount == 0 {
		return nil, txErr(ErrFaucetDisabled, "faucet_amount is 0")
	}
	if acc, ok := s.accounts[c.tx.Signer]; ok && acc.LastFaucetBlock != 0 && s.height-acc.LastFaucetBlock < s.g.Globals.FaucetInterval {
		return nil, txErr(ErrFaucetRateLimit, "last paid at block %d, interval %d", acc.LastFaucetBlock, s.g.Globals.FaucetInterval)
	}
	if s.g.TotalIssuance+amount > 1<<62 {
		return nil, txErr(ErrOverflow, "issuance")
	}
	if c.check {
		return nil, nil
	}
	s.credit(c.tx.Signer, amount)
	s.account(c.tx.Signer).LastFaucetBlock = s.height
	s.g.TotalIssuance += amount
	s.dirty.globals = true
	return []Event{event("faucet", "to", c.tx.Signer.String(), "amount", u64s(amount))}, nil
}

// subnet returns an existing subnet.
func (s *State) subnet(netuid uint32) (*Subnet, error) {
	if netuid > 0xffff {
		return nil, txErr(ErrNetworkDoesNotExist, "netuid %d", netuid)
	}
	sub, ok := s.subnets[uint16(netuid)]
	if !ok {
		return nil, txErr(ErrNetworkDoesNotExist, "netuid %d", netuid)
	}
	return sub, nil
}

// NetworkLockCost is what registering a subnet locks at the current
// block: twice the last lock, decaying linearly over the reduction
// interval, never below the minimum.
func (s *State) NetworkLockCost() uint64 {
	last, min := s.g.NetworkLastLock, s.g.Globals.NetworkMinLockCost
	mult := uint64(2)
	if s.g.NetworkLastLockBlock == 0 {
		mult = 1
	}
	cost := satMul(last, mult)
	decay := satMul(last/s.g.Globals.NetworkLockReductionInterval, s.height-s.g.NetworkLastLockBlock)
	if decay >= cost {
		cost = 0
	} else {
		cost -= decay
	}
	if cost < min {
		cost = min
	}
	return cost
}

func satMul(a, b uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi != 0 {
		return ^uint64(0)
	}
	return lo
}

const maxNameLen = 64

func (s *State) execRegisterNetwork(c *txContext, m *chainpb.RegisterNetwork) ([]Event, error) {
	if len(m.Name) > maxNameLen || (len(m.SpecHash) != 0 && len(m.SpecHash) != sha256.Size) {
		return nil, txErr(ErrInvalidName, "name of %d bytes (max %d), spec hash of %d bytes (0 or 32)", len(m.Name), maxNameLen, len(m.SpecHash))
	}
	if uint64(len(s.subnets)-1) >= s.g.Globals.SubnetLimit {
		return nil, txErr(ErrSubnetLimit, "%d subnets", len(s.subnets)-1)
	}
	if last := s.g.NetworkLastRegistered; last != 0 && s.height-last < s.g.Globals.NetworkRateLimit {
		return nil, txErr(ErrNetworkRateLimit, "last subnet registered at block %d, limit %d blocks", last, s.g.Globals.NetworkRateLimit)
	}
	cost := s.NetworkLockCost()
	if m.MaxLock != 0 && cost > m.MaxLock {
		return nil, txErr(ErrLockAboveLimit, "lock cost %s > max_lock %s", tokens(cost), tokens(m.MaxLock))
	}
	if bal := s.balance(c.tx.Signer); bal < cost {
		return nil, txErr(ErrInsufficientBalance, "balance %s < lock cost %s", tokens(bal), tokens(cost))
	}
	if c.check {
		return nil, nil
	}
	s.debit(c.tx.Signer, cost)
	netuid := s.nextNetuid()
	s.subnets[netuid] = &Subnet{
		Netuid: netuid, Name: m.Name, Owner: c.tx.Signer, SpecHash: append([]byte(nil), m.SpecHash...),
		RegisteredAt: s.height, Locked: cost, Params: s.subnetDefaults, LastAdjustmentBlock: s.height,
		uids: map[Address]uint16{},
	}
	s.markSubnet(netuid)
	s.g.NetworkLastLock = cost
	s.g.NetworkLastLockBlock = s.height
	s.g.NetworkLastRegistered = s.height
	s.dirty.globals = true
	return []Event{event("network_registered", "netuid", u64s(uint64(netuid)), "owner", c.tx.Signer.String(), "locked", u64s(cost))}, nil
}

// checkRegistrationLimits applies the rules shared by both registrations.
func (s *State) checkRegistrationLimits(sub *Subnet, hotkey Address) error {
	if sub.Netuid == RootNetuid {
		return txErr(ErrOnRootNetwork, "use root_register")
	}
	if sub.Params.RegistrationAllowed == 0 {
		return txErr(ErrRegistrationDisabled, "netuid %d", sub.Netuid)
	}
	return checkRegistrationRate(sub, hotkey)
}

// checkRegistrationRate applies the per-block and per-interval limits and
// refuses a hotkey already on the subnet.
func checkRegistrationRate(sub *Subnet, hotkey Address) error {
	if sub.RegsThisBlock >= sub.Params.MaxRegsPerBlock {
		return txErr(ErrTooManyRegsBlock, "%d this block", sub.RegsThisBlock)
	}
	if sub.RegsThisInterval >= 3*sub.Params.TargetRegsPerInterval {
		return txErr(ErrTooManyRegsInterval, "%d this interval", sub.RegsThisInterval)
	}
	if _, ok := sub.uids[hotkey]; ok {
		return txErr(ErrAlreadyRegistered, "%s on netuid %d", hotkey, sub.Netuid)
	}
	return nil
}

func (s *State) execBurnedRegister(c *txContext, m *chainpb.BurnedRegister) ([]Event, error) {
	hotkey, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if err := s.checkRegistrationLimits(sub, hotkey); err != nil {
		return nil, err
	}
	burn := sub.Params.Burn
	if m.MaxBurn != 0 && burn > m.MaxBurn {
		return nil, txErr(ErrBurnAboveLimit, "burn %s > max_burn %s", tokens(burn), tokens(m.MaxBurn))
	}
	if bal := s.balance(c.tx.Signer); bal < burn {
		return nil, txErr(ErrNotEnoughBalanceBurn, "balance %s < burn %s", tokens(bal), tokens(burn))
	}
	if !s.ownerAllowed(c.tx.Signer, hotkey) {
		return nil, txErr(ErrNonAssociatedColdkey, "%s is owned by %s", hotkey, s.hotkeys[hotkey].Owner)
	}
	if c.check {
		return nil, nil
	}
	s.debit(c.tx.Signer, burn)
	s.g.TotalIssuance -= burn
	s.dirty.globals = true
	uid := s.registerNeuron(sub, c.tx.Signer, hotkey)
	sub.BurnRegsThisInterval++
	sub.RegsThisInterval++
	sub.RegsThisBlock++
	s.markSubnet(sub.Netuid)
	return []Event{event("neuron_registered", "netuid", u64s(uint64(sub.Netuid)), "uid", u64s(uint64(uid)), "hotkey", hotkey.String(), "burned", u64s(burn))}, nil
}

// powWindow is how many blocks back a registration's work may be bound.
const powWindow = 3

// PoWSeal is the seal a registration's proof of work hashes: SHA-256 of
// the block hash, the hotkey and the nonce (8 bytes, big-endian).
func PoWSeal(blockHash []byte, hotkey Address, nonce uint64) [32]byte {
	b := make([]byte, 0, len(blockHash)+20+8)
	b = append(b, blockHash...)
	b = append(b, hotkey[:]...)
	b = binary.BigEndian.AppendUint64(b, nonce)
	return sha256.Sum256(b)
}

// SealMeetsDifficulty reports whether seal, read as a 256-bit big-endian
// number, times difficulty stays below 2^256.
func SealMeetsDifficulty(seal [32]byte, difficulty uint64) bool {
	v := new(big.Int).SetBytes(seal[:])
	v.Mul(v, new(big.Int).SetUint64(difficulty))
	return v.BitLen() <= 256
}

// SolvePoW searches nonces from start for a seal meeting difficulty, at
// most tries of them. It returns the nonce and whether one was found.
func SolvePoW(blockHash []byte, hotkey Address, difficulty, start, tries uint64) (uint64, bool) {
	for n := start; n < start+tries; n++ {
		if SealMeetsDifficulty(PoWSeal(blockHash, hotkey, n), difficulty) {
			return n, true
		}
	}
	return 0, false
}

// BlockHash returns the hash of a recent block (the last 8 are kept).
func (s *State) BlockHash(height uint64) ([]byte, bool) {
	for _, h := range s.g.RecentHashes {
		if h.Height == height {
			return append([]byte(nil), h.Hash...), true
		}
	}
	return nil, false
}

func (s *State) execRegister(c *txContext, m *chainpb.Register) ([]Event, error) {
	hotkey := c.tx.Signer
	coldkey, err := addressFrom("coldkey", m.Coldkey)
	if err != nil {
		return nil, err
	}
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if err := s.checkRegistrationLimits(sub, hotkey); err != nil {
		return nil, err
	}
	if m.BlockNumber > s.height || s.height-m.BlockNumber >= powWindow {
		return nil, txErr(ErrInvalidWorkBlock, "block %d at height %d", m.BlockNumber, s.height)
	}
	blockHash, ok := s.BlockHash(m.BlockNumber)
	if !ok {
		return nil, txErr(ErrInvalidWorkBlock, "no hash for block %d", m.BlockNumber)
	}
	seal := PoWSeal(blockHash, hotkey, m.Nonce)
	if !SealMeetsDifficulty(seal, sub.Params.Difficulty) {
		return nil, txErr(ErrInvalidDifficulty, "difficulty %d", sub.Params.Difficulty)
	}
	for _, w := range s.g.UsedWork {
		if w.Seal == seal {
			return nil, txErr(ErrWorkReused, "seal used at block %d", w.Block)
		}
	}
	if !s.ownerAllowed(coldkey, hotkey) {
		return nil, txErr(ErrNonAssociatedColdkey, "%s is owned by %s", hotkey, s.hotkeys[hotkey].Owner)
	}
	if c.check {
		return nil, nil
	}
	s.g.UsedWork = append(s.g.UsedWork, usedWork{Seal: seal, Block: s.height})
	s.dirty.globals = true
	uid := s.registerNeuron(sub, coldkey, hotkey)
	sub.PowRegsThisInterval++
	sub.RegsThisInterval++
	sub.RegsThisBlock++
	s.markSubnet(sub.Netuid)
	return []Event{event("neuron_registered", "netuid", u64s(uint64(sub.Netuid)), "uid", u64s(uint64(uid)), "hotkey", hotkey.String(), "pow", "true")}, nil
}

func (s *State) execRootRegister(c *txContext, m *chainpb.RootRegister) ([]Event, error) {
	hotkey, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	root := s.subnets[RootNetuid]
	if err := checkRegistrationRate(root, hotkey); err != nil {
		return nil, err
	}
	if !s.ownerAllowed(c.tx.Signer, hotkey) {
		return nil, txErr(ErrNonAssociatedColdkey, "%s is owned by %s", hotkey, s.hotkeys[hotkey].Owner)
	}
	replace := -1
	if uint64(len(root.neurons)) >= s.g.Globals.MaxRootValidators {
		lowest := ^uint64(0)
		for i, n := range root.neurons {
			if st := s.hotkeyStake(n.Hotkey); st < lowest {
				lowest, replace = st, i
			}
		}
		if s.hotkeyStake(hotkey) <= lowest {
			return nil, txErr(ErrStakeTooLowForRoot, "stake %s, lowest member %s", tokens(s.hotkeyStake(hotkey)), tokens(lowest))
		}
	}
	if c.check {
		return nil, nil
	}
	s.ensureHotkey(c.tx.Signer, hotkey)
	var uid uint16
	if replace < 0 {
		uid = s.registerNeuron(root, c.tx.Signer, hotkey)
	} else {
		uid = uint16(replace)
		old := root.neurons[uid]
		delete(root.uids, old.Hotkey)
		root.neurons[uid] = &Neuron{UID: uid, Hotkey: hotkey, RegisteredAt: s.height, LastUpdate: s.height, Active: true}
		root.uids[hotkey] = uid
		s.markNeuron(RootNetuid, uid)
		if !s.registeredAnywhere(old.Hotkey) {
			s.unstakeAll(old.Hotkey)
		}
	}
	if hk := s.hotkeys[hotkey]; !hk.Delegate {
		hk.Delegate, hk.Take, hk.TakeRaisedAt = true, uint16(s.g.Globals.DefaultTake), s.height
		s.markHotkey(hotkey)
	}
	root.RegsThisInterval++
	root.RegsThisBlock++
	s.markSubnet(RootNetuid)
	return []Event{event("root_registered", "uid", u64s(uint64(uid)), "hotkey", hotkey.String())}, nil
}

func (s *State) txRateLimited(coldkey Address) error {
	limit := s.g.Globals.TxRateLimit
	acc, ok := s.accounts[coldkey]
	if limit == 0 || !ok || acc.LastTxBlock == 0 {
		return nil
	}
	if s.height-acc.LastTxBlock <= limit {
		return txErr(ErrTxRateLimit, "last at block %d, limit %d", acc.LastTxBlock, limit)
	}
	return nil
}

func (s *State) stakeTarget(coldkey Address, field []byte) (Address, *Hotkey, error) {
	hotkey, err := addressFrom("hotkey", field)
	if err != nil {
		return hotkey, nil, err
	}
	hk, err := s.stakeableBy(coldkey, hotkey, "hotkey")
	return hotkey, hk, err
}

// stakeableBy returns the record of a hotkey coldkey may hold stake on
// (it owns it, or the hotkey is a delegate): not_registered if it has no
// account, non_associated_coldkey otherwise. role names the hotkey in the
// error ("hotkey", "destination hotkey").
func (s *State) stakeableBy(coldkey, hotkey Address, role string) (*Hotkey, error) {
	hk, ok := s.hotkeys[hotkey]
	if !ok {
		return nil, txErr(ErrNotRegistered, "%s %s has no account", role, hotkey)
	}
	if hk.Owner != coldkey && !hk.Delegate {
		return nil, txErr(ErrNonAssociatedColdkey, "%s %s is owned by %s and is not a delegate: %s cannot hold stake on it", role, hotkey, hk.Owner, coldkey)
	}
	return hk, nil
}

func (s *State) execAddStake(c *txContext, m *chainpb.AddStake) ([]Event, error) {
	coldkey := c.tx.Signer
	hotkey, _, err := s.stakeTarget(coldkey, m.Hotkey)
	if err != nil {
		return nil, err
	}
	if m.Amount == 0 {
		return nil, txErr(ErrInvalidAmount, "stake of 0")
	}
	if bal := s.balance(coldkey); bal < m.Amount {
		return nil, txErr(ErrInsufficientBalance, "balance %s < %s", tokens(bal), tokens(m.Amount))
	}
	if err := s.txRateLimited(coldkey); err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	s.debit(coldkey, m.Amount)
	s.addStake(coldkey, hotkey, m.Amount)
	s.account(coldkey).LastTxBlock = s.height
	return []Event{event("stake_added", "coldkey", coldkey.String(), "hotkey", hotkey.String(), "amount", u64s(m.Amount))}, nil
}

func (s *State) execRemoveStake(c *txContext, m *chainpb.RemoveStake) ([]Event, error) {
	coldkey := c.tx.Signer
	hotkey, hk, err := s.stakeTarget(coldkey, m.Hotkey)
	if err != nil {
		return nil, err
	}
	if m.Amount == 0 {
		return nil, txErr(ErrInvalidAmount, "unstake of 0")
	}
	if have := hk.Stakes[coldkey]; have < m.Amount {
		return nil, txErr(ErrNotEnoughStake, "stake %s < %s", tokens(have), tokens(m.Amount))
	}
	if err := s.txRateLimited(coldkey); err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	s.subStake(coldkey, hotkey, m.Amount)
	s.credit(coldkey, m.Amount)
	s.account(coldkey).LastTxBlock = s.height
	return []Event{event("stake_removed", "coldkey", coldkey.String(), "hotkey", hotkey.String(), "amount", u64s(m.Amount))}, nil
}

func (s *State) execBecomeDelegate(c *txContext, m *chainpb.BecomeDelegate) ([]Event, error) {
	coldkey := c.tx.Signer
	hotkey, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	hk, err := s.ownedHotkey(coldkey, hotkey)
	if err != nil {
		return nil, err
	}
	if hk.Delegate {
		return nil, txErr(ErrAlreadyDelegate, "%s", hotkey)
	}
	take := uint64(m.Take)
	if take == 0 {
		take = s.g.Globals.DefaultTake
	}
	if take > s.g.Globals.MaxTake {
		return nil, txErr(ErrInvalidTake, "take %d > max_take %d", take, s.g.Globals.MaxTake)
	}
	if take < s.g.Globals.MinTake {
		return nil, txErr(ErrTakeTooLow, "take %d < min_take %d", take, s.g.Globals.MinTake)
	}
	if err := s.txRateLimited(coldkey); err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	hk.Delegate, hk.Take, hk.TakeRaisedAt = true, uint16(take), s.height
	s.markHotkey(hotkey)
	s.account(coldkey).LastTxBlock = s.height
	s.markAccount(coldkey)
	return []Event{event("delegate_added", "hotkey", hotkey.String(), "take", u64s(take))}, nil
}

func (s *State) execServeAxon(c *txContext, m *chainpb.ServeAxon) ([]Event, error) {
	hotkey := c.tx.Signer
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	uid, ok := sub.uids[hotkey]
	if !ok {
		return nil, txErr(ErrNotRegistered, "%s on netuid %d", hotkey, sub.Netuid)
	}
	id, err := peer.Decode(m.PeerId)
	if err != nil {
		return nil, txErr(ErrInvalidAxon, "peer ID %q: %v", m.PeerId, err)
	}
	if want := c.tx.PublicKey.PeerID(); id != want {
		return nil, txErr(ErrInvalidAxon, "peer ID %s is not the hotkey's (%s)", id, want)
	}
	if len(m.Multiaddrs) == 0 || len(m.Multiaddrs) > 8 || len(m.Protocols) > 16 {
		return nil, txErr(ErrInvalidAxon, "%d multiaddrs (1 to 8), %d protocols (at most 16)", len(m.Multiaddrs), len(m.Protocols))
	}
	for _, a := range m.Multiaddrs {
		if len(a) > 256 {
			return nil, txErr(ErrInvalidAxon, "multiaddr longer than 256 bytes")
		}
		if _, err := ma.NewMultiaddr(a); err != nil {
			return nil, txErr(ErrInvalidAxon, "multiaddr %q: %v", a, err)
		}
	}
	for _, p := range m.Protocols {
		if len(p) == 0 || len(p) > 128 {
			return nil, txErr(ErrInvalidAxon, "protocol ID of %d bytes (1 to 128)", len(p))
		}
	}
	n := sub.neurons[uid]
	if limit := sub.Params.ServingRateLimit; n.Axon != nil && limit != 0 && s.height-n.Axon.Block < limit {
		return nil, txErr(ErrServingRateLimit, "served at block %d, limit %d", n.Axon.Block, limit)
	}
	if c.check {
		return nil, nil
	}
	n.Axon = &Axon{PeerID: m.PeerId, Multiaddrs: append([]string(nil), m.Multiaddrs...), Protocols: append([]string(nil), m.Protocols...), Version: m.Version, Block: s.height}
	s.markNeuron(sub.Netuid, uid)
	return []Event{event("axon_served", "netuid", u64s(uint64(sub.Netuid)), "uid", u64s(uint64(uid)), "peer_id", m.PeerId)}, nil
}

func (s *State) execSudoSetHyperparam(c *txContext, m *chainpb.SudoSetHyperparam) ([]Event, error) {
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	rule, ok := hyperparamRules[m.Name]
	if !ok {
		return nil, txErr(ErrUnknownParam, "%q (known: %v)", m.Name, HyperparamNames())
	}
	isRoot := c.tx.Signer == s.g.Root
	switch {
	case rule.who == byRoot && !isRoot:
		return nil, txErr(ErrNotRoot, "%s is set by the chain root", m.Name)
	case rule.who == byOwnerOrRoot && !isRoot && c.tx.Signer != sub.Owner:
		return nil, txErr(ErrNotOwnerOrRoot, "%s of netuid %d", m.Name, sub.Netuid)
	}
	params := sub.Params
	*rule.field(&params) = m.Value
	if err := params.validate(); err != nil {
		return nil, txErr(ErrInvalidParamValue, "%v", err)
	}
	if c.check {
		return nil, nil
	}
	sub.Params = params
	s.markSubnet(sub.Netuid)
	return []Event{event("hyperparam_set", "netuid", u64s(uint64(sub.Netuid)), "name", m.Name, "value", u64s(m.Value))}, nil
}

func (s *State) execSudoSetGlobal(c *txContext, m *chainpb.SudoSetGlobal) ([]Event, error) {
	rule, ok := globalRules[m.Name]
	if !ok {
		return nil, txErr(ErrUnknownParam, "%q (known: %v)", m.Name, GlobalNames())
	}
	if c.tx.Signer != s.g.Root {
		return nil, txErr(ErrNotRoot, "%s is set by the chain root", m.Name)
	}
	g := s.g.Globals
	*rule.field(&g) = m.Value
	if err := g.validate(); err != nil {
		return nil, txErr(ErrInvalidParamValue, "%v", err)
	}
	if c.check {
		return nil, nil
	}
	s.g.Globals = g
	s.dirty.globals = true
	return []Event{event("global_set", "name", m.Name, "value", u64s(m.Value))}, nil
}

// CheckTxSequence is CheckTx with the expected sequence number supplied by
// the caller: an engine with transactions waiting for a block passes the
// signer's next sequence counting those. It returns the decoded
// transaction.
func (s *State) CheckTxSequence(raw []byte, next func(Address) uint64) (*Tx, error) {
	tx, err := DecodeTx(raw)
	if err != nil {
		return nil, err
	}
	if tx.Body.ChainId != s.g.ChainID {
		return nil, txErr(ErrWrongChainID, "%q, this chain is %q", tx.Body.ChainId, s.g.ChainID)
	}
	if want := next(tx.Signer); tx.Body.Sequence != want {
		return nil, badSequence(tx.Body.Sequence, want)
	}
	if _, err := s.dispatch(&txContext{tx: tx, check: true}); err != nil {
		return nil, err
	}
	return tx, nil
}
