package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/benbjohnson/clock"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	pt "github.com/libp2p/go-libp2p/p2p/host/peerstore/test"
)

// The peerstore of newPeerstore is pstoremem's key book, address book,
// metadata and metrics with our protocol book. It must pass go-libp2p's
// exported peerstore suites (p2p/host/peerstore/test) as pstoremem's
// peerstore does; both run here, side by side (#18, node/doc.go
// "Replacing a standard part").

// peerstoreSubjects are the two peerstores under test, each made fresh.
var peerstoreSubjects = []struct {
	name string
	new  func(t *testing.T) peerstore.Peerstore
}{
	{"ours", func(*testing.T) peerstore.Peerstore { return newPeerstore() }},
	{"pstoremem", func(t *testing.T) peerstore.Peerstore {
		ps, err := pstoremem.NewPeerstore()
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}},
}

// closeFunc closes a peerstore made for a suite.
func closeFunc(ps peerstore.Peerstore) func() { return func() { ps.Close() } }

// TestPeerstoreSuite runs go-libp2p's whole-peerstore suite: address
// streams, the protocol store, peers, metadata, the certified address book.
func TestPeerstoreSuite(t *testing.T) {
	for _, s := range peerstoreSubjects {
		t.Run(s.name, func(t *testing.T) {
			pt.TestPeerstore(t, func() (peerstore.Peerstore, func()) {
				ps := s.new(t)
				return ps, closeFunc(ps)
			})
		})
	}
}

func TestPeerstoreKeyBookSuite(t *testing.T) {
	for _, s := range peerstoreSubjects {
		t.Run(s.name, func(t *testing.T) {
			pt.TestKeyBook(t, func() (peerstore.KeyBook, func()) {
				ps := s.new(t)
				return ps, closeFunc(ps)
			})
		})
	}
}

// The address-book suite moves a mock clock to expire addresses, and, as
// pstoremem's own TestInMemoryAddrBook does, lifts the per-peer cap its
// batches exceed. newPeerstore takes no options, so ours is newPeerstore()
// with its address book (pstoremem's, made without options) swapped for
// one made with those two options: what runs is the composition, through
// memPeerstore's promoted methods.
func TestPeerstoreAddrBookSuite(t *testing.T) {
	clk := clock.NewMock()
	opts := []pstoremem.AddrBookOption{pstoremem.WithClock(clk), pstoremem.WithMaxAddressesPerPeer(0)}
	t.Run("ours", func(t *testing.T) {
		pt.TestAddrBook(t, func() (peerstore.AddrBook, func()) {
			ps := newPeerstore()
			ps.addrBook.Close()
			ps.addrBook = pstoremem.NewAddrBook(opts...)
			return ps, closeFunc(ps)
		}, clk)
	})
	t.Run("pstoremem", func(t *testing.T) {
		pt.TestAddrBook(t, func() (peerstore.AddrBook, func()) {
			var o []pstoremem.Option
			for _, x := range opts {
				o = append(o, x)
			}
			ps, err := pstoremem.NewPeerstore(o...)
			if err != nil {
				t.Fatal(err)
			}
			return ps, closeFunc(ps)
		}, clk)
	})
}

// limitErrText gives ours' protocol-limit error the text go-libp2p's
// limit suite compares (require.EqualError "too many protocols"); ours
// says "node: a peer may list at most 128 protocols". Only the text is
// translated: what is refused, and when, is ours'.
type limitErrText struct{ *memPeerstore }

func (ps limitErrText) translate(err error) error {
	if errors.Is(err, errTooManyProtocols) {
		return errors.New("too many protocols")
	}
	return err
}

func (ps limitErrText) SetProtocols(p peer.ID, protos ...protocol.ID) error {
	return ps.translate(ps.memPeerstore.SetProtocols(p, protos...))
}

func (ps limitErrText) AddProtocols(p peer.ID, protos ...protocol.ID) error {
	return ps.translate(ps.memPeerstore.AddProtocols(p, protos...))
}

