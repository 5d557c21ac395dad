package metering

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Bounds of a key file, which is untrusted input like any file.
const (
	// MaxKeys is the most keys a key file holds.
	MaxKeys = 1024
	// MaxKeyFileSize is the largest key file read.
	MaxKeyFileSize = 1 << 20
	// MaxNameLen is the longest key name, in bytes.
	MaxNameLen = 64
	// MaxKeyIDLen is the longest key ID.
	MaxKeyIDLen = 40
	// MinRPS, MaxRPS and MaxBurst bound a key's rate limit (so the
	// limiter's nanosecond arithmetic cannot overflow).
	MinRPS   = 1e-3
	MaxRPS   = 1e6
	MaxBurst = 1_000_000
)

// keyFileVersion is the version of the key file format.
const keyFileVersion = 1

// ErrBadKeyFile is the error of a key file that does not decode.
var ErrBadKeyFile = errors.New("metering: invalid key file")

// Limits are one key's rate limit and daily quotas; a zero field is no
// limit.
type Limits struct {
	// RPS is the sustained rate in requests per second, Burst how many
	// requests may come at once after a pause (at least 1 when RPS is set).
	RPS   float64 `json:"rps,omitempty"`
	Burst int64   `json:"burst,omitempty"`
	// DailyRequests and DailyTokens are the quotas per UTC day.
	DailyRequests int64 `json:"daily_requests,omitempty"`
	DailyTokens   int64 `json:"daily_tokens,omitempty"`
}

// Validate reports the first thing wrong with l.
func (l Limits) Validate() error {
	switch {
	case math.IsNaN(l.RPS) || l.RPS != 0 && (l.RPS < MinRPS || l.RPS > MaxRPS):
		return fmt.Errorf("rps %v: want 0 (no limit) or %v to %v", l.RPS, MinRPS, MaxRPS)
	case l.Burst < 0 || l.Burst > MaxBurst:
		return fmt.Errorf("burst %d: want 0 to %d", l.Burst, MaxBurst)
	case l.RPS > 0 && l.Burst < 1:
		return fmt.Errorf("burst %d: a rate limit needs a burst of at least 1", l.Burst)
	case l.RPS == 0 && l.Burst != 0:
		return fmt.Errorf("burst %d without a rate (rps)", l.Burst)
	case l.DailyRequests < 0:
		return fmt.Errorf("daily requests %d: want 0 (no quota) or more", l.DailyRequests)
	case l.DailyTokens < 0:
		return fmt.Errorf("daily tokens %d: want 0 (no quota) or more", l.DailyTokens)
	}
	return nil
}

// Key is an API key as stored: everything but its secret, of which only
// the hash is kept.
type Key struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created"`
	Limits  Limits    `json:"limits"`
	Revoked bool      `json:"revoked,omitempty"`
	// RevokedAt is when it was revoked (zero if it is not).
	RevokedAt time.Time `json:"revoked_at,omitzero"`
	// hash is secretHash of the key's secret.
	hash [sha256.Size]byte
}

// keyRecord is a key in the file.
type keyRecord struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	Created      time.Time `json:"created"`
	SecretSHA256 string    `json:"secret_sha256"`
	Limits       Limits    `json:"limits"`
	Revoked      bool      `json:"revoked,omitempty"`
	RevokedAt    time.Time `json:"revoked_at,omitzero"`
}

type keyFile struct {
	Version int         `json:"version"`
	Keys    []keyRecord `json:"keys"`
}

// secretDomain separates key-secret hashes from any other SHA-256 use.
const secretDomain = "cybertensor-gateway-key/1\x00"

