package metering

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/cybertensor/cybertensor/gateway"
)

// Bounds of a ledger entry.
const (
	// MaxEntrySize is the largest encoded entry.
	MaxEntrySize = 16 << 10
	// MaxReceiptSize is the largest receipt an entry holds (a receipt is
	// about 250 bytes).
	MaxReceiptSize = 2 << 10
	// maxField is the longest text field of an entry.
	maxField = 256
	// maxAttempts bounds Usage.Attempts.
	maxAttempts = 1000
)

// entryVersion starts every encoded entry.
const entryVersion = 1

// Times an entry may carry: within what Unix nanoseconds in an int64 hold.
var (
	minEntryTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	maxEntryTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

// ErrBadEntry is the error of a usage entry that is invalid: refused by
// Record, or read back from a ledger file that does not decode.
var ErrBadEntry = errors.New("metering: invalid usage entry")

// validateUsage checks a usage record's fields and bounds.
func validateUsage(u *gateway.Usage) error {
	if u.Time.Before(minEntryTime) || !u.Time.Before(maxEntryTime) {
		return fmt.Errorf("time %v outside %d–%d", u.Time, minEntryTime.Year(), maxEntryTime.Year())
	}
	if !validKeyID(u.KeyID) {
		return fmt.Errorf("key id %q: want 1 to %d of [A-Za-z0-9_-]", u.KeyID, MaxKeyIDLen)
	}
	for _, f := range []struct{ name, v string }{{"model", u.Model}, {"synapse", u.Synapse}, {"miner", u.Miner},
		{"miner_peer", u.MinerPeer}, {"request_id", u.RequestID}, {"status", u.Status}} {
		if len(f.v) > maxField || !utf8.ValidString(f.v) || bytes.IndexByte([]byte(f.v), 0) >= 0 {
			return fmt.Errorf("%s: more than %d bytes, invalid UTF-8 or a NUL", f.name, maxField)
		}
	}
	switch {
	case u.HTTPStatus < 0 || u.HTTPStatus > 999:
		return fmt.Errorf("http status %d", u.HTTPStatus)
	case u.PromptTokens < 0 || u.CompletionTokens < 0 || u.RequestBytes < 0 || u.ResponseBytes < 0:
		return errors.New("negative tokens or bytes")
	case u.Latency < 0 || u.FirstByte < 0:
		return errors.New("negative latency")
	case u.Attempts < 0 || u.Attempts > maxAttempts:
		return fmt.Errorf("attempts %d: want 0 to %d", u.Attempts, maxAttempts)
	case len(u.Receipt) > MaxReceiptSize:
		return fmt.Errorf("receipt of %d bytes, more than %d", len(u.Receipt), MaxReceiptSize)
	}
	return nil
}

// EncodeEntry encodes a valid usage record as a ledger entry: a version
// byte, then JSON (the time in UTC).
func EncodeEntry(u gateway.Usage) ([]byte, error) {
	u.Time = u.Time.UTC().Round(0)
	if err := validateUsage(&u); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	if len(u.Receipt) == 0 {
		u.Receipt = nil
	}
	b, err := json.Marshal(u)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	if len(b)+1 > MaxEntrySize {
		return nil, fmt.Errorf("%w: %d bytes encoded, more than %d", ErrBadEntry, len(b)+1, MaxEntrySize)
	}
	return append([]byte{entryVersion}, b...), nil
}

// DecodeEntry decodes a ledger entry strictly (known fields only, nothing
// after, every field within its bounds). Its errors wrap ErrBadEntry.
func DecodeEntry(b []byte) (gateway.Usage, error) {
	if len(b) == 0 || len(b) > MaxEntrySize {
		return gateway.Usage{}, fmt.Errorf("%w: %d bytes", ErrBadEntry, len(b))
	}
	if b[0] != entryVersion {
		return gateway.Usage{}, fmt.Errorf("%w: version %d", ErrBadEntry, b[0])
	}
	dec := json.NewDecoder(bytes.NewReader(b[1:]))
	dec.DisallowUnknownFields()
	var u gateway.Usage
	if err := dec.Decode(&u); err != nil {
		return gateway.Usage{}, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return gateway.Usage{}, fmt.Errorf("%w: data after the entry", ErrBadEntry)
	}
	u.Time = u.Time.UTC()
	if err := validateUsage(&u); err != nil {
		return gateway.Usage{}, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	return u, nil
}
