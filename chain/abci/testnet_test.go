package abci

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/wallet"
)

func testKey(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("abci test key %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

func addrOf(k *wallet.PrivateKey) wallet.Address { return k.PublicKey().Address() }

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func testGenesis(keys []*wallet.PrivateKey) chain.Genesis {
	var bal []chain.GenesisBalance
	for _, k := range keys {
		bal = append(bal, chain.GenesisBalance{Address: addrOf(k), Amount: 1e13})
	}
	g := chain.LocalnetGenesis("comet-test", addrOf(keys[0]), bal)
	g.SubnetDefaults.Tempo = 5
	g.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addrOf(keys[0])}}
	return g
}

const childEnv = "CYBERTENSOR_ABCI_CHILD_HOME"

// TestMain doubles as a validator process: stopping CometBFT in-process
// while its reactors run can panic inside CometBFT (a closed block store),
// so the testnet's validators run as child processes and are killed.
func TestMain(m *testing.M) {
	if home := os.Getenv(childEnv); home != "" {
		if _, err := StartNode(home, chaintest.StakeEpoch, slog.New(slog.DiscardHandler)); err != nil {
			fmt.Println("child:", err)
			os.Exit(3)
		}
		select {}
	}
	os.Exit(m.Run())
}

type testnet struct {
	t     *testing.T
	homes []string
	rpc   []string
	nodes []*exec.Cmd
}

func startTestnet(t *testing.T, n int, gen chain.Genesis) *testnet {
	t.Helper()
	dir := chaintest.RemovableDir(t)
	tn := &testnet{t: t}
	var opts []InitOptions
	for i := range n {
		tn.homes = append(tn.homes, filepath.Join(dir, fmt.Sprintf("node%d", i)))
		rpc := fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t))
		tn.rpc = append(tn.rpc, rpc)
		opts = append(opts, InitOptions{
			Moniker: fmt.Sprintf("v%d", i), P2PAddress: fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)),
			RPCAddress: rpc, BlockTime: 100 * time.Millisecond,
		})
	}
	if _, err := Testnet(tn.homes, gen, opts); err != nil {
		t.Fatal(err)
	}
	tn.nodes = make([]*exec.Cmd, n)
	for i := range n {
		tn.start(i)
	}
	t.Cleanup(func() {
		for i := range tn.nodes {
			tn.stop(i)
		}
	})
	return tn
}

func (tn *testnet) start(i int) {
	tn.t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+tn.homes[i])
	if err := cmd.Start(); err != nil {
		tn.t.Fatalf("node %d: %v", i, err)
	}
	tn.nodes[i] = cmd
}

// stop kills validator i (kill -9).
func (tn *testnet) stop(i int) {
	if tn.nodes[i] != nil {
		tn.nodes[i].Process.Signal(syscall.SIGKILL)
		tn.nodes[i].Wait()
		tn.nodes[i] = nil
	}
}

func (tn *testnet) client(i int) *rpchttp.HTTP {
	tn.t.Helper()
	c, err := rpchttp.New(tn.rpc[i], "/websocket")
	if err != nil {
		tn.t.Fatal(err)
	}
	return c
}

func (tn *testnet) height(i int) int64 {
	st, err := tn.client(i).Status(context.Background())
	if err != nil {
		return -1
	}
	return st.SyncInfo.LatestBlockHeight
}

// waitHeight waits until node i reaches height h.
func (tn *testnet) waitHeight(i int, h int64) {
	tn.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for tn.height(i) < h {
		if time.Now().After(deadline) {
			tn.t.Fatalf("node %d stuck at height %d, want %d", i, tn.height(i), h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestFourValidatorsAgreeSurviveAFailureAndCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a 4-validator CometBFT network")
	}
	keys := []*wallet.PrivateKey{testKey(0), testKey(1), testKey(2), testKey(3)}
	tn := startTestnet(t, 4, testGenesis(keys))
	tn.waitHeight(0, 2)
	ctx := context.Background()

	// A stream of random transactions, valid and invalid, to every node.
	r := rand.New(rand.NewPCG(3, 4))
	seq := map[wallet.Address]uint64{}
	send := func(n int) {
		for range n {
			k := keys[r.IntN(len(keys))]
			var msg *chainpb.Msg
			to := addrOf(keys[r.IntN(len(keys))])
			hot := addrOf(testKey(100 + r.IntN(6)))
			switch r.IntN(4) {
			case 0:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_Transfer{Transfer: &chainpb.Transfer{To: to[:], Amount: uint64(r.IntN(1000))}}}
			case 1:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hot[:]}}}
			case 2:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hot[:], Amount: uint64(1 + r.IntN(1e6))}}}
			default:
				msg = &chainpb.Msg{Sum: &chainpb.Msg_Faucet{Faucet: &chainpb.Faucet{}}}
			}
			raw, err := chain.SignTx(k, "comet-test", seq[addrOf(k)], msg)
			if err != nil {
				t.Fatal(err)
			}
			target := r.IntN(len(tn.nodes))
			for tn.nodes[target] == nil {
				target = (target + 1) % len(tn.nodes)
			}
			res, err := tn.client(target).BroadcastTxSync(ctx, raw)
			if err != nil {
				t.Fatal(err)
			}
			if res.Code == 0 {
				seq[addrOf(k)]++
			}
		}
	}
	send(40)
	h := tn.height(0) + 5
	for i := range 4 {
		tn.waitHeight(i, h)
	}
	tn.assertSameAppHashes(h)

	// Kill one validator: the other three (3/4 of the power > 2/3) go on.
	tn.stop(3)
	send(20)
	h2 := tn.height(0) + 8
	for i := range 3 {
		tn.waitHeight(i, h2)
	}
	// Restart it: it recovers from the kill, replays what it missed and
	// catches up.
	tn.start(3)
	tn.waitHeight(3, h2)
	tn.assertSameAppHashes(h2)
}

// assertSameAppHashes compares block headers' app hashes up to height h on
// every running node.
func (tn *testnet) assertSameAppHashes(h int64) {
	tn.t.Helper()
	ctx := context.Background()
	for height := int64(1); height <= h; height++ {
		var want []byte
		for i, n := range tn.nodes {
			if n == nil {
				continue
			}
			b, err := tn.client(i).Block(ctx, &height)
			if err != nil {
				tn.t.Fatalf("node %d block %d: %v", i, height, err)
			}
			if want == nil {
				want = b.Block.Header.AppHash
			} else if string(want) != string(b.Block.Header.AppHash) {
				tn.t.Fatalf("block %d: node %d app hash %X differs from %X", height, i, b.Block.Header.AppHash, want)
			}
		}
	}
}
