package chain

import (
	"testing"

	"github.com/cybertensor/cybertensor/wallet"
)

// Root members of the root weight tests: hotkeys registered on the root
// network only, so no subnet epoch pays them and their stakes stay put.
var (
	hRootA = testKey(60)
	hRootB = testKey(61)
)

// rootScenario: subnets 1 and 2 (no neurons), root tempo 4 (the root
// epoch runs in blocks 4, 9, 14, …), hRootA (stake 1M, kOwner's) a root
// member.
func rootScenario(t testing.TB) *harness {
	t.Helper()
	gen := testGenesis(kRoot, kOwner, kOther)
	gen.Globals.RootTempo = 4
	h := newHarness(t, gen)
	h.ok(kOwner, mRegisterNetwork("alpha"))
	h.ok(kOther, mRegisterNetwork("beta"))
	h.ok(kOwner, mRootRegister(addr(hRootA)))
	h.ok(kOwner, mAddStake(addr(hRootA), 1_000_000))
	return h
}

// untilRootEpoch applies blocks until the next root epoch has run and
// returns its block.
func untilRootEpoch(h *harness) uint64 {
	h.t.Helper()
	for {
		h.block()
		if BlocksUntilNextEpoch(RootNetuid, h.s.subnets[RootNetuid].Params.Tempo, h.s.Height()) == 0 {
			return h.s.Height()
		}
	}
}

func emissions(h *harness) (uint64, uint64) {
	return h.s.subnets[1].EmissionPerBlock, h.s.subnets[2].EmissionPerBlock
}

// Root weights (set_weights on netuid 0 with netuids as uids) change the
// emission split at the next root epoch, not before, and exactly: one
// member weighting subnets 1:3 gives them 1/4 and 3/4 of block emission;
// with a second member of three times the stake weighting them 1:1 and
// the first 3:1, the ranks are 1/4·3/4 + 3/4·1/2 = 9/16 and 7/16, and as
// every member votes for both, the consensus factor is the same and the
// shares are exactly those.
func TestRootWeightsSetEmissionShares(t *testing.T) {
	h := rootScenario(t)
	untilRootEpoch(h)
	be := h.s.Globals().BlockEmission
	if e1, e2 := emissions(h); e1 != be/2 || e2 != be/2 {
		t.Fatalf("no weights: %d %d, want equal halves of %d", e1, e2, be)
	}
	// Set the weights in the block right after an epoch: they count from
	// the next one.
	h.ok(hRootA, mWeights(0, []uint32{1, 2}, []uint32{1, 3}, 0))
	untilRootEpoch(h)
	if e1, e2 := emissions(h); e1 != be/4 || e2 != be*3/4 {
		t.Fatalf("1:3 from one member: %d %d, want %d %d", e1, e2, be/4, be*3/4)
	}

	h.ok(kOther, mRootRegister(addr(hRootB)))
	h.ok(kOther, mAddStake(addr(hRootB), 3_000_000))
	h.ok(hRootA, mWeights(0, []uint32{1, 2}, []uint32{3, 1}, 0))
	h.ok(hRootB, mWeights(0, []uint32{2, 1}, []uint32{5, 5}, 0))
	untilRootEpoch(h)
	if e1, e2 := emissions(h); e1 != be*9/16 || e2 != be*7/16 {
		t.Fatalf("two members: %d %d, want %d %d", e1, e2, be*9/16, be*7/16)
	}
}

// Between root epochs new root weights change nothing yet.
func TestRootWeightsWaitForTheRootEpoch(t *testing.T) {
	h := rootScenario(t)
	untilRootEpoch(h)
	h.ok(hRootA, mWeights(0, []uint32{1, 2}, []uint32{1, 3}, 0))
	for BlocksUntilNextEpoch(RootNetuid, h.s.subnets[RootNetuid].Params.Tempo, h.s.Height()+1) != 0 {
		h.block()
		if e1, e2 := emissions(h); e1 != e2 {
			t.Fatalf("block %d, before the root epoch: %d %d", h.s.Height(), e1, e2)
		}
	}
	h.block()
	if e1, e2 := emissions(h); e1*3 != e2 {
		t.Fatalf("at the root epoch (block %d): %d %d", h.s.Height(), e1, e2)
	}
}

// Root weights name existing subnets: not the root, not a missing one,
// each once; only a root member sets them. A refusal changes nothing a
// refused transaction does not.
func TestRootWeightsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		key  *wallet.PrivateKey
		uids []uint32
		want *TxError
	}{
		{"the root itself", hRootA, []uint32{0, 1}, ErrInvalidUID},
		{"a missing subnet", hRootA, []uint32{1, 3}, ErrInvalidUID},
		{"a netuid above u16", hRootA, []uint32{1, 70000}, ErrInvalidWeightValue},
		{"twice", hRootA, []uint32{1, 1}, ErrDuplicateUIDs},
		{"not a root member", hRootB, []uint32{1, 2}, ErrNotRegistered},
		{"none", hRootA, []uint32{}, ErrNotEnoughWeights},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := make([]uint32, len(tc.uids))
			for i := range values {
				values[i] = 1
			}
			assertRefusedLikeAnyRefusal(t, rootScenario, tc.key, mWeights(0, tc.uids, values, 0), tc.want)
		})
	}
}

