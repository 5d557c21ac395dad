package neuron

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/gossip"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/wallet"
)

// gossipAnnouncer announces knowledge on the subnet's knowledge topic; it
// implements knowledge.Announcer.
type gossipAnnouncer struct{ g *gossip.Gossip }

func (a gossipAnnouncer) Announce(ctx context.Context, netuid uint16, data []byte) error {
	t, err := a.g.Join(netuid, gossip.Knowledge, checkAnnouncement(netuid))
	if err != nil {
		return err
	}
	return t.Publish(ctx, data)
}

// checkAnnouncement is the knowledge topic's body check.
func checkAnnouncement(netuid uint16) gossip.BodyCheck {
	return func(_ gossip.Author, body []byte) error { return knowledge.CheckAnnouncement(netuid, body) }
}

// Learner takes documents into a model; *backend.Retrieval is one.
type Learner interface {
	Add(backend.Document)
}

// maxLearnedSize bounds the announced objects a learner fetches.
const maxLearnedSize = 1 << 20

// OpenLibrary opens the neuron's knowledge library in dir, shared through
// the swarm: published objects are provided on the DHT and announced on
// the subnet's knowledge topic, and announcements heard there are indexed
// (searchable, fetchable on demand). If learn is set, every announced text
// object up to 1 MiB is fetched and given to it, so a retrieval model
// answers from what the subnet publishes. The library is closed by the
// swarm's Close.
func (s *Swarm) OpenLibrary(dir string, key *wallet.PrivateKey, learn Learner) (*knowledge.Library, error) {
	return s.openLibrary(dir, key, learn, replicaPolicy{})
}

// OpenReplica is OpenLibrary for a storage miner: it also keeps every
// object announced on the subnet up to maxObject bytes, whatever its media
// type — fetched as soon as it is announced and pinned, so the miner
// holds it when challenged — until the objects it keeps for others add up
// to budget bytes (what it kept before a restart counts).
func (s *Swarm) OpenReplica(dir string, key *wallet.PrivateKey, learn Learner, maxObject, budget uint64) (*knowledge.Library, error) {
	return s.openLibrary(dir, key, learn, replicaPolicy{maxObject: maxObject, budget: budget})
}

// replicaPolicy is which announced objects a library keeps for others:
// none when maxObject is 0.
type replicaPolicy struct {
	maxObject, budget uint64
}

// keptForOthers is the size of the pinned objects lib holds that key did
// not author.
func keptForOthers(lib *knowledge.Library, key *wallet.PrivateKey) (uint64, error) {
	entries, err := lib.List()
	if err != nil {
		return 0, err
	}
	me := key.PublicKey().Address()
	var total uint64
	for _, e := range entries {
		if e.Pinned && e.Object != nil && e.Object.AuthorAddress() != me {
			total += e.Object.Size
		}
	}
	return total, nil
}

func (s *Swarm) openLibrary(dir string, key *wallet.PrivateKey, learn Learner, replicate replicaPolicy) (*knowledge.Library, error) {
	cfg := knowledge.DefaultConfig(dir)
	cfg.Key, cfg.Logger = key, s.log
	lib, err := knowledge.Open(cfg, knowledge.WithNetwork(s.h, s.dht), knowledge.WithAnnouncer(gossipAnnouncer{s.gossip}),
		knowledge.WithRegistry(knowledge.RegistryFunc(s.registered.registered)))
	if err != nil {
		return nil, err
	}
	kept, err := keptForOthers(lib, key)
	if err != nil {
		lib.Close()
		return nil, err
	}
	t, err := s.gossip.Join(s.netuid, gossip.Knowledge, checkAnnouncement(s.netuid))
	if err != nil {
		lib.Close()
		return nil, err
	}
	sub, err := t.Subscribe()
	if err != nil {
		lib.Close()
		return nil, err
	}
	s.mu.Lock()
	s.libs = append(s.libs, lib)
	s.mu.Unlock()
	s.wg.Add(2)
	go s.follow(lib, sub, learn, replicate, kept)
	go s.reannounce(lib, t)
	return lib, nil
}

