package subnet

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/big"
	"math/bits"
	"math/rand/v2"
)

// The built-in generators of compute jobs. Both make work that is costly
// to do and cheap to check.
const (
	// GenHashPreimage: find a nonce whose hash with a random seed starts
	// with d zero bits — about 2^d hashes to find, one to check.
	GenHashPreimage = "hash-preimage"
	// GenArithmetic: compute x^(2^T) mod N, a time-lock puzzle (Rivest,
	// Shamir and Wagner, 1996): T sequential modular squarings for whoever
	// does not know N's factors, one modular exponentiation for the
	// validator, who chose N = p·q and reduces 2^T modulo (p−1)(q−1).
	GenArithmetic = "arithmetic"
)

// Difficulty bounds and defaults of the generators.
const (
	// MaxPreimageBits bounds a hash-preimage job's leading zero bits.
	MaxPreimageBits = 32
	// DefaultPreimageBits is 65,536 hashes expected: about 5 ms on a core
	// with SHA extensions, 30 ms on a slow one.
	DefaultPreimageBits = 16
	// MaxSquarings bounds an arithmetic job's squarings.
	MaxSquarings = 1 << 24
	// DefaultSquarings of a 1,024-bit modulus take about 15 ms on a
	// current core, 60 ms on a slow one.
	DefaultSquarings = 1 << 14
	// MaxModulusBits bounds an arithmetic job's modulus.
	MaxModulusBits = 4096
	// timeLockBits is the size of the moduli validators make.
	timeLockBits = 1024
	// maxComputeBody bounds compute.run request and answer bodies.
	maxComputeBody = 4096
	// nonceSize is a hash-preimage answer's nonce.
	nonceSize = 8
)

// ComputeJob is the body of a compute.run request: a job of one Kind,
// with that kind's fields only.
type ComputeJob struct {
	Kind string `json:"kind"`
	// hash-preimage: find an 8-byte nonce such that SHA-256(Seed ‖ nonce)
	// starts with Difficulty zero bits. Seed is 32 random bytes.
	Seed       Hex    `json:"seed,omitempty"`
	Difficulty uint64 `json:"difficulty,omitempty"`
	// arithmetic: compute Base^(2^Squarings) mod Modulus (big-endian
	// unsigned integers, 2 ≤ Base < Modulus).
	Modulus   Hex    `json:"modulus,omitempty"`
	Base      Hex    `json:"base,omitempty"`
	Squarings uint64 `json:"squarings,omitempty"`
}

// ComputeResult is the answer to a compute.run request: Nonce for a
// hash-preimage job (8 bytes), Result for an arithmetic one (big-endian,
// as many bytes as the modulus).
type ComputeResult struct {
	Nonce  Hex `json:"nonce,omitempty"`
	Result Hex `json:"result,omitempty"`
}

// DecodeComputeJob decodes and checks a compute.run request body: at most
// 4 KiB of JSON; a hash-preimage job with a 32-byte seed and 1 to
// MaxPreimageBits bits, or an arithmetic job with a modulus of at most
// MaxModulusBits above 2, a base in [2, modulus), and 1 to MaxSquarings
// squarings. Errors wrap ErrBadBody.
func DecodeComputeJob(b []byte) (ComputeJob, error) {
	var j ComputeJob
	if err := decodeBody(b, maxComputeBody, &j); err != nil {
		return ComputeJob{}, err
	}
	if err := j.check(); err != nil {
		return ComputeJob{}, err
	}
	return j, nil
}

func (j ComputeJob) check() error {
	switch j.Kind {
	case GenHashPreimage:
		switch {
		case len(j.Modulus) != 0 || len(j.Base) != 0 || j.Squarings != 0:
			return fmt.Errorf("%w: a hash-preimage job has no modulus, base or squarings", ErrBadBody)
		case len(j.Seed) != sha256.Size:
			return fmt.Errorf("%w: seed of %d bytes, want %d", ErrBadBody, len(j.Seed), sha256.Size)
		case j.Difficulty == 0 || j.Difficulty > MaxPreimageBits:
			return fmt.Errorf("%w: difficulty %d, want 1 to %d bits", ErrBadBody, j.Difficulty, MaxPreimageBits)
		}
	case GenArithmetic:
		switch {
		case len(j.Seed) != 0 || j.Difficulty != 0:
			return fmt.Errorf("%w: an arithmetic job has no seed or difficulty", ErrBadBody)
		case len(j.Modulus) == 0 || len(j.Modulus) > MaxModulusBits/8:
			return fmt.Errorf("%w: modulus of %d bytes, want 1 to %d", ErrBadBody, len(j.Modulus), MaxModulusBits/8)
		case j.Squarings == 0 || j.Squarings > MaxSquarings:
			return fmt.Errorf("%w: %d squarings, want 1 to %d", ErrBadBody, j.Squarings, MaxSquarings)
		}
		n, x := new(big.Int).SetBytes(j.Modulus), new(big.Int).SetBytes(j.Base)
		switch {
		case n.Cmp(big.NewInt(3)) < 0:
			return fmt.Errorf("%w: modulus %v, want at least 3", ErrBadBody, n)
		case x.Cmp(big.NewInt(2)) < 0 || x.Cmp(n) >= 0:
			return fmt.Errorf("%w: base out of [2, modulus)", ErrBadBody)
		}
	default:
		return fmt.Errorf("%w: kind %q, want %s or %s", ErrBadBody, j.Kind, GenHashPreimage, GenArithmetic)
	}
	return nil
}

