package knowledge

import (
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/knowledge/pb"
)

type boltTx = bolt.Tx

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func nowForTest() time.Time { return time.UnixMilli(1_700_000_000_000) }

// splitEnvelope returns an envelope's header bytes and signature.
func splitEnvelope(t *testing.T, env []byte) (header, sig []byte) {
	t.Helper()
	var o pb.Object
	if err := proto.Unmarshal(env, &o); err != nil {
		t.Fatal(err)
	}
	return o.Header, o.Signature
}
