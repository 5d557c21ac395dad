package chain

import (
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestFormatTokens(t *testing.T) {
	for v, want := range map[uint64]string{
		0: "0", 1: "0.000000001", 1_500_000_000: "1.5", 1_000_000_000: "1", 10_000_000_000: "10", 123_456_789_012: "123.456789012",
	} {
		if got := FormatTokens(v); got != want {
			t.Errorf("FormatTokens(%d) = %q, want %q", v, got, want)
		}
	}
}

// The amounts in a rejection's detail are tokens, as people type them
// (#20 "token amounts in human units everywhere").
func TestRejectionsSayAmountsInTokens(t *testing.T) {
	cases := []struct {
		name string
		key  *wallet.PrivateKey
		msg  *chainpb.Msg
		want string
	}{
		{"transfer", kOther, mTransfer(addr(kPoor), 1_500_000_000_000), "balance 1000 tokens < 1500 tokens"},
		{"stake", kOwner, mAddStake(addr(hVal), 2_000_000_000_000), "tokens < 2000 tokens"},
		{"unstake", kOwner, mRemoveStake(addr(hVal), 1_500_000), "stake 0.001 tokens < 0.0015 tokens"},
		{"lock cost", kPoor, mRegisterNetwork("x"), "tokens < lock cost"},
		{"burn", kPoor, mBurned(1, addr(hFree)), "tokens < burn"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := scenario(t)
			r := h.block(h.tx(tc.key, tc.msg)).Txs[0]
			if r.Code == 0 || !strings.Contains(r.Error, tc.want) {
				t.Fatalf("error %q (code %d), want it to say %q", r.Error, r.Code, tc.want)
			}
		})
	}
}
