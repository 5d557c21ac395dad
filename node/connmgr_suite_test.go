package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/benbjohnson/clock"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	basicconnmgr "github.com/libp2p/go-libp2p/p2p/net/connmgr"
	ma "github.com/multiformats/go-multiaddr"
)

// go-libp2p's connection manager tests (p2p/net/connmgr/connmgr_test.go)
// are not exported. The cases below port those that test behaviour our
// connManager claims to share with BasicConnMgr, each run against both
// (#18, node/doc.go "Replacing a standard part"). A case names the test
// it ports. Not ported, as they test BasicConnMgr's internals or what ours
// does not offer: TestTrimBlocks and TestTrimJoin (ours runs concurrent
// TrimOpenConns side by side instead of joining one), TestGetInfo (no
// GetInfo), TestSafeConcurrency and the memory-emergency orderings of
// TestPeerInfoSorting (no ForceTrim), decay_test.go (no connmgr.Decayer, as
// connmgr.go says), and TestConnsToClose's LowWater or HighWater of 0 (which
// disable BasicConnMgr; Config.validate refuses them).
//
// Time: BasicConnMgr runs on a mock clock. Ours reads the wall clock, so
// advancing its clock moves every time it recorded into the past.

// cmSetup is what both managers are made with.
type cmSetup struct {
	low, high int
	grace     time.Duration
	// background leaves trimming above HighWater on. Off, BasicConnMgr's
	// silence period is an hour its mock clock never reaches (as in
	// go-libp2p's tests) and ours' trimming goroutine is stopped: every
	// trim is then an explicit one.
	background bool
}

// cmSubject is one manager under test.
type cmSubject struct {
	name string
	ours bool
	cm   connmgr.ConnManager
	not  network.Notifiee
	now  func() time.Time
	// advance moves the manager's clock on.
	advance func(time.Duration)
	// trimNow trims as BasicConnMgr's TrimOpenConns does: now, whenever
	// the last trim ran. Ours' TrimOpenConns skips a trim within the
	// silence period (documented; the silence-period cases test that).
	trimNow func()
	// tick is a background trimmer's chance to run: the silence period
	// passes on BasicConnMgr's clock; ours trims when the count goes
	// above HighWater, without waiting for a tick.
	tick func()
	// count is the number of connections the manager counts.
	count func() int
	next  int // for newPeer
}

var cmSubjectMakers = []struct {
	name string
	new  func(t *testing.T, c cmSetup) *cmSubject
}{
	{"ours", newOursSubject},
	{"go-libp2p", newBasicSubject},
}

func newOursSubject(t *testing.T, c cmSetup) *cmSubject {
	m := newConnManager(c.low, c.high, c.grace)
	t.Cleanup(func() { m.Close() })
	if !c.background {
		m.cancel()
		<-m.done
	}
	return &cmSubject{
		name: "ours", ours: true, cm: m, not: m.Notifee(), now: time.Now,
		advance: func(d time.Duration) {
			m.mu.Lock()
			defer m.mu.Unlock()
			for _, e := range m.peers {
				e.firstSeen = e.firstSeen.Add(-d)
				for i := range e.conns {
					e.conns[i].opened = e.conns[i].opened.Add(-d)
				}
			}
			if !m.lastTrim.IsZero() {
				m.lastTrim = m.lastTrim.Add(-d)
			}
		},
		trimNow: func() {
			m.mu.Lock()
			m.lastTrim = time.Time{}
			m.mu.Unlock()
			m.TrimOpenConns(context.Background())
		},
		tick: func() {},
		count: func() int {
			m.mu.Lock()
			defer m.mu.Unlock()
			return m.conns
		},
	}
}

