// Package yamuxtest runs hostile-peer tests against yamux muxers (issue
// #18: a replaced part keeps every protection of the part it replaces).
// Any network.Multiplexer (ours, go-yamux through go-libp2p's transport)
// is put on one end of a connection, charged to the peer scope of a
// go-libp2p resource manager with explicit limits, and the other end is
// an attacker writing raw yamux frames. Run runs every case against every
// muxer, the original (go-yamux) first, so a muxer meant to replace it is
// held to what the original does in the same run:
//
//	yamuxtest.Run(t, yamuxtest.Suite{
//		Muxers: []yamuxtest.Muxer{
//			{Name: "go-yamux", Transport: libp2pyamux.DefaultTransport, Original: true},
//			{Name: "ours", Transport: ours},
//		},
//		Pipe: func(t *testing.T) yamuxtest.Conns {
//			a, b := tcpPipe(t)
//			v, at := yamuxtest.Count(a), yamuxtest.Count(b)
//			return yamuxtest.Conns{Victim: v, Attacker: at, VictimSocket: v, AttackerSocket: at}
//		},
//	})
//
// A connection maker gives the suite the sockets under both ends wrapped
// by Count: the suite counts what crosses them (to know when the victim
// took in all that was sent) and, on the victim's, plays an attacker
// that stops reading (writes block after 128 KiB, until their deadline),
// while the attacker's real socket is drained (see Counter for why).
//
// # Cases and bounds
//
// The floods (ping-flood, syn-flood, syn-rst-flood, window-update-flood)
// write frames as fast as the victim takes them (6 MiB with -short, else
// 24 MiB) from a peer that reads nothing. The victim's heap growth,
// measured after runtime.GC while its session is alive, must be at most
// the memory charged to its scope + 1 MiB, at most the original's growth
// in the same case + 1 MiB (when the original ran), and at most 4 MiB.
//
// window-violation and giant-frame: data beyond a stream's 256 KiB window,
// or a header announcing it (up to 4 GiB), closes the session within 10 s
// (a go away it sends carries the protocol-error code), its streams fail
// with an error, and the process allocates at most 4 MiB meanwhile.
//
// stall-mid-frame: a Read waiting with a 1 MiB buffer while a 64 KiB frame
// stalls after 1 KiB returns within 2 s of a 200 ms deadline, with a
// timeout (data before it is accepted), and the body is read whole once
// the rest arrives. write-deadline-no-window and write-deadline-not-reading:
// a Write blocked on the window, or on a connection the peer does not
// read, returns a timeout within 2 s of its 200 ms deadline.
//
// truncated: a connection ending inside a body or a header ends the
// session, and a stream's Read fails with an error, not io.EOF.
//
// many-streams-never-read: 64 streams (32 with -short), each sent 64 KiB
// of a 256 KiB frame before the victim accepts it, then all the window
// the victim grants, never read. The windows granted must not exceed the
// memory the scope reserved, and the heap growth must be at most that
// memory + 1 MiB + 8 KiB per stream, and the original's growth + as much.
//
// Every case closes what it made and fails if a goroutine is left.
package yamuxtest
