package comet

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet/comettest"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) {
	comettest.RunChildIfAsked()
	os.Exit(m.Run())
}

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("comet client test %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

func addrOf(k *wallet.PrivateKey) wallet.Address { return k.PublicKey().Address() }

func freePort(t testing.TB) int { return comettest.FreePort(t) }

// testGenesis funds keys 0 and 1 and has subnet 1, "alpha".
func testGenesis() chain.Genesis {
	gen := chain.LocalnetGenesis("comet-client-test", addrOf(key(0)), []chain.GenesisBalance{
		{Address: addrOf(key(0)), Amount: 1e13}, {Address: addrOf(key(1)), Amount: 1e13},
	})
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addrOf(key(0))}}
	return gen
}

// initNode creates a single-validator home with testGenesis and 50 ms
// blocks.
func initNode(t *testing.T) *comettest.Node {
	return comettest.Init(t, testGenesis(), comettest.Options{})
}

func dial(t *testing.T, url string) *Client {
	t.Helper()
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.PollInterval = 20 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	deadline := time.Now().Add(60 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := Dial(ctx, cfg)
		cancel()
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("dial %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func transfer(to wallet.Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_Transfer{Transfer: &chainpb.Transfer{To: to[:], Amount: amount}}}
}

func TestClientAgainstNodeAndRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if c.ChainID() != "comet-client-test" {
		t.Fatalf("chain id %q", c.ChainID())
	}
	s := chainlink.NewSender(c, key(1))
	rec, err := s.Send(ctx, transfer(addrOf(key(5)), 42))
	if err != nil || rec.Height == 0 {
		t.Fatalf("send: %v %+v", err, rec)
	}
	acc, err := c.Account(ctx, addrOf(key(5)))
	if err != nil || acc.Balance != 42 {
		t.Fatalf("account %+v %v", acc, err)
	}
	// Rejected by CheckTx, with the chain's named error.
	_, err = s.Send(ctx, transfer(addrOf(key(5)), 1<<62))
	if !errors.Is(err, chain.ErrInsufficientBalance) {
		t.Fatalf("overdraft: %v", err)
	}
	subs, err := c.Subnets(ctx)
	if err != nil || len(subs) != 2 {
		t.Fatalf("subnets %v %v", subs, err)
	}
	if _, err := c.Neuron(ctx, 1, addrOf(key(9))); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing neuron: %v", err)
	}
	m, err := c.Metagraph(ctx, 1, true)
	if err != nil || m.Netuid != 1 {
		t.Fatalf("metagraph %+v %v", m, err)
	}
	heads, err := c.SubscribeHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	first := <-heads

	// Restart the node process: the client goes on.
	node.Kill(t)
	node.Start(t)
	var after chainlink.Head
	for after.Height <= first.Height+3 {
		select {
		case after = <-heads:
		case <-ctx.Done():
			h, err := c.Head(context.Background())
			t.Fatalf("no heads after restart: first %d, last %d, head now %+v %v", first.Height, after.Height, h, err)
		}
	}
	if _, err := s.Send(ctx, transfer(addrOf(key(5)), 8)); err != nil {
		t.Fatalf("send after restart: %v", err)
	}
	acc, _ = c.Account(ctx, addrOf(key(5)))
	if acc.Balance != 50 {
		t.Fatalf("balance %d after restart", acc.Balance)
	}
}

// kill -9 a single-validator node during a flood of transactions: every
// transaction whose inclusion was confirmed is there after the restart.
func TestKillNineDuringTxFloodLosesNoCommittedTx(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a CometBFT node process")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	confirmed := make(chan uint64, 1000)
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			s := chainlink.NewSender(c, key(10+w))
			// Fund the worker from key 1 deterministically: the genesis
			// funds only keys 0 and 1, so workers send from key 1's
			// subaccounts via the faucet.
			if _, err := s.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_Faucet{Faucet: &chainpb.Faucet{}}}); err != nil {
				return
			}
			for i := uint64(1); ; i++ {
				select {
				case <-done:
					return
				default:
				}
				if _, err := s.Send(ctx, transfer(addrOf(key(100+w)), 1)); err != nil {
					return
				}
				select {
				case confirmed <- uint64(w)<<32 | i:
				default:
				}
			}
		}()
	}
	counts := map[uint64]uint64{}
	var total int
	for total < 60 {
		select {
		case v := <-confirmed:
			counts[v>>32] = v & 0xffffffff
			total++
		case <-ctx.Done():
			t.Fatalf("flood stalled after %d confirmations", total)
		}
	}
	node.Kill(t)
	close(done)
	// Drain what was confirmed before the kill landed.
	for more := true; more; {
		select {
		case v := <-confirmed:
			if v&0xffffffff > counts[v>>32] {
				counts[v>>32] = v & 0xffffffff
			}
		default:
			more = false
		}
	}
	// Restart in a process of its own too (an in-process CometBFT node
	// leaves file writers behind after Stop).
	node.Start(t)
	c2 := dial(t, node.URL)
	for w, n := range counts {
		acc, err := c2.Account(ctx, addrOf(key(100+int(w))))
		if err != nil {
			t.Fatal(err)
		}
		if acc.Balance < n {
			t.Fatalf("worker %d: %d transfers confirmed, %d found after restart", w, n, acc.Balance)
		}
	}
}