// TestPeerstoreProtoStoreLimitsSuite runs go-libp2p's protocol-limit suite
// at the limit both books have, 128 (ours fixed, pstoremem's default).
func TestPeerstoreProtoStoreLimitsSuite(t *testing.T) {
	t.Run("ours", func(t *testing.T) {
		ps := newPeerstore()
		defer ps.Close()
		pt.TestPeerstoreProtoStoreLimits(t, limitErrText{ps}, maxProtocolsPerPeer)
	})
	t.Run("pstoremem", func(t *testing.T) {
		ps, err := pstoremem.NewPeerstore()
		if err != nil {
			t.Fatal(err)
		}
		defer ps.Close()
		pt.TestPeerstoreProtoStoreLimits(t, ps, maxProtocolsPerPeer)
	})
}

// protoNames returns n distinct protocol IDs with the given prefix.
func protoNames(prefix string, n int) []protocol.ID {
	out := make([]protocol.ID, n)
	for i := range out {
		out[i] = protocol.ID(fmt.Sprintf("%s/%03d", prefix, i))
	}
	return out
}

// sortedProtos returns a sorted copy (pstoremem returns map order).
func sortedProtos(protos []protocol.ID) []protocol.ID {
	return slices.Sorted(slices.Values(protos))
}

// TestProtoBookAgainstPstoremem runs the protocol book's behaviour, from
// go-libp2p's protocol-store and limit suites and pstoremem's protobook.go,
// against ours and pstoremem's. Where the two differ the case says which
// does what (wantOurs, wantPstoremem).
func TestProtoBookAgainstPstoremem(t *testing.T) {
	type book = peerstore.ProtoBook
	p, q := peer.ID("peer-p"), peer.ID("peer-q")
	protos := func(t *testing.T, b book, id peer.ID) []protocol.ID {
		t.Helper()
		got, err := b.GetProtocols(id)
		if err != nil {
			t.Fatalf("GetProtocols: %v", err)
		}
		return sortedProtos(got)
	}
	wantProtos := func(t *testing.T, b book, id peer.ID, want ...protocol.ID) {
		t.Helper()
		if got := protos(t, b, id); !slices.Equal(got, sortedProtos(want)) {
			t.Fatalf("protocols of %s: %v, want %v", id, got, sortedProtos(want))
		}
	}
	noErr := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// refused checks a change past the limit is refused with the book's
	// own error and leaves the peer's protocols as they were.
	refused := func(t *testing.T, b book, id peer.ID, err error, before []protocol.ID) {
		t.Helper()
		if err == nil {
			t.Fatal("a change past the limit was accepted")
		}
		if _, ours := b.(*memPeerstore); ours && !errors.Is(err, errTooManyProtocols) {
			t.Fatalf("error %v is not errTooManyProtocols", err)
		}
		wantProtos(t, b, id, before...)
	}
	limit := maxProtocolsPerPeer
	full := protoNames("/full", limit)

	cases := []struct {
		name string
		run  func(t *testing.T, b book)
	}{
		{"unknown peer has none", func(t *testing.T, b book) {
			wantProtos(t, b, p)
			s, err := b.SupportsProtocols(p, "/a")
			noErr(t, err)
			if len(s) != 0 {
				t.Fatalf("SupportsProtocols of an unknown peer: %v", s)
			}
			f, err := b.FirstSupportedProtocol(p, "/a")
			noErr(t, err)
			if f != "" {
				t.Fatalf("FirstSupportedProtocol of an unknown peer: %q", f)
			}
			noErr(t, b.RemoveProtocols(p, "/a"))
			b.RemovePeer(p)
		}},
		{"add is a set union", func(t *testing.T, b book) {
			noErr(t, b.AddProtocols(p, "/a", "/b", "/a"))
			noErr(t, b.AddProtocols(p, "/b", "/c"))
			wantProtos(t, b, p, "/a", "/b", "/c")
		}},
		{"set replaces", func(t *testing.T, b book) {
			noErr(t, b.AddProtocols(p, "/a", "/b"))
			noErr(t, b.SetProtocols(p, "/c", "/d", "/c"))
			wantProtos(t, b, p, "/c", "/d")
			noErr(t, b.SetProtocols(p))
			wantProtos(t, b, p)
		}},
		{"supports keeps the caller's order", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, "/a", "/b", "/c"))
			s, err := b.SupportsProtocols(p, "/q", "/c", "/w", "/a")
			noErr(t, err)
			if !slices.Equal(s, []protocol.ID{"/c", "/a"}) {
				t.Fatalf("SupportsProtocols: %v, want [/c /a]", s)
			}
		}},
		{"first supported in the caller's order", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, "/a", "/b", "/c"))
			for _, c := range []struct {
				ask  []protocol.ID
				want protocol.ID
			}{
				{[]protocol.ID{"/q", "/c", "/a"}, "/c"},
				{[]protocol.ID{"/b"}, "/b"},
				{[]protocol.ID{"/q", "/x"}, ""},
				{nil, ""},
			} {
				f, err := b.FirstSupportedProtocol(p, c.ask...)
				noErr(t, err)
				if f != c.want {
					t.Fatalf("FirstSupportedProtocol(%v) = %q, want %q", c.ask, f, c.want)
				}
			}
		}},
		{"remove drops the listed, ignores the unknown", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, "/a", "/b", "/c"))
			noErr(t, b.RemoveProtocols(p, "/b", "/x"))
			wantProtos(t, b, p, "/a", "/c")
			noErr(t, b.RemoveProtocols(p, "/a", "/c"))
			wantProtos(t, b, p)
			noErr(t, b.AddProtocols(p, "/d"))
			wantProtos(t, b, p, "/d")
		}},
		{"remove peer", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, "/a"))
			noErr(t, b.SetProtocols(q, "/b"))
			b.RemovePeer(p)
			wantProtos(t, b, p)
			wantProtos(t, b, q, "/b")
		}},
		{"peers are independent", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, "/a"))
			noErr(t, b.AddProtocols(q, "/b"))
			noErr(t, b.RemoveProtocols(q, "/a"))
			wantProtos(t, b, p, "/a")
			wantProtos(t, b, q, "/b")
			if f, _ := b.FirstSupportedProtocol(q, "/a"); f != "" {
				t.Fatalf("q supports p's protocol: %q", f)
			}
		}},
		{"no aliasing with the caller's slices", func(t *testing.T, b book) {
			given := []protocol.ID{"/b", "/a"}
			noErr(t, b.SetProtocols(p, given...))
			given[0] = "/changed"
			got, err := b.GetProtocols(p)
			noErr(t, err)
			got[0] = "/changed too"
			wantProtos(t, b, p, "/a", "/b")
		}},
		{"set at the limit, refused past it", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, full...))
			wantProtos(t, b, p, full...)
			refused(t, b, p, b.SetProtocols(p, append(slices.Clone(full), "/one-more")...), full)
		}},
		{"add up to the limit, refused past it", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, full[:limit/2]...))
			noErr(t, b.AddProtocols(p, full[limit/2:]...))
			refused(t, b, p, b.AddProtocols(p, "/one-more"), full)
			// A refused add to an unknown peer leaves it unknown.
			refused(t, b, q, b.AddProtocols(q, append(slices.Clone(full), "/one-more")...), nil)
		}},
		{"removing frees room under the limit", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, full...))
			noErr(t, b.RemoveProtocols(p, full[0]))
			noErr(t, b.AddProtocols(p, "/new"))
			wantProtos(t, b, p, append(slices.Clone(full[1:]), "/new")...)
		}},
		{"limit is per peer", func(t *testing.T, b book) {
			noErr(t, b.SetProtocols(p, full...))
			noErr(t, b.SetProtocols(q, full...))
			wantProtos(t, b, q, full...)
		}},
		// pstoremem counts the arguments against the limit (duplicates
		// and protocols it already holds included); ours counts the
		// distinct protocols it would hold ("bounds what a peer can make
		// us remember"). Ours accepts, pstoremem refuses; neither ever
		// holds more than the limit.
		{"duplicates and known protocols at the limit", func(t *testing.T, b book) {
			_, ours := b.(*memPeerstore)
			noErr(t, b.SetProtocols(p, full...))
			errAdd := b.AddProtocols(p, full[0])
			errSet := b.SetProtocols(p, append(slices.Clone(full), full[0])...)
			if ours {
				noErr(t, errAdd)
				noErr(t, errSet)
			} else if errAdd == nil || errSet == nil {
				t.Fatalf("pstoremem accepted: add %v, set %v (it counts arguments)", errAdd, errSet)
			}
			wantProtos(t, b, p, full...)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, s := range peerstoreSubjects {
				t.Run(s.name, func(t *testing.T) {
					ps := s.new(t)
					defer ps.Close()
					c.run(t, ps)
				})
			}
		})
	}
}
