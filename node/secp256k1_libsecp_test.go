//go:build cgo && !gofuzz

package node

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"testing"

	dsecp "github.com/decred/dcrd/dcrec/secp256k1/v4"
	decdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	libsecp "github.com/ethereum/go-ethereum/crypto/secp256k1"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// With cgo, this package's key (secp256k1.go) is the registered one.
func isRegisteredSecpKey(k crypto.PubKey) bool {
	_, ok := k.(*secp256k1PublicKey)
	return ok
}

// secpN is the order of the secp256k1 group.
var secpN = dsecp.S256().Params().N

// The process parses secp256k1 keys with this package's unmarshaller; its
// keys are go-libp2p's (same Raw, Type, equality) with libsecp256k1's
// verification.
func TestSecp256k1UnmarshallerIsLibsecp(t *testing.T) {
	got := reflect.ValueOf(crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1]).Pointer()
	if want := reflect.ValueOf(unmarshalSecp256k1PublicKey).Pointer(); got != want {
		t.Fatal("the secp256k1 public key unmarshaller is not this package's")
	}
	for i := range 4 {
		_, pub := testSecpKey(t, i)
		k := registeredKey(t, pub).(*secp256k1PublicKey)
		if !bytes.Equal(k.uncompressed[:], (*dsecp.PublicKey)(pub.(*crypto.Secp256k1PublicKey)).SerializeUncompressed()) {
			t.Errorf("key %d: uncompressed %x", i, k.uncompressed)
		}
		if !k.Equals(pub) || !pub.Equals(k) || !crypto.KeyEqual(k, pub) || !k.Secp256k1PublicKey.Equals(pub) {
			t.Errorf("key %d is not equal to go-libp2p's", i)
		}
		_, other := testSecpKey(t, i+100)
		if k.Equals(other) || other.Equals(k) || k.Equals(registeredKey(t, other)) {
			t.Errorf("key %d is equal to another", i)
		}
	}
}

// libsecp256k1 on its own refuses the high-s twin of a good signature,
// which go-libp2p accepts: why Verify normalizes s.
func TestLibsecp256k1RefusesHighS(t *testing.T) {
	priv, pub := testSecpKey(t, 3)
	data := []byte("gossip")
	sig, _ := priv.Sign(data)
	r, s := sigRS(t, sig)
	hash := sha256.Sum256(data)
	key := (*dsecp.PublicKey)(pub.(*crypto.Secp256k1PublicKey)).SerializeUncompressed()
	if !libsecp.VerifySignature(key, hash[:], compactRS(r, s)) {
		t.Fatal("libsecp256k1 refused a low-s signature")
	}
	high := new(big.Int).Sub(secpN, s)
	if libsecp.VerifySignature(key, hash[:], compactRS(r, high)) {
		t.Fatal("libsecp256k1 accepted a high s")
	}
	if ok, err := pub.Verify(data, derSig(r, high)); !ok || err != nil {
		t.Fatalf("go-libp2p refused a high s: %v", err)
	}
}

// Key parsing is go-libp2p's: the same keys, the same errors.
func TestSecp256k1UnmarshalAgreesWithLibp2p(t *testing.T) {
	_, pub := testSecpKey(t, 5)
	comp, _ := pub.Raw()
	unc := (*dsecp.PublicKey)(pub.(*crypto.Secp256k1PublicKey)).SerializeUncompressed()
	with := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	// A compressed encoding whose x is on no point.
	offCurve := make([]byte, 33)
	offCurve[0] = 2
	for x := byte(1); ; x++ {
		offCurve[32] = x
		if _, err := dsecp.ParsePubKey(offCurve); err != nil {
			break
		}
	}
	badY := bytes.Clone(unc)
	badY[64] ^= 1
	fieldP := dsecp.S256().Params().P.FillBytes(make([]byte, 32))
	keys := [][]byte{
		nil, {}, {2}, comp[:32], comp, unc, append(bytes.Clone(comp), 0), unc[:64], append(bytes.Clone(unc), 0),
		with(comp, 0, 4), with(comp, 0, 1), with(comp, 0, 0), with(unc, 0, 2), with(unc, 0, 0),
		with(unc, 0, 6), with(unc, 0, 7), // hybrid
		offCurve, badY, append([]byte{2}, fieldP...), append(append([]byte{4}, fieldP...), unc[33:]...),
		bytes.Repeat([]byte{2}, 1<<20),
	}
	for _, raw := range keys {
		lk, lerr := crypto.UnmarshalSecp256k1PublicKey(raw)
		ok, oerr := unmarshalSecp256k1PublicKey(raw)
		if errString(lerr) != errString(oerr) {
			t.Errorf("key %s: go-libp2p %v, ours %v", short(raw), lerr, oerr)
			continue
		}
		if lerr != nil {
			continue
		}
		if !lk.Equals(ok) || !ok.Equals(lk) {
			t.Errorf("key %s: not equal", short(raw))
		}
		lraw, _ := lk.Raw()
		oraw, _ := ok.Raw()
		if !bytes.Equal(lraw, oraw) {
			t.Errorf("key %s: raw %x, want %x", short(raw), oraw, lraw)
		}
	}
}

