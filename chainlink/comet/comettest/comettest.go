// Package comettest runs a single-validator CometBFT node in a child
// process for tests that need a real node: one they can kill -9 and start
// again on the same home and ports.
//
// A test binary that uses it calls RunChildIfAsked first in its TestMain:
//
//	func TestMain(m *testing.M) {
//		comettest.RunChildIfAsked()
//		os.Exit(m.Run())
//	}
package comettest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chain/chaintest"
)

const (
	homeEnv  = "CYBERTENSOR_COMETTEST_HOME"
	epochEnv = "CYBERTENSOR_COMETTEST_EPOCH"
)

// RunChildIfAsked runs the node and never returns when the process is a
// node started by Node.Start; otherwise it returns at once.
func RunChildIfAsked() {
	home := os.Getenv(homeEnv)
	if home == "" {
		return
	}
	epoch := chaintest.StakeEpoch
	if os.Getenv(epochEnv) == "yuma" {
		epoch = chain.YumaEpoch
	}
	if _, err := abci.StartNode(home, epoch, slog.New(slog.DiscardHandler)); err != nil {
		fmt.Fprintln(os.Stderr, "comettest child:", err)
		os.Exit(3)
	}
	select {} // run until killed
}

// Options configure a node.
type Options struct {
	// BlockTime is CometBFT's timeout_commit; 0 means 50 ms.
	BlockTime time.Duration
	// Yuma runs chain.YumaEpoch instead of chaintest.StakeEpoch.
	Yuma bool
}

// Node is a node home with fixed ports and, while started, the child
// process running it.
type Node struct {
	Home string
	// URL is the node's RPC address, http://127.0.0.1:port.
	URL  string
	opts Options
	cmd  *exec.Cmd
}

// FreePort returns a TCP port that was free a moment ago.
func FreePort(t testing.TB) int {
	t.Helper()
	return chaintest.FreePorts(t, 1)[0]
}

// Init creates a single-validator node home for gen; the node is not
// started.
func Init(t testing.TB, gen chain.Genesis, o Options) *Node {
	t.Helper()
	if o.BlockTime == 0 {
		o.BlockTime = 50 * time.Millisecond
	}
	home := filepath.Join(t.TempDir(), "node")
	ports := chaintest.FreePorts(t, 2)
	rpcPort := ports[0]
	io := abci.InitOptions{Moniker: "solo", P2PAddress: fmt.Sprintf("tcp://127.0.0.1:%d", ports[1]),
		RPCAddress: fmt.Sprintf("tcp://127.0.0.1:%d", rpcPort), BlockTime: o.BlockTime}
	if err := abci.Init(home, gen, io); err != nil {
		t.Fatal(err)
	}
	n := &Node{Home: home, URL: fmt.Sprintf("http://127.0.0.1:%d", rpcPort), opts: o}
	t.Cleanup(n.kill)
	return n
}

// Start runs the node in a child process (the test binary itself, which
// must call RunChildIfAsked). It returns at once; clients dial until the
// node answers.
func (n *Node) Start(t testing.TB) {
	t.Helper()
	if n.cmd != nil {
		t.Fatal("comettest: node already started")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), homeEnv+"="+n.Home)
	if n.opts.Yuma {
		cmd.Env = append(cmd.Env, epochEnv+"=yuma")
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.cmd = cmd
}

// Kill stops the node with SIGKILL and waits for the process to exit.
func (n *Node) Kill(t testing.TB) {
	t.Helper()
	n.kill()
}

func (n *Node) kill() {
	if n.cmd == nil {
		return
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	n.cmd.Wait()
	n.cmd = nil
}

// WaitMempool waits until the node holds a transaction not yet in a block
// and returns its height then.
func (n *Node) WaitMempool(ctx context.Context, t testing.TB) uint64 {
	t.Helper()
	rpc, err := rpchttp.New(n.URL, "/websocket")
	if err != nil {
		t.Fatal(err)
	}
	for {
		st, err := rpc.Status(ctx)
		if err == nil {
			res, err := rpc.NumUnconfirmedTxs(ctx)
			if err == nil && res.Total > 0 {
				return uint64(st.SyncInfo.LatestBlockHeight)
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no transaction reached the mempool: %v", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}
