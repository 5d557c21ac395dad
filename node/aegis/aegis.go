package aegis

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
)

// Sizes of AEGIS-128L's inputs and outputs in bytes.
const (
	KeySize   = 16
	NonceSize = 16
	TagSize   = 16
	blockSize = 32 // the message block: two AES blocks
)

// Supported reports whether this CPU runs AEGIS-128L here.
var Supported = supported

var (
	// ErrUnsupported is returned by New where Supported is false.
	ErrUnsupported = errors.New("aegis: no AES instructions on this CPU")
	errOpen        = errors.New("aegis: message authentication failed")
)

// state is the cipher's eight AES blocks S0…S7.
type state [8][16]byte

// constants are C0 and C1, the draft's constants.
var constants = [2][16]byte{c0, c1}

var (
	c0 = [16]byte{0x00, 0x01, 0x01, 0x02, 0x03, 0x05, 0x08, 0x0d, 0x15, 0x22, 0x37, 0x59, 0x90, 0xe9, 0x79, 0x62}
	c1 = [16]byte{0xdb, 0x3d, 0x18, 0x55, 0x6d, 0xc2, 0x2f, 0xf1, 0x20, 0x11, 0x31, 0x42, 0x73, 0xb5, 0x28, 0xdd}
)

type aead struct {
	key [KeySize]byte
}

// New returns AEGIS-128L with a 128-bit tag under key, which must be 16
// bytes drawn uniformly at random (or derived by a KDF).
func New(key []byte) (cipher.AEAD, error) {
	if !Supported {
		return nil, ErrUnsupported
	}
	if len(key) != KeySize {
		return nil, errors.New("aegis: key must be 16 bytes")
	}
	a := new(aead)
	copy(a.key[:], key)
	return a, nil
}

func (a *aead) NonceSize() int { return NonceSize }
func (a *aead) Overhead() int  { return TagSize }

func xor(a, b [16]byte) (out [16]byte) {
	for i := range out {
		out[i] = a[i] ^ b[i]
	}
	return out
}

// init sets the state from the key and nonce (the draft's Init).
func (s *state) init(key, nonce *[16]byte) {
	initState(s, key, nonce, &constants)
}

// absorb takes in associated data, the last block padded with zeros.
func (s *state) absorb(ad []byte) {
	full := len(ad) / blockSize
	if full > 0 {
		absorbBlocks(s, &ad[0], full)
	}
	if rest := ad[full*blockSize:]; len(rest) > 0 {
		var pad [blockSize]byte
		copy(pad[:], rest)
		absorbBlocks(s, &pad[0], 1)
	}
}

// encrypt encrypts src into dst of the same length (the draft's Enc,
// then EncPartial for the last block); dst may be src.
func (s *state) encrypt(dst, src []byte) {
	full := len(src) / blockSize
	if full > 0 {
		encBlocks(s, &dst[0], &src[0], full)
	}
	if rest := src[full*blockSize:]; len(rest) > 0 {
		var pad [blockSize]byte
		copy(pad[:], rest)
		encBlocks(s, &pad[0], &pad[0], 1)
		copy(dst[full*blockSize:], pad[:len(rest)])
	}
}

// decrypt decrypts src into dst of the same length (the draft's Dec, then
// DecPartial for the last block); dst may be src.
func (s *state) decrypt(dst, src []byte) {
	full := len(src) / blockSize
	if full > 0 {
		decBlocks(s, &dst[0], &src[0], full)
	}
	if rest := src[full*blockSize:]; len(rest) > 0 {
		// DecPartial: the state takes in the plaintext padded with zeros,
		// not the keystream's tail.
		var pad [blockSize]byte
		z0 := xor(xor(s[1], s[6]), and(s[2], s[3]))
		z1 := xor(xor(s[2], s[5]), and(s[6], s[7]))
		copy(pad[:], z0[:])
		copy(pad[16:], z1[:])
		for i, c := range rest {
			pad[i] ^= c
		}
		clear(pad[len(rest):])
		copy(dst[full*blockSize:], pad[:len(rest)])
		absorbBlocks(s, &pad[0], 1)
	}
}

// finalize returns the tag (the draft's Finalize with a 128-bit tag).
func (s *state) finalize(adLen, msgLen int) (tag [TagSize]byte) {
	var lens [16]byte
	binary.LittleEndian.PutUint64(lens[:], uint64(adLen)*8)
	binary.LittleEndian.PutUint64(lens[8:], uint64(msgLen)*8)
	finalizeState(s, &lens, &tag)
	return tag
}

// start returns the state after Init and the associated data.
func (a *aead) start(nonce, ad []byte) (s state) {
	s.init(&a.key, (*[16]byte)(nonce))
	s.absorb(ad)
	return s
}

// checkNonce panics unless nonce is NonceSize bytes, as crypto/cipher's
// AES-GCM does for its own size.
func checkNonce(nonce []byte) {
	if len(nonce) != NonceSize {
		panic("aegis: incorrect nonce length given to AEGIS-128L")
	}
}

func (a *aead) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	checkNonce(nonce)
	ret, out := sliceForAppend(dst, len(plaintext)+TagSize)
	checkOverlap(out, plaintext, additionalData)
	s := a.start(nonce, additionalData)
	s.encrypt(out[:len(plaintext)], plaintext)
	tag := s.finalize(len(additionalData), len(plaintext))
	copy(out[len(plaintext):], tag[:])
	return ret
}

func (a *aead) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	checkNonce(nonce)
	if len(ciphertext) < TagSize {
		return nil, errOpen
	}
	ret, out := sliceForAppend(dst, len(ciphertext)-TagSize)
	// The whole input, tag included: out must not overwrite the tag before
	// it is compared.
	checkOverlap(out, ciphertext, additionalData)
	tag := ciphertext[len(ciphertext)-TagSize:]
	ciphertext = ciphertext[:len(ciphertext)-TagSize]
	s := a.start(nonce, additionalData)
	s.decrypt(out, ciphertext)
	want := s.finalize(len(additionalData), len(ciphertext))
	if subtle.ConstantTimeCompare(want[:], tag) != 1 {
		clear(out)
		return nil, errOpen
	}
	return ret, nil
}

func and(a, b [16]byte) (out [16]byte) {
	for i := range out {
		out[i] = a[i] & b[i]
	}
	return out
}

// sliceForAppend extends in by n bytes, reallocating if it must, and
// returns the whole slice and the extension (as crypto/cipher does).
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	tail = head[len(in):]
	return
}
