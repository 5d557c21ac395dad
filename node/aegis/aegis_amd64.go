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
