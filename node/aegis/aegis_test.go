package aegis

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func needSupport(t testing.TB) {
	if !Supported {
		t.Skip("no AES instructions")
	}
}

// The draft's AEGIS-128L test vectors 1-9 (128-bit tags).
func TestDraftVectors(t *testing.T) {
	needSupport(t)
	const key, nonce = "10010000000000000000000000000000", "10000200000000000000000000000000"
	for _, v := range []struct {
		name, key, nonce, ad, msg, ct, tag string
		fail                               bool
	}{
		{"1", key, nonce, "", "00000000000000000000000000000000", "c1c0e58bd913006feba00f4b3cc3594e", "abe0ece80c24868a226a35d16bdae37a", false},
		{"2", key, nonce, "", "", "", "c2b879a67def9d74e6c14f708bbcc9b4", false},
		{"3", key, nonce, "0001020304050607", "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
			"79d94593d8c2119d7e8fd9b8fc77845c5c077a05b2528b6ac54b563aed8efe84", "cc6f3372f6aa1bb82388d695c3962d9a", false},
		{"4", key, nonce, "0001020304050607", "000102030405060708090a0b0c0d", "79d94593d8c2119d7e8fd9b8fc77", "5c04b3dba849b2701effbe32c7f0fab7", false},
		{"5", key, nonce, "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20212223242526272829",
			"101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f3031323334353637",
			"b31052ad1cca4e291abcf2df3502e6bdb1bfd6db36798be3607b1f94d34478aa7ede7f7a990fec10", "7542a745733014f9474417b337399507", false},
		{"6 swapped key and nonce", nonce, key, "0001020304050607", "", "79d94593d8c2119d7e8fd9b8fc77", "5c04b3dba849b2701effbe32c7f0fab7", true},
		{"7 altered ciphertext", key, nonce, "0001020304050607", "", "79d94593d8c2119d7e8fd9b8fc78", "5c04b3dba849b2701effbe32c7f0fab7", true},
		{"8 altered data", key, nonce, "0001020304050608", "", "79d94593d8c2119d7e8fd9b8fc77", "5c04b3dba849b2701effbe32c7f0fab7", true},
		{"9 altered tag", key, nonce, "0001020304050607", "", "79d94593d8c2119d7e8fd9b8fc77", "6c04b3dba849b2701effbe32c7f0fab8", true},
	} {
		t.Run(v.name, func(t *testing.T) {
			a, err := New(unhex(t, v.key))
			if err != nil {
				t.Fatal(err)
			}
			n, ad, sealed := unhex(t, v.nonce), unhex(t, v.ad), append(unhex(t, v.ct), unhex(t, v.tag)...)
			if !v.fail {
				if got := a.Seal(nil, n, unhex(t, v.msg), ad); !bytes.Equal(got, sealed) {
					t.Fatalf("Seal = %x, want %x", got, sealed)
				}
			}
			got, err := a.Open(nil, n, sealed, ad)
			if v.fail {
				if err == nil {
					t.Fatalf("Open = %x, want an authentication error", got)
				}
				return
			}
			if err != nil || !bytes.Equal(got, unhex(t, v.msg)) {
				t.Fatalf("Open = %x, %v; want %s", got, err, v.msg)
			}
		})
	}
}

// The draft's Update test vector, through the assembly.
func TestDraftUpdate(t *testing.T) {
	needSupport(t)
	var s state
	for i, h := range []string{"9b7e60b24cc873ea894ecc07911049a3", "330be08f35300faa2ebf9a7b0d274658",
		"7bbd5bd2b049f7b9b515cf26fbe7756c", "c35a00f55ea86c3886ec5e928f87db18",
		"9ebccafce87cab446396c4334592c91f", "58d83e31f256371e60fc6bb257114601",
		"1639b56ea322c88568a176585bc915de", "640818ffb57dc0fbc2e72ae93457e39a"} {
		copy(s[i][:], unhex(t, h))
	}
	m := unhex(t, "033e6975b94816879e42917650955aa0fcc1968a46b7e97861bd6e89af6aa55f")
	absorbBlocks(&s, &m[0], 1)
	for i, h := range []string{"596ab773e4433ca0127c73f60536769d", "790394041a3d26ab697bde865014652d",
		"38cf49e4b65248acd533041b64dd0611", "16d8e58748f437bfff1797f780337cee",
		"9689ecdf08228c74d7e3360cca53d0a5", "a21746bb193a569e331e1aa985d0d729",
		"09d714e6fcf9177a8ed1cde7e3d259a6", "61279ba73167f0ab76f0a11bf203bdff"} {
		if got := hex.EncodeToString(s[i][:]); got != h {
			t.Errorf("S%d = %s, want %s", i, got, h)
		}
	}
}

