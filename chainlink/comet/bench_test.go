package comet

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/wallet"
)

// benchKeys are the hotkeys that set weights; each is registered on
// subnet 1 at genesis time by the benchmark's setup transactions.
const benchHotkeys = 32

// benchGenesis funds key 0, which owns subnet 1 and registers the hotkeys.
func benchGenesis() (chain.Genesis, []*wallet.PrivateKey) {
	owner := key(0)
	gen := chain.LocalnetGenesis("bench", addrOf(owner), []chain.GenesisBalance{{Address: addrOf(owner), Amount: 1e15}})
	gen.Subnets = []chain.GenesisSubnet{{Name: "bench", Owner: addrOf(owner)}}
	var hot []*wallet.PrivateKey
	for i := range benchHotkeys {
		hot = append(hot, key(1000+i))
	}
	return gen, hot
}

// setupTxs registers every hotkey (all from the owner, in sequence).
func setupTxs(b *testing.B, chainID string, hot []*wallet.PrivateKey) [][]byte {
	var txs [][]byte
	for i, h := range hot {
		a := addrOf(h)
		raw, err := chain.SignTx(key(0), chainID, uint64(i), &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: a[:]}}})
		if err != nil {
			b.Fatal(err)
		}
		txs = append(txs, raw)
	}
	return txs
}

// weightTxs signs n self-weight transactions round-robin over the hotkeys
// (uid i is hotkey i), continuing each hotkey's sequence from seq.
func weightTxs(b *testing.B, chainID string, hot []*wallet.PrivateKey, seq []uint64, n int) [][]byte {
	txs := make([][]byte, n)
	for i := range n {
		k := i % len(hot)
		raw, err := chain.SignTx(hot[k], chainID, seq[k], &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: 1, Uids: []uint32{uint32(k)}, Values: []uint32{65535}}}})
		if err != nil {
			b.Fatal(err)
		}
		seq[k]++
		txs[i] = raw
	}
	return txs
}

// engine abstracts the chains under test.
type engine struct {
	// broadcast returns once the transaction passed CheckTx.
	broadcast func(raw []byte) error
	// submit returns once the transaction is in a committed block.
	submit  func(ctx context.Context, raw []byte) (*chainlink.Receipt, error)
	account func(ctx context.Context, a wallet.Address) (chain.Account, error)
}