// weights_version_key: set_weights and reveal_weights with a version below
// the key are refused (changing nothing), equal to it or above accepted.
func TestWeightsVersionKeyBoundary(t *testing.T) {
	const key = 7
	cases := []struct {
		name    string
		version uint64
		want    *TxError
	}{
		{"one below", key - 1, ErrIncorrectVersionKey},
		{"zero", 0, ErrIncorrectVersionKey},
		{"equal", key, nil},
		{"one above", key + 1, nil},
	}
	t.Run("set_weights", func(t *testing.T) {
		setup := func(t testing.TB) *harness {
			h := scenario(t)
			h.ok(kOwner, mSudo(1, "weights_version_key", key))
			return h
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				msg := mWeights(1, []uint32{1, 2}, []uint32{1, 1}, tc.version)
				if tc.want != nil {
					assertRefusedLikeAnyRefusal(t, setup, hVal, msg, tc.want)
					return
				}
				h := setup(t)
				h.ok(hVal, msg)
				if n, _ := h.s.Neuron(1, 0); len(n.Weights) != 2 || n.LastUpdate != h.s.Height() {
					t.Fatalf("weights %+v", n.Weights)
				}
			})
		}
	})
	t.Run("reveal_weights", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				uids, values, salt := []uint16{1, 2}, []uint16{1, 1}, []byte("salt")
				// The commit binds the version: reveal what was committed.
				setup := func(t testing.TB) *harness {
					h := scenario(t)
					h.ok(kOwner, mSudo(1, "weights_version_key", key))
					h.ok(kOwner, mSudo(1, "commit_reveal_weights_enabled", 1))
					hash := CommitHash(addr(hVal), 1, uids, values, salt, tc.version)
					h.ok(hVal, mCommit(1, hash[:]))
					first, _ := RevealWindow(h.s.Height(), h.s.subnets[1].Params.CommitRevealInterval)
					for h.s.Height() < first { // CheckTx reads the current height too
						h.block()
					}
					return h
				}
				msg := mReveal(1, []uint32{1, 2}, []uint32{1, 1}, salt, tc.version)
				if tc.want != nil {
					assertRefusedLikeAnyRefusal(t, setup, hVal, msg, tc.want)
					return
				}
				h := setup(t)
				h.ok(hVal, msg)
				if n, _ := h.s.Neuron(1, 0); len(n.Weights) != 2 || n.Commit != nil {
					t.Fatalf("neuron after reveal %+v", n)
				}
			})
		}
	})
	t.Run("zero key accepts any version", func(t *testing.T) {
		h := scenario(t)
		h.ok(hVal, mWeights(1, []uint32{1}, []uint32{1}, 0))
	})
}

// serving_rate_limit: after serving at block b with limit L, serving
// again at b+L-1 is refused (changing nothing), at b+L and b+L+1 accepted.
func TestServingRateLimitBoundary(t *testing.T) {
	const limit = 10
	for _, tc := range []struct {
		name  string
		after uint64
		want  *TxError
	}{
		{"next block", 1, ErrServingRateLimit},
		{"one block before", limit - 1, ErrServingRateLimit},
		{"at the limit", limit, nil},
		{"one block after", limit + 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var first uint64
			setup := func(t testing.TB) *harness {
				h := scenario(t)
				h.ok(kOwner, mSudo(1, "serving_rate_limit", limit))
				h.ok(hMin1, mServe(1, addr0PeerID(hMin1), "/ip4/127.0.0.1/tcp/1"))
				first = h.s.Height()
				// The next block is first+after.
				h.advance(int(tc.after) - 1)
				return h
			}
			msg := mServe(1, addr0PeerID(hMin1), "/ip4/127.0.0.1/tcp/2")
			if tc.want != nil {
				assertRefusedLikeAnyRefusal(t, setup, hMin1, msg, tc.want)
				return
			}
			h := setup(t)
			h.ok(hMin1, msg)
			n, _ := h.s.Neuron(1, 1)
			if h.s.Height() != first+tc.after || n.Axon == nil || n.Axon.Block != first+tc.after || n.Axon.Multiaddrs[0] != "/ip4/127.0.0.1/tcp/2" {
				t.Fatalf("axon %+v at height %d", n.Axon, h.s.Height())
			}
		})
	}
}