func newBasicSubject(t *testing.T, c cmSetup) *cmSubject {
	clk := clock.NewMock()
	opts := []basicconnmgr.Option{basicconnmgr.WithGracePeriod(c.grace), basicconnmgr.WithClock(clk)}
	if !c.background {
		opts = append(opts, basicconnmgr.WithSilencePeriod(time.Hour))
	}
	m, err := basicconnmgr.NewConnManager(c.low, c.high, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return &cmSubject{
		name: "go-libp2p", cm: m, not: m.Notifee(), now: clk.Now,
		advance: clk.Add,
		trimNow: func() { m.TrimOpenConns(context.Background()) },
		tick:    func() { clk.Add(trimSilence) },
		count:   func() int { return m.GetInfo().ConnCount },
	}
}

// cmConn is the part of a connection a manager looks at. Closing it tells
// the manager's notifee, as the swarm would.
type cmConn struct {
	network.Conn
	id      peer.ID
	addr    ma.Multiaddr
	dir     network.Direction
	streams int
	closed  atomic.Bool
	code    atomic.Uint32
	notify  network.Notifiee
}

func (c *cmConn) RemotePeer() peer.ID           { return c.id }
func (c *cmConn) RemoteMultiaddr() ma.Multiaddr { return c.addr }
func (c *cmConn) Stat() network.ConnStats {
	return network.ConnStats{Stats: network.Stats{Direction: c.dir}, NumStreams: c.streams}
}
func (c *cmConn) Close() error { return c.CloseWithError(network.ConnNoError) }
func (c *cmConn) CloseWithError(code network.ConnErrorCode) error {
	if !c.closed.Swap(true) {
		c.code.Store(uint32(code))
		c.notify.Disconnected(nil, c)
	}
	return nil
}

// newPeer returns a peer ID not used before in this subject.
func (s *cmSubject) newPeer() peer.ID {
	s.next++
	return peer.ID(fmt.Sprintf("cm-peer-%05d", s.next))
}

// connectTo reports a new outbound connection to p with the given
// number of streams.
func (s *cmSubject) connectTo(p peer.ID, dir network.Direction, streams int) *cmConn {
	c := &cmConn{id: p, addr: ma.StringCast("/ip4/127.0.0.1/udp/1234"), dir: dir, streams: streams, notify: s.not}
	s.not.Connected(nil, c)
	return c
}

// connect reports n new outbound connections with one stream each, to
// new peers, each tagged "test" with value unless value is 0.
func (s *cmSubject) connect(n, value int) []*cmConn {
	var out []*cmConn
	for range n {
		c := s.connectTo(s.newPeer(), network.DirOutbound, 1)
		if value != 0 {
			s.cm.TagPeer(c.id, "test", value)
		}
		out = append(out, c)
	}
	return out
}

// settle waits for cond, giving a background trimmer its ticks.
func (s *cmSubject) settle(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		if cond() {
			return true
		}
		s.tick()
		return false
	})
}

func cmClosed(conns []*cmConn) []int {
	var out []int
	for i, c := range conns {
		if c.closed.Load() {
			out = append(out, i)
		}
	}
	return out
}

// wantClosed returns an error unless exactly n of conns are closed, none
// of them one of keep.
func wantClosed(conns []*cmConn, n int, keep ...*cmConn) error {
	var errs []error
	if got := cmClosed(conns); len(got) != n {
		errs = append(errs, fmt.Errorf("closed %d connections %v, want %d", len(got), got, n))
	}
	for _, c := range keep {
		if c.closed.Load() {
			errs = append(errs, fmt.Errorf("closed the connection to %s, which should be kept", c.id))
		}
	}
	return errors.Join(errs...)
}

func wantCount(s *cmSubject, n int) error {
	if got := s.count(); got != n {
		return fmt.Errorf("manager counts %d connections, want %d", got, n)
	}
	return nil
}