// throughput broadcasts txs in rounds of one transaction per hotkey (so
// each hotkey's sequence reaches the mempool in order) and waits until
// every one is committed; it returns the elapsed time.
func throughput(b *testing.B, e engine, hot []*wallet.PrivateKey, txs [][]byte) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	for r := 0; r < len(txs); r += len(hot) {
		end := min(r+len(hot), len(txs))
		var wg sync.WaitGroup
		errs := make(chan error, end-r)
		for i := r; i < end; i++ {
			wg.Add(1)
			go func(raw []byte) {
				defer wg.Done()
				if err := e.broadcast(raw); err != nil {
					errs <- err
				}
			}(txs[i])
		}
		wg.Wait()
		close(errs)
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	want := make([]uint64, len(hot))
	for i := range txs {
		want[i%len(hot)]++
	}
	for k, h := range hot {
		for {
			acc, err := e.account(ctx, addrOf(h))
			if err == nil && acc.Sequence >= want[k] {
				break
			}
			if ctx.Err() != nil {
				b.Fatalf("transactions of hotkey %d not committed", k)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// latency submits one transaction at a time and returns the median time
// from submission to commitment.
func latency(b *testing.B, e engine, txs [][]byte) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var lat []time.Duration
	for _, raw := range txs {
		start := time.Now()
		if _, err := e.submit(ctx, raw); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat[len(lat)/2]
}

func run(b *testing.B, e engine, chainID string, hot []*wallet.PrivateKey, n int) {
	seq := make([]uint64, len(hot))
	txs := weightTxs(b, chainID, hot, seq, n)
	probe := weightTxs(b, chainID, hot[:1], seq[:1], 20)
	b.ResetTimer()
	elapsed := throughput(b, e, hot, txs)
	med := latency(b, e, probe)
	b.StopTimer()
	b.ReportMetric(float64(n)/elapsed.Seconds(), "tx/s")
	b.ReportMetric(float64(med.Microseconds())/1000, "ms-median-latency")
}

// BenchmarkCommittedSetWeights measures set_weights transactions committed
// per second and submission-to-inclusion latency, on the local engine and
// on CometBFT with 1 and 4 validators, all with 100 ms blocks.
func BenchmarkCommittedSetWeights(b *testing.B) {
	const blockTime = 100 * time.Millisecond
	n := max(b.N, 2000)
	b.Run("local-engine", func(b *testing.B) {
		gen, hot := benchGenesis()
		cfg := local.DefaultTestConfig(gen, chaintest.StakeEpoch)
		cfg.BlockTime = blockTime
		l, err := local.New(cfg)
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		for _, raw := range setupTxs(b, gen.ChainID, hot) {
			if _, err := l.Broadcast(raw); err != nil {
				b.Fatal(err)
			}
		}
		waitHeightLocal(b, l)
		run(b, engine{
			broadcast: func(raw []byte) error { _, err := l.Broadcast(raw); return err },
			submit:    l.Submit, account: l.Account,
		}, gen.ChainID, hot, n)
	})
	for _, validators := range []int{1, 4} {
		b.Run(fmt.Sprintf("cometbft-%d-validators", validators), func(b *testing.B) {
			gen, hot := benchGenesis()
			url, stop := startBenchTestnet(b, validators, gen, blockTime)
			defer stop()
			c := benchDial(b, url)
			defer c.Close()
			ctx := context.Background()
			for _, raw := range setupTxs(b, gen.ChainID, hot) {
				if _, err := c.Submit(ctx, raw); err != nil {
					b.Fatal(err)
				}
			}
			run(b, engine{
				broadcast: func(raw []byte) error {
					res, err := c.rpc.BroadcastTxSync(ctx, raw)
					if err == nil && res.Code != 0 {
						err = fmt.Errorf("CheckTx: %s", res.Log)
					}
					return err
				},
				submit: c.Submit, account: c.Account,
			}, gen.ChainID, hot, n)
		})
	}
}

func waitHeightLocal(b *testing.B, l *local.Local) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	heads, _ := l.SubscribeHeads(ctx)
	for range 3 {
		<-heads
	}
}

// startBenchTestnet runs n validators in-process on loopback and returns
// the first one's RPC URL and a function that stops them.
func startBenchTestnet(b *testing.B, n int, gen chain.Genesis, blockTime time.Duration) (string, func()) {
	dir := b.TempDir()
	var homes []string
	var opts []abci.InitOptions
	var url string
	for i := range n {
		homes = append(homes, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		rpc := freePort(b)
		if i == 0 {
			url = fmt.Sprintf("http://127.0.0.1:%d", rpc)
		}
		opts = append(opts, abci.InitOptions{Moniker: fmt.Sprintf("v%d", i), P2PAddress: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(b)),
			RPCAddress: fmt.Sprintf("tcp://127.0.0.1:%d", rpc), BlockTime: blockTime})
	}
	if _, err := abci.Testnet(homes, gen, opts); err != nil {
		b.Fatal(err)
	}
	var nodes []*abci.Node
	for _, h := range homes {
		node, err := abci.StartNode(h, chaintest.StakeEpoch, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatal(err)
		}
		nodes = append(nodes, node)
	}
	return url, func() {
		for _, n := range nodes {
			n.Stop()
		}
	}
}

func benchDial(b *testing.B, url string) *Client {
	cfg := DefaultConfig()
	cfg.URL = url
	cfg.PollInterval = 10 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := Dial(context.Background(), cfg)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
