package wallet

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
)

// KeyfileFormat and KeyfileVersion identify the keyfile format described in
// the package documentation.
const (
	KeyfileFormat  = "cybertensor-keyfile"
	KeyfileVersion = 1
	// maxKeyfileSize bounds what DecodeKeyfile reads; a real keyfile is
	// well under 1 KiB.
	maxKeyfileSize = 64 << 10
)

// KDFParams are the argon2id parameters used to derive a keyfile's
// encryption key from its password.
type KDFParams struct {
	// Time is the number of passes over memory.
	Time uint32 `json:"time"`
	// MemoryKiB is the memory used, in KiB.
	MemoryKiB uint32 `json:"memory_kib"`
	// Threads is the degree of parallelism.
	Threads uint8 `json:"threads"`
}

// DefaultKDFParams are RFC 9106's second recommended argon2id setting:
// 3 passes over 64 MiB with 4 lanes.
func DefaultKDFParams() KDFParams { return KDFParams{Time: 3, MemoryKiB: 64 << 10, Threads: 4} }

// TestKDFParams are cheap parameters for tests only: they make brute force
// easy.
func TestKDFParams() KDFParams { return KDFParams{Time: 1, MemoryKiB: 64, Threads: 1} }

// Bounds accepted when reading a keyfile, so that a crafted file cannot make
// opening it take unbounded memory or time.
const (
	maxKDFTime      = 64
	maxKDFMemoryKiB = 4 << 20 // 4 GiB
	minSaltSize     = 16
	maxSaltSize     = 64
)

func (p KDFParams) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxKDFTime:
		return fmt.Errorf("argon2id time %d outside 1..%d", p.Time, maxKDFTime)
	case p.Threads < 1:
		return fmt.Errorf("argon2id threads must be at least 1")
	case p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > maxKDFMemoryKiB:
		return fmt.Errorf("argon2id memory %d KiB outside %d..%d", p.MemoryKiB, 8*uint32(p.Threads), maxKDFMemoryKiB)
	}
	return nil
}

// Keyfile is one key on disk: public header fields readable without a
// password, and the private key either in the clear or encrypted.
type Keyfile struct {
	Format    string `json:"format"`
	Version   int    `json:"version"`
	KeyType   string `json:"key_type"`
	PublicKey string `json:"public_key"`
	Address   string `json:"address"`
	// Encryption is nil for a plain keyfile.
	Encryption *Encryption `json:"encryption,omitempty"`
	// Secret is the hex private key of a plain keyfile.
	Secret string `json:"secret,omitempty"`
	// Ciphertext is the base64 sealed private key of an encrypted keyfile.
	Ciphertext string `json:"ciphertext,omitempty"`
}

// Encryption describes how a keyfile's private key is sealed.
type Encryption struct {
	KDF    string    `json:"kdf"`
	Params KDFParams `json:"params"`
	Salt   string    `json:"salt"`
	Cipher string    `json:"cipher"`
	Nonce  string    `json:"nonce"`
}

const (
	keyTypeSecp256k1 = "secp256k1"
	kdfArgon2id      = "argon2id"
	cipherXChaCha    = "xchacha20-poly1305"
)

// Encrypted reports whether the private key needs a password.
func (f *Keyfile) Encrypted() bool { return f.Encryption != nil }

// Public returns the key's public half from the header, which DecodeKeyfile
// has already checked against the address.
func (f *Keyfile) Public() (*PublicKey, error) { return ParsePublicKeyHex(f.PublicKey) }

