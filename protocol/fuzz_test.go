package protocol

import (
	"bufio"
	"bytes"
	"io"
	"testing"

	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

func pbioReader(r io.Reader) pbio.ReadCloser { return pbio.NewDelimitedReader(r, MaxFrameSize) }

// FuzzDecodeRequest runs the server's decoding of untrusted stream bytes.
func FuzzDecodeRequest(f *testing.F) {
	good, _ := proto.Marshal(&pb.Request{RequestId: "a", Netuid: 1, Synapse: "text.echo", Body: []byte("x"), TimeoutMs: 10})
	f.Add(append(varint(uint64(len(good))), good...))
	f.Add([]byte{0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, err := readFrame(bufio.NewReader(bytes.NewReader(data)), MaxRequestSize)
		if err != nil {
			return
		}
		if len(raw) > MaxRequestSize {
			t.Fatal("size limit not enforced")
		}
		var req pb.Request
		if proto.Unmarshal(raw, &req) != nil {
			return
		}
		if checkRequest(&req) == nil && (req.Synapse == "" || len(req.Synapse) > maxIDLen || req.Netuid > 0xffff) {
			t.Fatal("invalid request accepted")
		}
	})
}

// FuzzDecodeResponse runs the client's decoding of untrusted frames and
// receipt verification, and checks that every frame decodes as
// proto.Unmarshal decodes it (chunk frames are decoded in place).
func FuzzDecodeResponse(f *testing.F) {
	good, _ := proto.Marshal(&pb.Response{Status: pb.Status_OK, Body: []byte("x"), Receipt: &pb.Receipt{RequestHash: make([]byte, 32), ResponseHash: make([]byte, 32), Server: "x"}})
	f.Add(append(varint(uint64(len(good))), good...))
	var stream bytes.Buffer
	w := bufio.NewWriter(&stream)
	writeChunk(w, []byte("a chunk"))
	writeMsg(w, &pb.Response{Status: pb.Status_TIMEOUT, Message: "late", ProcessingUs: 7})
	w.Flush()
	f.Add(stream.Bytes())
	f.Add([]byte{4, 0x08, 0x05, 0x20, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := bufio.NewReader(bytes.NewReader(data))
		var buf []byte
		for {
			resp, err := readResponse(r, &buf)
			if err != nil {
				return
			}
			if resp.Receipt != nil {
				_ = VerifyReceipt(resp.Receipt) // must not panic
			}
		}
	})
}

// FuzzDecodeChunkFrame checks the in-place decoding against proto.Unmarshal.
func FuzzDecodeChunkFrame(f *testing.F) {
	var stream bytes.Buffer
	w := bufio.NewWriter(&stream)
	writeChunk(w, []byte("a chunk"))
	w.Flush()
	f.Add(stream.Bytes()[1:])
	f.Add([]byte{0x08, 0x05, 0x20, 0x01, 0x1a, 0x00})
	f.Add([]byte{0x20, 0x80, 0x01})
	f.Fuzz(func(t *testing.T, raw []byte) {
		var want pb.Response
		werr := proto.Unmarshal(raw, &want)
		got, gerr := decodeResponse(raw)
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("proto.Unmarshal: %v, decodeResponse: %v", werr, gerr)
		}
		if werr == nil && !proto.Equal(&want, got) {
			t.Fatalf("decoded %v, proto.Unmarshal %v", got, &want)
		}
	})
}