// errAnyDER stands for any refusal of decred's DER parser.
var errAnyDER = errors.New("any DER refusal")

// sigCase is a signature to verify with go-libp2p's key and ours.
type sigCase struct {
	name string
	key  []byte // the public key's encoding
	data []byte
	sig  []byte
	want bool  // whether it is a valid signature
	err  error // the parser's refusal (an ecdsa.ErrorKind or errAnyDER), or nil
}

// secpCases are, for key i signing data: the good signature, its high-s
// twin, altered messages, r and s, a foreign key, and malformed or
// non-canonical encodings.
func secpCases(t testing.TB, i int, data []byte) []sigCase {
	t.Helper()
	priv, pub := testSecpKey(t, i)
	key, _ := pub.Raw()
	unc := (*dsecp.PublicKey)(pub.(*crypto.Secp256k1PublicKey)).SerializeUncompressed()
	_, foreign := testSecpKey(t, i+1000)
	foreignKey, _ := foreign.Raw()
	good, err := priv.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	r, s := sigRS(t, good)
	n := secpN
	add := func(a *big.Int, d int64) *big.Int { return new(big.Int).Add(a, big.NewInt(d)) }
	high := new(big.Int).Sub(n, s)
	other := append(bytes.Clone(data), '!')
	rb, sb := derInt(r), derInt(s)
	// negative: r's bytes read as a negative number.
	negative := func(b []byte) []byte {
		if b[0] == 0 {
			return b[1:]
		}
		return append([]byte{b[0] | 0x80}, b[1:]...)
	}
	u256 := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))
	u256p1 := new(big.Int).Lsh(big.NewInt(1), 256)
	with := func(b []byte, i int, v byte) []byte {
		b = bytes.Clone(b)
		b[i] = v
		return b
	}
	huge := make([]byte, 1<<20)
	copy(huge, good)

	cases := []sigCase{
		{name: "good", want: true},
		{name: "high-s", sig: derSig(r, high), want: true},
		{name: "good, uncompressed key", key: unc, want: true},
		{name: "high-s, uncompressed key", key: unc, sig: derSig(r, high), want: true},
		{name: "other data", data: other},
		{name: "high-s, other data", data: other, sig: derSig(r, high)},
		{name: "data plus a zero byte", data: append(bytes.Clone(data), 0)},
		{name: "r+1", sig: derSig(add(r, 1), s)},
		{name: "r-1", sig: derSig(add(r, -1), s)},
		{name: "s+1", sig: derSig(r, add(s, 1))},
		{name: "s-1", sig: derSig(r, add(s, -1))},
		{name: "high-s, r+1", sig: derSig(add(r, 1), high)},
		{name: "high-s+1", sig: derSig(r, add(high, 1))},
		{name: "r and s swapped", sig: derSig(s, r)},
		{name: "s = r", sig: derSig(r, r)},
		{name: "r = n-r", sig: derSig(new(big.Int).Sub(n, r), s)},
		{name: "r = n-1, s = n-1", sig: derSig(add(n, -1), add(n, -1))},
		{name: "r = 1, s = 1", sig: derSig(big.NewInt(1), big.NewInt(1))},
		{name: "s = (n-1)/2", sig: derSig(r, new(big.Int).Rsh(n, 1))},
		{name: "s = (n+1)/2", sig: derSig(r, add(new(big.Int).Rsh(n, 1), 1))},
		{name: "foreign key", key: foreignKey},
		{name: "high-s, foreign key", key: foreignKey, sig: derSig(r, high)},
		// Encodings decred's strict parser refuses.
		{name: "empty", sig: []byte{}, err: decdsa.ErrSigTooShort},
		{name: "nil", sig: nil, err: decdsa.ErrSigTooShort},
		{name: "trailing zero", sig: append(bytes.Clone(good), 0), err: errAnyDER},
		{name: "sighash byte", sig: append(bytes.Clone(good), 1), err: errAnyDER},
		{name: "truncated by one", sig: good[:len(good)-1], err: errAnyDER},
		{name: "truncated to 8", sig: good[:8], err: errAnyDER},
		{name: "r padded", sig: derInts(append([]byte{0}, rb...), sb), err: decdsa.ErrSigTooMuchRPadding},
		{name: "s padded", sig: derInts(rb, append([]byte{0}, sb...)), err: decdsa.ErrSigTooMuchSPadding},
		{name: "high-s padded", sig: derInts(rb, append([]byte{0}, derInt(high)...)), err: errAnyDER},
		{name: "r negative", sig: derInts(negative(rb), sb), err: decdsa.ErrSigNegativeR},
		{name: "s negative", sig: derInts(rb, negative(sb)), err: decdsa.ErrSigNegativeS},
		{name: "high-s negative", sig: derInts(rb, negative(derInt(high))), err: decdsa.ErrSigNegativeS},
		{name: "r = 0", sig: derSig(new(big.Int), s), err: decdsa.ErrSigRIsZero},
		{name: "s = 0", sig: derSig(r, new(big.Int)), err: decdsa.ErrSigSIsZero},
		{name: "r empty", sig: derInts(nil, sb), err: decdsa.ErrSigZeroRLen},
		{name: "s empty", sig: derInts(rb, nil), err: decdsa.ErrSigZeroSLen},
		{name: "r = n", sig: derSig(n, s), err: decdsa.ErrSigRTooBig},
		{name: "s = n", sig: derSig(r, n), err: decdsa.ErrSigSTooBig},
		{name: "r = n+r", sig: derSig(new(big.Int).Add(n, r), s), err: errAnyDER},
		{name: "s = n+s", sig: derSig(r, new(big.Int).Add(n, s)), err: errAnyDER},
		{name: "s = 2^256-1", sig: derSig(r, u256), err: decdsa.ErrSigSTooBig},
		{name: "r = 2^256", sig: derSig(u256p1, s), err: errAnyDER},
		{name: "sequence tag", sig: with(good, 0, 0x31), err: decdsa.ErrSigInvalidSeqID},
		{name: "r tag", sig: with(good, 2, 0x03), err: decdsa.ErrSigInvalidRIntID},
		{name: "s tag", sig: with(good, 4+len(rb), 0x03), err: decdsa.ErrSigInvalidSIntID},
		{name: "length+1", sig: with(good, 1, good[1]+1), err: errAnyDER},
		{name: "length-1", sig: with(good, 1, good[1]-1), err: errAnyDER},
		{name: "r length+1", sig: with(good, 3, good[3]+1), err: errAnyDER},
		{name: "s length-1", sig: with(good, 5+len(rb), good[5+len(rb)]-1), err: errAnyDER},
		{name: "long-form length", sig: append([]byte{0x30, 0x81}, good[1:]...), err: errAnyDER},
		{name: "indefinite length", sig: append(append([]byte{0x30, 0x80}, good[2:]...), 0, 0), err: errAnyDER},
		{name: "compact r||s", sig: compactRS(r, s), err: errAnyDER},
		{name: "1 MiB", sig: huge, err: decdsa.ErrSigTooLong},
		{name: "1 MiB of 0x30", sig: bytes.Repeat([]byte{0x30}, 1<<20), err: decdsa.ErrSigTooLong},
	}
	for j := range cases {
		c := &cases[j]
		if c.key == nil {
			c.key = key
		}
		if c.data == nil {
			c.data = data
		}
		if c.sig == nil && c.name != "nil" {
			c.sig = good
		}
	}
	return cases
}

