package knowledge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/knowledge/pb"
)

// Every decoder of bytes from peers either accepts or returns one of the
// package's errors; none panics.

func FuzzDecodeObject(f *testing.F) {
	o, _ := newObject(key(1), Meta{Title: "t", Tags: []string{"a"}, Links: []cid.Cid{sumCID(CodecObject, nil)}}, sumCID(cid.Raw, []byte("b")), 1, nowForTest())
	f.Add(o.Envelope)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x02, 0x08, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeObject(b)
		if err != nil {
			if !errors.Is(err, ErrBadObject) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if !got.Author.Verify(append([]byte(signDomain), mustHeader(t, b)...), mustSig(t, b)) || !got.CID.Equals(sumCID(CodecObject, b)) {
			t.Fatal("accepted an object that does not verify")
		}
	})
}

func mustHeader(t *testing.T, env []byte) []byte {
	h, _ := splitEnvelope(t, env)
	return h
}

func mustSig(t *testing.T, env []byte) []byte {
	_, s := splitEnvelope(t, env)
	return s
}

func FuzzDecodeRequest(f *testing.F) {
	b, _ := EncodeRequest([]cid.Cid{sumCID(cid.Raw, []byte("x")), sumCID(CodecObject, []byte("y"))})
	f.Add(b)
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		want, err := DecodeRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if len(want) == 0 || len(want) > MaxWant {
			t.Fatalf("accepted %d wants", len(want))
		}
		for _, c := range want {
			if checkCID(c) != nil {
				t.Fatalf("accepted %s", c)
			}
		}
	})
}

func FuzzDecodeBlock(f *testing.F) {
	b, _ := EncodeBlock(BlockMsg{CID: sumCID(cid.Raw, []byte("x")), Data: []byte("x")})
	f.Add(b)
	b, _ = EncodeBlock(BlockMsg{CID: sumCID(cid.DagProtobuf, nil), Missing: true})
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeBlock(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if len(m.Data) > MaxBlockSize || (m.Missing && len(m.Data) > 0) || checkCID(m.CID) != nil {
			t.Fatalf("accepted %+v", m)
		}
	})
}

// FuzzDecodeBlockInPlace checks the copy-free decoding against
// proto.Unmarshal, and the server's frames against EncodeBlock.
func FuzzDecodeBlockInPlace(f *testing.F) {
	b, _ := EncodeBlock(BlockMsg{CID: sumCID(cid.Raw, []byte("x")), Data: []byte("x")})
	f.Add(b)
	f.Add([]byte{0x18, 0x01, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var want pb.Block
		werr := proto.Unmarshal(b, &want)
		if got, ok := decodeBlockInPlace(b); ok && (werr != nil || !proto.Equal(got, &want)) {
			t.Fatalf("in place %v, proto.Unmarshal %v (%v)", got, &want, werr)
		}
		if werr != nil || len(want.Cid) == 0 {
			return
		}
		data := want.Data
		if want.Missing {
			data = nil
		} else if data == nil {
			data = []byte{}
		}
		frame := appendBlockFrame(nil, want.Cid, data)
		enc, _ := proto.Marshal(&pb.Block{Cid: want.Cid, Data: data, Missing: data == nil})
		if n, k := protowire.ConsumeVarint(frame); k < 0 || int(n) != len(frame)-k || !bytes.Equal(frame[k:], enc) {
			t.Fatalf("frame %x, EncodeBlock %x", frame, enc)
		}
	})
}

func FuzzDecodeAnnouncement(f *testing.F) {
	o, _ := newObject(key(1), Meta{Title: "t", Netuid: 2}, sumCID(cid.Raw, []byte("b")), 1, nowForTest())
	a := &Announcement{Object: o, Provider: peer.AddrInfo{ID: key(1).PublicKey().PeerID(), Addrs: []ma.Multiaddr{ma.StringCast("/ip4/127.0.0.1/tcp/4001")}}}
	b, _ := a.Encode()
	f.Add(b)
	a.Body = []byte("b")
	b, _ = a.Encode()
	f.Add(b)
	a.Body = []byte("c")
	b, _ = a.Encode()
	f.Add(b)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeAnnouncement(b)
		if err != nil {
			if !errors.Is(err, ErrBadMessage) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if a.Object == nil || len(a.Provider.Addrs) > maxAnnouncedAddrs {
			t.Fatalf("accepted %+v", a)
		}
		if a.Body != nil && (len(a.Body) > MaxInlineBody || uint64(len(a.Body)) != a.Object.Size || !sumCID(cid.Raw, a.Body).Equals(a.Object.Body)) {
			t.Fatalf("accepted a body that is not the object's: %q for %s", a.Body, a.Object.Body)
		}
		if _, err := a.Encode(); err != nil {
			t.Fatalf("re-encoding an accepted announcement: %v", err)
		}
	})
}

// FuzzDecodeNode feeds dag-pb blocks (addressed by their own hash, as a
// verified block would be) to the UnixFS decoder.
func FuzzDecodeNode(f *testing.F) {
	blocks := memBlocks{}
	importBody(context.Background(), bytes.NewReader(goRandom(3*ChunkSize, 1)), 1<<30, blocks.put)
	for c, d := range blocks {
		if c.Type() == cid.DagProtobuf {
			f.Add(d)
		}
	}
	f.Add([]byte{0x0a, 0x02, 0x08, 0x02})
	f.Fuzz(func(t *testing.T, b []byte) {
		c := sumCID(cid.DagProtobuf, b)
		n, err := decodeNode(c, b)
		if err != nil {
			if !errors.Is(err, ErrBadBlock) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unclassified: %v", err)
			}
			return
		}
		if len(n.links) != len(n.sizes) || len(n.links) > maxNodeLinks {
			t.Fatalf("accepted %d links, %d sizes", len(n.links), len(n.sizes))
		}
		sum := uint64(len(n.data))
		for _, s := range n.sizes {
			sum += s
		}
		if sum != n.size {
			t.Fatalf("parts %d, size %d", sum, n.size)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	f.Add([]byte{0x03, 'a', 'b', 'c'})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := readFrame(bufio.NewReader(bytes.NewReader(b)), 64)
		if err == nil && len(out) > 64 {
			t.Fatalf("a frame of %d bytes passed a 64-byte limit", len(out))
		}
	})
}

// FuzzReadFrameGrowing checks the server's request reader against
// readFrame: the same frames, the same refusals.
func FuzzReadFrameGrowing(f *testing.F) {
	f.Add([]byte{0x03, 'a', 'b', 'c'})
	f.Add([]byte{0x80, 0x08, 'a'})
	f.Add(append([]byte{0xe8, 0x07}, make([]byte, 1000)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, max := range []int{64, MaxRequestSize} {
			want, werr := readFrame(bufio.NewReaderSize(bytes.NewReader(b), 16), max)
			got, gerr := readFrameGrowing(bufio.NewReaderSize(bytes.NewReader(b), 16), max)
			if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
				t.Fatalf("max %d: readFrameGrowing %x (%v), readFrame %x (%v)", max, got, gerr, want, werr)
			}
		}
	})
}
