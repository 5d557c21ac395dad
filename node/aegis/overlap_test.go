package aegis

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"testing"
)

// Finding 5 of issue #18: Open into a dst whose extension covers the tag
// but none of the sealed message before it. Open used to check only the
// message before the tag, wrote the plaintext over the tag and refused a
// valid message; crypto/cipher's AES-GCM panics, and so must we.
func TestOpenDstOverlapsOnlyTag(t *testing.T) {
	needSupport(t)
	a, err := New(bytes.Repeat([]byte{1}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{2}, NonceSize)
	msg := bytes.Repeat([]byte("neuron"), 8) // 48 bytes: full blocks and a rest
	buf := make([]byte, len(msg)+TagSize+len(msg))
	sealed := a.Seal(buf[:0], nonce, msg, nil)
	if got := outcome(func() ([]byte, error) {
		return a.Open(sealed[len(msg):len(msg)], nonce, sealed, nil)
	}); got != "panic" {
		t.Fatalf("Open into the tag: %s, want a panic as AES-GCM's", got)
	}
	// The message is untouched and still opens, also in place.
	if got, err := a.Open(nil, nonce, sealed, nil); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("Open after = %q, %v", got, err)
	}
	if got, err := a.Open(sealed[:0], nonce, sealed, nil); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("in-place Open = %q, %v", got, err)
	}
}

// outcome runs f and says whether it panicked, failed or succeeded.
func outcome(f func() ([]byte, error)) (s string) {
	defer func() {
		if recover() != nil {
			s = "panic"
		}
	}()
	if _, err := f(); err != nil {
		return "error"
	}
	return "ok"
}

// overlapCase places the input (plaintext for Seal, sealed message for
// Open) at in, the additional data at ad, and dst at dst, all within one
// buffer; a negative dst offset means a dst of its own.
type overlapCase struct {
	name                               string
	msgLen, in, ad, adLen, dst, dstLen int
}

const overlapBufLen = 512

// run seals or opens (with AES-GCM where aead is nil) as c lays out the
// buffer and says whether that panicked. Otherwise the output must be
// right, and Open must fail exactly where the additional data lies in the
// sealed message, which changed it after sealing.
func (c overlapCase) run(t *testing.T, aead cipher.AEAD, open bool) (panicked bool) {
	t.Helper()
	r := rand.New(rand.NewPCG(uint64(c.msgLen), uint64(c.in)))
	key := randBytes(r, 16)
	if aead == nil {
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		if aead, err = cipher.NewGCM(block); err != nil {
			t.Fatal(err)
		}
	}
	nonce := randBytes(r, aead.NonceSize())
	buf := randBytes(r, overlapBufLen)
	msg := randBytes(r, c.msgLen)
	ad := buf[c.ad : c.ad+c.adLen]
	var dst []byte
	if c.dst >= 0 {
		dst = buf[c.dst : c.dst+c.dstLen]
	}
	if !open {
		copy(buf[c.in:], msg)
		prefix := bytes.Clone(dst) // the plaintext may lie in dst
		want := aead.Seal(nil, nonce, buf[c.in:c.in+c.msgLen], bytes.Clone(ad))
		var got []byte
		res := outcome(func() ([]byte, error) {
			got = aead.Seal(dst, nonce, buf[c.in:c.in+c.msgLen], ad)
			return got, nil
		})
		if res == "ok" && (!bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want)) {
			t.Fatalf("%T Seal = %x, want %x||%x", aead, got, prefix, want)
		}
		return res == "panic"
	}
	adAtSeal := bytes.Clone(ad)
	sealed := aead.Seal(nil, nonce, msg, adAtSeal)
	copy(buf[c.in:], sealed)
	valid := bytes.Equal(ad, adAtSeal)
	prefix := bytes.Clone(dst) // the sealed message may lie in dst
	var got []byte
	res := outcome(func() (b []byte, err error) {
		got, err = aead.Open(dst, nonce, buf[c.in:c.in+len(sealed)], ad)
		return got, err
	})
	switch {
	case res == "error" && valid:
		t.Fatalf("%T refused a valid message", aead)
	case res == "ok" && !valid:
		t.Fatalf("%T accepted a message under changed data", aead)
	case res == "ok" && (!bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], msg)):
		t.Fatalf("%T Open = %x, want %x||%x", aead, got, prefix, msg)
	}
	return res == "panic"
}

