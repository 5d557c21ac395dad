package chain

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cybertensor/cybertensor/wallet"
)

func TestCommitmentBounds(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		want *TxError
	}{
		{"empty", 0, ErrInvalidCommitment},
		{"one byte", 1, nil},
		{"512 bytes", MaxCommitmentLen, nil},
		{"513 bytes", MaxCommitmentLen + 1, ErrInvalidCommitment},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := scenario(t)
			data := bytes.Repeat([]byte{0xab}, tc.n)
			before, beforeHash := snapshot(h.s), h.s.AppHash()
			raw := h.tx(hMin1, mCommitment(1, addr(hMin1), data))
			err := h.s.CheckTx(raw)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("CheckTx: %v", err)
				}
				res := h.block(raw)
				if res.Txs[0].Code != 0 {
					t.Fatalf("refused: %s", res.Txs[0].Error)
				}
				got, ok := h.s.Commitment(1, addr(hMin1))
				if !ok || !bytes.Equal(got.Data, data) || got.Block != h.s.Height() || got.UID != 1 {
					t.Fatalf("commitment %+v, %v", got, ok)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("CheckTx: %v, want %v", err, tc.want)
			}
			if !bytes.Equal(h.s.AppHash(), beforeHash) {
				t.Fatal("CheckTx changed the app hash")
			}
			after := snapshot(h.s)
			for k, v := range after {
				if before[k] != v {
					t.Errorf("CheckTx changed %x", k)
				}
			}
			if _, ok := h.s.Commitment(1, addr(hMin1)); ok {
				t.Fatal("refused commitment stored")
			}
		})
	}
}

// The rate limit counts from the block of the last commitment: with limit
// L after a commitment at block b, block b+L-1 is refused and b+L and
// b+L+1 are accepted.
func TestCommitmentRateLimitBoundary(t *testing.T) {
	const limit = 10
	for _, tc := range []struct {
		name  string
		after uint64 // blocks after the first commitment
		want  *TxError
	}{
		{"same block+1", 1, ErrCommitmentRateLimit},
		{"one block before", limit - 1, ErrCommitmentRateLimit},
		{"at the limit", limit, nil},
		{"one block after", limit + 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := scenario(t)
			h.ok(kOwner, mSudo(1, "commitment_rate_limit", limit))
			h.ok(hMin1, mCommitment(1, addr(hMin1), []byte("first")))
			first := h.s.Height()
			h.advance(int(tc.after) - 1)
			// The next block is first+after.
			raw := h.tx(hMin1, mCommitment(1, addr(hMin1), []byte("second")))
			beforeRecs := snapshot(h.s)
			res := h.block(raw)
			if h.s.Height() != first+tc.after {
				t.Fatalf("applied at %d, want %d", h.s.Height(), first+tc.after)
			}
			got, _ := h.s.Commitment(1, addr(hMin1))
			if tc.want == nil {
				if res.Txs[0].Code != 0 {
					t.Fatalf("refused: %s", res.Txs[0].Error)
				}
				if string(got.Data) != "second" || got.Block != first+tc.after {
					t.Fatalf("commitment %q at %d", got.Data, got.Block)
				}
				return
			}
			if res.Txs[0].Code != tc.want.Code {
				t.Fatalf("code %d (%s), want %s", res.Txs[0].Code, res.Txs[0].Error, tc.want.Name)
			}
			if string(got.Data) != "first" || got.Block != first {
				t.Fatalf("commitment %q at %d after a refusal", got.Data, got.Block)
			}
			// Nothing but the signer's account (its sequence) changed
			// besides what an empty block changes.
			key := keyNeuron(1, 1)
			if snapshot(h.s)[key] != beforeRecs[key] {
				t.Fatal("refused commitment changed the neuron")
			}
		})
	}
	t.Run("zero disables", func(t *testing.T) {
		h := scenario(t)
		h.ok(kOwner, mSudo(1, "commitment_rate_limit", 0))
		h.ok(hMin1, mCommitment(1, addr(hMin1), []byte("a")))
		h.ok(hMin1, mCommitment(1, addr(hMin1), []byte("b")))
		if got, _ := h.s.Commitment(1, addr(hMin1)); string(got.Data) != "b" {
			t.Fatalf("got %q", got.Data)
		}
	})
}

// A refused commitment leaves the app hash where the same block without it
// would: two states, one given the refused transaction, agree.
func TestRefusedCommitmentKeepsAppHash(t *testing.T) {
	a, b := scenario(t), scenario(t)
	a.ok(kOwner, mSudo(1, "commitment_rate_limit", 100))
	b.ok(kOwner, mSudo(1, "commitment_rate_limit", 100))
	a.ok(hMin1, mCommitment(1, addr(hMin1), []byte("cid")))
	b.ok(hMin1, mCommitment(1, addr(hMin1), []byte("cid")))
	// a gets a refused (rate-limited) commitment in the block where b
	// gets an empty one.
	a.block(a.tx(hMin1, mCommitment(1, addr(hMin1), []byte("too soon"))))
	b.block()
	// The only difference is hMin1's sequence number.
	ra, rb := snapshot(a.s), snapshot(b.s)
	for k, v := range ra {
		if k != keyAccount(addr(hMin1)) && rb[k] != v {
			t.Errorf("%x differs", k)
		}
	}
	if got := a.s.Account(addr(hMin1)).Sequence; got != b.s.Account(addr(hMin1)).Sequence+1 {
		t.Fatalf("sequence %d", got)
	}
}