// TestSecp256k1VerifyAgreesWithLibp2p checks that our key and go-libp2p's
// give the same answer and the same error on every case of secpCases,
// over several keys and messages (empty to 1 MiB), and on every one-bit
// change of good signatures; and that the answer is the right one.
func TestSecp256k1VerifyAgreesWithLibp2p(t *testing.T) {
	datas := [][]byte{{}, []byte("gossip"), bytes.Repeat([]byte("a 512-byte message "), 27)[:512], make([]byte, 1<<20)}
	for i := range 6 {
		data := datas[i%len(datas)]
		for _, c := range secpCases(t, i, data) {
			ok, err := verifyBoth(t, c.key, c.data, c.sig)
			if ok != c.want {
				t.Errorf("key %d, %d-byte data, %s: accepted %v, want %v", i, len(data), c.name, ok, c.want)
			}
			switch {
			case c.err == nil && err != nil, c.err != nil && err == nil:
				t.Errorf("key %d, %s: error %v, want %v", i, c.name, err, c.err)
			case c.err != nil && c.err != errAnyDER && !errors.Is(err, c.err):
				t.Errorf("key %d, %s: error %v, want %v", i, c.name, err, c.err)
			}
		}
	}
	for i := range 2 {
		priv, pub := testSecpKey(t, 50+i)
		key, _ := pub.Raw()
		data := []byte("every bit")
		good, _ := priv.Sign(data)
		r, s := sigRS(t, good)
		for _, sig := range [][]byte{good, derSig(r, new(big.Int).Sub(secpN, s))} {
			for bit := range 8 * len(sig) {
				flipped := bytes.Clone(sig)
				flipped[bit/8] ^= 1 << (bit % 8)
				if ok, _ := verifyBoth(t, key, data, flipped); ok {
					t.Errorf("key %d: signature with bit %d flipped accepted", i, bit)
				}
			}
		}
	}
}

