package comet

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet/comettest"
	"github.com/cybertensor/cybertensor/wallet"
)

// The metagraph benchmark's subnet: 64 coldkeys register 64 hotkeys each
// (4,096 uids); the first hotkey of each coldkey is a staked validator
// whose weight row covers every uid (262,144 weights).
const (
	mgColdkeys = 64
	mgPer      = 64
	mgUIDs     = mgColdkeys * mgPer
)

func mgHotkey(c, i int) *wallet.PrivateKey { return key(100_000 + c*mgPer + i) }

func metagraphBenchGenesis() chain.Genesis {
	var bal []chain.GenesisBalance
	for c := range mgColdkeys {
		bal = append(bal, chain.GenesisBalance{Address: addrOf(key(50_000 + c)), Amount: 1e15})
	}
	owner := key(50_000)
	gen := chain.LocalnetGenesis("metagraph-bench", addrOf(owner), bal)
	p := gen.SubnetDefaults
	p.MaxAllowedUIDs, p.MaxAllowedValidators = mgUIDs, mgColdkeys
	p.MaxRegsPerBlock, p.TargetRegsPerInterval = mgUIDs, mgUIDs
	p.Tempo = 30
	gen.SubnetDefaults = p
	gen.Subnets = []chain.GenesisSubnet{{Name: "bench", Owner: addrOf(owner)}}
	return gen
}