// reannounce announces the pinned objects this neuron authored on its
// subnet again once the knowledge topic has peers, and every
// ReannounceEvery: gossip reaches only those subscribed at the time, and
// neurons join later. While the swarm forms, the topic's peers grow one
// by one; each announcement floods the whole subnet and every neuron
// verifies it, so a new one goes out only when the peers have doubled
// since the last, or grown after a pause that doubles each time (1 s, 2 s,
// 4 s, …): a few announcements for a whole start-up, not one per peer.
func (s *Swarm) reannounce(lib *knowledge.Library, t *gossip.Topic) {
	defer s.wg.Done()
	first := time.NewTicker(min(200*time.Millisecond, s.cfg.ReannounceEvery))
	defer first.Stop()
	every := time.NewTicker(s.cfg.ReannounceEvery)
	defer every.Stop()
	var pace announcePace
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-first.C:
			if !pace.due(len(t.Peers()), time.Now(), s.cfg.ReannounceEvery) {
				continue
			}
		case <-every.C:
		}
		ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
		err := lib.Reannounce(ctx, s.netuid)
		cancel()
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("knowledge not announced", "err", err)
		}
	}
}

// announcePace decides when a growing set of topic peers warrants another
// announcement (see reannounce).
type announcePace struct {
	peers int           // topic peers at the last announcement
	at    time.Time     // when it went out
	gap   time.Duration // pause before growth alone warrants another
}

// due reports whether to announce now, with peers topic peers, and if so
// records it.
func (p *announcePace) due(peers int, now time.Time, longest time.Duration) bool {
	switch {
	case peers <= p.peers:
		return false
	case p.peers == 0 || peers >= 2*p.peers:
	case now.Sub(p.at) >= p.gap:
	default:
		return false
	}
	if p.peers > 0 {
		p.gap = min(max(2*p.gap, time.Second), longest)
	} else {
		p.gap = time.Second
	}
	p.peers, p.at = peers, now
	return true
}

// follow ingests the knowledge topic's announcements into lib, feeds
// learn, and keeps (fetches and pins) objects up to replicate bytes.
// Announced objects are fetched concurrently, up to maxFollowFetches at
// once and one fetch per object: when they were fetched one after another,
// each waiting up to a minute, one publisher too busy to answer held back
// every later announcement, and in a 256-neuron localnet most miners had
// learned one or none of the 12 documents their validators ask about a
// minute after start.
func (s *Swarm) follow(lib *knowledge.Library, sub *gossip.Subscription, learn Learner, replicate replicaPolicy, kept uint64) {
	defer s.wg.Done()
	defer sub.Cancel()
	f := &follower{s: s, lib: lib, learn: learn, replicate: replicate, kept: kept,
		learned: map[string]bool{}, fetching: map[string]bool{}, slots: make(chan struct{}, maxFollowFetches)}
	for {
		m, err := sub.Next(s.ctx)
		if err != nil {
			return
		}
		if m.Peer == s.h.ID() {
			continue
		}
		a, err := lib.Ingest(s.netuid, m.Peer, m.Body)
		if err != nil {
			s.log.Debug("announcement not ingested", "from", m.Peer, "err", err)
			continue
		}
		c, ok := f.claim(a, m.Hotkey.String())
		if !ok {
			continue
		}
		if c.teach && !c.keep && a.Body != nil {
			// The body came with the announcement (checked against the
			// object's body CID as it was decoded): nothing to fetch.
			f.learnCarried(c)
			continue
		}
		select {
		case <-s.ctx.Done():
			f.release(c, false)
			return
		case f.slots <- struct{}{}:
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-f.slots }()
			f.fetch(c)
		}()
	}
}

// maxFollowFetches bounds the announced objects a neuron fetches at once.
const maxFollowFetches = 4

// follower is follow's state, shared with its fetches under mu.
type follower struct {
	s         *Swarm
	lib       *knowledge.Library
	learn     Learner
	replicate replicaPolicy
	slots     chan struct{} // a fetch holds one

	mu       sync.Mutex
	kept     uint64          // bytes kept for others, fetches under way included
	learned  map[string]bool // objects done with (fetched, or not wanted)
	fetching map[string]bool // objects being fetched
}

// claimed is an announced object follow is getting.
type claimed struct {
	a *knowledge.Announcement
	// keep: fetch and pin it for others; teach: feed it to the learner.
	keep, teach bool
	// reserved: its bytes were added to the follower's kept.
	reserved bool
}

