package comet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"

	rpctypes "github.com/cometbft/cometbft/rpc/jsonrpc/types"

	"github.com/cybertensor/cybertensor/chainlink"
)

// What the RPC client returns becomes one sentence, never its wrapping
// (#20: "comet: broadcast: error in json rpc client, with http response
// metadata: (Status: 200 OK, Protocol HTTP/1.1). RPC error -32603 -
// Internal error: tx already exists in cache").
func TestNodeErrorsAreSentences(t *testing.T) {
	c := &Client{cfg: Config{URL: "http://127.0.0.1:26657"}}
	prefix := "error in json rpc client, with http response metadata: (Status: 200 OK, Protocol HTTP/1.1). "
	rpcErr := func(data string) error {
		return fmt.Errorf("%s%w", prefix, &rpctypes.RPCError{Code: -32603, Message: "Internal error", Data: data})
	}
	refused := fmt.Errorf("post failed: %w", &url.Error{Op: "Post", URL: "http://127.0.0.1:26657", Err: &net.OpError{Op: "dial", Net: "tcp",
		Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}})
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name string
		ctx  context.Context
		err  error
		is   error
		want string
	}{
		{"in cache", context.Background(), rpcErr("tx already exists in cache"), chainlink.ErrTxInCache, chainlink.ErrTxInCache.Error()},
		{"mempool full", context.Background(), rpcErr("mempool is full: number of txs 5000 (max: 5000), total txs bytes 1 (max: 2)"), chainlink.ErrMempoolFull, chainlink.ErrMempoolFull.Error()},
		{"other RPC error", context.Background(), rpcErr("tx (AB) not found"), nil, "sending: the chain node answered: tx (AB) not found"},
		{"refused", context.Background(), refused, chainlink.ErrUnreachable,
			`sending: cannot reach the chain node at http://127.0.0.1:26657 (is "cybertensor chain run" running there?): connection refused`},
		{"not an RPC server", context.Background(), errors.New("error in json rpc client, with http response metadata: (Status: 404 Not Found, Protocol HTTP/1.1). error unmarshalling: unexpected end of JSON input"),
			nil, "sending: http://127.0.0.1:26657 answers, but not as a chain node's RPC (HTTP 404 Not Found)"},
		{"context ended", cancelled, refused, context.Canceled, "sending: context canceled"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.nodeError(tc.ctx, "sending", tc.err)
			if err.Error() != tc.want {
				t.Fatalf("got  %q\nwant %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("%v is not %v", err, tc.is)
			}
			if strings.Contains(err.Error(), "json rpc") || strings.Contains(err.Error(), "-32603") {
				t.Fatalf("the RPC client's words: %q", err)
			}
		})
	}
}