// sealedAt is where the input of 40 bytes lies in the cases below; sealed,
// it runs to sealedAt+56, its tag from sealedAt+40.
const sealedAt = 100

var overlapCases = []overlapCase{
	{name: "own dst", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: -1},
	{name: "in place", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt},
	{name: "in place after a prefix", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt - 10, dstLen: 10},
	{name: "one byte on", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt + 1},
	{name: "one byte back", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt - 1},
	{name: "ends in the input", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt - 50},
	{name: "ends where the input starts", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt - 56},
	{name: "ends where the plaintext starts", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt - 40},
	{name: "starts at the tag", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt + 40},
	{name: "starts in the tag", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt + 50},
	{name: "starts at the tag's last byte", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt + 55},
	{name: "starts after the sealed message", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt + 56},
	{name: "dst holds the input", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt, dstLen: 56},
	{name: "dst holds the input less its tag", msgLen: 40, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt, dstLen: 40},
	{name: "empty message in place", msgLen: 0, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt},
	{name: "empty message, dst in the tag", msgLen: 0, in: sealedAt, ad: 0, adLen: 13, dst: sealedAt + 8},
	{name: "out is the data", msgLen: 40, in: sealedAt, ad: 300, adLen: 13, dst: 300},
	{name: "out runs into the data", msgLen: 40, in: sealedAt, ad: 300, adLen: 13, dst: 290},
	{name: "out starts in the data", msgLen: 40, in: sealedAt, ad: 300, adLen: 13, dst: 312},
	{name: "out ends where the data starts", msgLen: 40, in: sealedAt, ad: 356, adLen: 13, dst: 300},
	{name: "out starts where the data ends", msgLen: 40, in: sealedAt, ad: 287, adLen: 13, dst: 300},
	{name: "empty data in out", msgLen: 40, in: sealedAt, ad: 310, adLen: 0, dst: 300},
	{name: "header before the input, in place", msgLen: 40, in: sealedAt, ad: sealedAt - 4, adLen: 4, dst: sealedAt},
	{name: "header is the prefix, in place", msgLen: 40, in: sealedAt, ad: sealedAt - 4, adLen: 4, dst: sealedAt - 4, dstLen: 4},
	{name: "data is the input", msgLen: 40, in: sealedAt, ad: sealedAt, adLen: 40, dst: -1},
	{name: "data in the tag", msgLen: 40, in: sealedAt, ad: sealedAt + 40, adLen: 16, dst: -1},
	{name: "data is the input, in place", msgLen: 40, in: sealedAt, ad: sealedAt, adLen: 40, dst: sealedAt},
	{name: "data in the tag, in place", msgLen: 40, in: sealedAt, ad: sealedAt + 40, adLen: 16, dst: sealedAt},
}

// Seal and Open panic, fail or succeed where crypto/cipher's AES-GCM
// does, for each way of laying out dst, the input and the data in one
// buffer.
func TestOverlapLikeGCM(t *testing.T) {
	needSupport(t)
	ours, err := New(bytes.Repeat([]byte{3}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	for _, open := range []bool{false, true} {
		op := map[bool]string{false: "Seal", true: "Open"}[open]
		for _, c := range overlapCases {
			t.Run(op+"/"+c.name, func(t *testing.T) {
				if gcm, got := c.run(t, nil, open), c.run(t, ours, open); got != gcm {
					t.Errorf("aegis panicked: %v, AES-GCM: %v", got, gcm)
				}
			})
		}
	}
}

// As TestOverlapLikeGCM, with random layouts.
func TestOverlapLikeGCMRandom(t *testing.T) {
	needSupport(t)
	ours, err := New(bytes.Repeat([]byte{4}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 6))
	const span = 160 // a small window, so the slices often meet
	for i := range 4000 {
		c := overlapCase{msgLen: r.IntN(70), adLen: r.IntN(40), dstLen: r.IntN(20)}
		c.in = r.IntN(span - c.msgLen - TagSize)
		c.ad = r.IntN(span - c.adLen)
		c.dst = r.IntN(span-c.dstLen) - 10 // sometimes a dst of its own
		if c.dst < 0 {
			c.dst, c.dstLen = -1, 0
		}
		open := i%2 == 1
		if gcm, got := c.run(t, nil, open), c.run(t, ours, open); got != gcm {
			t.Fatalf("%+v open %v: aegis panicked: %v, AES-GCM: %v", c, open, got, gcm)
		}
	}
}
