package hostile

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ipfs/go-cid"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/dht"
	"github.com/cybertensor/cybertensor/knowledge"
)

// The wire formats the probes and the attacker speak, written out here as
// an outside implementation would (protocol/SPEC.md §3, §5.4), so the
// suite goes through the target's servers, not its clients.

// kadProtocol is the DHT's protocol ID (SPEC §3).
const kadProtocol = protocol.ID(dht.ProtocolPrefix + "/kad/1.0.0")

// writeFrame writes b prefixed by its length as an unsigned varint.
func writeFrame(w io.Writer, b []byte) error {
	_, err := w.Write(append(binary.AppendUvarint(nil, uint64(len(b))), b...))
	return err
}

// readFrame reads one length-prefixed frame of at most limit bytes.
func readFrame(r *bufio.Reader, limit int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("frame of %d bytes exceeds %d", n, limit)
	}
	b := make([]byte, n)
	_, err = io.ReadFull(r, b)
	return b, err
}

// withDeadline bounds s by ctx's deadline.
func withDeadline(ctx context.Context, s network.Stream) {
	if d, ok := ctx.Deadline(); ok {
		s.SetDeadline(d)
	}
}

// kadRoundTrip sends m on a stream of its own and reads the answer.
func kadRoundTrip(ctx context.Context, h host.Host, to peer.ID, m *kadpb.Message) (*kadpb.Message, error) {
	s, err := h.NewStream(ctx, to, kadProtocol)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	withDeadline(ctx, s)
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	if err := writeFrame(s, b); err != nil {
		return nil, err
	}
	raw, err := readFrame(bufio.NewReader(s), network.MessageSizeMax)
	if err != nil {
		return nil, err
	}
	var resp kadpb.Message
	if err := proto.Unmarshal(raw, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// getProviders asks to's DHT for key's providers.
func getProviders(ctx context.Context, h host.Host, to peer.ID, key []byte) ([]*peer.AddrInfo, error) {
	resp, err := kadRoundTrip(ctx, h, to, kadpb.NewMessage(kadpb.Message_GET_PROVIDERS, key, 0))
	if err != nil {
		return nil, err
	}
	if resp.GetType() != kadpb.Message_GET_PROVIDERS {
		return nil, fmt.Errorf("answer of type %v", resp.GetType())
	}
	return kadpb.PBPeersToPeerInfos(resp.GetProviderPeers()), nil
}

// fetchBlock asks to for block c and checks the answer: the block itself,
// hashing to c.
func fetchBlock(ctx context.Context, h host.Host, to peer.ID, c cid.Cid) error {
	s, err := h.NewStream(ctx, to, knowledge.ProtocolID)
	if err != nil {
		return err
	}
	defer s.Close()
	withDeadline(ctx, s)
	req, err := knowledge.EncodeRequest([]cid.Cid{c})
	if err != nil {
		return err
	}
	if err := writeFrame(s, req); err != nil {
		return err
	}
	raw, err := readFrame(bufio.NewReader(s), knowledge.MaxBlockFrame)
	if err != nil {
		return err
	}
	b, err := knowledge.DecodeBlock(raw)
	if err != nil {
		return err
	}
	if b.Missing || !b.CID.Equals(c) {
		return errors.New("the block is missing or another one")
	}
	got, err := c.Prefix().Sum(b.Data)
	if err != nil {
		return err
	}
	if !got.Equals(c) {
		return errors.New("the block does not hash to its CID")
	}
	return nil
}

// probeTimeout bounds one of the attacker's own exchanges.
const probeTimeout = 10 * time.Second