// NewKeyfile seals key in a keyfile. A nil password stores the key in the
// clear; otherwise it is encrypted with XChaCha20-Poly1305 under an argon2id
// key derived from the password with params.
func NewKeyfile(key *PrivateKey, password []byte, params KDFParams, prefix string) (*Keyfile, error) {
	if err := ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	pub := key.PublicKey()
	f := &Keyfile{
		Format:    KeyfileFormat,
		Version:   KeyfileVersion,
		KeyType:   keyTypeSecp256k1,
		PublicKey: pub.Hex(),
		Address:   pub.Address().Bech32(prefix),
	}
	if password == nil {
		f.Secret = hex.EncodeToString(key.Bytes())
		return f, nil
	}
	if len(password) == 0 {
		return nil, fmt.Errorf("%w: an empty password does not protect a key", ErrPasswordRequired)
	}
	if err := params.validate(); err != nil {
		return nil, fmt.Errorf("wallet: kdf parameters: %w", err)
	}
	salt := make([]byte, 32)
	nonce := make([]byte, chacha20poly1305.NonceSizeX)
	if _, err := rand.Read(salt); err != nil {
		return nil, fmt.Errorf("wallet: reading salt: %w", err)
	}
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("wallet: reading nonce: %w", err)
	}
	f.Encryption = &Encryption{
		KDF:    kdfArgon2id,
		Params: params,
		Salt:   base64.StdEncoding.EncodeToString(salt),
		Cipher: cipherXChaCha,
		Nonce:  base64.StdEncoding.EncodeToString(nonce),
	}
	aead, err := chacha20poly1305.NewX(deriveKey(password, salt, params))
	if err != nil {
		return nil, fmt.Errorf("wallet: cipher: %w", err)
	}
	sealed := aead.Seal(nil, nonce, key.Bytes(), f.associatedData())
	f.Ciphertext = base64.StdEncoding.EncodeToString(sealed)
	return f, nil
}

func deriveKey(password, salt []byte, p KDFParams) []byte {
	return argon2.IDKey(password, salt, p.Time, p.MemoryKiB, p.Threads, chacha20poly1305.KeySize)
}

// associatedData binds the ciphertext to the header: changing the format,
// version, key type, public key or any encryption parameter makes the
// ciphertext fail to open.
func (f *Keyfile) associatedData() []byte {
	e := f.Encryption
	return fmt.Appendf(nil, "%s/%d\x00%s\x00%s\x00%s\x00%d\x00%d\x00%d\x00%s",
		f.Format, f.Version, f.KeyType, f.PublicKey, e.KDF, e.Params.Time, e.Params.MemoryKiB, e.Params.Threads, e.Cipher)
}

// Encode returns the keyfile's bytes: indented JSON and a newline.
func (f *Keyfile) Encode() []byte {
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		panic(fmt.Sprintf("wallet: encoding keyfile: %v", err)) // plain strings and ints cannot fail
	}
	return append(b, '\n')
}

