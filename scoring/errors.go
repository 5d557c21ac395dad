package scoring

import (
	"errors"
	"fmt"
)

// ErrInvalidInput is wrapped by every error of ParseInput, Validate and
// Epoch: the input breaks the spec's rules (shared/spec/epoch.md §2.3).
// The message names the offending field, as in
// "neurons[3].uid: uids must be dense 0..n-1 in order".
var ErrInvalidInput = errors.New("invalid epoch input")

// ErrNonFinite is returned for a NaN or infinite score.
var ErrNonFinite = errors.New("scoring: score is not finite")

func invalid(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidInput, field, fmt.Sprintf(format, args...))
}
