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
// receipt verification.
func FuzzDecodeResponse(f *testing.F) {
	good, _ := proto.Marshal(&pb.Response{Status: pb.Status_OK, Body: []byte("x"), Receipt: &pb.Receipt{RequestHash: make([]byte, 32), ResponseHash: make([]byte, 32), Server: "x"}})
	f.Add(append(varint(uint64(len(good))), good...))
	f.Fuzz(func(t *testing.T, data []byte) {
		r := pbioReader(bytes.NewReader(data))
		for {
			var resp pb.Response
			if err := r.ReadMsg(&resp); err != nil {
				return
			}
			if resp.Receipt != nil {
				_ = VerifyReceipt(resp.Receipt) // must not panic
			}
		}
	})
}