// wantTags checks the peer's tag info (nil tags: the peer is unknown).
func wantTags(s *cmSubject, p peer.ID, value int, tags map[string]int, conns int) error {
	info := s.cm.GetTagInfo(p)
	switch {
	case tags == nil && info == nil:
		return nil
	case tags == nil:
		return fmt.Errorf("tag info of %s: %+v, want none", p, info)
	case info == nil:
		return fmt.Errorf("no tag info for %s", p)
	case info.Value != value || len(info.Tags) != len(tags) || len(info.Conns) != conns:
		return fmt.Errorf("tag info of %s: value %d, tags %v, %d conns; want %d, %v, %d", p, info.Value, info.Tags, len(info.Conns), value, tags, conns)
	}
	for k, v := range tags {
		if got, ok := info.Tags[k]; !ok || got != v {
			return fmt.Errorf("tag %q of %s: %d, want %d", k, p, got, v)
		}
	}
	return nil
}

type cmCase struct {
	name  string
	setup cmSetup
	// finding, when set, is a difference ours does not document: ours is
	// expected to fail the case, and is skipped with the finding.
	finding string
	run     func(t *testing.T, s *cmSubject) error
}

var cmCases = []cmCase{
	{
		name:  "trims to low water, tagged peers kept, negative first (TestConnTrimming)",
		setup: cmSetup{low: 200, high: 300},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(300, 0)
			for _, c := range conns[:100] {
				s.cm.TagPeer(c.id, "foo", 10)
			}
			s.cm.TagPeer(conns[299].id, "badfoo", -5)
			s.trimNow()
			if !conns[299].closed.Load() {
				return errors.New("the connection with a negative tag was kept")
			}
			return errors.Join(wantClosed(conns, 100, conns[:100]...), wantCount(s, 200))
		},
	},
	{
		name:  "trims with ConnGarbageCollected (TestErrorCode)",
		setup: cmSetup{low: 1, high: 1},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(2, 0)
			s.trimNow()
			for _, c := range conns {
				if c.closed.Load() && network.ConnErrorCode(c.code.Load()) != network.ConnGarbageCollected {
					return fmt.Errorf("closed with code %#x, want ConnGarbageCollected", c.code.Load())
				}
			}
			return wantClosed(conns, 1)
		},
	},
	{
		name:  "nothing trimmed at low water (TestConnsToClose)",
		setup: cmSetup{low: 1, high: 1},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(1, 0)
			s.trimNow()
			return wantClosed(conns, 0)
		},
	},
	{
		name:  "connections in their grace period are kept (TestConnsToClose)",
		setup: cmSetup{low: 1, high: 1, grace: 10 * time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(3, 0)
			s.trimNow()
			if err := wantClosed(conns, 0); err != nil {
				return fmt.Errorf("within the grace period: %w", err)
			}
			s.advance(11 * time.Minute)
			s.trimNow()
			return wantClosed(conns, 2)
		},
	},
	{
		name:  "grace period (TestGracePeriod)",
		setup: cmSetup{low: 10, high: 20, grace: 100 * time.Millisecond},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(1, 0)
			s.advance(200 * time.Millisecond)
			conns = append(conns, s.connect(30, 0)...)
			s.trimNow()
			if err := wantClosed(conns, 0); err != nil {
				return fmt.Errorf("with 30 connections in their grace period: %w", err)
			}
			s.advance(200 * time.Millisecond)
			s.trimNow()
			return wantClosed(conns, 21)
		},
	},
	{
		name:  "tag info (TestGetTagInfo)",
		setup: cmSetup{low: 1, high: 1, grace: 10 * time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			start := s.now()
			c := s.connect(1, 0)[0]
			end := s.now()
			if err := wantTags(s, s.newPeer(), 0, nil, 0); err != nil {
				return err
			}
			within := func(what string, tm time.Time) error {
				if tm.Before(start) || tm.After(end) {
					return fmt.Errorf("%s %v not within [%v, %v]", what, tm, start, end)
				}
				return nil
			}
			for _, tagged := range []bool{false, true} {
				want := map[string]int{}
				if tagged {
					s.cm.TagPeer(c.id, "tag", 5)
					want["tag"] = 5
				}
				if err := wantTags(s, c.id, want["tag"], want, 1); err != nil {
					return err
				}
				info := s.cm.GetTagInfo(c.id)
				if err := within("FirstSeen", info.FirstSeen); err != nil {
					return err
				}
				for a, tm := range info.Conns {
					if a != c.addr.String() {
						return fmt.Errorf("connection keyed %q, want %q", a, c.addr)
					}
					if err := within("connection time", tm); err != nil {
						return err
					}
				}
			}
			return nil
		},
	},
	{
		name:  "early tags kept when the peer connects (TestTagPeerNonExistant, TestTemporaryEntryConvertedOnConnection)",
		setup: cmSetup{low: 1, high: 1, grace: 10 * time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			p := s.newPeer()
			s.cm.TagPeer(p, "test", 20)
			if err := wantTags(s, p, 20, map[string]int{"test": 20}, 0); err != nil {
				return err
			}
			s.connectTo(p, network.DirOutbound, 1)
			return wantTags(s, p, 20, map[string]int{"test": 20}, 1)
		},
	},
	{
		// BasicConnMgr gives a peer it knew only by its tags a new
		// FirstSeen when it connects ("update the firstSeen timestamp to
		// the real one"), so its connection has its grace period; ours'
		// Config says the grace period spares young connections.
		name:  "an early-tagged peer's grace period starts when it connects (TestTemporaryEntryConvertedOnConnection)",
		setup: cmSetup{low: 1, high: 1, grace: time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			p := s.newPeer()
			s.cm.TagPeer(p, "early", 1)
			s.advance(2 * time.Minute)
			old := s.connect(2, 10)
			s.advance(2 * time.Minute)
			connectedAt := s.now()
			c := s.connectTo(p, network.DirOutbound, 1)
			var errs []error
			if info := s.cm.GetTagInfo(p); info == nil || info.FirstSeen.Before(connectedAt) {
				errs = append(errs, fmt.Errorf("FirstSeen %v is before the first connection (%v)", info.FirstSeen, connectedAt))
			}
			s.trimNow()
			if c.closed.Load() {
				errs = append(errs, errors.New("trimmed a connection opened just now, in its grace period"))
			}
			errs = append(errs, wantClosed(old, 1))
			return errors.Join(errs...)
		},
	},
	{
		name:  "untag (TestUntagPeer)",
		setup: cmSetup{low: 1, high: 1, grace: 10 * time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			rp := s.connect(1, 0)[0].id
			s.cm.TagPeer(rp, "tag", 5)
			s.cm.TagPeer(rp, "tag two", 5)
			other := s.newPeer()
			s.cm.UntagPeer(other, "test")
			s.cm.UntagPeer(rp, "test")
			if err := errors.Join(wantTags(s, other, 0, nil, 0), wantTags(s, rp, 10, map[string]int{"tag": 5, "tag two": 5}, 1)); err != nil {
				return err
			}
			s.cm.UntagPeer(rp, "tag")
			return wantTags(s, rp, 5, map[string]int{"tag two": 5}, 1)
		},
	},
	{
		name:  "upsert (TestUpsertTag)",
		setup: cmSetup{low: 1, high: 1, grace: 10 * time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			rp := s.newPeer()
			inc := func(v int) int { return v + 1 }
			s.cm.UpsertTag(rp, "tag", inc)
			if err := wantTags(s, rp, 1, map[string]int{"tag": 1}, 0); err != nil {
				return fmt.Errorf("before connecting: %w", err)
			}
			s.connectTo(rp, network.DirOutbound, 1)
			s.cm.UpsertTag(rp, "tag", inc)
			if err := wantTags(s, rp, 2, map[string]int{"tag": 2}, 1); err != nil {
				return err
			}
			s.cm.UpsertTag(rp, "tag", func(v int) int { return v - 1 })
			return wantTags(s, rp, 1, map[string]int{"tag": 1}, 1)
		},
	},
	{
		name:  "a connection reported twice counts once (TestDoubleConnection)",
		setup: cmSetup{low: 1, high: 5, grace: 10 * time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			c := s.connect(1, 10)[0]
			s.not.Connected(nil, c)
			return errors.Join(wantCount(s, 1), wantTags(s, c.id, 10, map[string]int{"test": 10}, 1))
		},
	},
	{
		name:  "disconnects of unknown connections are ignored; the last forgets the peer (TestDisconnected)",
		setup: cmSetup{low: 1, high: 5, grace: 10 * time.Minute},
		run: func(t *testing.T, s *cmSubject) error {
			c := s.connect(1, 10)[0]
			s.not.Disconnected(nil, &cmConn{id: s.newPeer()})
			s.not.Disconnected(nil, &cmConn{id: c.id})
			if err := errors.Join(wantCount(s, 1), wantTags(s, c.id, 10, map[string]int{"test": 10}, 1)); err != nil {
				return err
			}
			s.not.Disconnected(nil, c)
			return errors.Join(wantCount(s, 0), wantTags(s, c.id, 0, nil, 0))
		},
	},
	{
		name:  "protection with one tag (TestPeerProtectionSingleTag)",
		setup: cmSetup{low: 19, high: 20},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(20, 20)
			protected := conns[:5]
			for _, c := range protected {
				s.cm.Protect(c.id, "global")
				s.cm.TagPeer(c.id, "test", -100) // first to go, unprotected
			}
			// Protected connections do not count: 16 of 21 are candidates.
			conns = append(conns, s.connect(1, 20)...)
			s.trimNow()
			if err := wantClosed(conns, 0); err != nil {
				return fmt.Errorf("16 candidates, LowWater 19: %w", err)
			}
			conns = append(conns, s.connect(5, 20)...)
			s.trimNow()
			if err := wantClosed(conns, 2, protected...); err != nil {
				return fmt.Errorf("21 candidates, LowWater 19: %w", err)
			}
			s.cm.Unprotect(protected[0].id, "global")
			conns = append(conns, s.connect(2, 20)...)
			s.trimNow()
			if !protected[0].closed.Load() {
				return errors.New("the unprotected peer (tag -100) was kept")
			}
			return wantClosed(protected, 1, protected[1:]...)
		},
	},
	{
		name:  "protection with several tags (TestPeerProtectionMultipleTags)",
		setup: cmSetup{low: 19, high: 20},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(20, 20)
			protected := conns[:5]
			for _, c := range protected {
				s.cm.Protect(c.id, "tag1")
				s.cm.Protect(c.id, "tag2")
				s.cm.TagPeer(c.id, "test", -100)
			}
			conns = append(conns, s.connect(1, 0)...)
			s.trimNow()
			if err := wantClosed(protected, 0); err != nil {
				return err
			}
			for _, c := range protected {
				if !s.cm.Unprotect(c.id, "tag1") {
					return errors.New("Unprotect says unprotected while tag2 remains")
				}
			}
			conns = append(conns, s.connect(2, 20)...)
			s.trimNow()
			if err := wantClosed(protected, 0); err != nil {
				return fmt.Errorf("still protected by tag2: %w", err)
			}
			if s.cm.Unprotect(protected[0].id, "tag2") {
				return errors.New("Unprotect says protected after the last tag")
			}
			conns = append(conns, s.connect(2, 20)...)
			s.trimNow()
			if !protected[0].closed.Load() {
				return errors.New("the unprotected peer (tag -100) was kept")
			}
			return wantClosed(protected, 1, protected[1:]...)
		},
	},
	{
		name:  "protection is idempotent (TestPeerProtectionIdempotent)",
		setup: cmSetup{low: 10, high: 20},
		run: func(t *testing.T, s *cmSubject) error {
			id := s.newPeer()
			for range 4 {
				s.cm.Protect(id, "global")
			}
			switch {
			case !s.cm.IsProtected(id, "") || !s.cm.IsProtected(id, "global") || s.cm.IsProtected(id, "unused"):
				return errors.New("IsProtected wrong after Protect")
			case !s.cm.Unprotect(id, "unused") || !s.cm.Unprotect(id, "unused2"):
				return errors.New("removing a tag never given unprotected the peer")
			case s.cm.Unprotect(id, "global"):
				return errors.New("protected after removing the one tag given four times")
			case s.cm.IsProtected(id, ""):
				return errors.New("IsProtected after the last Unprotect")
			case s.cm.Unprotect(s.newPeer(), "x"):
				return errors.New("a peer never protected is protected")
			}
			return nil
		},
	},
	{
		name:  "tags of peers that never connected are dropped by a trim (TestTemporaryEntriesClearedFirst)",
		setup: cmSetup{low: 1, high: 1},
		run: func(t *testing.T, s *cmSubject) error {
			id := s.newPeer()
			s.cm.TagPeer(id, "test", 20)
			if err := wantTags(s, id, 20, map[string]int{"test": 20}, 0); err != nil {
				return err
			}
			s.connect(2, 0)
			s.advance(time.Millisecond) // past the grace period of 0
			s.trimNow()
			return wantTags(s, id, 0, nil, 0)
		},
	},
	{
		name:  "least valuable peers first (TestPeerInfoSorting)",
		setup: cmSetup{low: 1, high: 10},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(3, 0)
			for i, v := range []int{40, 20, 60} {
				s.cm.TagPeer(conns[i].id, "v", v)
			}
			s.trimNow()
			return wantClosed(conns, 2, conns[2])
		},
	},
	{
		name:  "idle peers before busy ones (TestPeerInfoSorting)",
		setup: cmSetup{low: 1, high: 10},
		run: func(t *testing.T, s *cmSubject) error {
			var conns []*cmConn
			for _, n := range []int{1, 0, 5} {
				conns = append(conns, s.connectTo(s.newPeer(), network.DirOutbound, n))
			}
			s.trimNow()
			return wantClosed(conns, 2, conns[2])
		},
	},
	{
		// BasicConnMgr's SortByValueAndStreams: among peers of equal value,
		// idle ones first, then inbound before outbound, then fewer
		// streams. Ours once ordered by value, streams, then peer ID,
		// which a dialer can grind, and ignored direction.
		name:  "inbound before outbound among equal peers (TestPeerInfoSorting)",
		setup: cmSetup{low: 1, high: 10},
		run: func(t *testing.T, s *cmSubject) error {
			var errs []error
			for _, inStreams := range []int{1, 3} {
				out := s.connectTo(s.newPeer(), network.DirOutbound, 1)
				in := s.connectTo(s.newPeer(), network.DirInbound, inStreams)
				s.trimNow()
				if out.closed.Load() || !in.closed.Load() {
					errs = append(errs, fmt.Errorf("outbound (1 stream) closed %v, inbound (%d streams) closed %v; want the inbound one closed", out.closed.Load(), inStreams, in.closed.Load()))
				}
				out.Close()
				in.Close()
			}
			return errors.Join(errs...)
		},
	},
	{
		name:  "tagging many unconnected peers while trimming (TestConcurrentCleanupAndTagging)",
		setup: cmSetup{low: 1, high: 1, background: true},
		run: func(t *testing.T, s *cmSubject) error {
			ids := make([]peer.ID, 1000)
			for i := range ids {
				ids[i] = s.newPeer()
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for _, id := range ids {
					s.cm.TagPeer(id, "test", 20)
				}
			})
			var conns []*cmConn
			for range 20 {
				conns = append(conns, s.connect(2, 0)...)
				s.trimNow()
			}
			wg.Wait()
			for _, c := range conns {
				c.Close()
			}
			return wantCount(s, 0)
		},
	},
	{
		name:  "CheckLimit (TestCheckLimit)",
		setup: cmSetup{low: 1, high: 2},
		run: func(t *testing.T, s *cmSubject) error {
			if s.cm.CheckLimit(connLimit(3)) != nil || s.cm.CheckLimit(connLimit(2)) != nil {
				return errors.New("a high water at or below the limit refused")
			}
			if s.cm.CheckLimit(connLimit(1)) == nil {
				return errors.New("a high water above the limit passed")
			}
			return nil
		},
	},
	{
		name:  "Close twice, then trims return (TestTrimClosed)",
		setup: cmSetup{low: 200, high: 300, background: true},
		run: func(t *testing.T, s *cmSubject) error {
			if err := errors.Join(s.cm.Close(), s.cm.Close()); err != nil {
				return err
			}
			s.cm.TrimOpenConns(context.Background())
			s.trimNow()
			return nil
		},
	},
	{
		// One connection at a time: a trim counts the connections open
		// when it runs (ours runs as the count passes HighWater), and
		// the count may then be back below HighWater for good.
		name:  "above high water the background trims to low water",
		setup: cmSetup{low: 10, high: 20, background: true},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(20, 0)
			if err := wantClosed(conns, 0); err != nil {
				return fmt.Errorf("at high water: %w", err)
			}
			conns = append(conns, s.connect(1, 0)...)
			s.settle(t, "the trim to low water", func() bool { return s.count() == 10 })
			return wantClosed(conns, 11)
		},
	},
	{
		name:  "a burst is trimmed at most once per silence period (TestQuickBurstRespectsSilencePeriod)",
		setup: cmSetup{low: 10, high: 20, background: true},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(30, 0)
			s.advance(3 * time.Second)
			// Ours trims as soon as the count passes HighWater (its doc),
			// BasicConnMgr at its next tick; both at most once.
			waitFor(t, "a consistent count", func() bool {
				n := len(cmClosed(conns))
				return n+s.count() == 30 && (n > 0 || !s.ours)
			})
			if n := len(cmClosed(conns)); n > 20 {
				return fmt.Errorf("closed %d connections, want at most 20", n)
			}
			return nil
		},
	},
	{
		name:  "no second background trim within the silence period",
		setup: cmSetup{low: 10, high: 20, background: true},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(21, 0)
			s.settle(t, "the first trim", func() bool { return s.count() == 10 })
			more := s.connect(15, 0)
			return errors.Join(wantClosed(more, 0), wantCount(s, 25), wantClosed(conns, 11))
		},
	},
	{
		// Documented difference: ours' TrimOpenConns "trims down to
		// LowWater now, unless a trim ran within the silence period";
		// BasicConnMgr's trims whenever called.
		name:  "explicit TrimOpenConns within the silence period",
		setup: cmSetup{low: 10, high: 20},
		run: func(t *testing.T, s *cmSubject) error {
			s.connect(25, 0)
			s.trimNow()
			if err := wantCount(s, 10); err != nil {
				return err
			}
			s.connect(15, 0)
			s.cm.TrimOpenConns(context.Background())
			want := 10
			if s.ours {
				want = 25
			}
			if err := wantCount(s, want); err != nil {
				return fmt.Errorf("TrimOpenConns within the silence period: %w", err)
			}
			s.advance(trimSilence)
			s.cm.TrimOpenConns(context.Background())
			return wantCount(s, 10)
		},
	},
	{
		// Documented difference: ours trims "when a connection takes the
		// count above HighWater" (BasicConnMgr's own doc says "whenever the
		// count exceeds the high watermark", but its ticker trims at the
		// high water mark itself).
		name:  "at exactly high water",
		setup: cmSetup{low: 5, high: 10, background: true},
		run: func(t *testing.T, s *cmSubject) error {
			conns := s.connect(10, 0)
			if s.ours {
				s.tick()
				return errors.Join(wantClosed(conns, 0), wantCount(s, 10))
			}
			s.settle(t, "the tick's trim", func() bool { return s.count() == 5 })
			return nil
		},
	},
}

