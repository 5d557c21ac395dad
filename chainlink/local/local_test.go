package local

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("local chain test %d", i)))
	k, err := wallet.PrivateKeyFromBytes(seed[:])
	if err != nil {
		panic(err)
	}
	return k
}

func addr(k *wallet.PrivateKey) wallet.Address { return k.PublicKey().Address() }

func genesis() chain.Genesis {
	return chain.LocalnetGenesis("local-test", addr(key(0)), []chain.GenesisBalance{
		{Address: addr(key(0)), Amount: 1e12}, {Address: addr(key(1)), Amount: 1e12},
	})
}

func transfer(to wallet.Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_Transfer{Transfer: &chainpb.Transfer{To: to[:], Amount: amount}}}
}

func TestAdvanceStepsThousandsOfBlocksFast(t *testing.T) {
	l, err := New(DefaultTestConfig(genesis(), chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := l.Advance(1000); err != nil {
		t.Fatal(err)
	}
	head, _ := l.Head(context.Background())
	if head.Height != 1000 {
		t.Fatalf("height %d", head.Height)
	}
}

func TestBroadcastAdvanceAndNamedErrors(t *testing.T) {
	l, err := New(DefaultTestConfig(genesis(), chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	k := key(1)
	// Two transactions from one key in one block: the second's sequence
	// counts the first, still waiting.
	for seq := uint64(0); seq < 2; seq++ {
		raw, _ := chain.SignTx(k, l.ChainID(), seq, transfer(addr(key(5)), 10))
		if _, err := l.Broadcast(raw); err != nil {
			t.Fatalf("seq %d: %v", seq, err)
		}
	}
	// A bad one is refused before any block, naming the rule.
	raw, _ := chain.SignTx(k, l.ChainID(), 2, transfer(addr(key(5)), 1<<62))
	if _, err := l.Broadcast(raw); !errors.Is(err, chain.ErrInsufficientBalance) {
		t.Fatalf("overdraft: %v", err)
	}
	raw, _ = chain.SignTx(k, "other", 2, transfer(addr(key(5)), 1))
	if _, err := l.Broadcast(raw); !errors.Is(err, chain.ErrWrongChainID) {
		t.Fatalf("wrong chain: %v", err)
	}
	if err := l.Advance(1); err != nil {
		t.Fatal(err)
	}
	acc, _ := l.Account(ctx, addr(key(5)))
	if acc.Balance != 20 {
		t.Fatalf("balance %d", acc.Balance)
	}
	if a, _ := l.Account(ctx, addr(k)); a.Sequence != 2 {
		t.Fatalf("sequence %d", a.Sequence)
	}
}

func TestSubmitWaitsForInclusionWithProducer(t *testing.T) {
	cfg := DefaultTestConfig(genesis(), chaintest.StakeEpoch)
	cfg.BlockTime = 2 * time.Millisecond
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	heads, err := l.SubscribeHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s := chainlink.NewSender(l, key(1))
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Send(ctx, transfer(addr(key(6)), 1))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	acc, _ := l.Account(ctx, addr(key(6)))
	if acc.Balance != 20 {
		t.Fatalf("balance %d after 20 concurrent sends", acc.Balance)
	}
	// A failing message reports its named error and block.
	rec, err := s.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: make([]byte, 20), Amount: 1}}})
	var te *chainlink.TxError
	if !errors.Is(err, chain.ErrNotRegistered) || !errors.As(err, &te) {
		t.Fatalf("add stake to unknown hotkey: %v %+v", err, rec)
	}
	// Heads arrive in order.
	var last uint64
	for range 3 {
		select {
		case h := <-heads:
			if h.Height <= last {
				t.Fatalf("head %d after %d", h.Height, last)
			}
			last = h.Height
		case <-ctx.Done():
			t.Fatal("no heads")
		}
	}
}

func TestDurableRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultTestConfig(genesis(), chaintest.StakeEpoch)
	cfg.DataDir = filepath.Join(dir, "chain")
	l, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := chain.SignTx(key(1), l.ChainID(), 0, transfer(addr(key(7)), 99))
	if _, err := l.Broadcast(raw); err != nil {
		t.Fatal(err)
	}
	l.Advance(5)
	head, _ := l.Head(context.Background())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l, err = New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	again, _ := l.Head(context.Background())
	if again.Height != head.Height || string(again.AppHash) != string(head.AppHash) {
		t.Fatalf("restart at %d, want %d", again.Height, head.Height)
	}
	acc, _ := l.Account(context.Background(), addr(key(7)))
	if acc.Balance != 99 {
		t.Fatalf("balance after restart %d", acc.Balance)
	}
}

func TestCloseReleasesWaitersAndSubscribers(t *testing.T) {
	l, err := New(DefaultTestConfig(genesis(), chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	heads, _ := l.SubscribeHeads(context.Background())
	raw, _ := chain.SignTx(key(1), l.ChainID(), 0, transfer(addr(key(8)), 1))
	done := make(chan error, 1)
	go func() {
		_, err := l.Submit(context.Background(), raw)
		done <- err
	}()
	// Wait until the submission is queued, then close.
	deadline := time.Now().Add(10 * time.Second)
	for {
		l.mu.Lock()
		n := len(l.pending)
		l.mu.Unlock()
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("submission never queued")
		}
		time.Sleep(time.Millisecond)
	}
	l.Close()
	if err := <-done; !errors.Is(err, chainlink.ErrClosed) {
		t.Fatalf("waiter got %v", err)
	}
	if _, ok := <-heads; ok {
		t.Fatal("subscription not closed")
	}
	if err := l.Advance(1); !errors.Is(err, chainlink.ErrClosed) {
		t.Fatalf("advance after close: %v", err)
	}
	l.Close() // twice is fine
}

func TestCommitments(t *testing.T) {
	gen := genesis()
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
	l, err := New(DefaultTestConfig(gen, chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	hk := addr(key(2))
	submit := func(k *wallet.PrivateKey, seq uint64, msg *chainpb.Msg) {
		t.Helper()
		raw, _ := chain.SignTx(k, l.ChainID(), seq, msg)
		if _, err := l.Broadcast(raw); err != nil {
			t.Fatal(err)
		}
		if err := l.Advance(1); err != nil {
			t.Fatal(err)
		}
	}
	submit(key(1), 0, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}})
	if _, err := l.Commitment(ctx, 1, hk); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("before: %v", err)
	}
	submit(key(2), 0, &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: 1, Hotkey: hk[:], Data: []byte("cid")}}})
	got, err := l.Commitment(ctx, 1, hk)
	if err != nil || string(got.Data) != "cid" {
		t.Fatalf("commitment %+v %v", got, err)
	}
	list, err := l.Commitments(ctx, 1)
	if err != nil || len(list) != 1 || list[0].Hotkey != hk {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := l.Commitments(ctx, 7); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
}

func TestBurnCostAndLockCost(t *testing.T) {
	gen := genesis()
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
	l, err := New(DefaultTestConfig(gen, chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	bc, err := l.BurnCost(ctx, 1)
	if err != nil || bc.Netuid != 1 || bc.Burn != gen.SubnetDefaults.Burn || bc.NextAdjustmentBlock != gen.SubnetDefaults.AdjustmentInterval {
		t.Fatalf("burn cost %+v %v", bc, err)
	}
	if _, err := l.BurnCost(ctx, 7); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
	lc, err := l.LockCost(ctx)
	if err != nil || lc.Amount != gen.Globals.NetworkMinLockCost || lc.Subnets != 1 {
		t.Fatalf("lock cost %+v %v", lc, err)
	}
}
