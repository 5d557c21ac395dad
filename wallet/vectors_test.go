package wallet

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"testing"
)

func TestBIP39ReferenceVectors(t *testing.T) {
	raw, err := os.ReadFile("testdata/bip39_vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Passphrase string `json:"passphrase"`
		Vectors    []struct{ Entropy, Mnemonic, Seed string }
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.Vectors) != 24 {
		t.Fatalf("got %d vectors, want the 24 English reference vectors", len(file.Vectors))
	}
	for _, v := range file.Vectors {
		seed, err := MnemonicSeed(v.Mnemonic, file.Passphrase)
		if err != nil {
			t.Fatalf("%q: %v", v.Mnemonic, err)
		}
		if got := hex.EncodeToString(seed); got != v.Seed {
			t.Errorf("%q: seed %s, want %s", v.Mnemonic, got, v.Seed)
		}
		entropy, err := ValidateMnemonic(v.Mnemonic)
		if err != nil {
			t.Fatal(err)
		}
		back, err := MnemonicFromEntropy(entropy)
		if err != nil || back != v.Mnemonic {
			t.Errorf("entropy round trip of %q gave %q, %v", v.Mnemonic, back, err)
		}
		if v.Entropy != "" && hex.EncodeToString(entropy) != v.Entropy {
			t.Errorf("%q: entropy %x, want %s", v.Mnemonic, entropy, v.Entropy)
		}
	}
}

func TestBIP32Vector1(t *testing.T) {
	seed, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	for _, tc := range []struct{ path, key string }{
		{"m", "e8f32e723decf4051aefac8e2c93c9c5b214313817cdb01a1494b917c8436b35"},
		{"m/0'", "edb2e14f9ee77d26dd93b4ecede8d16ed408ce149b6cd80b0715a2d911a0afea"},
		{"m/0'/1", "3c6cb8d0f6a264c91ea8b5030fadaa8e538b020f0a387421a12de9319dc93368"},
		{"m/0'/1/2'", "cbce0d719ecf7431d88e6a89fa1483e02e35092af60c042b1df2ff59fa424dca"},
		{"m/0'/1/2'/2", "0f479245fb19a38a1954c5c7c0ebab2f9bdfd96a17563ef28a6a4b1a2a764ef4"},
		{"m/0'/1/2'/2/1000000000", "471b76e389e528d6de6d816857e012c5455051cad6660850e58372a6c3e6e7c8"},
	} {
		k, err := DerivePath(seed, tc.path)
		if err != nil {
			t.Fatalf("%s: %v", tc.path, err)
		}
		if got := hex.EncodeToString(k.Bytes()); got != tc.key {
			t.Errorf("%s: key %s, want %s", tc.path, got, tc.key)
		}
	}
}

// Published Cosmos vectors: the same words must give the same address bytes
// that Cosmos SDK tools (here CosmJS's test wallets) derive on
// m/44'/118'/0'/0/0.
func TestCosmosAddressVectors(t *testing.T) {
	for _, tc := range []struct{ mnemonic, pubkey, address string }{
		{
			// cosmjs packages/amino secp256k1hdwallet.spec.ts
			mnemonic: "special sign fit simple patrol salute grocery chicken wheat radar tonight ceiling",
			pubkey:   "02baa4ef93f2ce84592a49b1d729c074eab640112522a7a89f7d03ebab21ded7b6",
			address:  "cosmos1jhg0e7s6gn44tfc5k37kr04sznyhedtc9rzys5",
		},
		{
			// cosmjs packages/cli examples/local_faucet.ts
			mnemonic: "economy stock theory fatal elder harbor betray wasp final emotion task crumble siren bottom lizard educate guess current outdoor pair theory focus wife stone",
			address:  "cosmos1pkptre7fdkl6gfrzlesjjvhxhlc3r4gmmk8rs6",
		},
	} {
		k, err := KeyFromMnemonic(tc.mnemonic)
		if err != nil {
			t.Fatal(err)
		}
		pub := k.PublicKey()
		if tc.pubkey != "" && pub.Hex() != tc.pubkey {
			t.Errorf("pubkey %s, want %s", pub.Hex(), tc.pubkey)
		}
		if got := pub.Address().Bech32("cosmos"); got != tc.address {
			t.Errorf("address %s, want %s", got, tc.address)
		}
		want, hrp, err := ParseAddress(tc.address)
		if err != nil || hrp != "cosmos" {
			t.Fatalf("parse %s: %v %q", tc.address, err, hrp)
		}
		ct := pub.Address().String()
		got, hrp, err := ParseAddress(ct)
		if err != nil || hrp != DefaultAddressPrefix || got != want {
			t.Errorf("ct address %s decodes to %x (%q, %v), want the cosmos bytes %x", ct, got, hrp, err, want)
		}
	}
}

