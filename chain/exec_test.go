package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// Keys of the standard scenario.
var (
	kRoot  = testKey(0)
	kOwner = testKey(1) // coldkey owning subnet 1 and hotkeys hVal, hMin1, hMin2
	kOther = testKey(2) // a funded coldkey with nothing registered
	kPoor  = testKey(3) // unfunded
	hVal   = testKey(10)
	hMin1  = testKey(11)
	hMin2  = testKey(12)
	hFree  = testKey(13) // an unregistered hotkey
)

// scenario: subnet 1 owned by kOwner with a validator (uid 0, staked,
// permit) and two miners (uids 1, 2).
func scenario(t testing.TB) *harness {
	t.Helper()
	h := newHarness(t, testGenesis(kRoot, kOwner, kOther))
	h.ok(kOwner, mRegisterNetwork("alpha"))
	for _, hk := range []*wallet.PrivateKey{hVal, hMin1, hMin2} {
		h.ok(kOwner, mBurned(1, addr(hk)))
	}
	h.ok(kOwner, mAddStake(addr(hVal), 1_000_000))
	// Give the validator its permit as an epoch would.
	h.s.subnets[1].neurons[0].ValidatorPermit = true
	h.s.markNeuron(1, 0)
	h.block()
	return h
}

func TestRejectedTxChangesNothingButSequence(t *testing.T) {
	big := uint64(1) << 60
	cases := []struct {
		name  string
		setup func(h *harness)
		key   *wallet.PrivateKey
		msg   *chainpb.Msg
		want  *TxError
	}{
		{"transfer zero", nil, kOther, mTransfer(addr(kPoor), 0), ErrInvalidAmount},
		{"transfer too much", nil, kOther, mTransfer(addr(kPoor), big), ErrInsufficientBalance},
		{"transfer bad address", nil, kOther, &chainpb.Msg{Sum: &chainpb.Msg_Transfer{Transfer: &chainpb.Transfer{To: []byte{1, 2}, Amount: 1}}}, ErrInvalidAddress},
		{"register network poor", nil, kPoor, mRegisterNetwork("x"), ErrInsufficientBalance},
		{"register network long name", nil, kOther, mRegisterNetwork(strings.Repeat("n", 65)), ErrInvalidName},
		{"register network limit", func(h *harness) { h.ok(kRoot, mGlobal("subnet_limit", 1)) }, kOther, mRegisterNetwork("x"), ErrSubnetLimit},
		{"register network rate limit", func(h *harness) { h.ok(kRoot, mGlobal("network_rate_limit", 1000)) }, kOther, mRegisterNetwork("x"), ErrNetworkRateLimit},
		{"burned register no network", nil, kOwner, mBurned(9, addr(hFree)), ErrNetworkDoesNotExist},
		{"burned register netuid > u16", nil, kOwner, mBurned(70000, addr(hFree)), ErrNetworkDoesNotExist},
		{"burned register root", nil, kOwner, mBurned(0, addr(hFree)), ErrOnRootNetwork},
		{"burned register twice", nil, kOwner, mBurned(1, addr(hMin1)), ErrAlreadyRegistered},
		{"burned register poor", nil, kPoor, mBurned(1, addr(hFree)), ErrNotEnoughBalanceBurn},
		{"burned register other's hotkey", nil, kOther, mBurned(1, addr(hMin1)), ErrAlreadyRegistered},
		{"burned register owned hotkey on new net", func(h *harness) { h.ok(kOther, mRegisterNetwork("beta")) }, kOther, mBurned(2, addr(hMin1)), ErrNonAssociatedColdkey},
		{"burned register disabled", func(h *harness) { h.ok(kRoot, mSudo(1, "registration_allowed", 0)) }, kOwner, mBurned(1, addr(hFree)), ErrRegistrationDisabled},
		{"burned register per block", func(h *harness) {
			h.ok(kRoot, mSudo(1, "max_regs_per_block", 1))
			h.s.subnets[1].RegsThisBlock = 1
		}, kOwner, mBurned(1, addr(hFree)), ErrTooManyRegsBlock},
		{"burned register per interval", func(h *harness) {
			h.ok(kRoot, mSudo(1, "target_regs_per_interval", 1))
			h.s.subnets[1].RegsThisInterval = 3
		}, kOwner, mBurned(1, addr(hFree)), ErrTooManyRegsInterval},
		{"pow register stale block", nil, hFree, mRegister(1, 1, 0, addr(kOwner)), ErrInvalidWorkBlock},
		{"pow register future block", nil, hFree, mRegister(1, 1000, 0, addr(kOwner)), ErrInvalidWorkBlock},
		{"pow register bad work", func(h *harness) { h.ok(kRoot, mSudo(1, "difficulty", 1<<62)) }, hFree, nil, ErrInvalidDifficulty},
		{"root register twice", func(h *harness) { h.ok(kOwner, mRootRegister(addr(hVal))) }, kOwner, mRootRegister(addr(hVal)), ErrAlreadyRegistered},
		{"root register other's hotkey", nil, kOther, mRootRegister(addr(hVal)), ErrNonAssociatedColdkey},
		{"root register full", func(h *harness) {
			h.ok(kRoot, mGlobal("max_root_validators", 1))
			h.ok(kOwner, mRootRegister(addr(hVal)))
		}, kOwner, mRootRegister(addr(hMin1)), ErrStakeTooLowForRoot},
		{"add stake unknown hotkey", nil, kOwner, mAddStake(addr(hFree), 1), ErrNotRegistered},
		{"add stake other's hotkey", nil, kOther, mAddStake(addr(hVal), 1), ErrNonAssociatedColdkey},
		{"add stake zero", nil, kOwner, mAddStake(addr(hVal), 0), ErrInvalidAmount},
		{"add stake too much", nil, kOwner, mAddStake(addr(hVal), big), ErrInsufficientBalance},
		{"add stake rate limit", func(h *harness) { h.ok(kRoot, mGlobal("tx_rate_limit", 100)) }, kOwner, mAddStake(addr(hVal), 1), ErrTxRateLimit},
		{"remove stake too much", nil, kOwner, mRemoveStake(addr(hVal), 1_000_001), ErrNotEnoughStake},
		{"remove stake zero", nil, kOwner, mRemoveStake(addr(hVal), 0), ErrInvalidAmount},
		{"remove stake not staker", func(h *harness) { h.ok(kOwner, mDelegate(addr(hVal), 0)) }, kOther, mRemoveStake(addr(hVal), 1), ErrNotEnoughStake},
		{"delegate twice", func(h *harness) { h.ok(kOwner, mDelegate(addr(hVal), 0)) }, kOwner, mDelegate(addr(hVal), 0), ErrAlreadyDelegate},
		{"delegate other's", nil, kOther, mDelegate(addr(hVal), 0), ErrNonAssociatedColdkey},
		{"delegate unknown", nil, kOwner, mDelegate(addr(hFree), 0), ErrNotRegistered},
		{"delegate take too high", nil, kOwner, mDelegate(addr(hVal), 60000), ErrInvalidTake},
		{"weights unequal", nil, hVal, mWeights(1, []uint32{1, 2}, []uint32{1}, 0), ErrWeightVecNotEqual},
		{"weights too many", nil, hVal, mWeights(1, []uint32{0, 1, 2, 3}, []uint32{1, 1, 1, 1}, 0), ErrTooManyUIDs},
		{"weights no network", nil, hVal, mWeights(7, []uint32{1}, []uint32{1}, 0), ErrNetworkDoesNotExist},
		{"weights not registered", nil, hFree, mWeights(1, []uint32{1}, []uint32{1}, 0), ErrNotRegistered},
		{"weights version key", func(h *harness) { h.ok(kOwner, mSudo(1, "weights_version_key", 5)) }, hVal, mWeights(1, []uint32{1}, []uint32{1}, 4), ErrIncorrectVersionKey},
		{"weights rate limit", func(h *harness) {
			h.ok(kOwner, mSudo(1, "weights_rate_limit", 50))
			h.ok(hVal, mWeights(1, []uint32{1}, []uint32{1}, 0))
		}, hVal, mWeights(1, []uint32{2}, []uint32{1}, 0), ErrWeightsRateLimit},
		{"weights no permit", nil, hMin1, mWeights(1, []uint32{2}, []uint32{1}, 0), ErrNoValidatorPermit},
		{"weights duplicate", nil, hVal, mWeights(1, []uint32{1, 1}, []uint32{1, 2}, 0), ErrDuplicateUIDs},
		{"weights invalid uid", nil, hVal, mWeights(1, []uint32{1, 9}, []uint32{1, 2}, 0), ErrInvalidUID},
		{"weights value > u16", nil, hVal, mWeights(1, []uint32{1}, []uint32{70000}, 0), ErrInvalidWeightValue},
		{"weights too few", func(h *harness) { h.ok(kOwner, mSudo(1, "min_allowed_weights", 2)) }, hVal, mWeights(1, []uint32{1}, []uint32{1}, 0), ErrNotEnoughWeights},
		{"weights max limit", func(h *harness) { h.ok(kOwner, mSudo(1, "max_weight_limit", 40000)) }, hVal, mWeights(1, []uint32{1, 2}, []uint32{9, 1}, 0), ErrMaxWeightExceeded},
		{"weights commit-reveal on", func(h *harness) { h.ok(kOwner, mSudo(1, "commit_reveal_weights_enabled", 1)) }, hVal, mWeights(1, []uint32{1}, []uint32{1}, 0), ErrCommitRevealEnabled},
		{"commit disabled", nil, hVal, mCommit(1, make([]byte, 32)), ErrCommitRevealDisabled},
		{"commit bad hash", func(h *harness) { h.ok(kOwner, mSudo(1, "commit_reveal_weights_enabled", 1)) }, hVal, mCommit(1, make([]byte, 31)), ErrInvalidCommitHash},
		{"reveal without commit", func(h *harness) { h.ok(kOwner, mSudo(1, "commit_reveal_weights_enabled", 1)) }, hVal, mReveal(1, []uint32{1}, []uint32{1}, nil, 0), ErrNoWeightsCommit},
		{"serve not registered", nil, hFree, mServe(1, addr0PeerID(hFree), "/ip4/127.0.0.1/tcp/1"), ErrNotRegistered},
		{"serve other's peer id", nil, hMin1, mServe(1, addr0PeerID(hMin2), "/ip4/127.0.0.1/tcp/1"), ErrInvalidAxon},
		{"serve bad peer id", nil, hMin1, mServe(1, "not-a-peer", "/ip4/127.0.0.1/tcp/1"), ErrInvalidAxon},
		{"serve bad multiaddr", nil, hMin1, mServe(1, addr0PeerID(hMin1), "/ip4/999.0.0.1/tcp/1"), ErrInvalidAxon},
		{"serve no multiaddr", nil, hMin1, mServe(1, addr0PeerID(hMin1)), ErrInvalidAxon},
		{"serve rate limit", func(h *harness) {
			h.ok(kOwner, mSudo(1, "serving_rate_limit", 100))
			h.ok(hMin1, mServe(1, addr0PeerID(hMin1), "/ip4/127.0.0.1/tcp/1"))
		}, hMin1, mServe(1, addr0PeerID(hMin1), "/ip4/127.0.0.1/tcp/2"), ErrServingRateLimit},
		{"commitment empty", nil, hMin1, mCommitment(1, addr(hMin1), nil), ErrInvalidCommitment},
		{"commitment 513 bytes", nil, hMin1, mCommitment(1, addr(hMin1), make([]byte, 513)), ErrInvalidCommitment},
		{"commitment not registered", nil, hFree, mCommitment(1, addr(hFree), []byte("x")), ErrNotRegistered},
		{"commitment no network", nil, hMin1, mCommitment(9, addr(hMin1), []byte("x")), ErrNetworkDoesNotExist},
		{"commitment bad hotkey", nil, hMin1, &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: 1, Hotkey: []byte{1}, Data: []byte("x")}}}, ErrInvalidAddress},
		{"commitment signed by coldkey", nil, kOwner, mCommitment(1, addr(hMin1), []byte("x")), ErrSignerNotHotkey},
		{"commitment signed by another hotkey", nil, hMin2, mCommitment(1, addr(hMin1), []byte("x")), ErrSignerNotHotkey},
		{"commitment rate limit", func(h *harness) {
			h.ok(kOwner, mSudo(1, "commitment_rate_limit", 100))
			h.ok(hMin1, mCommitment(1, addr(hMin1), []byte("first")))
		}, hMin1, mCommitment(1, addr(hMin1), []byte("second")), ErrCommitmentRateLimit},
		{"sudo commitment rate limit by stranger", nil, kOther, mSudo(1, "commitment_rate_limit", 5), ErrNotOwnerOrRoot},
		{"sudo commitment rate limit out of range", nil, kOwner, mSudo(1, "commitment_rate_limit", 1<<32+1), ErrInvalidParamValue},
		{"sudo unknown", nil, kRoot, mSudo(1, "warp_speed", 1), ErrUnknownParam},
		{"sudo root-only by owner", nil, kOwner, mSudo(1, "tempo", 5), ErrNotRoot},
		{"sudo by stranger", nil, kOther, mSudo(1, "immunity_period", 5), ErrNotOwnerOrRoot},
		{"sudo out of range", nil, kRoot, mSudo(1, "kappa", 70000), ErrInvalidParamValue},
		{"sudo min above max", nil, kRoot, mSudo(1, "min_burn", 1<<62), ErrInvalidParamValue},
		{"global by owner", nil, kOwner, mGlobal("tx_rate_limit", 1), ErrNotRoot},
		{"global unknown", nil, kRoot, mGlobal("nope", 1), ErrUnknownParam},
		{"global out of range", nil, kRoot, mGlobal("default_take", 70000), ErrInvalidParamValue},
		{"faucet rate limit", func(h *harness) { h.ok(kPoor, mFaucet()) }, kPoor, mFaucet(), ErrFaucetRateLimit},
		{"faucet disabled", func(h *harness) { h.ok(kRoot, mGlobal("faucet_amount", 0)) }, kPoor, mFaucet(), ErrFaucetDisabled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := scenario(t)
			if tc.setup != nil {
				tc.setup(h)
			}
			msg := tc.msg
			if msg == nil { // proof of work that fails the difficulty
				msg = mRegister(1, h.s.Height(), 0, addr(kOwner))
			}
			raw := h.tx(tc.key, msg)
			if err := h.s.CheckTx(raw); !errors.Is(err, tc.want) {
				t.Fatalf("CheckTx: %v, want %v", err, tc.want)
			}
			before := snapshot(h.s)
			res := h.s.deliverTx(raw)
			if res.Code != tc.want.Code {
				t.Fatalf("code %d (%s), want %d (%s)", res.Code, res.Error, tc.want.Code, tc.want.Name)
			}
			after := snapshot(h.s)
			signer := keyAccount(addr(tc.key))
			for k, v := range after {
				if k == signer {
					continue
				}
				if before[k] != v {
					t.Errorf("%x changed", k)
				}
			}
			if len(after) != len(before)+boolInt(before[signer] == "") {
				t.Errorf("records: %d before, %d after", len(before), len(after))
			}
			want := h.s.Account(addr(tc.key))
			if a, err := decodeAccount([]byte(before[signer])); err == nil && before[signer] != "" {
				a.Sequence++
				if *a != want {
					t.Errorf("signer account %+v, want %+v", want, *a)
				}
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func addr0PeerID(k *wallet.PrivateKey) string { return k.PublicKey().PeerID().String() }

// Envelope errors: nothing changes at all, not even the sequence.
func TestEnvelopeErrors(t *testing.T) {
	h := scenario(t)
	good := h.tx(kOther, mTransfer(addr(kPoor), 1))
	h.seq[addr(kOther)]--
	wrongChain, _ := SignTx(kOther, "other-chain", h.seq[addr(kOther)], mTransfer(addr(kPoor), 1))
	replay, _ := SignTx(kOther, testChainID, h.seq[addr(kOther)]+5, mTransfer(addr(kPoor), 1))
	tampered := append([]byte(nil), good...)
	tampered[len(tampered)-1] ^= 1
	empty, _ := SignTx(kOther, testChainID, h.seq[addr(kOther)], &chainpb.Msg{})
	cases := []struct {
		name string
		raw  []byte
		want *TxError
	}{
		{"garbage", []byte("not a transaction"), ErrTxDecode},
		{"too large", make([]byte, MaxTxSize+1), ErrTxTooLarge},
		{"bad signature", tampered, ErrBadSignature},
		{"wrong chain", wrongChain, ErrWrongChainID},
		{"future sequence", replay, ErrBadSequence},
		{"empty message", empty, ErrUnknownMessage},
	}
	for _, tc := range cases {
		before := snapshot(h.s)
		if err := h.s.CheckTx(tc.raw); !errors.Is(err, tc.want) {
			t.Errorf("%s: CheckTx %v, want %v", tc.name, err, tc.want)
		}
		if res := h.s.deliverTx(tc.raw); res.Code != tc.want.Code {
			t.Errorf("%s: code %d (%s), want %d", tc.name, res.Code, res.Error, tc.want.Code)
		}
		after := snapshot(h.s)
		if len(before) != len(after) {
			t.Fatalf("%s: records changed", tc.name)
		}
		for k, v := range before {
			if after[k] != v {
				t.Errorf("%s: %x changed", tc.name, k)
			}
		}
	}
	// The good transaction still applies, once: its replay fails.
	res := h.block(good, good)
	if res.Txs[0].Code != 0 || res.Txs[1].Code != ErrBadSequence.Code {
		t.Fatalf("good then replay: %+v", res.Txs)
	}
}

// A bad_sequence error names the sequence the chain wants, and clients
// read it back from the error's text (all a node's log carries).
func TestExpectedSequence(t *testing.T) {
	for _, tc := range []struct {
		msg  string
		want uint64
		ok   bool
	}{
		{badSequence(18, 19).Error(), 19, true},
		{badSequence(0, 1<<63).Error(), 1 << 63, true},
		{"bad_sequence: the sequence number is not the signer's next", 0, false},
		{txErr(ErrInsufficientBalance, "got 1, want 2").Error(), 0, false},
		{badSequence(3, 4).Error() + "x", 0, false},
		{"", 0, false},
	} {
		got, ok := ExpectedSequence(tc.msg)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ExpectedSequence(%q) = %d, %v; want %d, %v", tc.msg, got, ok, tc.want, tc.ok)
		}
	}
}
