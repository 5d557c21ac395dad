package node

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
)

// connManager keeps the number of connections between a low and a high
// water mark, as go-libp2p's BasicConnMgr does: when a connection takes the
// count above HighWater it closes connections, least valuable peers first
// (among equals: idle, then those that dialled us, then fewer streams, then
// at random), until LowWater remain, sparing protected peers and peers younger than
// the grace period, and trimming at most once per silence period. A peer's
// value is the sum of the tags other components give it (kad-dht tags its
// routing table, pubsub its mesh).
//
// It keeps everything in one map under one lock; BasicConnMgr splits its
// map into 256 locked segments and runs a decaying-tag service, which cost
// more memory than a neuron's few hundred peers are worth. Decaying tags
// (connmgr.Decayer) are not offered, so components that would use them
// (pubsub's delivery tags) fall back to plain tags or none.
type connManager struct {
	low, high int
	grace     time.Duration
	tickEvery time.Duration // how often run looks whether the count is above HighWater

	mu        sync.Mutex
	peers     map[peer.ID]*peerConns
	protected map[peer.ID][]string
	conns     int
	lastTrim  time.Time

	trigger chan struct{}
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

// peerConns is what the manager knows about one peer.
type peerConns struct {
	firstSeen time.Time
	tags      map[string]int // nil until tagged
	value     int            // sum of tags
	conns     []openConn
}

// openConn is one of a peer's connections and when it opened.
type openConn struct {
	c      network.Conn
	opened time.Time
}

var _ connmgr.ConnManager = (*connManager)(nil)

// trimSilence is the least time between two trims.
const trimSilence = 10 * time.Second

func newConnManager(low, high int, grace time.Duration) *connManager {
	return newConnManagerTicking(low, high, grace, trimSilence)
}

// newConnManagerTicking is newConnManager looking at the count every
// tickEvery instead of every silence period (for tests).
func newConnManagerTicking(low, high int, grace, tickEvery time.Duration) *connManager {
	m := &connManager{
		low: low, high: high, grace: grace, tickEvery: tickEvery,
		peers:     map[peer.ID]*peerConns{},
		protected: map[peer.ID][]string{},
		trigger:   make(chan struct{}, 1),
		done:      make(chan struct{}),
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	go m.run()
	return m
}

// run trims whenever asked, at most once per silence period, and every
// silence period while more than HighWater connections are open (as
// BasicConnMgr's background loop does): connections spared because they
// were young or protected are trimmed once that ends, even if no new
// connection comes to ask.
func (m *connManager) run() {
	defer close(m.done)
	tick := time.NewTicker(m.tickEvery)
	defer tick.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.trigger:
		case <-tick.C:
			m.mu.Lock()
			due := m.conns > m.high && time.Since(m.lastTrim) >= trimSilence
			m.mu.Unlock()
			if due {
				m.trim(m.high)
			}
			continue
		}
		m.mu.Lock()
		wait := time.Until(m.lastTrim.Add(trimSilence))
		m.mu.Unlock()
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-m.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
		m.trim(m.high)
	}
}

// Close stops the trimming goroutine.
func (m *connManager) Close() error {
	m.cancel()
	<-m.done
	return nil
}

// entry returns the peer's entry, creating one; m.mu is held.
func (m *connManager) entry(p peer.ID) *peerConns {
	e := m.peers[p]
	if e == nil {
		e = &peerConns{firstSeen: time.Now()}
		m.peers[p] = e
	}
	return e
}

// TagPeer sets the value of one of the peer's tags.
func (m *connManager) TagPeer(p peer.ID, tag string, value int) {
	m.UpsertTag(p, tag, func(int) int { return value })
}

// UntagPeer removes a tag.
func (m *connManager) UntagPeer(p peer.ID, tag string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.peers[p]; e != nil {
		e.value -= e.tags[tag]
		delete(e.tags, tag)
	}
}

// UpsertTag sets a tag to upsert of its current value (0 if unset).
func (m *connManager) UpsertTag(p peer.ID, tag string, upsert func(int) int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entry(p)
	if e.tags == nil {
		e.tags = map[string]int{}
	}
	old := e.tags[tag]
	v := upsert(old)
	e.tags[tag] = v
	e.value += v - old
}

// GetTagInfo returns a copy of what is known about the peer, or nil.
func (m *connManager) GetTagInfo(p peer.ID) *connmgr.TagInfo {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.peers[p]
	if e == nil {
		return nil
	}
	info := &connmgr.TagInfo{FirstSeen: e.firstSeen, Value: e.value, Tags: maps.Clone(e.tags), Conns: map[string]time.Time{}}
	if info.Tags == nil {
		info.Tags = map[string]int{}
	}
	for _, oc := range e.conns {
		info.Conns[oc.c.RemoteMultiaddr().String()] = oc.opened
	}
	return info
}

// protectionAsValue reports whether a protection other components ask
// for is kept as a tag of the returned value instead. Two libraries
// protect peers a neuron of a large subnet cannot afford to keep
// connected for good:
//   - go-libp2p-kad-dht every peer of its routing table's two widest
//     buckets (up to 40 peers; the routing table keeps them without a
//     connection), valued 10, above the other buckets' peers (which
//     kad-dht tags 5);
//   - go-libp2p-pubsub (under package gossip) its mesh peers of each
//     topic ("pubsub:" and the topic), valued 50 a topic: kept before
//     other members, and when trimmed, gossipsub grafts others from
//     what stays connected.
//
// Members valued so are trimmed after outsiders and before the peers the
// neuron itself protects (neuron.SwarmConfig.LowWater).
func protectionAsValue(tag string) (int, bool) {
	switch {
	case tag == "kbucket":
		return 10, true
	case strings.HasPrefix(tag, "pubsub:"):
		return 50, true
	}
	return 0, false
}