func TestBech32(t *testing.T) {
	// BIP 173 valid checksums.
	for _, s := range []string{
		"A12UEL5L", "a12uel5l",
		"an83characterlonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1tt5tgs",
		"abcdef1qpzry9x8gf2tvdw0s3jn54khce6mua7lmqqqxw",
		"11qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqc8247j",
	} {
		if _, _, err := bech32Decode(s); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	// BIP 173 invalid strings, and a flipped checksum character.
	for _, s := range []string{
		"\x201nwldj5", "an84characterslonghumanreadablepartthatcontainsthenumber1andtheexcludedcharactersbio1569pvx",
		"pzry9x0s0muk", "1pzry9x0s0muk", "x1b4n0q5v", "li1dgmt3", "A1G7SGD8", "10a06t8", "1qzzfhee",
		"a12uel5m", "A12uel5l",
	} {
		if _, _, err := bech32Decode(s); err == nil {
			t.Errorf("%q decoded, want an error", s)
		}
	}
	var a Address
	for i := range a {
		a[i] = byte(i * 13)
	}
	for _, prefix := range []string{"ct", "cosmos", "bostrom"} {
		back, hrp, err := ParseAddress(a.Bech32(prefix))
		if err != nil || hrp != prefix || back != a {
			t.Errorf("round trip with %s: %x %q %v", prefix, back, hrp, err)
		}
	}
	if _, _, err := ParseAddress("ct1qqqsyqcyq5rqwzqfpg9scrgwpugpzysn4xjh2e"); err == nil {
		t.Error("a 19-byte address parsed")
	}
}

func TestInvalidMnemonics(t *testing.T) {
	for _, tc := range []struct{ name, m string }{
		{"bad checksum", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon"},
		{"unknown word", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abuot"},
		{"11 words", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"},
		{"13 words", "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"},
		{"empty", ""},
		{"swapped words", "legal winner thank year wave sausage worth useful legal winner yellow thank"},
	} {
		if _, err := KeyFromMnemonic(tc.m); err == nil || !errorsIs(err, ErrInvalidMnemonic) {
			t.Errorf("%s: err %v, want ErrInvalidMnemonic", tc.name, err)
		}
	}
	// Case and white space do not matter.
	a, err1 := KeyFromMnemonic("  Legal winner THANK year wave sausage worth useful legal winner thank yellow\n")
	b, err2 := KeyFromMnemonic("legal winner thank year wave sausage worth useful legal winner thank yellow")
	if err1 != nil || err2 != nil || !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Errorf("normalization: %v %v", err1, err2)
	}
}

func TestNewMnemonicLengths(t *testing.T) {
	for _, words := range []int{12, 24} {
		m, err := NewMnemonic(words)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(bytes.Fields([]byte(m))); n != words {
			t.Errorf("%d words, want %d", n, words)
		}
		if _, err := ValidateMnemonic(m); err != nil {
			t.Error(err)
		}
	}
	if _, err := NewMnemonic(15); err == nil {
		t.Error("NewMnemonic(15) succeeded; only 12 and 24 are offered")
	}
}

func TestAddressJSON(t *testing.T) {
	k := testKey(t, testMnemonic)
	a := k.PublicKey().Address()
	b, err := json.Marshal(map[string]any{"a": a, "m": map[Address]int{a: 1}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":"` + a.String() + `","m":{"` + a.String() + `":1}}`
	if string(b) != want {
		t.Fatalf("%s, want %s", b, want)
	}
	var back struct {
		A Address
		M map[Address]int
	}
	if err := json.Unmarshal(b, &back); err != nil || back.A != a || back.M[a] != 1 {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"A": "ct1nope"}`), &back); err == nil {
		t.Fatal("bad address decoded")
	}
}
