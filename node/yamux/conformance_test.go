package yamux

import (
	"testing"

	tmux "github.com/libp2p/go-libp2p/p2p/muxer/testsuite"
)

// go-libp2p's muxer test suite, run as go-libp2p runs it on go-yamux
// (without the test that opens 1,000 streams at once: yamux resets
// streams beyond the accept backlog instead of pushing back).
func TestLibp2pMuxerSuite(t *testing.T) {
	// The suite's stress tests give themselves 10 s, or 100 s when CI is
	// "true": 50,000 streams under -race on a loaded 2-core machine can
	// take more than 10 s, which is the machine, not the muxer.
	t.Setenv("CI", "true")
	delete(tmux.Subtests, "github.com/libp2p/go-libp2p/p2p/muxer/testsuite.SubtestStress1Conn1000Stream10Msg")
	tr, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tmux.SubtestAll(t, tr)
}
