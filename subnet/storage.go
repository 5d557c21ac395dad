package subnet

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/ipfs/go-cid"
)

// Bounds of storage challenges.
const (
	// MaxChallengeLength bounds the bytes one challenge covers.
	MaxChallengeLength = 4096
	// minChallengeLength and challengeLength bound the bytes a validator
	// challenges (fewer only when the object is shorter): long enough that
	// guessing them is hopeless, short enough to read and hash quickly.
	minChallengeLength = 64
	challengeLength    = 1024
	// MaxStorageObject bounds the objects validators challenge and storage
	// miners replicate: a challenge reads its object up to the range.
	MaxStorageObject = 16 << 20
	// maxOffset bounds a challenge's offset (objects are far smaller).
	maxOffset = 1 << 48
	// maxCIDString bounds a challenge's CID.
	maxCIDString = 128
	// maxStorageBody bounds storage.prove request and answer bodies.
	maxStorageBody = 1024
)

// StorageChallenge is the body of a storage.prove request: prove holding
// the Length bytes at Offset of the body of the knowledge object (or body)
// CID, by answering with StorageProof{Proof: SHA-256(Nonce ‖ those bytes)}.
// The fresh random nonce makes a proof useless for any other challenge,
// so it cannot be computed ahead or cached: only a miner holding the bytes
// when asked can answer.
type StorageChallenge struct {
	CID    string `json:"cid"`
	Offset uint64 `json:"offset"`
	Length uint64 `json:"length"`
	// Nonce is 32 random bytes.
	Nonce Hex `json:"nonce"`
}

// StorageProof is the answer to a storage.prove request.
type StorageProof struct {
	// Proof is SHA-256(nonce ‖ bytes), 32 bytes.
	Proof Hex `json:"proof"`
}

// DecodeStorageChallenge decodes and checks a storage.prove request body:
// at most 1 KiB of JSON, a CID that parses, 1 to MaxChallengeLength bytes
// at an offset below 2^48, a 32-byte nonce. Errors wrap ErrBadBody.
func DecodeStorageChallenge(b []byte) (StorageChallenge, error) {
	var c StorageChallenge
	if err := decodeBody(b, maxStorageBody, &c); err != nil {
		return StorageChallenge{}, err
	}
	if err := c.check(); err != nil {
		return StorageChallenge{}, err
	}
	return c, nil
}

func (c StorageChallenge) check() error {
	switch {
	case c.CID == "" || len(c.CID) > maxCIDString:
		return fmt.Errorf("%w: cid must be 1 to %d bytes", ErrBadBody, maxCIDString)
	case c.Length == 0 || c.Length > MaxChallengeLength:
		return fmt.Errorf("%w: length %d, want 1 to %d", ErrBadBody, c.Length, MaxChallengeLength)
	case c.Offset >= maxOffset:
		return fmt.Errorf("%w: offset %d, want below 2^48", ErrBadBody, c.Offset)
	case len(c.Nonce) != sha256.Size:
		return fmt.Errorf("%w: nonce of %d bytes, want %d", ErrBadBody, len(c.Nonce), sha256.Size)
	}
	if _, err := cid.Decode(c.CID); err != nil {
		return fmt.Errorf("%w: cid %q: %v", ErrBadBody, c.CID, err)
	}
	return nil
}

// Encode is the request body.
func (c StorageChallenge) Encode() []byte { return encodeBody(c) }

// Prove is the proof of holding data, the challenged bytes.
func (c StorageChallenge) Prove(data []byte) StorageProof {
	h := sha256.New()
	h.Write(c.Nonce)
	h.Write(data)
	return StorageProof{Proof: h.Sum(nil)}
}

// DecodeStorageProof decodes and checks a storage.prove answer: at most
// 1 KiB of JSON with a 32-byte proof. Errors wrap ErrBadBody.
func DecodeStorageProof(b []byte) (StorageProof, error) {
	var p StorageProof
	if err := decodeBody(b, maxStorageBody, &p); err != nil {
		return StorageProof{}, err
	}
	if len(p.Proof) != sha256.Size {
		return StorageProof{}, fmt.Errorf("%w: proof of %d bytes, want %d", ErrBadBody, len(p.Proof), sha256.Size)
	}
	return p, nil
}

// Encode is the answer body.
func (p StorageProof) Encode() []byte { return encodeBody(p) }

// ErrWrongAnswer is a well-formed answer that fails the task's check.
var ErrWrongAnswer = errors.New("subnet: wrong answer")

// NewStorageChallenge picks a challenge on the body (size bytes) of
// object c: 64 to 1,024 bytes (all of a shorter body) at a random offset,
// and a random nonce, all from rng — which must be unpredictable to miners
// (seeded from crypto/rand), or a miner could keep only the bytes it will
// be asked for.
func NewStorageChallenge(rng *rand.Rand, c cid.Cid, size uint64) (StorageChallenge, error) {
	if size == 0 {
		return StorageChallenge{}, errors.New("subnet: an empty body cannot be challenged")
	}
	if size > MaxStorageObject {
		return StorageChallenge{}, fmt.Errorf("subnet: a body of %d bytes is over the %d challenged", size, MaxStorageObject)
	}
	lo, hi := min(size, minChallengeLength), min(size, challengeLength)
	length := lo + rng.Uint64N(hi-lo+1)
	return StorageChallenge{CID: c.String(), Offset: rng.Uint64N(size - length + 1), Length: length, Nonce: randomBytes(rng, sha256.Size)}, nil
}

// StorageTask is the storage.prove task for challenge c, given the
// challenged bytes from the validator's own copy: an answer is valid if
// it decodes and its proof is c.Prove(data). Its work is the bytes proven.
func StorageTask(c StorageChallenge, data []byte) Task {
	want := c.Prove(data).Proof
	return Task{
		Synapse: "storage.prove", Body: c.Encode(), Expected: Hex(want).String(), Work: float64(len(data)),
		Check: func(answer []byte) error {
			p, err := DecodeStorageProof(answer)
			if err != nil {
				return err
			}
			if subtle.ConstantTimeCompare(p.Proof, want) != 1 {
				return fmt.Errorf("%w: proof %x, want %x", ErrWrongAnswer, []byte(p.Proof), want)
			}
			return nil
		},
	}
}