// FuzzSecp256k1Verify checks that our key and go-libp2p's agree on every
// key, data and signature. With a one-byte key, the key is testSecpKey's
// of that number and the signature is its own over data (the high-s twin
// when mode&1, the key uncompressed when mode&2) with the fuzzed sig
// XORed onto it: the fuzzer works on valid signatures too, and one with
// nothing XORed must verify.
func FuzzSecp256k1Verify(f *testing.F) {
	priv, pub := testSecpKey(f, 1)
	key, _ := pub.Raw()
	good, _ := priv.Sign([]byte("gossip"))
	f.Add(key, []byte("gossip"), good, uint8(0))
	f.Add([]byte{1}, []byte("gossip"), []byte{}, uint8(0))
	f.Add([]byte{2}, []byte{}, []byte{}, uint8(1))
	f.Add([]byte{3}, []byte("gossip"), []byte{0, 0, 0, 1}, uint8(2))
	f.Add([]byte{4}, []byte("gossip"), []byte{0, 0, 0, 0, 0x80}, uint8(3))
	f.Add([]byte{5}, []byte("x"), []byte{0, 1}, uint8(0))
	f.Fuzz(func(t *testing.T, key, data, sig []byte, mode uint8) {
		unaltered := false
		if len(key) == 1 {
			priv, pub := testSecpKey(t, int(key[0]))
			mask := sig
			own, err := priv.Sign(data)
			if err != nil {
				t.Fatal(err)
			}
			if mode&1 != 0 {
				r, s := sigRS(t, own)
				own = derSig(r, new(big.Int).Sub(secpN, s))
			}
			key, _ = pub.Raw()
			if mode&2 != 0 {
				key = (*dsecp.PublicKey)(pub.(*crypto.Secp256k1PublicKey)).SerializeUncompressed()
			}
			unaltered = len(mask) <= len(own)
			if len(mask) > len(own) {
				own = append(own, make([]byte, len(mask)-len(own))...)
			}
			for j, b := range mask {
				own[j] ^= b
				unaltered = unaltered && b == 0
			}
			sig = own
		}
		ok, err := verifyBoth(t, key, data, sig)
		if unaltered && (!ok || err != nil) {
			t.Errorf("own signature refused: %v", err)
		}
	})
}

// verifyBoth parses the key raw and verifies sig over data with
// go-libp2p's key and with ours, and fails t unless both give the same
// answer and the same error. It returns go-libp2p's.
func verifyBoth(t testing.TB, raw, data, sig []byte) (bool, error) {
	t.Helper()
	lk, lerr := crypto.UnmarshalSecp256k1PublicKey(raw)
	ok, oerr := unmarshalSecp256k1PublicKey(raw)
	if errString(lerr) != errString(oerr) {
		t.Fatalf("key %s: go-libp2p %v, ours %v", short(raw), lerr, oerr)
	}
	if lerr != nil {
		return false, lerr
	}
	if _, isOurs := ok.(*secp256k1PublicKey); !isOurs {
		t.Fatalf("our unmarshaller made a %T", ok)
	}
	lok, lverr := lk.Verify(data, sig)
	ook, overr := ok.Verify(data, sig)
	if lok != ook || errString(lverr) != errString(overr) {
		t.Errorf("key %s, %d-byte data, sig %s: go-libp2p %v, %v; ours %v, %v",
			short(raw), len(data), short(sig), lok, lverr, ook, overr)
	}
	return lok, lverr
}