// secretHash is what the file keeps of a secret. A plain (domain-separated)
// SHA-256 suffices, with no salt or slow KDF: secrets are 256 bits from
// crypto/rand, so there is no dictionary to precompute and no guess to
// speed up; a salt or a slow hash only defends low-entropy passwords.
func secretHash(secret string) [sha256.Size]byte {
	h := sha256.New()
	h.Write([]byte(secretDomain))
	h.Write([]byte(secret))
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// validKeyID: 1 to MaxKeyIDLen of [A-Za-z0-9_-].
func validKeyID(id string) bool {
	if id == "" || len(id) > MaxKeyIDLen {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validName: printable text without control characters, at most MaxNameLen
// bytes.
func validName(n string) error {
	if n == "" || len(n) > MaxNameLen {
		return fmt.Errorf("name %q: want 1 to %d bytes", n, MaxNameLen)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f || r == 0xfffd {
			return fmt.Errorf("name %q: control or invalid characters", n)
		}
	}
	return nil
}

// DecodeKeyFile decodes a key file strictly: known fields only, at most
// MaxKeys keys, each valid, IDs and secret hashes unique. Its errors wrap
// ErrBadKeyFile.
func DecodeKeyFile(b []byte) ([]Key, error) {
	if len(b) > MaxKeyFileSize {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrBadKeyFile, len(b), MaxKeyFileSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f keyFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: data after the key list", ErrBadKeyFile)
	}
	if f.Version != keyFileVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadKeyFile, f.Version, keyFileVersion)
	}
	if len(f.Keys) > MaxKeys {
		return nil, fmt.Errorf("%w: %d keys, more than %d", ErrBadKeyFile, len(f.Keys), MaxKeys)
	}
	keys := make([]Key, 0, len(f.Keys))
	ids := map[string]bool{}
	hashes := map[[sha256.Size]byte]bool{}
	for i, r := range f.Keys {
		k, err := r.key()
		if err != nil {
			return nil, fmt.Errorf("%w: key %d: %v", ErrBadKeyFile, i, err)
		}
		if ids[k.ID] {
			return nil, fmt.Errorf("%w: key %d: duplicate id %q", ErrBadKeyFile, i, k.ID)
		}
		if hashes[k.hash] {
			return nil, fmt.Errorf("%w: key %d (%s): same secret as another key", ErrBadKeyFile, i, k.ID)
		}
		ids[k.ID], hashes[k.hash] = true, true
		keys = append(keys, k)
	}
	return keys, nil
}

func (r keyRecord) key() (Key, error) {
	if !validKeyID(r.ID) {
		return Key{}, fmt.Errorf("id %q: want 1 to %d of [A-Za-z0-9_-]", r.ID, MaxKeyIDLen)
	}
	if err := validName(r.Name); err != nil {
		return Key{}, err
	}
	if r.Created.IsZero() {
		return Key{}, errors.New("no creation time")
	}
	h, err := hex.DecodeString(r.SecretSHA256)
	if err != nil || len(h) != sha256.Size || r.SecretSHA256 != hex.EncodeToString(h) {
		return Key{}, errors.New("secret_sha256: want 64 lowercase hex digits")
	}
	if err := r.Limits.Validate(); err != nil {
		return Key{}, err
	}
	if r.Revoked == r.RevokedAt.IsZero() {
		return Key{}, errors.New("revoked and revoked_at disagree")
	}
	k := Key{ID: r.ID, Name: r.Name, Created: r.Created, Limits: r.Limits, Revoked: r.Revoked, RevokedAt: r.RevokedAt}
	copy(k.hash[:], h)
	return k, nil
}

// EncodeKeyFile encodes keys as a key file (indented JSON).
func EncodeKeyFile(keys []Key) ([]byte, error) {
	f := keyFile{Version: keyFileVersion, Keys: make([]keyRecord, 0, len(keys))}
	for _, k := range keys {
		f.Keys = append(f.Keys, keyRecord{ID: k.ID, Name: k.Name, Created: k.Created,
			SecretSHA256: hex.EncodeToString(k.hash[:]), Limits: k.Limits, Revoked: k.Revoked, RevokedAt: k.RevokedAt})
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encoding the key file: %w", err)
	}
	return append(b, '\n'), nil
}
