package backend

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multiaddr"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

type anyone struct{}

func (anyone) Caller(context.Context, uint16, peer.ID) (protocol.Caller, error) {
	return protocol.Caller{Registered: true, Stake: 1}, nil
}

// A miner serving the retrieval model over the query protocol.
func TestHandlersOverTheQueryProtocol(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	var keys []*wallet.PrivateKey
	var ids []peer.ID
	for i := range 2 {
		seed := sha256.Sum256([]byte(fmt.Sprintf("backend handler %d", i)))
		k, _ := wallet.PrivateKeyFromBytes(seed[:])
		addr, _ := multiaddr.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 5000+i))
		h, err := mn.AddPeer(k.Libp2p(), addr)
		if err != nil {
			t.Fatal(err)
		}
		keys, ids = append(keys, k), append(ids, h.ID())
	}
	mn.LinkAll()
	cfg := protocol.DefaultServerConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := protocol.NewServer(mn.Host(ids[0]), keys[0], anyone{}, map[string]protocol.Handler{
		"text.generate": TextGenerate(NewRetrieval(library...)),
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c, _ := protocol.NewClient(mn.Host(ids[1]), protocol.DefaultClientConfig())
	defer c.Close()
	ask := func(synapse, body string) protocol.Result {
		return c.Stream(context.Background(), ids[0], &pb.Request{Netuid: 1, Synapse: synapse, Body: []byte(body)}, nil)
	}
	if r := ask("text.generate", `{"prompt": "what does yuma consensus compute"}`); r.Status != protocol.StatusOK || len(r.Body) == 0 {
		t.Fatalf("answer: %v %q %q", r.Status, r.Message, r.Body)
	}
	if r := ask("text.generate", `{"prompt": "zebra"}`); r.Status != protocol.StatusNotFound {
		t.Fatalf("no answer: %v", r.Status)
	}
	if r := ask("text.generate", `not json`); r.Status != protocol.StatusBadRequest {
		t.Fatalf("bad body: %v", r.Status)
	}
}
