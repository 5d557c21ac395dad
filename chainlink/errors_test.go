package chainlink

import (
	"errors"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/chain"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A rejected transaction is said once, in one sentence: the rule's
// description, its name and the chain's detail (#20: "already_registered:
// … (already_registered: …)").
func TestTxErrorSaysItOnce(t *testing.T) {
	detail := "5FhotkeyAddress on netuid 1"
	log := chain.ErrAlreadyRegistered.Error() + ": " + detail
	for _, tc := range []struct {
		name   string
		height uint64
		prefix string
	}{
		{"refused", 0, "the chain refused the transaction: "},
		{"in a block", 12, "transaction 0A0B0C000000 failed in block 12: "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := FailedReceipt(&Receipt{TxHash: [32]byte{10, 11, 12}, Height: tc.height, Code: chain.ErrAlreadyRegistered.Code, Error: log})
			want := tc.prefix + "the hotkey is already registered on this subnet (already_registered: " + detail + ")"
			if err.Error() != want {
				t.Fatalf("got  %q\nwant %q", err, want)
			}
			if n := strings.Count(err.Error(), "already_registered"); n != 1 {
				t.Fatalf("the rule is named %d times: %q", n, err)
			}
			var te *TxError
			if !errors.Is(err, chain.ErrAlreadyRegistered) || !errors.As(err, &te) {
				t.Fatalf("errors.Is/As: %v", err)
			}
		})
	}
	// A code the client does not know keeps the node's words.
	err := FailedReceipt(&Receipt{Code: 999, Error: "something new"})
	if err.Error() != "the chain refused the transaction: something new" {
		t.Fatalf("unknown code: %q", err)
	}
	// A rule without detail is not followed by an empty one.
	err = FailedReceipt(&Receipt{Code: chain.ErrFaucetDisabled.Code, Error: chain.ErrFaucetDisabled.Error()})
	if err.Error() != "the chain refused the transaction: this chain has no faucet (faucet_disabled)" {
		t.Fatalf("no detail: %q", err)
	}
}

// The sequence number a bad_sequence rejection names is read back.
func TestTxErrorExpectedSequence(t *testing.T) {
	err := FailedReceipt(&Receipt{Code: chain.ErrBadSequence.Code, Error: chain.ErrBadSequence.Error() + ": got 18, want 19"})
	var te *TxError
	if !errors.As(err, &te) {
		t.Fatal(err)
	}
	if want, ok := te.ExpectedSequence(); !ok || want != 19 {
		t.Fatalf("ExpectedSequence = %d, %v", want, ok)
	}
	err = FailedReceipt(&Receipt{Code: chain.ErrAlreadyRegistered.Code, Error: chain.ErrAlreadyRegistered.Error()})
	errors.As(err, &te)
	if _, ok := te.ExpectedSequence(); ok {
		t.Fatal("a sequence from another rule")
	}
}
