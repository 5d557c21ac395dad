package chain

import (
	"bytes"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// randomTxs builds a block's worth of random transactions, valid and
// invalid, from a fixed pool of keys.
func randomTxs(r *rand.Rand, h *harness, keys []*wallet.PrivateKey, n int) [][]byte {
	var txs [][]byte
	pick := func() *wallet.PrivateKey { return keys[r.IntN(len(keys))] }
	for range n {
		k := pick()
		other := addr(pick())
		netuid := uint32(r.IntN(3))
		var msg *chainpb.Msg
		switch r.IntN(14) {
		case 0:
			msg = mTransfer(other, uint64(r.IntN(1_000_000)))
		case 1:
			msg = mRegisterNetwork("n")
		case 2, 3:
			msg = mBurned(netuid, other)
		case 4:
			msg = mRootRegister(other)
		case 5:
			msg = mAddStake(other, uint64(r.IntN(10_000_000)))
		case 6:
			msg = mRemoveStake(other, uint64(r.IntN(1_000_000)))
		case 7:
			msg = mDelegate(other, uint32(r.IntN(20000)))
		case 8, 9:
			m := 1 + r.IntN(4)
			uids, vals := make([]uint32, m), make([]uint32, m)
			for i := range m {
				uids[i], vals[i] = uint32(r.IntN(6)), uint32(r.IntN(65536))
			}
			msg = mWeights(netuid, uids, vals, 0)
		case 10:
			msg = mServe(netuid, k.PublicKey().PeerID().String(), "/ip4/127.0.0.1/tcp/9")
		case 12:
			msg = mCommitment(netuid, addr(k), bytes.Repeat([]byte{'c'}, r.IntN(MaxCommitmentLen+2)))
		case 13:
			msg = mSetTake(other, uint32(r.IntN(20000)))
		default:
			msg = mSudo(netuid, []string{"kappa", "tempo", "immunity_period", "max_allowed_uids"}[r.IntN(4)], uint64(r.IntN(70000)))
		}
		if r.IntN(8) == 0 { // an identity set, or removed (an empty name)
			name := string(bytes.Repeat([]byte{'i'}, r.IntN(3)))
			msg = [...]*chainpb.Msg{mIdentity(name, "", ""), mSubnetIdentity(netuid, name, "", "")}[r.IntN(2)]
		}
		if r.IntN(20) == 0 {
			// A bad sequence number now and then.
			h.seq[addr(k)] += uint64(r.IntN(3))
		}
		txs = append(txs, h.tx(k, msg))
	}
	return txs
}

func propertyKeys() []*wallet.PrivateKey {
	keys := []*wallet.PrivateKey{kRoot, kOwner, kOther, kPoor}
	for i := 100; i < 108; i++ {
		keys = append(keys, testKey(i))
	}
	return keys
}

// Two instances applying the same random blocks agree on every app hash;
// a state rebuilt from its records hashes the same; replaying the block
// log from genesis reproduces the final hash.
func TestDeterminismProperty(t *testing.T) {
	seeds := 8
	blocks := 60
	if testing.Short() {
		seeds, blocks = 3, 40
	}
	for seed := range seeds {
		keys := propertyKeys()
		gen := testGenesis(keys...)
		gen.SubnetDefaults.Tempo = 5
		a, b := newHarness(t, gen), newHarness(t, gen)
		r := rand.New(rand.NewPCG(uint64(seed), 7))
		var log []Block
		for range blocks {
			txs := randomTxs(r, a, keys, 1+r.IntN(12))
			blk := Block{Height: a.s.Height() + 1, Hash: blockHashFor(a.s.Height() + 1), Txs: txs}
			ra, err := a.s.ApplyBlock(blk)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := b.s.ApplyBlock(blk)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(ra.AppHash, rb.AppHash) {
				t.Fatalf("seed %d block %d: app hashes differ", seed, blk.Height)
			}
			log = append(log, blk)
		}
		var recs []record
		for _, r := range a.s.allRecords() {
			recs = append(recs, r)
		}
		restored, err := restoreState(a.s.Height(), a.s.AppHash(), recs, stakeEpoch)
		if err != nil {
			t.Fatalf("seed %d: restore: %v", seed, err)
		}
		if !bytes.Equal(restored.AppHash(), a.s.AppHash()) {
			t.Fatal("restored state hashes differently")
		}
		replay := newHarness(t, gen)
		for _, blk := range log {
			if _, err := replay.s.ApplyBlock(blk); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(replay.s.AppHash(), a.s.AppHash()) {
			t.Fatalf("seed %d: replay from genesis differs", seed)
		}
		// The invariants of the token accounting hold.
		var balances, stakes uint64
		for _, acc := range a.s.accounts {
			balances += acc.Balance
		}
		for _, hk := range a.s.hotkeys {
			var sum uint64
			for _, v := range hk.Stakes {
				sum += v
			}
			if sum != hk.Total {
				t.Fatalf("seed %d: hotkey total %d != sum of stakes %d", seed, hk.Total, sum)
			}
			stakes += sum
		}
		if stakes != a.s.g.TotalStake || balances+stakes+lockedTotal(a.s) != a.s.g.TotalIssuance {
			t.Fatalf("seed %d: balances %d + stakes %d (total %d) + locked %d != issuance %d",
				seed, balances, stakes, a.s.g.TotalStake, lockedTotal(a.s), a.s.g.TotalIssuance)
		}
	}
}

func lockedTotal(s *State) uint64 {
	var t uint64
	for _, sub := range s.subnets {
		t += sub.Locked
	}
	return t
}

func TestDBPersistsAndRestores(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chain.db")
	keys := propertyKeys()
	gen := testGenesis(keys...)
	gen.SubnetDefaults.Tempo = 5
	db, err := OpenDB(path, gen, stakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: db.State(), seq: map[Address]uint64{}}
	r := rand.New(rand.NewPCG(1, 2))
	for range 30 {
		blk := Block{Height: db.State().Height() + 1, Hash: blockHashFor(db.State().Height() + 1), Txs: randomTxs(r, h, keys, 5)}
		if _, err := db.ApplyBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	want := db.State().AppHash()
	height := db.State().Height()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, err = OpenDB(path, gen, stakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if db.State().Height() != height || !bytes.Equal(db.State().AppHash(), want) {
		t.Fatalf("reopened at %d %x, want %d %x", db.State().Height(), db.State().AppHash(), height, want)
	}
	blk, ok, err := db.Block(height)
	if err != nil || !ok || blk.Height != height {
		t.Fatalf("block log: %v %v %+v", err, ok, blk.Height)
	}
	// Another chain's genesis is refused.
	other := gen
	other.ChainID = "another"
	db.Close()
	if _, err := OpenDB(path, other, stakeEpoch); err == nil {
		t.Fatal("opened with another chain's genesis")
	}
}