// TestConnManagerAgainstBasicConnMgr runs the ported cases against ours
// and go-libp2p's BasicConnMgr.
func TestConnManagerAgainstBasicConnMgr(t *testing.T) {
	for _, c := range cmCases {
		t.Run(c.name, func(t *testing.T) {
			for _, mk := range cmSubjectMakers {
				t.Run(mk.name, func(t *testing.T) {
					s := mk.new(t, c.setup)
					err := c.run(t, s)
					switch {
					case c.finding != "" && s.ours && err != nil:
						t.Skipf("FINDING, an undocumented difference: %s:\n%v", c.finding, err)
					case c.finding != "" && s.ours:
						t.Fatalf("finding %q no longer reproduces: drop it from the case", c.finding)
					case err != nil:
						t.Fatal(err)
					}
				})
			}
		})
	}
}

// The same host (buildHost) with either manager: three peers dial it, the
// third takes it above HighWater 2, and it trims to LowWater 1, closing
// the others as garbage collected, which both ends see (TestErrorCode,
// with the swarm's own notifications).
func TestConnManagerTrimsRealConnectionsAgainstBasicConnMgr(t *testing.T) {
	for i, mk := range cmSubjectMakers {
		t.Run(mk.name, func(t *testing.T) {
			ctx := context.Background()
			s := mk.new(t, cmSetup{low: 1, high: 2, background: true})
			rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits), rcmgr.WithMetricsDisabled())
			if err != nil {
				t.Fatal(err)
			}
			hub, err := buildHost(DefaultTestConfig(key(70+10*i)), s.cm, rm, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer hub.Close()
			// Ours trims as the third connection opens, so every end is
			// collected as the swarms report it.
			var mu sync.Mutex
			var hubConns, spokeConns []network.Conn
			collect := func(to *[]network.Conn) network.Notifiee {
				return &network.NotifyBundle{ConnectedF: func(_ network.Network, c network.Conn) {
					mu.Lock()
					*to = append(*to, c)
					mu.Unlock()
				}}
			}
			hub.Network().Notify(collect(&hubConns))
			for j := range 3 {
				b, err := New(ctx, DefaultTestConfig(key(71+10*i+j)))
				if err != nil {
					t.Fatal(err)
				}
				defer b.Close()
				b.Network().Notify(collect(&spokeConns))
				if err := b.Connect(ctx, peer.AddrInfo{ID: hub.ID(), Addrs: hub.Addrs()}); err != nil {
					t.Fatal(err)
				}
			}
			// A trimmed connection can leave the swarm before it has told
			// every notifiee it opened.
			var hubEnds, spokeEnds []network.Conn
			s.settle(t, "the trim to LowWater", func() bool {
				mu.Lock()
				defer mu.Unlock()
				hubEnds, spokeEnds = slices.Clone(hubConns), slices.Clone(spokeConns)
				return len(hub.Network().Peers()) == 1 && len(hubEnds) == 3 && len(spokeEnds) == 3
			})
			closed := 0
			for _, c := range spokeEnds {
				waitFor(t, "the spoke to see the close", func() bool {
					return c.IsClosed() || hub.Network().Connectedness(c.LocalPeer()) == network.Connected
				})
				if !c.IsClosed() {
					continue
				}
				closed++
				_, err := c.NewStream(ctx)
				if want := (&network.ConnError{ErrorCode: network.ConnGarbageCollected, Remote: true}); !errors.Is(err, want) {
					t.Errorf("the trimmed peer's NewStream: %v, want %v", err, want)
				}
			}
			for _, c := range hubEnds {
				if !c.IsClosed() {
					continue
				}
				closed++
				_, err := c.NewStream(ctx)
				if want := (&network.ConnError{ErrorCode: network.ConnGarbageCollected}); !errors.Is(err, want) {
					t.Errorf("the hub's NewStream on a trimmed connection: %v, want %v", err, want)
				}
			}
			if closed != 4 {
				t.Errorf("%d closed connection ends, want 2 trimmed connections' 4", closed)
			}
		})
	}
}
