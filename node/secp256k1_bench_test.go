package node

import (
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// benchAuthors is how many authors a neuron hears again and again.
const benchAuthors = 300

// benchMessage is one author's signed gossip message.
type benchMessage struct {
	id   peer.ID
	raw  []byte // the compressed key, as in the peer ID
	ref  crypto.PubKey
	ours crypto.PubKey
	data []byte
	sig  []byte
}

func benchMessages(b *testing.B) []benchMessage {
	b.Helper()
	msgs := make([]benchMessage, benchAuthors)
	for i := range msgs {
		priv, ref, ours := testSecpKey(b, i)
		m := &msgs[i]
		m.ref, m.ours = ref, ours
		m.raw, _ = ref.Raw()
		m.id, _ = peer.IDFromPrivateKey(priv)
		m.data = make([]byte, 512)
		copy(m.data, fmt.Sprintf("message %d", i))
		m.sig, _ = priv.Sign(m.data)
	}
	return msgs
}

// withLibp2pUnmarshaller runs f with go-libp2p's own secp256k1 unmarshaller
// registered, as if this package had registered none. Benchmarks only
// (run them with -run '^$'): it swaps a process-wide map entry.
func withLibp2pUnmarshaller(f func()) {
	ours := crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1]
	crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1] = crypto.UnmarshalSecp256k1PublicKey
	defer func() { crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1] = ours }()
	f()
}

// BenchmarkSecp256k1Verify compares, over benchAuthors authors in turn,
// go-libp2p's path (parse the key for every message, verify with decred),
// a decred key parsed once, and our registered key.
func BenchmarkSecp256k1Verify(b *testing.B) {
	msgs := benchMessages(b)
	verify := func(b *testing.B, k crypto.PubKey, m *benchMessage) {
		if ok, err := k.Verify(m.data, m.sig); !ok || err != nil {
			b.Fatal("refused", err)
		}
	}
	b.Run("libp2p-parse+verify", func(b *testing.B) {
		i := 0
		for b.Loop() {
			m := &msgs[i%len(msgs)]
			k, err := crypto.UnmarshalSecp256k1PublicKey(m.raw)
			if err != nil {
				b.Fatal(err)
			}
			verify(b, k, m)
			i++
		}
	})
	b.Run("decred-cached+verify", func(b *testing.B) {
		i := 0
		for b.Loop() {
			m := &msgs[i%len(msgs)]
			verify(b, m.ref, m)
			i++
		}
	})
	b.Run("ours-cached+verify", func(b *testing.B) {
		i := 0
		for b.Loop() {
			m := &msgs[i%len(msgs)]
			verify(b, m.ours, m)
			i++
		}
	})
	b.Run("libp2p-parse", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := crypto.UnmarshalSecp256k1PublicKey(msgs[i%len(msgs)].raw); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("ours-parse-hit", func(b *testing.B) {
		i := 0
		for b.Loop() {
			if _, err := unmarshalSecp256k1PublicKey(msgs[i%len(msgs)].raw); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

// BenchmarkSecp256k1GossipMessage is what go-libp2p-pubsub does for each
// message: take the author's key out of its peer ID and verify, with
// go-libp2p's unmarshaller and with ours.
func BenchmarkSecp256k1GossipMessage(b *testing.B) {
	msgs := benchMessages(b)
	run := func(b *testing.B) {
		i := 0
		for b.Loop() {
			m := &msgs[i%len(msgs)]
			k, err := m.id.ExtractPublicKey()
			if err != nil {
				b.Fatal(err)
			}
			if ok, err := k.Verify(m.data, m.sig); !ok || err != nil {
				b.Fatal("refused", err)
			}
			i++
		}
	}
	b.Run("libp2p", func(b *testing.B) { withLibp2pUnmarshaller(func() { run(b) }) })
	b.Run("ours", run)
}

// BenchmarkSecp256k1Flood parses a stream of keys never seen before (more
// than the cache holds): our miss against go-libp2p's parse.
func BenchmarkSecp256k1Flood(b *testing.B) {
	raws := make([][]byte, 3*maxParsedKeys)
	for i := range raws {
		seed := sha256.Sum256(fmt.Appendf(nil, "flood key %d", i))
		priv, err := crypto.UnmarshalSecp256k1PrivateKey(seed[:])
		if err != nil {
			b.Fatal(err)
		}
		raws[i], _ = priv.GetPublic().Raw()
	}
	for _, u := range []struct {
		name string
		f    func([]byte) (crypto.PubKey, error)
	}{{"libp2p-parse", crypto.UnmarshalSecp256k1PublicKey}, {"ours-parse-miss", unmarshalSecp256k1PublicKey}} {
		b.Run(u.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				if _, err := u.f(raws[i%len(raws)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