// Every length of message and data up to a few blocks, against the
// portable reference below; in place and not; every single-bit change to
// the sealed message is refused and leaves no plaintext behind.
func TestAgainstReference(t *testing.T) {
	needSupport(t)
	r := rand.New(rand.NewPCG(1, 2))
	for msgLen := 0; msgLen <= 200; msgLen++ {
		adLen := r.IntN(100)
		key, nonce := randBytes(r, KeySize), randBytes(r, NonceSize)
		msg, ad := randBytes(r, msgLen), randBytes(r, adLen)
		a, err := New(key)
		if err != nil {
			t.Fatal(err)
		}
		want := referenceSeal([16]byte(key), [16]byte(nonce), msg, ad)
		prefix := []byte("prefix")
		got := a.Seal(bytes.Clone(prefix), nonce, msg, ad)
		if !bytes.Equal(got[:len(prefix)], prefix) || !bytes.Equal(got[len(prefix):], want) {
			t.Fatalf("msg %d ad %d: Seal = %x, want %x", msgLen, adLen, got[len(prefix):], want)
		}
		inPlace := append(bytes.Clone(msg), make([]byte, TagSize)...)
		if got := a.Seal(inPlace[:0], nonce, inPlace[:msgLen], ad); !bytes.Equal(got, want) {
			t.Fatalf("msg %d: in-place Seal differs", msgLen)
		}
		opened, err := a.Open(nil, nonce, want, ad)
		if err != nil || !bytes.Equal(opened, msg) {
			t.Fatalf("msg %d: Open = %x, %v", msgLen, opened, err)
		}
		sealed := bytes.Clone(want)
		if opened, err := a.Open(sealed[:0], nonce, sealed, ad); err != nil || !bytes.Equal(opened, msg) {
			t.Fatalf("msg %d: in-place Open = %x, %v", msgLen, opened, err)
		}
		bit := r.IntN(len(want) * 8)
		bad := bytes.Clone(want)
		bad[bit/8] ^= 1 << (bit % 8)
		out := make([]byte, msgLen)
		for i := range out {
			out[i] = 0xee
		}
		if _, err := a.Open(out[:0], nonce, bad, ad); err == nil {
			t.Fatalf("msg %d: a flipped bit %d was accepted", msgLen, bit)
		}
		if !bytes.Equal(out, make([]byte, msgLen)) {
			t.Fatalf("msg %d: a refused Open left %x in its output", msgLen, out)
		}
	}
}

func TestBadInput(t *testing.T) {
	needSupport(t)
	if _, err := New(make([]byte, 15)); err == nil {
		t.Error("New accepted a 15-byte key")
	}
	a, err := New(make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Open(nil, make([]byte, 16), make([]byte, 15), nil); err == nil {
		t.Error("Open accepted a message shorter than a tag")
	}
	mustPanic := func(name string, f func()) {
		defer func() {
			if recover() == nil {
				t.Errorf("%s did not panic", name)
			}
		}()
		f()
	}
	mustPanic("short nonce", func() { a.Seal(nil, make([]byte, 12), nil, nil) })
	// As AES-GCM's Open, the nonce is checked before the message's length.
	mustPanic("short nonce to Open", func() { a.Open(nil, make([]byte, 12), make([]byte, 15), nil) })
	buf := make([]byte, 100)
	mustPanic("inexact overlap", func() { a.Seal(buf[1:1], make([]byte, 16), buf[:50], nil) })
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// FuzzOpen: Open of any bytes under a fixed key never panics, and accepts
// exactly what the portable reference seals: what it opens, the
// reference seals back to the same bytes, and what Seal makes (the
// reference's bytes) opens, in place too.
func FuzzOpen(f *testing.F) {
	if !Supported {
		f.Skip("no AES instructions")
	}
	key := [16]byte(bytes.Repeat([]byte{7}, 16))
	a, err := New(key[:])
	if err != nil {
		f.Fatal(err)
	}
	nonce := bytes.Repeat([]byte{9}, 16)
	f.Add([]byte("hello, neurons"), []byte("hdr"), false)
	f.Add(make([]byte, 70), []byte{}, true)
	f.Fuzz(func(t *testing.T, data, ad []byte, seal bool) {
		if seal {
			sealed := a.Seal(nil, nonce, data, ad)
			if want := referenceSeal(key, [16]byte(nonce), data, ad); !bytes.Equal(sealed, want) {
				t.Fatalf("Seal = %x, the reference %x", sealed, want)
			}
			got, err := a.Open(nil, nonce, sealed, ad)
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("round trip: %x, %v", got, err)
			}
			if got, err := a.Open(sealed[:0], nonce, sealed, ad); err != nil || !bytes.Equal(got, data) {
				t.Fatalf("in-place round trip: %x, %v", got, err)
			}
			return
		}
		if got, err := a.Open(nil, nonce, data, ad); err == nil {
			if !bytes.Equal(referenceSeal(key, [16]byte(nonce), got, ad), data) {
				t.Fatalf("Open accepted %x, which the reference does not seal", data)
			}
		}
	})
}

// BenchmarkSeal seals messages of a record's sizes with AEGIS-128L and,
// as the baseline, with crypto/cipher's AES-128-GCM.
func BenchmarkSeal(b *testing.B) {
	needSupport(b)
	block, err := aes.NewCipher(make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	gcm, err := cipher.NewGCM(block)
	if err != nil {
		b.Fatal(err)
	}
	ours, err := New(make([]byte, 16))
	if err != nil {
		b.Fatal(err)
	}
	for _, size := range []int{64, 1 << 10, 16 << 10, 64 << 10} {
		for _, c := range []struct {
			name string
			aead cipher.AEAD
		}{{"aegis128l", ours}, {"aes128gcm", gcm}} {
			b.Run(fmt.Sprintf("%s/%dB", c.name, size), func(b *testing.B) {
				msg := make([]byte, size)
				out := make([]byte, size+TagSize)
				nonce := make([]byte, c.aead.NonceSize())
				b.SetBytes(int64(size))
				for b.Loop() {
					c.aead.Seal(out[:0], nonce, msg, nil)
				}
			})
		}
	}
}
