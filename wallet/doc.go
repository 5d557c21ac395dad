// Package wallet manages cybertensor keys: a wallet holds one coldkey, which
// owns funds and stake, and any number of named hotkeys, which operate
// neurons.
//
// # Keys and addresses
//
// Keys are secp256k1, derived from BIP 39 mnemonics (12 or 24 English words,
// no passphrase) with BIP 32 on the Cosmos path m/44'/118'/0'/0/0. An
// account address is RIPEMD160(SHA256(compressed public key)) in bech32 with
// the prefix "ct" (configurable), so the same words give the same 20 bytes
// that Cosmos SDK tools derive. A hotkey's private key is also the neuron's
// libp2p identity: PublicKey.PeerID is the ID a libp2p host built from
// PrivateKey.Libp2p reports.
//
// Signatures are 64 bytes, r||s over SHA-256 of the signed bytes, RFC 6979
// nonces and low s (the Cosmos SDK form). SignMessage prefixes user messages
// with MessagePrefix and the message length, so a signed message can never
// pass for a signed transaction.
//
// # Layout on disk
//
//	<home>/wallets/<name>/            0700
//	<home>/wallets/<name>/coldkey         0600 keyfile, always encrypted
//	<home>/wallets/<name>/coldkeypub.txt  0600 public part of the coldkey
//	<home>/wallets/<name>/hotkeys/<hotkey> 0600 keyfile, plain by default
//
// Every file is written to a temporary file, fsynced and renamed into place
// (and the directory fsynced), so a crash never leaves a half-written key.
// A new wallet is assembled in a temporary directory and renamed whole.
//
// # Keyfile format, version 1
//
// A keyfile is a JSON object:
//
//	{
//	  "format": "cybertensor-keyfile",
//	  "version": 1,
//	  "key_type": "secp256k1",
//	  "public_key": "<33-byte compressed key, lower-case hex>",
//	  "address": "<bech32 address of public_key>",
//	  "encryption": {                         // absent for a plain keyfile
//	    "kdf": "argon2id",
//	    "params": {"time": 3, "memory_kib": 65536, "threads": 4},
//	    "salt": "<base64, 16 to 64 bytes; 32 when written>",
//	    "cipher": "xchacha20-poly1305",
//	    "nonce": "<base64, 24 bytes>"
//	  },
//	  "ciphertext": "<base64, sealed 32-byte private key, 48 bytes>",
//	  "secret": "<hex private key, plain keyfiles only>"
//	}
//
// The encryption key is argon2id(password, salt, time, memory, threads) with
// a 32-byte output; the default parameters are RFC 9106's second
// recommendation (3 passes, 64 MiB, 4 lanes). The AEAD's associated data is
// the format, version, key type, public key, KDF name, its three parameters
// and the cipher name joined by NUL bytes, so no header field can be changed
// without the ciphertext failing to open. After opening, the private key
// must match public_key. Unknown fields, a newer version, or parameters
// beyond fixed bounds (time ≤ 64, memory ≤ 4 GiB) are rejected before any
// work is done, so a crafted file cannot exhaust memory.
//
// coldkeypub.txt holds the same header fields with format
// "cybertensor-coldkeypub", so a machine can show a wallet's coldkey address
// without holding the coldkey.
package wallet
