package metering

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	"github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

// everyoneRegistered is a protocol.Callers for which every caller is
// registered.
type everyoneRegistered struct{}

func (everyoneRegistered) Caller(context.Context, uint16, peer.ID) (protocol.Caller, error) {
	return protocol.Caller{Registered: true, Stake: 1000}, nil
}

// servedUsage queries a real miner (a protocol server on mocknet) with
// want_receipt from a gateway host and returns the usage record the
// gateway would keep, and the peer IDs of the miner and of a third host.
func servedUsage(t *testing.T) (gateway.Usage, peer.ID, peer.ID) {
	t.Helper()
	mn := mocknet.New()
	t.Cleanup(func() { mn.Close() })
	var keys []*wallet.PrivateKey
	for i := range 3 {
		seed := sha256.Sum256(fmt.Appendf(nil, "metering receipt test key %d", i))
		k, err := wallet.PrivateKeyFromBytes(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := multiaddr.NewMultiaddr(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", 4100+i))
		if _, err := mn.AddPeer(k.Libp2p(), addr); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
	}
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	hosts := mn.Hosts()
	var miner, gw, third = hosts[0], hosts[1], hosts[2]
	var minerKey *wallet.PrivateKey
	for _, k := range keys {
		if id, _ := peer.IDFromPrivateKey(k.Libp2p()); id == miner.ID() {
			minerKey = k
		}
	}
	cfg := protocol.DefaultServerConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := protocol.NewServer(miner, minerKey, everyoneRegistered{}, map[string]protocol.Handler{
		"text.chat": protocol.HandlerFunc(func(_ context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
			return w.Write([]byte("an answer"))
		}),
	}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	client, err := protocol.NewClient(gw, protocol.DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	req := &pb.Request{RequestId: "chat-1", Netuid: 1, Synapse: "text.chat", Body: []byte(`{"messages":[]}`), TimeoutMs: 5000, WantReceipt: true}
	res := client.Stream(context.Background(), miner.ID(), req, nil)
	if res.Status != protocol.StatusOK || res.Receipt == nil {
		t.Fatalf("query: %v %v", res.Status, res.Err)
	}
	receipt, err := proto.Marshal(res.Receipt)
	if err != nil {
		t.Fatal(err)
	}
	hotkey, err := protocol.HotkeyAddress(miner.ID())
	if err != nil {
		t.Fatal(err)
	}
	u := usage(0)
	u.Miner, u.MinerPeer, u.RequestID, u.Status, u.Receipt = hotkey.String(), miner.ID().String(), "chat-1", res.Status.String(), receipt
	return u, miner.ID(), third.ID()
}

func TestVerifyReceipt(t *testing.T) {
	good, minerID, thirdID := servedUsage(t)
	r, err := VerifyReceipt(good)
	if err != nil {
		t.Fatalf("a miner's own receipt: %v", err)
	}
	if r.Server != minerID.String() {
		t.Fatalf("server %s", r.Server)
	}
	// It survives the ledger: recorded, read back, verified.
	l := openLedger(t, t.TempDir()+"/usage.db", testLedgerConfig())
	if err := l.Record(good); err != nil {
		t.Fatal(err)
	}
	all, _ := l.All()
	if _, err := VerifyReceipt(all[0].Usage); err != nil {
		t.Fatalf("after the ledger: %v", err)
	}
	thirdHotkey, _ := protocol.HotkeyAddress(thirdID)
	for name, edit := range map[string]func(u *gateway.Usage){
		"signature byte":   func(u *gateway.Usage) { u.Receipt[len(u.Receipt)-5] ^= 1 },
		"garbage":          func(u *gateway.Usage) { u.Receipt = []byte{0xff, 0xff, 0xff} },
		"other miner peer": func(u *gateway.Usage) { u.MinerPeer = thirdID.String() },
		"other miner":      func(u *gateway.Usage) { u.Miner = thirdHotkey.String() },
		"bad miner":        func(u *gateway.Usage) { u.Miner = "not an address" },
		"status":           func(u *gateway.Usage) { u.Status = "TIMEOUT" },
		"receipt status": func(u *gateway.Usage) {
			var r pb.Receipt
			proto.Unmarshal(u.Receipt, &r)
			r.Status = pb.Status_TIMEOUT
			u.Receipt, _ = proto.Marshal(&r)
			u.Status = "TIMEOUT"
		},
		"response hash": func(u *gateway.Usage) {
			var r pb.Receipt
			proto.Unmarshal(u.Receipt, &r)
			r.ResponseHash[0] ^= 1
			u.Receipt, _ = proto.Marshal(&r)
		},
		"claimed by another peer": func(u *gateway.Usage) {
			var r pb.Receipt
			proto.Unmarshal(u.Receipt, &r)
			r.Server = thirdID.String()
			u.Receipt, _ = proto.Marshal(&r)
			u.MinerPeer, u.Miner = thirdID.String(), thirdHotkey.String()
		},
	} {
		u := good
		u.Receipt = append([]byte(nil), good.Receipt...)
		edit(&u)
		if _, err := VerifyReceipt(u); !errors.Is(err, protocol.ErrBadReceipt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	none := good
	none.Receipt = nil
	if _, err := VerifyReceipt(none); !errors.Is(err, ErrNoReceipt) {
		t.Errorf("no receipt: %v", err)
	}
}
