package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/wallet"
)

// Under a serving_rate_limit, a neuron restarted on the addresses the
// chain holds sends no new axon (so nothing refuses it), and one on other
// addresses inside the limit is refused saying from which block it may
// serve again; the chain's axon stays.
func TestServeAxonUnderServingRateLimit(t *testing.T) {
	const limit = 1000
	cold, hot := testKey(t, "serve cold", 0), testKey(t, "serve hot", 0)
	cfg := local.DefaultConfig(testGenesis(t, []*wallet.PrivateKey{cold}, func(p *chain.Hyperparams) { p.ServingRateLimit = limit }), chain.YumaEpoch)
	cfg.BlockTime, cfg.Logger = 50*time.Millisecond, slog.New(slog.DiscardHandler)
	c, err := local.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := ensureRegistered(ctx, c, cold, hot, 1); err != nil {
		t.Fatal(err)
	}
	h1, err := newHost(hot, HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, SwarmConfig{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h1.Close()
	axon := func() *chain.Axon {
		n, err := c.Neuron(ctx, 1, hot.PublicKey().Address())
		if err != nil || n.Axon == nil {
			t.Fatalf("axon %+v %v", n.Axon, err)
		}
		return n.Axon
	}
	if err := serveAxon(ctx, c, hot, 1, h1, []string{"q"}); err != nil {
		t.Fatal(err)
	}
	first := axon()
	if err := serveAxon(ctx, c, hot, 1, h1, []string{"q"}); err != nil {
		t.Fatalf("the same axon again: %v", err)
	}
	if again := axon(); again.Block != first.Block {
		t.Fatalf("the same axon was sent again at block %d", again.Block)
	}
	h2, err := newHost(hot, HostConfig{Listen: []string{"/ip4/127.0.0.1/tcp/0"}}, SwarmConfig{Disabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	err = serveAxon(ctx, c, hot, 1, h2, []string{"q"})
	want := fmt.Sprintf("served other addresses at block %d and subnet 1's serving_rate_limit is %d blocks: start again from block %d", first.Block, limit, first.Block+limit)
	if !errors.Is(err, chain.ErrServingRateLimit) || !strings.Contains(err.Error(), want) {
		t.Fatalf("other addresses inside the limit: %v", err)
	}
	if after := axon(); after.Block != first.Block || after.Multiaddrs[0] != first.Multiaddrs[0] {
		t.Fatalf("axon changed to %+v", after)
	}
}
