package protocol

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/libp2p/go-msgio/pbio"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

func pbioReader(r io.Reader) pbio.ReadCloser { return pbio.NewDelimitedReader(r, MaxFrameSize) }

// readRequest reads a request frame as the server does: its length, its
// head, then the rest, reserving as it grows (nothing refuses here). It
// returns the head's length and netuid too.
func readRequest(r *bufio.Reader, reserve func(int) error) (raw []byte, headLen int, netuid uint32, err error) {
	size, err := readUvarint(r)
	if err != nil {
		return nil, 0, 0, err
	}
	if size > MaxRequestSize {
		return nil, 0, 0, fmt.Errorf("request of %d bytes exceeds %d", size, MaxRequestSize)
	}
	if err := reserve(min(int(size), headCap)); err != nil {
		return nil, 0, 0, err
	}
	head, netuid, err := readHead(r, int(size))
	if err != nil {
		return head, len(head), netuid, err
	}
	raw, err = readRest(r, head, int(size), reserve)
	return raw, len(head), netuid, err
}

// readFrameNaive is the reference reader: the length, then that many
// bytes at once.
func readFrameNaive(r *bufio.Reader) ([]byte, error) {
	size, err := readUvarint(r)
	if err != nil {
		return nil, err
	}
	if size > MaxRequestSize {
		return nil, fmt.Errorf("request of %d bytes exceeds %d", size, MaxRequestSize)
	}
	buf := make([]byte, size)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// chunked reads its data in pieces whose sizes come from sizes, cycled.
type chunked struct {
	data  []byte
	sizes []byte
	i     int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := len(p)
	if len(c.sizes) > 0 {
		n = min(n, int(c.sizes[c.i%len(c.sizes)])+1)
		c.i++
	}
	n = copy(p, c.data[:min(n, len(c.data))])
	c.data = c.data[n:]
	return n, nil
}

// lastNetuid is the last netuid field among the whole fields of b, as
// protobuf decodes a uint32.
func lastNetuid(b []byte) uint32 {
	var netuid uint32
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return netuid
		}
		b = b[n:]
		if typ == protowire.VarintType {
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return netuid
			}
			if num == 2 {
				netuid = uint32(v)
			}
			b = b[n:]
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
			return netuid
		}
		b = b[n:]
	}
	return netuid
}

// FuzzReadRequest checks the server's incremental request reader against
// reading the announced length at once, whatever pieces the bytes arrive
// in: the same frame or a failure, a buffer never larger than twice what
// arrived (or minGrow) nor than the frame, every byte of it reserved, and
// the netuid the head reports.
func FuzzReadRequest(f *testing.F) {
	// Seeds stay small: the fuzzer minimizes what it finds, and a large
	// input takes it long to.
	good, _ := proto.Marshal(&pb.Request{RequestId: "a", Netuid: 7, Synapse: "text.echo", Body: bytes.Repeat([]byte("x"), 700), TimeoutMs: 10})
	f.Add(append(varint(uint64(len(good))), good...), []byte{0})
	f.Add(append(varint(uint64(len(good))+5000), good[:300]...), []byte{200, 3, 0})
	small, _ := proto.Marshal(&pb.Request{Netuid: 3, Synapse: "s", Body: []byte("x"), WantReceipt: true})
	f.Add(append(varint(uint64(len(small))), small...), []byte(nil))
	f.Add([]byte{0x05, 0x10, 0x81, 0x80, 0x80, 0x80}, []byte{0})
	f.Add(append(varint(MaxRequestSize), 0x22, 0xfe, 0xff, 0x3f), []byte{255})
	f.Fuzz(func(t *testing.T, data, sizes []byte) {
		want, werr := readFrameNaive(bufio.NewReader(bytes.NewReader(data)))
		reserved := 0
		got, headLen, netuid, gerr := readRequest(bufio.NewReaderSize(&chunked{data: data, sizes: sizes}, 16), func(n int) error {
			reserved += n
			return nil
		})
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("naive: %v, incremental: %v", werr, gerr)
		}
		if werr == nil && !bytes.Equal(want, got) {
			t.Fatalf("read %x, want %x", got, want)
		}
		if cap(got) > max(2*len(got), minGrow) || len(got) > MaxRequestSize {
			t.Fatalf("buffer of %d bytes for %d", cap(got), len(got))
		}
		if got != nil && reserved != cap(got) {
			t.Fatalf("reserved %d for a buffer of %d", reserved, cap(got))
		}
		if headLen > headCap || headLen > len(got) {
			t.Fatalf("head of %d bytes", headLen)
		}
		if got != nil && lastNetuid(got[:headLen]) != netuid {
			t.Fatalf("head netuid %d, its fields say %d", netuid, lastNetuid(got[:headLen]))
		}
		// A request read whole in its head has the head's netuid.
		var req pb.Request
		if gerr == nil && headLen == len(got) && proto.Unmarshal(got, &req) == nil && req.Netuid != netuid {
			t.Fatalf("head netuid %d, request %d", netuid, req.Netuid)
		}
	})
}

// FuzzDecodeRequest runs the server's decoding of untrusted stream bytes.
func FuzzDecodeRequest(f *testing.F) {
	good, _ := proto.Marshal(&pb.Request{RequestId: "a", Netuid: 1, Synapse: "text.echo", Body: []byte("x"), TimeoutMs: 10})
	f.Add(append(varint(uint64(len(good))), good...))
	f.Add([]byte{0x80})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		raw, _, _, err := readRequest(bufio.NewReader(bytes.NewReader(data)), func(int) error { return nil })
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
	withUsage, _ := proto.Marshal(&pb.Response{Status: pb.Status_OK, Usage: &pb.Usage{PromptTokens: 12, CompletionTokens: 1 << 31}})
	f.Add(append(varint(uint64(len(withUsage))), withUsage...))
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
