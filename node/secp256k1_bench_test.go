package node

import (
	"fmt"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
)

// benchAuthors is how many authors a neuron hears again and again.
const benchAuthors = 300

// benchMessage is one author's signed gossip message.
type benchMessage struct {
	raw  []byte // the compressed key, as in the peer ID
	key  crypto.PubKey
	data []byte
	sig  []byte
}

func benchMessages(b *testing.B) []benchMessage {
	b.Helper()
	msgs := make([]benchMessage, benchAuthors)
	for i := range msgs {
		priv, pub := testSecpKey(b, i)
		m := &msgs[i]
		m.key = pub
		m.raw, _ = pub.Raw()
		m.data = make([]byte, 512)
		copy(m.data, fmt.Sprintf("message %d", i))
		m.sig, _ = priv.Sign(m.data)
	}
	return msgs
}

// BenchmarkSecp256k1Verify measures, over benchAuthors authors in turn,
// what keeping parsed keys would save: go-libp2p's path (parse the key for
// every message, as go-libp2p-pubsub does from the author's peer ID, then
// verify), verification with a key parsed once, and the parse alone.
// Measured for issue #18 (thread CPU time, two shared CPUs), the parse was
// 8 µs of 122-127 µs, so this package keeps no parsed keys.
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
			verify(b, m.key, m)
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
}