// Encode is the request body.
func (j ComputeJob) Encode() []byte { return encodeBody(j) }

// Solve does a checked job (see DecodeComputeJob), stopping with ctx's
// error when ctx ends first.
func (j ComputeJob) Solve(ctx context.Context) (ComputeResult, error) {
	switch j.Kind {
	case GenHashPreimage:
		buf := make([]byte, len(j.Seed)+nonceSize)
		copy(buf, j.Seed)
		for n := uint64(0); ; n++ {
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return ComputeResult{}, err
				}
			}
			binary.BigEndian.PutUint64(buf[len(j.Seed):], n)
			if sum := sha256.Sum256(buf); leadingZeros(sum[:]) >= j.Difficulty {
				return ComputeResult{Nonce: append(Hex(nil), buf[len(j.Seed):]...)}, nil
			}
		}
	case GenArithmetic:
		n, x := new(big.Int).SetBytes(j.Modulus), new(big.Int).SetBytes(j.Base)
		for i := uint64(0); i < j.Squarings; i++ {
			if i%256 == 0 {
				if err := ctx.Err(); err != nil {
					return ComputeResult{}, err
				}
			}
			x.Mul(x, x)
			x.Mod(x, n)
		}
		return ComputeResult{Result: x.FillBytes(make([]byte, len(j.Modulus)))}, nil
	}
	return ComputeResult{}, fmt.Errorf("%w: kind %q", ErrBadBody, j.Kind)
}

// DecodeComputeResult decodes and checks a compute.run answer: at most
// 4 KiB of JSON with either an 8-byte nonce or a result of 1 to
// MaxModulusBits/8 bytes. Errors wrap ErrBadBody.
func DecodeComputeResult(b []byte) (ComputeResult, error) {
	var r ComputeResult
	if err := decodeBody(b, maxComputeBody, &r); err != nil {
		return ComputeResult{}, err
	}
	switch {
	case len(r.Nonce) != 0 && len(r.Result) != 0:
		return ComputeResult{}, fmt.Errorf("%w: a nonce or a result, not both", ErrBadBody)
	case len(r.Nonce) == 0 && len(r.Result) == 0:
		return ComputeResult{}, fmt.Errorf("%w: no nonce or result", ErrBadBody)
	case len(r.Nonce) != 0 && len(r.Nonce) != nonceSize:
		return ComputeResult{}, fmt.Errorf("%w: nonce of %d bytes, want %d", ErrBadBody, len(r.Nonce), nonceSize)
	case len(r.Result) > MaxModulusBits/8:
		return ComputeResult{}, fmt.Errorf("%w: result of %d bytes, at most %d", ErrBadBody, len(r.Result), MaxModulusBits/8)
	}
	return r, nil
}

// Encode is the answer body.
func (r ComputeResult) Encode() []byte { return encodeBody(r) }

// Verify checks a hash-preimage answer with one hash, an arithmetic one
// against the expected result (which only the job's maker knows cheaply:
// see Generator). Errors wrap ErrWrongAnswer or ErrBadBody.
func (j ComputeJob) Verify(r ComputeResult, expected *big.Int) error {
	switch j.Kind {
	case GenHashPreimage:
		if len(r.Nonce) != nonceSize {
			return fmt.Errorf("%w: a hash-preimage job needs an %d-byte nonce", ErrBadBody, nonceSize)
		}
		sum := sha256.Sum256(append(append([]byte(nil), j.Seed...), r.Nonce...))
		if z := leadingZeros(sum[:]); z < j.Difficulty {
			return fmt.Errorf("%w: the hash has %d leading zero bits, want %d", ErrWrongAnswer, z, j.Difficulty)
		}
		return nil
	case GenArithmetic:
		if len(r.Result) == 0 {
			return fmt.Errorf("%w: an arithmetic job needs a result", ErrBadBody)
		}
		if expected == nil || new(big.Int).SetBytes(r.Result).Cmp(expected) != 0 {
			return fmt.Errorf("%w: result %x", ErrWrongAnswer, []byte(r.Result))
		}
		return nil
	}
	return fmt.Errorf("%w: kind %q", ErrBadBody, j.Kind)
}

