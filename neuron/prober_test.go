package neuron

import (
	"context"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

// registeredProber registers key on subnet 1 (from cold) and returns a
// function that asks m a question from a host of that key, the question
// given timeout to be answered (and the call 5 s more to end).
func registeredProber(t *testing.T, ctx context.Context, c chainlink.Chain, cold, key *wallet.PrivateKey, m *Miner) func(timeout time.Duration) protocol.Result {
	t.Helper()
	if _, err := ensureRegistered(ctx, c, cold, key, 1); err != nil {
		t.Fatal(err)
	}
	h, err := newHost(key, HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, SwarmConfig{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	client, err := protocol.NewClient(h, protocol.DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	h.Peerstore().AddAddrs(m.ID(), m.h.Addrs(), time.Hour)
	return func(timeout time.Duration) protocol.Result {
		qctx, cancel := context.WithTimeout(ctx, timeout+5*time.Second)
		defer cancel()
		return client.Query(qctx, []peer.ID{m.ID()}, &pb.Request{RequestId: "probe", Netuid: 1, Synapse: "text.generate",
			Body: []byte(`{"prompt": "Why is the sky blue?"}`), TimeoutMs: uint32(timeout / time.Millisecond)})[0]
	}
}
