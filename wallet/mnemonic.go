package wallet

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"fmt"
	"strings"

	"github.com/cosmos/go-bip39"
)

// NewMnemonic returns a fresh BIP 39 mnemonic of 12 or 24 English words
// (128 or 256 bits of entropy from crypto/rand).
func NewMnemonic(words int) (string, error) {
	var size int
	switch words {
	case 12:
		size = 16
	case 24:
		size = 32
	default:
		return "", fmt.Errorf("%w: a new mnemonic has 12 or 24 words, not %d", ErrInvalidMnemonic, words)
	}
	entropy := make([]byte, size)
	if _, err := rand.Read(entropy); err != nil {
		return "", fmt.Errorf("wallet: reading entropy: %w", err)
	}
	return MnemonicFromEntropy(entropy)
}

// MnemonicFromEntropy encodes 16 to 32 bytes of entropy (a multiple of 4)
// as a BIP 39 mnemonic.
func MnemonicFromEntropy(entropy []byte) (string, error) {
	n := len(entropy)
	if n < 16 || n > 32 || n%4 != 0 {
		return "", fmt.Errorf("%w: entropy of %d bytes (want 16, 20, 24, 28 or 32)", ErrInvalidMnemonic, n)
	}
	checksum := sha256.Sum256(entropy)
	csBits := n * 8 / 32
	words := make([]string, 0, (n*8+csBits)/11)
	bit := func(i int) int {
		if i < n*8 {
			return int(entropy[i/8]>>(7-i%8)) & 1
		}
		i -= n * 8
		return int(checksum[i/8]>>(7-i%8)) & 1
	}
	for w := 0; w < (n*8+csBits)/11; w++ {
		idx := 0
		for b := range 11 {
			idx = idx<<1 | bit(w*11+b)
		}
		words = append(words, bip39.EnglishWordList[idx])
	}
	return strings.Join(words, " "), nil
}

// NormalizeMnemonic lower-cases a mnemonic and collapses its white space.
func NormalizeMnemonic(m string) string {
	return strings.Join(strings.Fields(strings.ToLower(m)), " ")
}

// ValidateMnemonic checks a (normalized) mnemonic: 12 to 24 words in steps of
// three, every word in the BIP 39 English list, and a correct checksum. It
// returns the entropy.
func ValidateMnemonic(m string) ([]byte, error) {
	words := strings.Fields(m)
	switch len(words) {
	case 12, 15, 18, 21, 24:
	default:
		return nil, fmt.Errorf("%w: %d words (want 12, 15, 18, 21 or 24)", ErrInvalidMnemonic, len(words))
	}
	totalBits := len(words) * 11
	csBits := totalBits / 33
	entBits := totalBits - csBits
	bits := make([]byte, 0, totalBits)
	for i, w := range words {
		idx, ok := bip39.ReverseWordMap[w]
		if !ok {
			return nil, fmt.Errorf("%w: word %d (%q) is not in the BIP 39 English word list", ErrInvalidMnemonic, i+1, w)
		}
		for b := 10; b >= 0; b-- {
			bits = append(bits, byte(idx>>b)&1)
		}
	}
	entropy := make([]byte, entBits/8)
	for i := range entBits {
		entropy[i/8] |= bits[i] << (7 - i%8)
	}
	sum := sha256.Sum256(entropy)
	for i := range csBits {
		if sum[i/8]>>(7-i%8)&1 != bits[entBits+i] {
			return nil, fmt.Errorf("%w: checksum does not match (a word is wrong or out of order)", ErrInvalidMnemonic)
		}
	}
	return entropy, nil
}

// MnemonicSeed returns the 64-byte BIP 39 seed of a mnemonic and an optional
// passphrase, after validating the mnemonic.
func MnemonicSeed(mnemonic, passphrase string) ([]byte, error) {
	mnemonic = NormalizeMnemonic(mnemonic)
	if _, err := ValidateMnemonic(mnemonic); err != nil {
		return nil, err
	}
	seed, err := pbkdf2.Key(sha512.New, mnemonic, []byte("mnemonic"+passphrase), 2048, 64)
	if err != nil {
		return nil, fmt.Errorf("wallet: bip39 seed: %w", err)
	}
	return seed, nil
}

// CosmosPath is the BIP 44 derivation path of the first Cosmos account
// (coin type 118). Keys derived on it match what Cosmos SDK tools derive
// from the same mnemonic.
const CosmosPath = "m/44'/118'/0'/0/0"

// KeyFromMnemonic derives the private key at CosmosPath from a mnemonic
// with an empty BIP 39 passphrase.
func KeyFromMnemonic(mnemonic string) (*PrivateKey, error) {
	seed, err := MnemonicSeed(mnemonic, "")
	if err != nil {
		return nil, err
	}
	return DerivePath(seed, CosmosPath)
}
