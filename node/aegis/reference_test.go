package aegis

import (
	"encoding/binary"
	"testing"
)

// A portable AEGIS-128L written from the draft's pseudocode, with a
// table AES round: slow and not constant-time, so it is for checking the
// assembly only.

var sbox = func() (s [256]byte) {
	mul := func(a, b byte) (p byte) {
		for ; b > 0; b >>= 1 {
			if b&1 != 0 {
				p ^= a
			}
			a = a<<1 ^ (a>>7)*0x1b
		}
		return p
	}
	for x := range 256 {
		inv := byte(0)
		if x != 0 {
			inv = 1
			for range 254 { // x^254 is x's inverse in GF(2^8)
				inv = mul(inv, byte(x))
			}
		}
		rot := func(b byte, n uint) byte { return b<<n | b>>(8-n) }
		s[x] = inv ^ rot(inv, 1) ^ rot(inv, 2) ^ rot(inv, 3) ^ rot(inv, 4) ^ 0x63
	}
	return s
}()

func xtime(b byte) byte { return b<<1 ^ (b>>7)*0x1b }

// referenceAESRound is SubBytes, ShiftRows, MixColumns, AddRoundKey.
func referenceAESRound(in, rk [16]byte) (out [16]byte) {
	var t [16]byte
	for c := range 4 {
		for r := range 4 {
			t[r+4*c] = sbox[in[r+4*((c+r)%4)]]
		}
	}
	for c := range 4 {
		a := t[4*c : 4*c+4]
		all := a[0] ^ a[1] ^ a[2] ^ a[3]
		for r := range 4 {
			out[4*c+r] = a[r] ^ all ^ xtime(a[r]^a[(r+1)%4]) ^ rk[4*c+r]
		}
	}
	return out
}

func TestReferenceAESRound(t *testing.T) {
	got := referenceAESRound([16]byte(unhex(t, "000102030405060708090a0b0c0d0e0f")), [16]byte(unhex(t, "101112131415161718191a1b1c1d1e1f")))
	if want := unhex(t, "7a7b4e5638782546a8c0477a3b813f43"); [16]byte(want) != got {
		t.Fatalf("AESRound = %x, want %x", got, want)
	}
}

func (s *state) referenceUpdate(m0, m1 [16]byte) {
	*s = state{
		referenceAESRound(s[7], xor(s[0], m0)), referenceAESRound(s[0], s[1]),
		referenceAESRound(s[1], s[2]), referenceAESRound(s[2], s[3]),
		referenceAESRound(s[3], xor(s[4], m1)), referenceAESRound(s[4], s[5]),
		referenceAESRound(s[5], s[6]), referenceAESRound(s[6], s[7]),
	}
}

func pad32(b []byte) (m0, m1 [16]byte) {
	var p [32]byte
	copy(p[:], b)
	return [16]byte(p[:16]), [16]byte(p[16:])
}

func referenceSeal(key, nonce [16]byte, msg, ad []byte) []byte {
	kn := xor(key, nonce)
	s := state{kn, c1, c0, c1, kn, xor(key, c0), xor(key, c1), xor(key, c0)}
	for range 10 {
		s.referenceUpdate(nonce, key)
	}
	for i := 0; i < len(ad); i += 32 {
		s.referenceUpdate(pad32(ad[i:min(i+32, len(ad))]))
	}
	var ct []byte
	for i := 0; i < len(msg); i += 32 {
		t0, t1 := pad32(msg[i:min(i+32, len(msg))])
		z0 := xor(xor(s[1], s[6]), and(s[2], s[3]))
		z1 := xor(xor(s[2], s[5]), and(s[6], s[7]))
		o0, o1 := xor(t0, z0), xor(t1, z1)
		ct = append(append(ct, o0[:]...), o1[:]...)
		s.referenceUpdate(t0, t1)
	}
	ct = ct[:len(msg)]
	var lens [16]byte
	binary.LittleEndian.PutUint64(lens[:], uint64(len(ad))*8)
	binary.LittleEndian.PutUint64(lens[8:], uint64(len(msg))*8)
	t := xor(s[2], lens)
	for range 7 {
		s.referenceUpdate(t, t)
	}
	tag := s[0]
	for i := 1; i < 7; i++ {
		tag = xor(tag, s[i])
	}
	return append(ct, tag[:]...)
}