// DecodeKeyfile parses and checks a keyfile without opening it: the format,
// version, key type, that the public key is valid and matches the address,
// and that every encryption field is present and within bounds. Anything
// wrong is reported as ErrCorruptKeyfile or ErrUnsupportedVersion.
func DecodeKeyfile(data []byte) (*Keyfile, error) {
	if len(data) > maxKeyfileSize {
		return nil, fmt.Errorf("%w: %d bytes is too large for a keyfile", ErrCorruptKeyfile, len(data))
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f Keyfile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyfile, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data after the keyfile", ErrCorruptKeyfile)
	}
	if f.Format != KeyfileFormat {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrCorruptKeyfile, f.Format, KeyfileFormat)
	}
	if f.Version != KeyfileVersion {
		return nil, fmt.Errorf("%w: version %d (this build reads version %d)", ErrUnsupportedVersion, f.Version, KeyfileVersion)
	}
	if f.KeyType != keyTypeSecp256k1 {
		return nil, fmt.Errorf("%w: key type %q", ErrCorruptKeyfile, f.KeyType)
	}
	pub, err := ParsePublicKeyHex(f.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: public_key: %v", ErrCorruptKeyfile, err)
	}
	if pub.Hex() != f.PublicKey {
		return nil, fmt.Errorf("%w: public_key is not lower-case hex of a compressed key", ErrCorruptKeyfile)
	}
	addr, _, err := ParseAddress(f.Address)
	if err != nil {
		return nil, fmt.Errorf("%w: address: %v", ErrCorruptKeyfile, err)
	}
	if addr != pub.Address() {
		return nil, fmt.Errorf("%w: address does not belong to public_key", ErrCorruptKeyfile)
	}
	if f.Encryption == nil {
		if f.Ciphertext != "" || len(f.Secret) != 2*PrivateKeySize {
			return nil, fmt.Errorf("%w: a plain keyfile holds a %d-byte hex secret and no ciphertext", ErrCorruptKeyfile, PrivateKeySize)
		}
		if _, err := hex.DecodeString(f.Secret); err != nil {
			return nil, fmt.Errorf("%w: secret is not hex", ErrCorruptKeyfile)
		}
		return &f, nil
	}
	e := f.Encryption
	if f.Secret != "" {
		return nil, fmt.Errorf("%w: an encrypted keyfile holds no plain secret", ErrCorruptKeyfile)
	}
	if e.KDF != kdfArgon2id || e.Cipher != cipherXChaCha {
		return nil, fmt.Errorf("%w: kdf %q and cipher %q (want %s and %s)", ErrCorruptKeyfile, e.KDF, e.Cipher, kdfArgon2id, cipherXChaCha)
	}
	if err := e.Params.validate(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyfile, err)
	}
	if salt, err := base64.StdEncoding.DecodeString(e.Salt); err != nil || len(salt) < minSaltSize || len(salt) > maxSaltSize {
		return nil, fmt.Errorf("%w: salt must be %d to %d bytes of base64", ErrCorruptKeyfile, minSaltSize, maxSaltSize)
	}
	if nonce, err := base64.StdEncoding.DecodeString(e.Nonce); err != nil || len(nonce) != chacha20poly1305.NonceSizeX {
		return nil, fmt.Errorf("%w: nonce must be %d bytes of base64", ErrCorruptKeyfile, chacha20poly1305.NonceSizeX)
	}
	if ct, err := base64.StdEncoding.DecodeString(f.Ciphertext); err != nil || len(ct) != PrivateKeySize+chacha20poly1305.Overhead {
		return nil, fmt.Errorf("%w: ciphertext must be %d bytes of base64", ErrCorruptKeyfile, PrivateKeySize+chacha20poly1305.Overhead)
	}
	return &f, nil
}

// Open returns the private key. password is ignored for a plain keyfile; an
// encrypted one with a nil or empty password returns ErrPasswordRequired.
// The key is checked against the header's public key.
func (f *Keyfile) Open(password []byte) (*PrivateKey, error) {
	var raw []byte
	if f.Encryption == nil {
		var err error
		if raw, err = hex.DecodeString(f.Secret); err != nil {
			return nil, fmt.Errorf("%w: secret is not hex", ErrCorruptKeyfile)
		}
	} else {
		if len(password) == 0 {
			return nil, ErrPasswordRequired
		}
		e := f.Encryption
		salt, err1 := base64.StdEncoding.DecodeString(e.Salt)
		nonce, err2 := base64.StdEncoding.DecodeString(e.Nonce)
		ct, err3 := base64.StdEncoding.DecodeString(f.Ciphertext)
		if err := errors.Join(err1, err2, err3); err != nil || e.Params.validate() != nil || len(nonce) != chacha20poly1305.NonceSizeX {
			return nil, fmt.Errorf("%w: encryption fields", ErrCorruptKeyfile)
		}
		aead, err := chacha20poly1305.NewX(deriveKey(password, salt, e.Params))
		if err != nil {
			return nil, fmt.Errorf("wallet: cipher: %w", err)
		}
		if raw, err = aead.Open(nil, nonce, ct, f.associatedData()); err != nil {
			return nil, ErrWrongPassword
		}
	}
	key, err := PrivateKeyFromBytes(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptKeyfile, err)
	}
	if key.PublicKey().Hex() != f.PublicKey {
		return nil, fmt.Errorf("%w: private key does not match public_key", ErrCorruptKeyfile)
	}
	return key, nil
}
