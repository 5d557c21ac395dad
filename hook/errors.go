package hook

import (
	"errors"
	"fmt"
)

// ErrFailed is wrapped by every hook failure: a program or endpoint that
// did not give a usable answer. A caller that drops the task on a hook
// failure checks errors.Is(err, hook.ErrFailed). The more precise kinds
// below wrap it.
var ErrFailed = errors.New("hook failed")

var (
	// ErrTimeout: no answer within Limits.Timeout (or the caller's
	// deadline, in which case the error also wraps
	// context.DeadlineExceeded).
	ErrTimeout = fmt.Errorf("%w: timed out", ErrFailed)
	// ErrCrashed: the program exited, closed its output, could not be
	// started, or is waiting out its restart backoff after a crash; for
	// Run, it exited with a non-zero status.
	ErrCrashed = fmt.Errorf("%w: crashed", ErrFailed)
	// ErrTooLarge: an answer longer than Limits.MaxOutput (or, for Run,
	// more lines than asked for).
	ErrTooLarge = fmt.Errorf("%w: answer too large", ErrFailed)
	// ErrBadOutput: an answer that is not one JSON value (or that the
	// configured check refuses).
	ErrBadOutput = fmt.Errorf("%w: bad output", ErrFailed)
	// ErrClosed: the hook was closed.
	ErrClosed = fmt.Errorf("%w: closed", ErrFailed)
	// ErrStatus: an HTTP endpoint answered with a status other than 2xx.
	ErrStatus = fmt.Errorf("%w: HTTP status", ErrFailed)
	// ErrUnreachable: an HTTP endpoint could not be reached (refused
	// connection, unknown host, broken connection).
	ErrUnreachable = fmt.Errorf("%w: unreachable", ErrFailed)
)

// Failure reasons, the "reason" label of cybertensor_hook_failures_total.
const (
	reasonTimeout     = "timeout"
	reasonCrashed     = "crashed"
	reasonTooLarge    = "too_large"
	reasonBadOutput   = "bad_output"
	reasonClosed      = "closed"
	reasonStatus      = "status"
	reasonUnreachable = "unreachable"
	reasonCanceled    = "canceled"
)

// reasonOf names the kind of a hook error for the failure counter.
func reasonOf(err error) string {
	switch {
	case errors.Is(err, ErrTimeout):
		return reasonTimeout
	case errors.Is(err, ErrCrashed):
		return reasonCrashed
	case errors.Is(err, ErrTooLarge):
		return reasonTooLarge
	case errors.Is(err, ErrBadOutput):
		return reasonBadOutput
	case errors.Is(err, ErrClosed):
		return reasonClosed
	case errors.Is(err, ErrStatus):
		return reasonStatus
	case errors.Is(err, ErrUnreachable):
		return reasonUnreachable
	}
	return reasonCanceled
}