// claim decides what to do with an announced object: keep it (fetch and
// pin it for others, within the replica budget, whose bytes it reserves),
// teach it (fetch it and feed it to the learner), or neither; ok is false
// if there is nothing to get (done with, being fetched, or not wanted).
func (f *follower) claim(a *knowledge.Announcement, author string) (c claimed, ok bool) {
	key := a.Object.CID.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.learned[key] || f.fetching[key] {
		return claimed{}, false // announced again
	}
	f.s.log.Info("knowledge announced", "cid", key, "title", a.Object.Title, "author", author, "size", a.Object.Size)
	c = claimed{a: a}
	c.keep = f.replicate.maxObject > 0 && a.Object.Size <= f.replicate.maxObject
	held := f.lib.Has(a.Object.CID) // kept before a restart: counted already
	if c.keep && !held && f.kept+a.Object.Size > f.replicate.budget {
		c.keep = false
		f.s.log.Warn("replica budget full: not keeping an announced object", "cid", key, "size", a.Object.Size, "kept", f.kept, "budget", f.replicate.budget)
	}
	c.teach = f.learn != nil && a.Object.Size <= maxLearnedSize && strings.HasPrefix(a.Object.MediaType, "text/")
	if !c.keep && !c.teach {
		f.learned[key] = true
		return claimed{}, false
	}
	if c.keep && !held {
		f.kept += a.Object.Size
		c.reserved = true
	}
	f.fetching[key] = true
	return c, true
}

// release ends a claim: the object is learned if it was got, and the
// bytes reserved for it are returned if it was not.
func (f *follower) release(c claimed, got bool) {
	key := c.a.Object.CID.String()
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.fetching, key)
	if got {
		f.learned[key] = true
	} else if c.reserved {
		f.kept -= min(f.kept, c.a.Object.Size)
	}
}

// learnCarried teaches a claimed object from the body its announcement
// carried.
func (f *follower) learnCarried(c claimed) {
	f.learn.Add(backend.Document{ID: c.a.Object.CID.String(), Text: string(c.a.Body)})
	f.s.fetched.Add(1)
	f.release(c, true)
}

// fetch fetches a claimed object, pins it if kept and teaches it if
// taught.
func (f *follower) fetch(c claimed) {
	s, lib, a := f.s, f.lib, c.a
	fetched := false
	defer func() { f.release(c, fetched) }()
	// Every member hears the announcement at once: a short wait, longer in
	// a larger subnet, spreads their fetches from the publisher out (in a
	// 128-neuron localnet, 114 miners dialing 14 validators for 12 objects
	// at the same moment held the validators' first queries to their
	// deadline).
	if !lib.Has(a.Object.CID) {
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(fetchJitter(s.registered.size(), rand.Float64())):
		}
	}
	var opts []knowledge.FetchOption
	if c.keep {
		opts = append(opts, knowledge.Pinned())
	}
	if !provideCopy(s.registered.size(), rand.Float64()) {
		opts = append(opts, knowledge.Unprovided())
	}
	ctx, cancel := context.WithTimeout(s.ctx, time.Minute)
	defer cancel()
	var body bytes.Buffer
	var err error
	if c.teach {
		_, err = lib.Get(ctx, a.Object.CID, &body, opts...)
	} else {
		err = lib.Fetch(ctx, a.Object.CID, opts...)
	}
	if err != nil {
		if s.ctx.Err() == nil {
			s.log.Warn("announced knowledge not fetched", "cid", a.Object.CID, "err", err)
		}
		return
	}
	fetched = true
	if c.teach {
		f.learn.Add(backend.Document{ID: a.Object.CID.String(), Text: body.String()})
	}
	s.fetched.Add(1)
}

// advertisedCopies is how many of a subnet's members, on average,
// advertise on the DHT their copy of an object announced to the subnet,
// besides its publisher. Every member advertising its copy made each
// announcement a walk across the DHT per member (and its body another):
// the largest share of a 64-neuron localnet's CPU, and the walks'
// connections made it a full mesh. A search needs one live provider, and
// pinned copies are advertised again at the library's next re-provide.
const advertisedCopies = 3

