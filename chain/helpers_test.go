package chain

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// stakeEpoch is a deterministic stand-in for the Yuma epoch in tests that
// exercise the chain around it: each neuron earns emission in proportion
// to its stake (as validator emission) and keeps its permit if it has
// stake.
func stakeEpoch(in *EpochInput) ([]EpochNeuronResult, error) {
	out := make([]EpochNeuronResult, len(in.Neurons))
	var total uint64
	for _, n := range in.Neurons {
		total += n.Stake
	}
	for i, n := range in.Neurons {
		r := &out[i]
		r.Active = n.LastUpdate+in.ActivityCutoff >= in.Block
		r.ValidatorPermit = n.Stake > 0
		if total > 0 {
			r.ValidatorEmission = mulDiv(in.Emission, n.Stake, total)
			r.Emission = r.ValidatorEmission
			r.Dividends = uint16(mulDiv(65535, n.Stake, total))
		}
		r.Bonds = n.Bonds
	}
	return out, nil
}

func testKey(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("chain test key %d", i)))
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

func addr(k *wallet.PrivateKey) Address { return k.PublicKey().Address() }

// harness drives a State block by block.
type harness struct {
	t   testing.TB
	s   *State
	seq map[Address]uint64
}

const testChainID = "cybertensor-test"

func testGenesis(funded ...*wallet.PrivateKey) Genesis {
	var bal []GenesisBalance
	for _, k := range funded {
		bal = append(bal, GenesisBalance{Address: addr(k), Amount: 1_000_000_000_000})
	}
	g := LocalnetGenesis(testChainID, addr(testKey(0)), bal)
	g.SubnetDefaults.Burn = 1_000
	g.SubnetDefaults.MinBurn = 1
	return g
}

func newHarness(t testing.TB, gen Genesis) *harness {
	t.Helper()
	s, err := NewState(gen, stakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	return &harness{t: t, s: s, seq: map[Address]uint64{}}
}

// tx signs msg with k at its next sequence number.
func (h *harness) tx(k *wallet.PrivateKey, msg *chainpb.Msg) []byte {
	h.t.Helper()
	a := addr(k)
	raw, err := SignTx(k, testChainID, h.seq[a], msg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.seq[a]++
	return raw
}

func blockHashFor(height uint64) []byte {
	sum := sha256.Sum256(binary.BigEndian.AppendUint64([]byte("test block"), height))
	return sum[:]
}

// block applies a block of txs.
func (h *harness) block(txs ...[]byte) *BlockResult {
	h.t.Helper()
	res, err := h.s.ApplyBlock(Block{Height: h.s.Height() + 1, Hash: blockHashFor(h.s.Height() + 1), Txs: txs})
	if err != nil {
		h.t.Fatal(err)
	}
	return res
}

// ok applies one tx in a block and fails the test unless it succeeded.
func (h *harness) ok(k *wallet.PrivateKey, msg *chainpb.Msg) TxResult {
	h.t.Helper()
	res := h.block(h.tx(k, msg))
	if r := res.Txs[0]; r.Code != 0 {
		h.t.Fatalf("tx failed: %s", r.Error)
	}
	return res.Txs[0]
}

func (h *harness) advance(n int) {
	for range n {
		h.block()
	}
}

func snapshot(s *State) map[string]string {
	out := map[string]string{}
	for _, r := range s.allRecords() {
		out[r.key] = string(r.value)
	}
	return out
}

// Message builders.
func mTransfer(to Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_Transfer{Transfer: &chainpb.Transfer{To: to[:], Amount: amount}}}
}
func mRegisterNetwork(name string) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_RegisterNetwork{RegisterNetwork: &chainpb.RegisterNetwork{Name: name}}}
}
func mBurned(netuid uint32, hotkey Address) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: netuid, Hotkey: hotkey[:]}}}
}
func mRootRegister(hotkey Address) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_RootRegister{RootRegister: &chainpb.RootRegister{Hotkey: hotkey[:]}}}
}
func mAddStake(hotkey Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hotkey[:], Amount: amount}}}
}
func mRemoveStake(hotkey Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_RemoveStake{RemoveStake: &chainpb.RemoveStake{Hotkey: hotkey[:], Amount: amount}}}
}
func mDelegate(hotkey Address, take uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_BecomeDelegate{BecomeDelegate: &chainpb.BecomeDelegate{Hotkey: hotkey[:], Take: take}}}
}
func mWeights(netuid uint32, uids, values []uint32, version uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: netuid, Uids: uids, Values: values, VersionKey: version}}}
}
func mCommit(netuid uint32, hash []byte) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_CommitWeights{CommitWeights: &chainpb.CommitWeights{Netuid: netuid, Hash: hash}}}
}
func mReveal(netuid uint32, uids, values []uint32, salt []byte, version uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_RevealWeights{RevealWeights: &chainpb.RevealWeights{Netuid: netuid, Uids: uids, Values: values, Salt: salt, VersionKey: version}}}
}
func mServe(netuid uint32, peerID string, addrs ...string) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_ServeAxon{ServeAxon: &chainpb.ServeAxon{Netuid: netuid, PeerId: peerID, Multiaddrs: addrs}}}
}
func mSudo(netuid uint32, name string, value uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: netuid, Name: name, Value: value}}}
}
func mGlobal(name string, value uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SudoSetGlobal{SudoSetGlobal: &chainpb.SudoSetGlobal{Name: name, Value: value}}}
}
func mRegister(netuid uint32, block, nonce uint64, coldkey Address) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_Register{Register: &chainpb.Register{Netuid: netuid, BlockNumber: block, Nonce: nonce, Coldkey: coldkey[:]}}}
}
func mCommitment(netuid uint32, hotkey Address, data []byte) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: netuid, Hotkey: hotkey[:], Data: data}}}
}
func mFaucet() *chainpb.Msg { return &chainpb.Msg{Sum: &chainpb.Msg_Faucet{Faucet: &chainpb.Faucet{}}} }

