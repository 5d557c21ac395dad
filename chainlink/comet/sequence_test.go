package comet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

func addStake(hot wallet.Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hot[:], Amount: amount}}}
}

func burnedRegister(netuid uint16, hot wallet.Address) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: uint32(netuid), Hotkey: hot[:]}}}
}

// stakeOf reads the stake cold has on hot.
func stakeOf(t *testing.T, ctx context.Context, c *Client, cold, hot wallet.Address) uint64 {
	t.Helper()
	var out struct{ Amount uint64 }
	if err := c.Query(ctx, fmt.Sprintf("/stake/%s/%s", cold, hot), &out); err != nil {
		t.Fatal(err)
	}
	return out.Amount
}

// sendAll runs one Send per message at once, each from a fresh Sender for
// cold on its client (as separate commands do), and returns the errors.
func sendAll(ctx context.Context, clients []*Client, cold *wallet.PrivateKey, msgs []*chainpb.Msg) []error {
	errs := make([]error, len(msgs))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, msg := range msgs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, errs[i] = chainlink.NewSender(clients[i%len(clients)], cold).Send(ctx, msg)
		}()
	}
	close(start)
	wg.Wait()
	return errs
}

func checkNoErrors(t *testing.T, what string, errs []error) {
	t.Helper()
	var bad []string
	for i, err := range errs {
		if err != nil {
			bad = append(bad, fmt.Sprintf("#%d: %v", i, err))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%s: %d of %d failed:\n%s", what, len(bad), len(errs), strings.Join(bad, "\n"))
	}
}

// Eight identical stake adds from one coldkey at once through one client
// all land (#20: four parallel "stake add" returned the node's raw "tx
// already exists in cache", others bad_sequence).
func TestParallelSendsFromOneColdkey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cold, hot := key(1), addrOf(key(20))
	if _, err := chainlink.NewSender(c, cold).Send(ctx, burnedRegister(1, hot)); err != nil {
		t.Fatal(err)
	}
	const n, amount = 8, 1_000_000_000
	msgs := make([]*chainpb.Msg, n)
	for i := range msgs {
		msgs[i] = addStake(hot, amount)
	}
	checkNoErrors(t, "parallel stake adds", sendAll(ctx, []*Client{c}, cold, msgs))
	if got := stakeOf(t, ctx, c, addrOf(cold), hot); got != n*amount {
		t.Fatalf("stake %d after %d stake adds of %d", got, n, amount)
	}
}

// Two clients (two processes: they share nothing) send from one coldkey at
// once: two registrations (#20: two miners started at once failed with
// "bad_sequence … got 18, want 19"), then eight identical stake adds.
func TestTwoClientsSendFromOneColdkey(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	clients := []*Client{dial(t, node.URL), dial(t, node.URL)}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cold, hotA, hotB := key(1), addrOf(key(21)), addrOf(key(22))
	checkNoErrors(t, "two registrations", sendAll(ctx, clients, cold, []*chainpb.Msg{burnedRegister(1, hotA), burnedRegister(1, hotB)}))
	for _, hot := range []wallet.Address{hotA, hotB} {
		if _, err := clients[0].Neuron(ctx, 1, hot); err != nil {
			t.Fatalf("hotkey %s not registered: %v", hot, err)
		}
	}
	const n, amount = 8, 1_000_000_000
	msgs := make([]*chainpb.Msg, n)
	for i := range msgs {
		msgs[i] = addStake(hotA, amount)
	}
	checkNoErrors(t, "stake adds from two clients", sendAll(ctx, clients, cold, msgs))
	if got := stakeOf(t, ctx, clients[0], addrOf(cold), hotA); got != n*amount {
		t.Fatalf("stake %d after %d stake adds of %d", got, n, amount)
	}
}