func TestCommitmentQueriesAndMetagraph(t *testing.T) {
	h := scenario(t)
	if list, ok := h.s.Commitments(1); !ok || len(list) != 0 {
		t.Fatalf("empty subnet list %v %v", list, ok)
	}
	if _, ok := h.s.Commitments(9); ok {
		t.Fatal("list of a missing subnet")
	}
	h.ok(hMin2, mCommitment(1, addr(hMin2), []byte("model:v2")))
	h.ok(hVal, mCommitment(1, addr(hVal), []byte("bafkreia")))
	list, _ := h.s.Commitments(1)
	if len(list) != 2 || list[0].UID != 0 || list[1].UID != 2 || list[0].Hotkey != addr(hVal) || string(list[1].Data) != "model:v2" {
		t.Fatalf("list %+v", list)
	}
	if _, ok := h.s.Commitment(1, addr(hMin1)); ok {
		t.Fatal("hMin1 committed nothing")
	}
	if _, ok := h.s.Commitment(2, addr(hVal)); ok {
		t.Fatal("commitment on a missing subnet")
	}
	// Results are copies.
	list[0].Data[0] = 'X'
	if got, _ := h.s.Commitment(1, addr(hVal)); string(got.Data) != "bafkreia" {
		t.Fatalf("query result aliases the state: %q", got.Data)
	}
	full, _ := h.s.Metagraph(1, false)
	if len(full.Commitments) != 3 || full.Commitments[1] != nil || string(full.Commitments[0].Data) != "bafkreia" || string(full.Commitments[2].Data) != "model:v2" {
		t.Fatalf("full metagraph commitments %+v", full.Commitments)
	}
	lite, _ := h.s.Metagraph(1, true)
	if lite.Commitments != nil {
		t.Fatal("lite metagraph has commitments")
	}
	n, _ := h.s.NeuronByHotkey(1, addr(hMin2))
	if n.Commitment == nil || string(n.Commitment.Data) != "model:v2" {
		t.Fatalf("neuron %+v", n.Commitment)
	}
}

// A neuron replaced by a new registration takes its commitment with it.
func TestCommitmentGoesWithPrunedNeuron(t *testing.T) {
	h := scenario(t)
	h.ok(kRoot, mSudo(1, "max_allowed_uids", 3))
	h.ok(kRoot, mSudo(1, "immunity_period", 0))
	for _, k := range []*wallet.PrivateKey{hVal, hMin1, hMin2} {
		h.ok(k, mCommitment(1, addr(k), []byte("mine")))
	}
	h.ok(kOwner, mBurned(1, addr(hFree)))
	n, ok := h.s.NeuronByHotkey(1, addr(hFree))
	if !ok {
		t.Fatal("hFree not registered")
	}
	if n.Commitment != nil {
		t.Fatalf("newcomer inherited a commitment: %q", n.Commitment.Data)
	}
	list, _ := h.s.Commitments(1)
	if len(list) != 2 {
		t.Fatalf("list after pruning %+v", list)
	}
}

func TestCommitmentSurvivesReopen(t *testing.T) {
	sh := openStoreHarness(t, testGenesis(kRoot, kOwner, kOther))
	sh.send(kOwner, mRegisterNetwork("alpha"))
	sh.send(kOwner, mBurned(1, addr(hMin1)))
	sh.send(hMin1, mCommitment(1, addr(hMin1), []byte("bafybeigdyrzt")))
	want, _ := sh.s.Commitments(1)
	sh.reopen()
	got, _ := sh.s.Commitments(1)
	if len(got) != 1 || len(want) != 1 || !bytes.Equal(got[0].Data, want[0].Data) || got[0].Block != want[0].Block || got[0].Hotkey != addr(hMin1) {
		t.Fatalf("after reopen %+v, want %+v", got, want)
	}
}

// A neuron without a commitment encodes as before commitments existed;
// one with a commitment round-trips, and a malformed one is refused.
func TestNeuronCommitmentEncoding(t *testing.T) {
	plain := &Neuron{UID: 3, Hotkey: addr(hMin1), Active: true}
	enc := plain.encode()
	with := *plain
	with.Commitment = &Commitment{Data: []byte("cid"), Block: 7}
	encWith := with.encode()
	if !bytes.HasPrefix(encWith, enc) {
		t.Fatal("a commitment is not a trailing part")
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want *Commitment
		ok   bool
	}{
		{"none", enc, nil, true},
		{"some", encWith, with.Commitment, true},
		{"empty data", append(append([]byte(nil), enc...), 0, 7), nil, false},
		{"truncated", encWith[:len(encWith)-1], nil, false},
		{"trailing garbage", append(append([]byte(nil), encWith...), 1), nil, false},
	} {
		n, err := decodeNeuron(tc.b)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if !tc.ok {
			continue
		}
		if (n.Commitment == nil) != (tc.want == nil) || (tc.want != nil && (!bytes.Equal(n.Commitment.Data, tc.want.Data) || n.Commitment.Block != tc.want.Block)) {
			t.Errorf("%s: %+v", tc.name, n.Commitment)
		}
	}
}
