package aegis

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"testing"
)

// libsodiumVectors is testdata/libsodium-aegis128l.json: known answers
// computed by libsodium, an implementation independent of this package.
// The file says which libsodium made it and how. To make it again (needs
// Node.js and npm; the test itself needs neither):
//
//	cd node/aegis/testdata && npm ci && npm run gen
//
// The inputs come from a fixed seed, so that reproduces the file byte for
// byte; a new libsodium must not change a byte either.
type libsodiumVectors struct {
	Libsodium string `json:"libsodium"`
	Wrappers  string `json:"libsodium-wrappers-sumo"`
	Vectors   []struct {
		Name                string
		Key, Nonce, AD, Msg string
		CT                  string
		Tag256              string
	}
}

// finalize256 is the draft's Finalize with a 256-bit tag, through this
// package's Update, with the 128-bit tag of the same final state.
// libsodium offers AEGIS-128L only with a 256-bit tag; as it is made
// from the same state as the 128-bit one, matching it pins that state.
func (s *state) finalize256(adLen, msgLen int) (tag256 [32]byte, tag128 [16]byte) {
	var lens [16]byte
	binary.LittleEndian.PutUint64(lens[:], uint64(adLen)*8)
	binary.LittleEndian.PutUint64(lens[8:], uint64(msgLen)*8)
	t := xor(s[2], lens)
	var m [blockSize]byte
	copy(m[:16], t[:])
	copy(m[16:], t[:])
	for range 7 {
		absorbBlocks(s, &m[0], 1)
	}
	lo := xor(xor(s[0], s[1]), xor(s[2], s[3]))
	hi := xor(xor(s[4], s[5]), xor(s[6], s[7]))
	copy(tag256[:16], lo[:])
	copy(tag256[16:], hi[:])
	return tag256, xor(xor(lo, xor(s[4], s[5])), s[6])
}

// For each of libsodium's vectors: the ciphertext and the state behind
// the tag are libsodium's, sealing and decrypting; Seal's 128-bit tag is
// the draft's from that state; Open recovers the message and refuses it
// with one bit changed in the ciphertext, tag, data or nonce.
func TestLibsodiumVectors(t *testing.T) {
	needSupport(t)
	raw, err := os.ReadFile("testdata/libsodium-aegis128l.json")
	if err != nil {
		t.Fatal(err)
	}
	var file libsodiumVectors
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if file.Libsodium == "" || len(file.Vectors) < 300 {
		t.Fatalf("%d vectors from libsodium %q", len(file.Vectors), file.Libsodium)
	}
	t.Logf("%d vectors from libsodium %s (libsodium-wrappers-sumo %s)", len(file.Vectors), file.Libsodium, file.Wrappers)
	for i, v := range file.Vectors {
		key, nonce, ad, msg := unhex(t, v.Key), unhex(t, v.Nonce), unhex(t, v.AD), unhex(t, v.Msg)
		ct, tag256 := unhex(t, v.CT), unhex(t, v.Tag256)
		a, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		ours := a.(*aead)

		s := ours.start(nonce, ad)
		gotCT := make([]byte, len(msg))
		s.encrypt(gotCT, msg)
		got256, tag := s.finalize256(len(ad), len(msg))
		if !bytes.Equal(gotCT, ct) || !bytes.Equal(got256[:], tag256) {
			t.Fatalf("%s: encrypting gives %x, tag %x; libsodium %x, tag %x", v.Name, gotCT, got256, ct, tag256)
		}
		s = ours.start(nonce, ad)
		gotMsg := make([]byte, len(ct))
		s.decrypt(gotMsg, ct)
		if got256, _ := s.finalize256(len(ad), len(ct)); !bytes.Equal(gotMsg, msg) || !bytes.Equal(got256[:], tag256) {
			t.Fatalf("%s: decrypting gives %x, tag %x; want %x, tag %x", v.Name, gotMsg, got256, msg, tag256)
		}

		sealed := append(bytes.Clone(ct), tag[:]...)
		if got := a.Seal(nil, nonce, msg, ad); !bytes.Equal(got, sealed) {
			t.Fatalf("%s: Seal = %x, want %x", v.Name, got, sealed)
		}
		if got, err := a.Open(nil, nonce, sealed, ad); err != nil || !bytes.Equal(got, msg) {
			t.Fatalf("%s: Open = %x, %v; want %x", v.Name, got, err, msg)
		}
		flip := func(b []byte) []byte {
			b = bytes.Clone(b)
			bit := i * 7919 % (len(b) * 8)
			b[bit/8] ^= 1 << (bit % 8)
			return b
		}
		changed := map[string][4][]byte{ // ciphertext, tag, data, nonce
			"tag":   {ct, flip(tag[:]), ad, nonce},
			"nonce": {ct, tag[:], ad, flip(nonce)},
		}
		if len(ct) > 0 {
			changed["ciphertext"] = [4][]byte{flip(ct), tag[:], ad, nonce}
		}
		if len(ad) > 0 {
			changed["data"] = [4][]byte{ct, tag[:], flip(ad), nonce}
		}
		for what, c := range changed {
			if got, err := a.Open(nil, c[3], append(bytes.Clone(c[0]), c[1]...), c[2]); err == nil {
				t.Fatalf("%s: Open accepted a changed %s, giving %x", v.Name, what, got)
			}
		}
	}
}
