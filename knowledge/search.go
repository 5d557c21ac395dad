package knowledge

import (
	"math"
	"sort"
	"strings"
	"sync"

	"github.com/ipfs/go-cid"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/wallet"
)

// Hit is a search result.
type Hit struct {
	CID       cid.Cid        `json:"cid"`
	Title     string         `json:"title"`
	Tags      []string       `json:"tags,omitempty"`
	MediaType string         `json:"media_type"`
	Size      uint64         `json:"size"`
	Netuid    uint16         `json:"netuid"`
	Author    wallet.Address `json:"author"`
	Score     float64        `json:"score"`
	// Local is set for objects in the local store; the others are known
	// from announcements and can be fetched on demand.
	Local bool `json:"local"`
}

// BM25 parameters (Robertson's defaults) and field weights: a title term
// counts three times, a tag term twice, a body term once.
const (
	bm25K1      = 1.2
	bm25B       = 0.75
	titleWeight = 3
	tagWeight   = 2
)

// index is an in-memory BM25 index over objects' titles, tags and text
// bodies. It is rebuilt from the store when the library opens.
type index struct {
	mu    sync.RWMutex
	docs  map[cid.Cid]*doc
	df    map[string]int
	total int
}

type doc struct {
	hit   Hit
	terms map[string]int
	len   int
}

func newIndex() *index { return &index{docs: map[cid.Cid]*doc{}, df: map[string]int{}} }

// add indexes an object, replacing any earlier entry for its CID.
func (x *index) add(o *Object, local bool, body string) {
	terms := map[string]int{}
	n := 0
	count := func(s string, w int) {
		for _, t := range backend.Tokenize(s) {
			terms[t] += w
			n += w
		}
	}
	count(o.Title, titleWeight)
	count(strings.Join(o.Tags, " "), tagWeight)
	count(body, 1)
	d := &doc{hit: Hit{CID: o.CID, Title: o.Title, Tags: o.Tags, MediaType: o.MediaType, Size: o.Size, Netuid: o.Netuid, Author: o.AuthorAddress(), Local: local}, terms: terms, len: n}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(o.CID)
	x.docs[o.CID] = d
	for t := range terms {
		x.df[t]++
	}
	x.total += n
}

// isLocal says whether c is indexed as a local object.
func (x *index) isLocal(c cid.Cid) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	d, ok := x.docs[c]
	return ok && d.hit.Local
}

func (x *index) remove(c cid.Cid) {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.removeLocked(c)
}

func (x *index) removeLocked(c cid.Cid) {
	d, ok := x.docs[c]
	if !ok {
		return
	}
	for t := range d.terms {
		if x.df[t]--; x.df[t] <= 0 {
			delete(x.df, t)
		}
	}
	x.total -= d.len
	delete(x.docs, c)
}

// search returns the k best matches that keep accepts, best first (ties
// by CID).
func (x *index) search(query string, k int, keep func(Hit) bool) []Hit {
	q := backend.Tokenize(query)
	x.mu.RLock()
	defer x.mu.RUnlock()
	if len(q) == 0 || len(x.docs) == 0 || k <= 0 {
		return nil
	}
	n := float64(len(x.docs))
	avg := float64(x.total) / n
	if avg == 0 {
		avg = 1
	}
	var hits []Hit
	for _, d := range x.docs {
		if keep != nil && !keep(d.hit) {
			continue
		}
		var score float64
		for _, t := range q {
			tf := float64(d.terms[t])
			if tf == 0 {
				continue
			}
			df := float64(x.df[t])
			idf := math.Log(1 + (n-df+0.5)/(df+0.5))
			score += idf * tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*float64(d.len)/avg))
		}
		if score > 0 {
			h := d.hit
			h.Score = score
			hits = append(hits, h)
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		return hits[i].CID.KeyString() < hits[j].CID.KeyString()
	})
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits
}

// isText says whether a media type's body is indexed as text.
func isText(mediaType string) bool {
	mt := strings.ToLower(mediaType)
	if strings.HasPrefix(mt, "text/") {
		return true
	}
	for _, s := range []string{"json", "xml", "yaml", "markdown", "javascript"} {
		if strings.Contains(mt, s) {
			return true
		}
	}
	return false
}
