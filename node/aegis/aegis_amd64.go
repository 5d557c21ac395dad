package aegis

import "golang.org/x/sys/cpu"

var supported = cpu.X86.HasAES && cpu.X86.HasSSE41

// absorbBlocks runs Update(M0, M1) for each of n 32-byte blocks at src.
//
//go:noescape
func absorbBlocks(s *state, src *byte, n int)

// encBlocks encrypts n 32-byte blocks from src to dst (the draft's Enc);
// dst may be src.
//
//go:noescape
func encBlocks(s *state, dst, src *byte, n int)

// decBlocks decrypts n 32-byte blocks from src to dst (the draft's Dec);
// dst may be src.
//
//go:noescape
func decBlocks(s *state, dst, src *byte, n int)

// initState is the draft's Init; c holds C0 and C1.
//
//go:noescape
func initState(s *state, key, nonce *[16]byte, c *[2][16]byte)

// finalizeState is the draft's Finalize with a 128-bit tag, given the
// lengths block LE64(ad bits) || LE64(message bits).
//
//go:noescape
func finalizeState(s *state, lens, tag *[16]byte)
