//go:build !amd64

package aegis

const supported = false

func absorbBlocks(s *state, src *byte, n int)   { panic("aegis: unsupported") }
func encBlocks(s *state, dst, src *byte, n int) { panic("aegis: unsupported") }
func decBlocks(s *state, dst, src *byte, n int) { panic("aegis: unsupported") }

func initState(s *state, key, nonce *[16]byte, c *[2][16]byte) { panic("aegis: unsupported") }
func finalizeState(s *state, lens, tag *[16]byte)              { panic("aegis: unsupported") }
