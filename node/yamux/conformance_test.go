package yamux

import (
	"testing"

	tmux "github.com/libp2p/go-libp2p/p2p/muxer/testsuite"
)

// go-libp2p's muxer test suite, run as go-libp2p runs it on go-yamux
// (without the test that opens 1,000 streams at once: yamux resets
// streams beyond the accept backlog instead of pushing back).
func TestLibp2pMuxerSuite(t *testing.T) {
	delete(tmux.Subtests, "github.com/libp2p/go-libp2p/p2p/muxer/testsuite.SubtestStress1Conn1000Stream10Msg")
	tr, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	tmux.SubtestAll(t, tr)
}