func errString(err error) string {
	if err == nil {
		return "<nil>"
	}
	return "error: " + err.Error()
}

func short(b []byte) string {
	if len(b) > 80 {
		return fmt.Sprintf("%x... (%d bytes)", b[:80], len(b))
	}
	return fmt.Sprintf("%x", b)
}

// sigRS is r and s of a DER signature decred parses.
func sigRS(t testing.TB, sig []byte) (r, s *big.Int) {
	t.Helper()
	ds, err := decdsa.ParseDERSignature(sig)
	if err != nil {
		t.Fatal(err)
	}
	rs, ss := ds.R(), ds.S()
	rb, sb := rs.Bytes(), ss.Bytes()
	return new(big.Int).SetBytes(rb[:]), new(big.Int).SetBytes(sb[:])
}

// derInt is the minimal DER content of a non-negative integer.
func derInt(v *big.Int) []byte {
	b := v.Bytes()
	if len(b) == 0 || b[0]&0x80 != 0 {
		b = append([]byte{0}, b...)
	}
	return b
}

// derInts is a DER sequence of two integers with the given contents.
func derInts(r, s []byte) []byte {
	b := []byte{0x30, byte(4 + len(r) + len(s)), 0x02, byte(len(r))}
	b = append(b, r...)
	b = append(b, 0x02, byte(len(s)))
	return append(b, s...)
}

// derSig is the DER encoding of (r, s), s kept as it is (decred's
// Serialize would make it low).
func derSig(r, s *big.Int) []byte { return derInts(derInt(r), derInt(s)) }

// compactRS is r||s, 32 bytes each, as libsecp256k1 takes them.
func compactRS(r, s *big.Int) []byte {
	b := make([]byte, 64)
	r.FillBytes(b[:32])
	s.FillBytes(b[32:])
	return b
}

// A key parsed again from the same bytes is the one parsed before; bytes
// that do not parse are refused every time, never cached; and however
// many keys are parsed, the cache holds at most maxParsedKeys.
func TestParsedKeysAreKeptBounded(t *testing.T) {
	_, pub := testSecpKey(t, 7)
	raw, err := pub.Raw()
	if err != nil {
		t.Fatal(err)
	}
	a, err := unmarshalSecp256k1PublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	b, err := unmarshalSecp256k1PublicKey(bytes.Clone(raw))
	if err != nil {
		t.Fatal(err)
	}
	if a != b || !a.Equals(pub) {
		t.Fatal("the same bytes parsed twice gave two keys, or not the key")
	}
	// The compressed form's other parity is another key (or none).
	flipped := bytes.Clone(raw)
	flipped[0] ^= 1
	if c, err := unmarshalSecp256k1PublicKey(flipped); err == nil && c.Equals(pub) {
		t.Fatal("another encoding's key equals the first")
	}
	bad := bytes.Clone(raw)
	bad[0] = 0x05
	for range 2 {
		if _, err := unmarshalSecp256k1PublicKey(bad); err == nil {
			t.Fatal("a key with prefix 0x05 parsed")
		}
	}
	if parsedKeys.get(bad) != nil {
		t.Fatal("bytes that did not parse were cached")
	}
	for i := range maxParsedKeys + 10 {
		_, p := testSecpKey(t, 1000+i)
		r, _ := p.Raw()
		k, err := unmarshalSecp256k1PublicKey(r)
		if err != nil || !k.Equals(p) {
			t.Fatalf("key %d: %v", i, err)
		}
		if n := parsedKeys.len(); n > maxParsedKeys {
			t.Fatalf("the cache holds %d keys, more than %d", n, maxParsedKeys)
		}
	}
}

// clearParsedKeys empties the cache of parsed keys.
func clearParsedKeys() {
	parsedKeys.mu.Lock()
	clear(parsedKeys.m)
	parsedKeys.mu.Unlock()
}
