package comet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"regexp"
	"strings"

	"github.com/cometbft/cometbft/mempool"
	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"

	"github.com/cybertensor/cybertensor/chainlink"
)

// unreachableError is a call that never got an answer from the node.
type unreachableError struct {
	url   string
	what  string
	cause error
}

func (e *unreachableError) Error() string {
	return e.what + ": " + fmt.Sprintf("cannot reach the chain node at %s (is \"cybertensor chain run\" running there?): %s", e.url, describeCause(e.cause))
}

func (e *unreachableError) Is(target error) bool { return target == chainlink.ErrUnreachable }
func (e *unreachableError) Unwrap() error        { return e.cause }

// describeCause names why a connection failed in a few words: the
// innermost error ("connection refused"), or that no answer came in time.
func describeCause(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "no answer in time"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "the connection closed"
	}
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err.Error()
		}
		err = next
	}
}

// isTransport says err is a failure to talk to the node at all, as
// opposed to an answer from it.
func isTransport(err error) bool {
	var ue *url.Error
	var ne net.Error
	return errors.As(err, &ue) || errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// httpStatus finds the HTTP status in the RPC client's errors.
var httpStatus = regexp.MustCompile(`http response metadata: \(Status: ([^,]+),`)

// nodeError turns what the RPC client returned while doing what into one
// sentence: ctx's end, the node unreachable (chainlink.ErrUnreachable),
// its mempool's known answers (chainlink.ErrTxInCache,
// chainlink.ErrMempoolFull) or its refusal in its own words, never the RPC
// client's wrapping of them. An empty what adds no prefix.
func (c *Client) nodeError(ctx context.Context, what string, err error) error {
	if err == nil {
		return nil
	}
	if what == "" {
		what = "talking to the chain node"
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", what, ctx.Err())
	}
	var rpcErr *rpctypes.RPCError
	if errors.As(err, &rpcErr) {
		msg := rpcErr.Data
		if msg == "" {
			msg = rpcErr.Message
		}
		switch {
		case strings.Contains(msg, mempool.ErrTxInCache.Error()):
			return chainlink.ErrTxInCache
		case strings.Contains(msg, "mempool is full"):
			return chainlink.ErrMempoolFull
		}
		return fmt.Errorf("%s: the chain node answered: %s", what, msg)
	}
	if isTransport(err) {
		return &unreachableError{url: c.cfg.URL, what: what, cause: err}
	}
	if m := httpStatus.FindStringSubmatch(err.Error()); m != nil && !strings.HasPrefix(m[1], "200") {
		return fmt.Errorf("%s: %s answers, but not as a chain node's RPC (HTTP %s)", what, c.cfg.URL, m[1])
	}
	return fmt.Errorf("%s: %w", what, err)
}
