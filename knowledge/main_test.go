package knowledge

import (
	"crypto/sha256"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/wallet"
)

func TestMain(m *testing.M) {
	if ip := os.Getenv(swarmNodeEnv); ip != "" {
		os.Exit(swarmNodeMain(ip)) // a node process of a swarm between namespaces
	}
	goleak.VerifyTestMain(m,
		// go-libp2p-kad-dht's shared worker pools and the go-log event loop
		// are process-wide and outlive any one DHT.
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"),
	)
}

func key(i int) *wallet.PrivateKey {
	seed := sha256.Sum256([]byte(fmt.Sprintf("knowledge test %d", i)))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	return k
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