// provideCopy decides, for a member of a subnet of members neurons drawing
// u uniformly in [0, 1), whether it advertises its copy of an announced
// object: with chance advertisedCopies/members, so that about that many
// do whatever the subnet's size, without asking each other.
func provideCopy(members int, u float64) bool {
	return members <= advertisedCopies || u < float64(advertisedCopies)/float64(members)
}

// fetchJitter is how long a member of a subnet of members neurons, drawing
// u uniformly in [0, 1), waits before fetching an announced object: up to
// 10 ms a member, at most 2 s, so that a whole subnet's fetches of one
// object reach its publisher at about 100 a second.
func fetchJitter(members int, u float64) time.Duration {
	spread := min(time.Duration(members)*10*time.Millisecond, 2*time.Second)
	return time.Duration(u * float64(spread))
}

// KnowledgeFetched counts the announced objects this neuron fetched from
// others, to learn or to keep.
func (s *Swarm) KnowledgeFetched() int64 { return s.fetched.Load() }

// KnowledgeShared counts the objects this neuron published (and still
// holds pinned) in its libraries.
func (s *Swarm) KnowledgeShared() int {
	s.mu.Lock()
	libs := append([]*knowledge.Library(nil), s.libs...)
	s.mu.Unlock()
	n := 0
	for _, lib := range libs {
		entries, err := lib.List()
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.Object != nil && e.Pinned && e.Object.Author.PeerID() == s.h.ID() {
				n++
			}
		}
	}
	return n
}

// PublishDocuments publishes docs as text objects of netuid in lib; each
// is announced to the subnet. An object stored but not yet shared (no
// peers yet) does not stop the others; the error then wraps
// knowledge.ErrNotShared, and the swarm announces it again later.
func PublishDocuments(ctx context.Context, lib *knowledge.Library, netuid uint16, docs []backend.Document) error {
	var unshared error
	for _, d := range docs {
		_, err := lib.Publish(ctx, strings.NewReader(d.Text), knowledge.Meta{MediaType: "text/plain", Title: d.ID, Netuid: netuid})
		switch {
		case errors.Is(err, knowledge.ErrNotShared):
			unshared = err
		case err != nil:
			return fmt.Errorf("neuron: publishing %q: %w", d.ID, err)
		}
	}
	return unshared
}

// ClozeTasks builds questions with known answers from documents the
// validator publishes: a sentence of a document with one of its longer
// words blanked out; the answer is that word. A miner that holds the
// document (its retrieval model finds the sentence's passage) answers it;
// one that does not, cannot guess. At most max tasks, in document order.
func ClozeTasks(docs []backend.Document, max int) []Task {
	var tasks []Task
	for _, d := range docs {
		for _, sentence := range splitSentences(d.Text) {
			words := strings.Fields(sentence)
			if len(words) < 6 {
				continue
			}
			// The longest word after the first two: specific enough that
			// only the document's passage contains it in this sentence.
			best := -1
			for i := 2; i < len(words); i++ {
				w := strings.Trim(words[i], ".,;:!?\"'()")
				if len(w) >= 6 && (best < 0 || len(w) > len(strings.Trim(words[best], ".,;:!?\"'()"))) {
					best = i
				}
			}
			if best < 0 {
				continue
			}
			answer := strings.Trim(words[best], ".,;:!?\"'()")
			blanked := append([]string(nil), words...)
			blanked[best] = strings.Replace(words[best], answer, "____", 1)
			if strings.Contains(strings.ToLower(strings.Join(blanked, " ")), strings.ToLower(answer)) {
				continue // the answer is elsewhere in the sentence
			}
			tasks = append(tasks, Task{Prompt: "Fill in the blank: " + strings.Join(blanked, " "), Answer: answer})
			if len(tasks) == max {
				return tasks
			}
		}
	}
	return tasks
}

// splitSentences splits text after '.', '!' or '?' followed by a space.
func splitSentences(text string) []string {
	var out []string
	start := 0
	for i := 0; i < len(text); i++ {
		if (text[i] == '.' || text[i] == '!' || text[i] == '?') && (i+1 == len(text) || text[i+1] == ' ' || text[i+1] == '\n') {
			if s := strings.TrimSpace(text[start : i+1]); s != "" {
				out = append(out, s)
			}
			start = i + 1
		}
	}
	if s := strings.TrimSpace(text[start:]); s != "" {
		out = append(out, s)
	}
	return out
}
