package wallet

import "errors"

// Errors returned by the wallet. Check them with errors.Is: most are wrapped
// with the path or name they concern.
var (
	// ErrExists is returned when creating a wallet or key that already
	// exists and overwriting was not asked for.
	ErrExists = errors.New("wallet: already exists (use --force to overwrite)")
	// ErrNotFound is returned when a wallet or hotkey does not exist.
	ErrNotFound = errors.New("wallet: not found")
	// ErrWrongPassword is returned when an encrypted keyfile does not open
	// with the given password. The AEAD cannot tell a wrong password from a
	// modified ciphertext, so a tampered file reports this too.
	ErrWrongPassword = errors.New("wallet: wrong password or tampered keyfile")
	// ErrPasswordRequired is returned when a key is encrypted and no
	// password was supplied, or an empty password is given for encryption.
	ErrPasswordRequired = errors.New("wallet: password required")
	// ErrCorruptKeyfile is returned for a keyfile that is truncated, not in
	// the keyfile format, or internally inconsistent.
	ErrCorruptKeyfile = errors.New("wallet: corrupted keyfile")
	// ErrUnsupportedVersion is returned for a keyfile of a format version
	// this build does not know.
	ErrUnsupportedVersion = errors.New("wallet: unsupported keyfile version")
	// ErrInvalidMnemonic is returned for a mnemonic with an unknown word, a
	// wrong number of words or a bad checksum.
	ErrInvalidMnemonic = errors.New("wallet: invalid mnemonic")
	// ErrInvalidName is returned for a wallet or hotkey name that is not a
	// plain file name.
	ErrInvalidName = errors.New("wallet: invalid name")
	// ErrInvalidKey is returned for a private or public key that is not a
	// valid secp256k1 key.
	ErrInvalidKey = errors.New("wallet: invalid key")
	// ErrInvalidAddress is returned for a string that is not a bech32
	// account address.
	ErrInvalidAddress = errors.New("wallet: invalid address")
	// ErrInvalidSignature is returned for a malformed signature.
	ErrInvalidSignature = errors.New("wallet: invalid signature")
)
