//go:build !cgo || gofuzz

package node

import (
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// Without cgo, go-libp2p's own key is the registered one.
func isRegisteredSecpKey(k crypto.PubKey) bool {
	_, ok := k.(*crypto.Secp256k1PublicKey)
	return ok
}

// Without cgo the process parses secp256k1 keys with go-libp2p's
// unmarshaller: this package registers none.
func TestSecp256k1UnmarshallerIsLibp2ps(t *testing.T) {
	got := reflect.ValueOf(crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1]).Pointer()
	if want := reflect.ValueOf(crypto.UnmarshalSecp256k1PublicKey).Pointer(); got != want {
		t.Fatal("the secp256k1 public key unmarshaller is not go-libp2p's")
	}
	_, pub := testSecpKey(t, 1)
	if k := registeredKey(t, pub); !k.Equals(pub) {
		t.Fatal("the unmarshalled key is not the original")
	}
}

// clearParsedKeys does nothing: without cgo, go-libp2p parses keys and
// keeps none.
func clearParsedKeys() {}
