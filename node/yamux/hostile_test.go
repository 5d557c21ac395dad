package yamux

import (
	"testing"

	libp2pyamux "github.com/libp2p/go-libp2p/p2p/muxer/yamux"

	"github.com/cybertensor/cybertensor/node/yamux/yamuxtest"
)

// The hostile-peer suite (issue #18) over loopback TCP: our muxer keeps
// every protection go-yamux has, measured against it in the same run.
// node's TestHostile runs it over the record transport.
func TestHostile(t *testing.T) {
	ours, err := New(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	yamuxtest.Run(t, yamuxtest.Suite{
		Muxers: []yamuxtest.Muxer{
			{Name: "go-yamux", Transport: libp2pyamux.DefaultTransport, Original: true},
			{Name: "ours", Transport: ours},
		},
		Pipe: func(t *testing.T) yamuxtest.Conns {
			a, b := tcpPipe(t)
			v, at := yamuxtest.Count(a), yamuxtest.Count(b)
			return yamuxtest.Conns{Victim: v, Attacker: at, VictimSocket: v, AttackerSocket: at}
		},
	})
}
