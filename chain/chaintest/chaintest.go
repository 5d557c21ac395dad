// Package chaintest holds helpers for tests of packages built on the chain:
// a stand-in epoch and a node directory that survives CometBFT's
// shutdown. It is imported only from tests.
package chaintest

import (
	"math/big"
	"net"
	"os"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
)

// StakeEpoch is a deterministic stand-in for the Yuma epoch, for tests of
// the machinery around it: every neuron is active, those with stake get
// permits, and validator emission is paid in proportion to stake.
func StakeEpoch(in *chain.EpochInput) ([]chain.EpochNeuronResult, error) {
	out := make([]chain.EpochNeuronResult, len(in.Neurons))
	var total uint64
	for _, n := range in.Neurons {
		total += n.Stake
	}
	for i, n := range in.Neurons {
		out[i].Active, out[i].ValidatorPermit = true, n.Stake > 0
		if total > 0 {
			share := new(big.Int).Mul(new(big.Int).SetUint64(in.Emission), new(big.Int).SetUint64(n.Stake))
			out[i].ValidatorEmission = share.Quo(share, new(big.Int).SetUint64(total)).Uint64()
			out[i].Emission = out[i].ValidatorEmission
			out[i].Dividends = uint16(65535 * n.Stake / total)
		}
		out[i].Bonds = n.Bonds
	}
	return out, nil
}

// RemovableDir is t.TempDir for CometBFT node homes: an in-process CometBFT
// node can still be closing files right after Stop, so removal is retried
// instead of failing the test on "directory not empty".
func RemovableDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cybertensor-node-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for os.RemoveAll(dir) != nil && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	})
	return dir
}

// FreePorts returns n distinct TCP ports on 127.0.0.1 that were free a
// moment ago: all n are held open until every one is chosen, so that a
// port released by one pick is not handed out again by the next (a node
// whose RPC and P2P addresses got the same port answered its RPC clients
// with its P2P handshake).
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