// storeHarness is a harness over a durable store in a fresh directory,
// for tests that a state survives a restart.
type storeHarness struct {
	*harness
	path string
	gen  Genesis
	db   *DB
}

// openStoreHarness opens a store for gen; it is closed at the test's end.
func openStoreHarness(t *testing.T, gen Genesis) *storeHarness {
	t.Helper()
	sh := &storeHarness{path: filepath.Join(t.TempDir(), "chain.db"), gen: gen}
	db, err := OpenDB(sh.path, gen, stakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	sh.db = db
	sh.harness = &harness{t: t, s: db.State(), seq: map[Address]uint64{}}
	t.Cleanup(func() { sh.db.Close() })
	return sh
}

// block commits a block of txs, each of which must succeed.
func (sh *storeHarness) block(txs ...[]byte) {
	sh.t.Helper()
	height := sh.db.State().Height() + 1
	res, err := sh.db.ApplyBlock(Block{Height: height, Hash: blockHashFor(height), Txs: txs})
	if err != nil {
		sh.t.Fatal(err)
	}
	for _, r := range res.Txs {
		if r.Code != 0 {
			sh.t.Fatalf("block %d: %+v", height, r)
		}
	}
}

// send commits a block of one message signed by k, which must succeed.
func (sh *storeHarness) send(k *wallet.PrivateKey, msg *chainpb.Msg) {
	sh.t.Helper()
	sh.block(sh.tx(k, msg))
}

// reopen closes the store and opens it again, checking the reopened
// state has the app hash the closed one had.
func (sh *storeHarness) reopen() {
	sh.t.Helper()
	appHash := sh.db.State().AppHash()
	if err := sh.db.Close(); err != nil {
		sh.t.Fatal(err)
	}
	db, err := OpenDB(sh.path, sh.gen, stakeEpoch)
	if err != nil {
		sh.t.Fatal(err)
	}
	sh.db, sh.s = db, db.State()
	if !bytes.Equal(sh.s.AppHash(), appHash) {
		sh.t.Fatalf("app hash %x after reopen, %x before", sh.s.AppHash(), appHash)
	}
}
