package node

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// The protocol book keeps each peer's protocols as a sorted set, never
// touches the slices callers pass or receive, refuses more than
// maxProtocolsPerPeer without changing what it had, and forgets a peer
// whose last protocol is removed.
func TestProtoBook(t *testing.T) {
	b := newProtoBook()
	p := peer.ID("peer")
	want := func(step string, w ...protocol.ID) {
		t.Helper()
		got, err := b.GetProtocols(p)
		if err != nil || !slices.Equal(got, w) {
			t.Fatalf("%s: protocols %v (%v), want %v", step, got, err, w)
		}
	}

	given := []protocol.ID{"/c", "/a", "/c", "/b"}
	if err := b.SetProtocols(p, given...); err != nil {
		t.Fatal(err)
	}
	want("set", "/a", "/b", "/c")
	if !slices.Equal(given, []protocol.ID{"/c", "/a", "/c", "/b"}) {
		t.Fatalf("SetProtocols reordered the caller's slice: %v", given)
	}
	got, _ := b.GetProtocols(p)
	got[0] = "/changed"
	want("after the caller changed what it got", "/a", "/b", "/c")

	added := []protocol.ID{"/d", "/a"}
	if err := b.AddProtocols(p, added...); err != nil {
		t.Fatal(err)
	}
	want("add", "/a", "/b", "/c", "/d")
	if !slices.Equal(added, []protocol.ID{"/d", "/a"}) {
		t.Fatalf("AddProtocols reordered the caller's slice: %v", added)
	}

	if s, _ := b.SupportsProtocols(p, "/x", "/d", "/a"); !slices.Equal(s, []protocol.ID{"/d", "/a"}) {
		t.Fatalf("SupportsProtocols: %v", s)
	}
	if f, _ := b.FirstSupportedProtocol(p, "/x", "/c", "/a"); f != "/c" {
		t.Fatalf("FirstSupportedProtocol: %q", f)
	}
	if f, _ := b.FirstSupportedProtocol(p, "/x"); f != "" {
		t.Fatalf("FirstSupportedProtocol of none: %q", f)
	}

	var many []protocol.ID
	for i := range maxProtocolsPerPeer {
		many = append(many, protocol.ID(fmt.Sprintf("/p/%03d", i)))
	}
	if err := b.AddProtocols(p, many...); !errors.Is(err, errTooManyProtocols) {
		t.Fatalf("adding past the limit: %v", err)
	}
	if err := b.SetProtocols(p, append(many, "/one-more")...); !errors.Is(err, errTooManyProtocols) {
		t.Fatalf("setting past the limit: %v", err)
	}
	want("after refused changes", "/a", "/b", "/c", "/d")

	if err := b.RemoveProtocols(p, "/b", "/x"); err != nil {
		t.Fatal(err)
	}
	want("remove", "/a", "/c", "/d")
	b.RemoveProtocols(p, "/a", "/c", "/d")
	if _, ok := b.peers[p]; ok {
		t.Fatal("a peer with no protocols left is still kept")
	}
	b.AddProtocols(p, "/a")
	b.RemovePeer(p)
	want("after RemovePeer")
}
