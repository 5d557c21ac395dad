package abci

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
)

// CometBFT's errors of normal operation go to debug; others stay errors
// (#20 "Quiet logs").
func TestSlogAdapterLowersRoutineErrors(t *testing.T) {
	cases := []struct {
		msg   string
		kv    []any
		error bool
	}{
		{"failed to LoadFinalizeBlockResponse", []any{"err", errors.New("could not find results for height #7")}, false},
		{"Stopped accept routine, as transport is closed", []any{"numPeers", 0}, false},
		{"Error serving server", []any{"err", errors.New("accept tcp 127.0.0.1:1: use of closed network connection")}, false},
		{"error while stopping connection", []any{"error", errors.New("already stopped")}, false},
		{"Failed to read request", []any{"err", errors.New("websocket: close 1006 (abnormal closure): unexpected EOF")}, false},
		{"Failed to read request", []any{"err", errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer")}, false},
		{"failed to LoadFinalizeBlockResponse", []any{"err", errors.New("leveldb: corrupted")}, true},
		{"Error serving server", []any{"err", errors.New("permission denied")}, true},
		{"CONSENSUS FAILURE!!!", []any{"err", "boom"}, true},
	}
	for _, tc := range cases {
		var b bytes.Buffer
		slogAdapter{slog.New(slog.NewTextHandler(&b, nil))}.Error(tc.msg, tc.kv...)
		if got := strings.Contains(b.String(), "level=ERROR"); got != tc.error {
			t.Errorf("%q %v: logged at info level %q, want an error: %v", tc.msg, tc.kv, b.String(), tc.error)
		}
	}
}