// Protect keeps the peer's connections from being trimmed until every tag
// it was protected with is removed (a protection of protectionAsValue sets
// that tag's value instead).
func (m *connManager) Protect(p peer.ID, tag string) {
	if v, ok := protectionAsValue(tag); ok {
		m.TagPeer(p, tag, v)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if !slices.Contains(m.protected[p], tag) {
		m.protected[p] = append(m.protected[p], tag)
	}
}

// Unprotect removes one protection and reports whether others remain.
func (m *connManager) Unprotect(p peer.ID, tag string) bool {
	if _, ok := protectionAsValue(tag); ok {
		m.UntagPeer(p, tag)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	tags := slices.DeleteFunc(m.protected[p], func(t string) bool { return t == tag })
	if len(tags) == 0 {
		delete(m.protected, p)
		return false
	}
	m.protected[p] = tags
	return true
}

// IsProtected reports whether the peer is protected with tag, or with any
// tag if tag is empty.
func (m *connManager) IsProtected(p peer.ID, tag string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if tag == "" {
		return len(m.protected[p]) > 0
	}
	return slices.Contains(m.protected[p], tag)
}

// CheckLimit reports a high water mark above the resource manager's
// connection limit (the manager would never get to trim).
func (m *connManager) CheckLimit(l connmgr.GetConnLimiter) error {
	if limit := l.GetConnLimit(); m.high > limit {
		return fmt.Errorf("node: connection manager high water %d exceeds the resource manager's %d connections", m.high, limit)
	}
	return nil
}

// TrimOpenConns trims down to LowWater now, unless a trim ran within the
// silence period.
func (m *connManager) TrimOpenConns(context.Context) {
	m.mu.Lock()
	due := time.Since(m.lastTrim) >= trimSilence
	m.mu.Unlock()
	if due {
		m.trim(m.low)
	}
}

// trim, if more than above connections are open, closes the connections
// of the least valuable peers that are neither protected nor in their
// grace period, leaving LowWater of those (so young and protected
// connections come on top, as in go-libp2p).
func (m *connManager) trim(above int) {
	m.mu.Lock()
	now := time.Now()
	m.lastTrim = now
	if m.conns <= above {
		m.mu.Unlock()
		return
	}
	type candidate struct {
		value   int
		streams int
		inbound bool // any of its connections was dialled by the peer
		conns   []network.Conn
	}
	var candidates []candidate
	excess := 0
	for id, e := range m.peers {
		if len(e.conns) == 0 && now.Sub(e.firstSeen) > m.grace {
			delete(m.peers, id) // tagged but never connected
			continue
		}
		if len(m.protected[id]) > 0 || now.Sub(e.firstSeen) < m.grace || len(e.conns) == 0 {
			continue
		}
		c := candidate{value: e.value}
		for _, oc := range e.conns {
			c.conns = append(c.conns, oc.c)
			st := oc.c.Stat()
			c.streams += st.NumStreams
			c.inbound = c.inbound || st.Direction == network.DirInbound
		}
		candidates = append(candidates, c)
		excess += len(c.conns)
	}
	excess -= m.low
	m.mu.Unlock()

	// go-libp2p's order: least value first; among equals idle peers, then
	// peers that dialled us (an outsider's connections go before the ones
	// we chose to make), then those with fewer streams. Ties are broken at
	// random, so that nobody can pick a key that survives trims.
	rand.Shuffle(len(candidates), func(i, j int) { candidates[i], candidates[j] = candidates[j], candidates[i] })
	slices.SortStableFunc(candidates, func(a, b candidate) int {
		return cmp.Or(
			cmp.Compare(a.value, b.value),
			cmp.Compare(first(a.streams == 0), first(b.streams == 0)),
			cmp.Compare(first(a.inbound), first(b.inbound)),
			cmp.Compare(a.streams, b.streams),
		)
	})
	for _, c := range candidates {
		if excess <= 0 {
			break
		}
		for _, conn := range c.conns {
			conn.CloseWithError(network.ConnGarbageCollected)
		}
		excess -= len(c.conns)
	}
}

// first sorts true before false.
func first(b bool) int {
	if b {
		return 0
	}
	return 1
}

// Notifee is what the swarm tells about connections opening and closing.
func (m *connManager) Notifee() network.Notifiee {
	return &network.NotifyBundle{ConnectedF: m.connected, DisconnectedF: m.disconnected}
}

func (m *connManager) connected(_ network.Network, c network.Conn) {
	m.mu.Lock()
	e := m.entry(c.RemotePeer())
	if slices.ContainsFunc(e.conns, func(oc openConn) bool { return oc.c == c }) {
		m.mu.Unlock()
		return
	}
	if len(e.conns) == 0 {
		// Known until now only by its tags: its grace period starts
		// with its first connection, as in go-libp2p.
		e.firstSeen = time.Now()
	}
	e.conns = append(e.conns, openConn{c: c, opened: time.Now()})
	m.conns++
	over := m.conns > m.high
	m.mu.Unlock()
	if over {
		select {
		case m.trigger <- struct{}{}:
		default: // a trim is already due
		}
	}
}

func (m *connManager) disconnected(_ network.Network, c network.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.peers[c.RemotePeer()]
	if e == nil {
		return
	}
	i := slices.IndexFunc(e.conns, func(oc openConn) bool { return oc.c == c })
	if i < 0 {
		return
	}
	e.conns = slices.Delete(e.conns, i, i+1)
	m.conns--
	if len(e.conns) == 0 {
		delete(m.peers, c.RemotePeer())
	}
}
