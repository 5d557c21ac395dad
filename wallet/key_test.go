package wallet

import (
	"context"
	"errors"
	"testing"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

func testKey(t testing.TB, words string) *PrivateKey {
	t.Helper()
	k, err := KeyFromMnemonic(words)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const testMnemonic = "special sign fit simple patrol salute grocery chicken wheat radar tonight ceiling"

func TestSignVerify(t *testing.T) {
	k := testKey(t, testMnemonic)
	pub := k.PublicKey()
	msg := []byte("weights for netuid 1")
	sig := k.Sign(msg)
	if len(sig) != SignatureSize {
		t.Fatalf("signature is %d bytes", len(sig))
	}
	if !pub.Verify(msg, sig) {
		t.Fatal("valid signature rejected")
	}
	if string(k.Sign(msg)) != string(sig) {
		t.Error("signing is not deterministic (RFC 6979)")
	}
	bad := append([]byte(nil), sig...)
	bad[10] ^= 1
	if pub.Verify(msg, bad) {
		t.Error("tampered signature accepted")
	}
	if pub.Verify([]byte("weights for netuid 2"), sig) {
		t.Error("signature accepted for another message")
	}
	other := testKey(t, "legal winner thank year wave sausage worth useful legal winner thank yellow").PublicKey()
	if other.Verify(msg, sig) {
		t.Error("signature accepted under another key")
	}
	// The high-s twin of a valid signature is a valid ECDSA signature but
	// not in canonical form; accepting it would make signatures malleable.
	var s secp256k1.ModNScalar
	s.SetByteSlice(sig[32:])
	s.Negate()
	high := append([]byte(nil), sig[:32]...)
	hb := s.Bytes()
	high = append(high, hb[:]...)
	if pub.Verify(msg, high) {
		t.Error("high-s signature accepted")
	}
	for _, n := range []int{0, 63, 65} {
		if pub.Verify(msg, make([]byte, n)) {
			t.Errorf("%d-byte signature accepted", n)
		}
	}
}

func TestMessageSignaturesAreDomainSeparated(t *testing.T) {
	k := testKey(t, testMnemonic)
	msg := []byte("hello")
	sig := k.SignMessage(msg)
	if !k.PublicKey().VerifyMessage(msg, sig) {
		t.Fatal("message signature rejected")
	}
	if k.PublicKey().Verify(msg, sig) {
		t.Error("a message signature verifies as a raw signature of the same bytes")
	}
	if k.PublicKey().VerifyMessage(msg, k.Sign(msg)) {
		t.Error("a raw signature verifies as a message signature")
	}
}

func TestPrivateKeyFromBytesRejectsOutOfRange(t *testing.T) {
	zero := make([]byte, 32)
	order := []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
		0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41}
	for name, b := range map[string][]byte{"zero": zero, "order": order, "short": make([]byte, 31)} {
		if _, err := PrivateKeyFromBytes(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("%s: err %v, want ErrInvalidKey", name, err)
		}
	}
	for name, b := range map[string]string{"not hex": "zz", "uncompressed length": "04", "off curve": "02" + "00000000000000000000000000000000000000000000000000000000000000000"[:64]} {
		if _, err := ParsePublicKeyHex(b); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("public %s: err %v, want ErrInvalidKey", name, err)
		}
	}
}

// The hotkey is the neuron's libp2p identity: a real libp2p host built from
// the hotkey reports the peer ID the wallet shows.
func TestHotkeyIsLibp2pIdentity(t *testing.T) {
	k := testKey(t, testMnemonic)
	h, err := libp2p.New(libp2p.Identity(k.Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.ID() != k.PublicKey().PeerID() {
		t.Fatalf("host ID %s, wallet peer ID %s", h.ID(), k.PublicKey().PeerID())
	}
	// A second host dials the first and authenticates it by that ID over
	// the secure channel.
	h2, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if err := h2.Connect(context.Background(), peer.AddrInfo{ID: k.PublicKey().PeerID(), Addrs: h.Addrs()}); err != nil {
		t.Fatalf("dialing the hotkey's peer ID: %v", err)
	}
	remote := h2.Network().ConnsToPeer(h.ID())[0].RemotePublicKey()
	raw, _ := remote.Raw()
	if string(raw) != string(k.PublicKey().Bytes()) {
		t.Error("the authenticated remote key is not the hotkey")
	}
}
