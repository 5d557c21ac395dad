package chain

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// FuzzDecodeTx feeds arbitrary bytes to the transaction decoder: it never
// panics, and what it accepts has a valid signature by its signer.
func FuzzDecodeTx(f *testing.F) {
	h := scenario(f)
	for _, msg := range []*chainpb.Msg{
		mTransfer(addr(kPoor), 5), mWeights(1, []uint32{1, 2}, []uint32{3, 4}, 0), mServe(1, addr0PeerID(hMin1), "/ip4/127.0.0.1/tcp/1"),
		mSudo(1, "kappa", 1), mRegisterNetwork("x"), mFaucet(),
	} {
		f.Add(h.tx(kOther, msg))
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := DecodeTx(raw)
		if err != nil {
			if CodeOf(err) == 1000 {
				t.Fatalf("unnamed error: %v", err)
			}
			return
		}
		var tr chainpb.TxRaw
		if err := proto.Unmarshal(raw, &tr); err != nil {
			t.Fatal("accepted bytes do not parse")
		}
		if !tx.PublicKey.Verify(SignBytes(tr.Body), tr.Signature) || tx.Signer != tx.PublicKey.Address() {
			t.Fatal("accepted a transaction whose signature does not verify")
		}
	})
}

// FuzzApplyMessage signs fuzzer-built messages properly, so they pass the
// envelope, and applies them to a populated state: the check and the
// execution must agree (deliverTx panics if a checked transaction fails),
// a rejected message changes nothing but the sequence, and the token
// accounting stays balanced.
func FuzzApplyMessage(f *testing.F) {
	for _, msg := range []*chainpb.Msg{
		mTransfer(addr(kPoor), 5), mWeights(1, []uint32{1, 2}, []uint32{3, 4}, 0), mBurned(1, addr(hFree)),
		mAddStake(addr(hVal), 10), mRemoveStake(addr(hVal), 10), mDelegate(addr(hVal), 100), mRootRegister(addr(hVal)),
		mSudo(1, "tempo", 3), mGlobal("tx_rate_limit", 2), mCommit(1, make([]byte, 32)), mRegisterNetwork("y"),
		mCommitment(1, addr(hMin1), []byte("bafy")),
		mIdentity("owner", "https://owner.example", "about"), mSubnetIdentity(1, "alpha", "", ""),
		mSetTake(addr(hVal), 5000),
	} {
		b, _ := proto.Marshal(msg)
		f.Add(b, uint8(1))
	}
	f.Fuzz(func(t *testing.T, msgBytes []byte, signer uint8) {
		var msg chainpb.Msg
		if proto.Unmarshal(msgBytes, &msg) != nil || msg.Sum == nil {
			return
		}
		h := scenario(t)
		keys := []*wallet.PrivateKey{kRoot, kOwner, kOther, kPoor, hVal, hMin1, hFree}
		k := keys[int(signer)%len(keys)]
		raw := h.tx(k, &msg)
		before := snapshot(h.s)
		checkErr := h.s.CheckTx(raw)
		if !bytes.Equal([]byte(before[keyGlobals()]), []byte(snapshot(h.s)[keyGlobals()])) {
			t.Fatal("CheckTx changed the state")
		}
		res := h.s.deliverTx(raw)
		if (checkErr == nil) != (res.Code == 0) {
			t.Fatalf("CheckTx said %v, delivery code %d (%s)", checkErr, res.Code, res.Error)
		}
		if res.Code != 0 {
			after := snapshot(h.s)
			for key, v := range after {
				if key != keyAccount(addr(k)) && before[key] != v {
					t.Fatalf("rejected message changed %x", key)
				}
			}
		}
		var balances, stakes, locked uint64
		for _, acc := range h.s.accounts {
			balances += acc.Balance
		}
		for _, hk := range h.s.hotkeys {
			stakes += hk.Total
		}
		for _, sub := range h.s.subnets {
			locked += sub.Locked
		}
		if balances+stakes+locked != h.s.g.TotalIssuance || stakes != h.s.g.TotalStake {
			t.Fatalf("accounting broken: %d + %d + %d != %d", balances, stakes, locked, h.s.g.TotalIssuance)
		}
		// The block still applies after it.
		h.block()
	})
}