// leadingZeros counts b's leading zero bits.
func leadingZeros(b []byte) uint64 {
	var n uint64
	for _, x := range b {
		if x != 0 {
			return n + uint64(bits.LeadingZeros8(x))
		}
		n += 8
	}
	return n
}

// Generator makes compute.run tasks: jobs of one of the built-in
// Generators at a difficulty.
type Generator struct {
	name       string
	difficulty uint64
	// The arithmetic generator's secret modulus n = p·q and φ(n).
	n, phi *big.Int
}

// NewGenerator returns the generator name at difficulty (0: its default;
// see Tasks.Difficulty). An arithmetic generator draws its secret 1,024-bit
// modulus here, from crypto/rand (tens of milliseconds).
func NewGenerator(name string, difficulty uint64) (*Generator, error) {
	g := &Generator{name: name, difficulty: difficulty}
	switch name {
	case GenHashPreimage:
		if g.difficulty == 0 {
			g.difficulty = DefaultPreimageBits
		}
		if g.difficulty > MaxPreimageBits {
			return nil, fmt.Errorf("subnet: hash-preimage difficulty %d, at most %d bits", difficulty, MaxPreimageBits)
		}
	case GenArithmetic:
		if g.difficulty == 0 {
			g.difficulty = DefaultSquarings
		}
		if g.difficulty > MaxSquarings {
			return nil, fmt.Errorf("subnet: arithmetic difficulty %d, at most %d squarings", difficulty, MaxSquarings)
		}
		for {
			p, err := crand.Prime(crand.Reader, timeLockBits/2)
			if err != nil {
				return nil, fmt.Errorf("subnet: drawing a prime: %w", err)
			}
			q, err := crand.Prime(crand.Reader, timeLockBits/2)
			if err != nil {
				return nil, fmt.Errorf("subnet: drawing a prime: %w", err)
			}
			if p.Cmp(q) == 0 {
				continue
			}
			one := big.NewInt(1)
			g.n = new(big.Int).Mul(p, q)
			g.phi = new(big.Int).Mul(new(big.Int).Sub(p, one), new(big.Int).Sub(q, one))
			break
		}
	default:
		return nil, fmt.Errorf("subnet: unknown generator %q (known: %s, %s)", name, GenArithmetic, GenHashPreimage)
	}
	return g, nil
}

// Generator is the generator the spec's tasks come from.
func (s *Spec) Generator() (*Generator, error) {
	return NewGenerator(s.Tasks.Generator, s.Tasks.Difficulty)
}

// Next makes a job with randomness from rng — which must be unpredictable
// to miners (seeded from crypto/rand), or they could solve jobs ahead.
// Its work is the expected hashes (2^difficulty) or the squarings.
func (g *Generator) Next(rng *rand.Rand) Task {
	var job ComputeJob
	var expected *big.Int
	var work float64
	switch g.name {
	case GenHashPreimage:
		job = ComputeJob{Kind: GenHashPreimage, Seed: randomBytes(rng, sha256.Size), Difficulty: g.difficulty}
		work = float64(uint64(1) << g.difficulty)
	case GenArithmetic:
		var x *big.Int
		for {
			x = new(big.Int).SetBytes(randomBytes(rng, len(g.n.Bytes())))
			x.Mod(x, g.n)
			// Euler's theorem needs x coprime to n; 0 and 1 are fixed points.
			if x.Cmp(big.NewInt(2)) >= 0 && new(big.Int).GCD(nil, nil, x, g.n).Cmp(big.NewInt(1)) == 0 {
				break
			}
		}
		e := new(big.Int).Exp(big.NewInt(2), new(big.Int).SetUint64(g.difficulty), g.phi)
		expected = new(big.Int).Exp(x, e, g.n)
		job = ComputeJob{Kind: GenArithmetic, Modulus: g.n.Bytes(), Base: x.FillBytes(make([]byte, len(g.n.Bytes()))), Squarings: g.difficulty}
		work = float64(g.difficulty)
	}
	t := Task{Synapse: "compute.run", Body: job.Encode(), Work: work}
	if expected != nil {
		t.Expected = Hex(expected.FillBytes(make([]byte, len(job.Modulus)))).String()
	}
	t.Check = func(answer []byte) error {
		r, err := DecodeComputeResult(answer)
		if err != nil {
			return err
		}
		return job.Verify(r, expected)
	}
	return t
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}