// sendInOrder has each coldkey send its transactions in order (each list
// from one signer, sequence numbers consecutive), the coldkeys in
// parallel, and waits until every signer's sequence reaches want.
func sendInOrder(b *testing.B, c *Client, lists [][][]byte, signers []wallet.Address, want []uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(lists))
	for _, txs := range lists {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, raw := range txs {
				res, err := c.rpc.BroadcastTxSync(ctx, raw)
				if err == nil && res.Code != 0 {
					err = fmt.Errorf("CheckTx: %s", res.Log)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	for i, a := range signers {
		for {
			acc, err := c.Account(ctx, a)
			if err == nil && acc.Sequence >= want[i] {
				break
			}
			if ctx.Err() != nil {
				b.Fatalf("transactions of %s not committed", a)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// waitMetagraph polls the metagraph's columns until ok says it is done.
func waitMetagraph(b *testing.B, c *Client, fields chain.MetagraphFields, ok func(*chain.Metagraph) bool) *chain.Metagraph {
	deadline := time.Now().Add(3 * time.Minute)
	for {
		m, err := c.MetagraphAt(context.Background(), chainlink.MetagraphQuery{Netuid: 1, Fields: fields})
		if err == nil && ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			b.Fatalf("metagraph not reached: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// buildMetagraphSubnet fills subnet 1 through the node's RPC.
func buildMetagraphSubnet(b *testing.B, c *Client, chainID string) {
	sign := func(k *wallet.PrivateKey, seq uint64, msg *chainpb.Msg) []byte {
		raw, err := chain.SignTx(k, chainID, seq, msg)
		if err != nil {
			b.Fatal(err)
		}
		return raw
	}
	lists := make([][][]byte, mgColdkeys)
	signers := make([]wallet.Address, mgColdkeys)
	want := make([]uint64, mgColdkeys)
	for ck := range mgColdkeys {
		cold := key(50_000 + ck)
		signers[ck] = addrOf(cold)
		for i := range mgPer {
			hk := addrOf(mgHotkey(ck, i))
			lists[ck] = append(lists[ck], sign(cold, uint64(i), &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}}))
		}
		v := addrOf(mgHotkey(ck, 0))
		lists[ck] = append(lists[ck], sign(cold, mgPer, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: v[:], Amount: 1e12}}}))
		want[ck] = mgPer + 1
	}
	sendInOrder(b, c, lists, signers, want)
	permit, _ := chain.ParseMetagraphFields("validator_permit")
	waitMetagraph(b, c, permit, func(m *chain.Metagraph) bool {
		n := 0
		for _, p := range m.ValidatorPermit {
			if p {
				n++
			}
		}
		return m.N == mgUIDs && n == mgColdkeys
	})
	uids := make([]uint32, mgUIDs)
	for j := range uids {
		uids[j] = uint32(j)
	}
	for ck := range mgColdkeys {
		vals := make([]uint32, mgUIDs)
		for j := range vals {
			vals[j] = uint32(1 + (ck*31+j*17)%65535)
		}
		lists[ck] = [][]byte{sign(mgHotkey(ck, 0), 0, &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: 1, Uids: uids, Values: vals}}})}
		signers[ck], want[ck] = addrOf(mgHotkey(ck, 0)), 1
	}
	sendInOrder(b, c, lists, signers, want)
	weights, _ := chain.ParseMetagraphFields("weights")
	waitMetagraph(b, c, weights, func(m *chain.Metagraph) bool {
		n := 0
		for _, r := range m.Weights {
			if len(r) == mgUIDs {
				n++
			}
		}
		return n == mgColdkeys
	})
}

// median runs f n times and returns the median duration.
func medianOf(b *testing.B, n int, f func() error) time.Duration {
	var d []time.Duration
	for range n {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		d = append(d, time.Since(start))
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	return d[len(d)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// BenchmarkMetagraphThroughNode fetches the metagraph of a 4,096-uid
// subnet (64 validators with dense weight rows) from a CometBFT node's RPC
// (a child process, as in the other tests): 5 chosen columns and every
// column, at the latest block and at a pinned past block (from the
// node's history), against baselines measured in the same run: the
// legacy JSON metagraph query (full and lite) and one neuron query per
// uid, as the Python SDK's lite sync does. Medians of 15 runs (3 for the
// per-neuron baseline).
func BenchmarkMetagraphThroughNode(b *testing.B) {
	gen := metagraphBenchGenesis()
	node := comettest.Init(b, gen, comettest.Options{BlockTime: 100 * time.Millisecond})
	node.Start(b)
	c := benchDial(b, node.URL)
	defer c.Close()
	setup := time.Now()
	buildMetagraphSubnet(b, c, gen.ChainID)
	b.Logf("4,096-uid subnet with 64 weight rows built through RPC in %v", time.Since(setup).Round(time.Millisecond))
	ctx := context.Background()
	five, _ := chain.ParseMetagraphFields("uid,stake,incentive,dividends,emission")
	head, err := c.Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	pinned := head.Height
	// Wait for one block more, so the pinned block is read from history.
	for {
		if h, err := c.Head(ctx); err == nil && h.Height > pinned+1 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	fetch := func(height uint64, fields chain.MetagraphFields, check func(*chain.Metagraph) bool) func() error {
		return func() error {
			m, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Height: height, Fields: fields})
			if err == nil && (m.N != mgUIDs || !check(m)) {
				err = fmt.Errorf("wrong metagraph at %d: n=%d", height, m.N)
			}
			return err
		}
	}
	fiveOK := func(m *chain.Metagraph) bool { return len(m.Emission) == mgUIDs && m.Hotkeys == nil }
	fullOK := func(m *chain.Metagraph) bool { return len(m.Weights) == mgUIDs && len(m.Weights[0]) == mgUIDs }
	b.ResetTimer()
	results := []struct {
		name string
		d    time.Duration
	}{
		{"5-fields-ms", medianOf(b, 15, fetch(0, five, fiveOK))},
		{"full-ms", medianOf(b, 15, fetch(0, chain.AllMetagraphFields, fullOK))},
		{"5-fields-pinned-ms", medianOf(b, 15, fetch(pinned, five, fiveOK))},
		{"full-pinned-ms", medianOf(b, 15, fetch(pinned, chain.AllMetagraphFields, fullOK))},
		{"baseline-json-full-ms", medianOf(b, 15, func() error {
			m, err := c.Metagraph(ctx, 1, false)
			if err == nil && len(m.Weights[0]) != mgUIDs {
				err = fmt.Errorf("short weights")
			}
			return err
		})},
		{"baseline-json-lite-ms", medianOf(b, 15, func() error { _, err := c.Metagraph(ctx, 1, true); return err })},
		{"baseline-per-neuron-ms", medianOf(b, 3, func() error {
			for ck := range mgColdkeys {
				for i := range mgPer {
					if _, err := c.Neuron(ctx, 1, addrOf(mgHotkey(ck, i))); err != nil {
						return err
					}
				}
			}
			return nil
		})},
	}
	b.StopTimer()
	for _, r := range results {
		b.ReportMetric(ms(r.d), r.name)
	}
}
