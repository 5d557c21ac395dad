// Package aegis implements the AEGIS-128L authenticated cipher
// (draft-irtf-cfrg-aegis-aead) as a crypto/cipher.AEAD with a 128-bit tag.
//
// AEGIS-128L is built from the AES round function alone: each 32 bytes of
// message cost eight AES rounds and a few XORs, with no GHASH, so on a CPU
// with AES instructions it seals and opens several times faster than
// AES-GCM. The record layer of node's security transport uses it for bulk
// data between neurons.
//
// Only the hardware implementation is offered (amd64 with AES-NI): an AES
// round in portable Go is either slow or, with lookup tables, leaks its
// inputs through cache timing. Where Supported is false, New fails and
// callers use another cipher.
//
// The caller must never seal two messages with the same key and nonce.
package aegis
