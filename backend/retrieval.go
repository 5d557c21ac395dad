package backend

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"sort"
	"strings"
	"sync"
	"unicode"
)

// Document is a text the retrieval model can answer from.
type Document struct {
	ID   string
	Text string
}

// BM25 parameters (Robertson's defaults).
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// passage is one retrievable unit: a paragraph or, for long paragraphs, a
// run of sentences.
type passage struct {
	doc   string
	index int
	text  string
	terms map[string]int
	len   int
}

// Retrieval answers questions with the passage of its documents that best
// matches them under BM25: real, deterministic answers with no model
// download. It is safe for concurrent use.
type Retrieval struct {
	mu       sync.RWMutex
	passages []passage
	df       map[string]int
	totalLen int
}

// NewRetrieval indexes docs.
func NewRetrieval(docs ...Document) *Retrieval {
	r := &Retrieval{df: map[string]int{}}
	for _, d := range docs {
		r.Add(d)
	}
	return r
}

// maxPassage is the longest passage in characters before a paragraph is
// split at sentence ends.
const maxPassage = 600

// Add indexes one more document.
func (r *Retrieval) Add(d Document) {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := 0
	for _, para := range strings.Split(d.Text, "\n\n") {
		for _, text := range splitLong(strings.TrimSpace(para)) {
			if text == "" {
				continue
			}
			terms := map[string]int{}
			n := 0
			for _, t := range Tokenize(text) {
				terms[t]++
				n++
			}
			if n == 0 {
				continue
			}
			for t := range terms {
				r.df[t]++
			}
			r.passages = append(r.passages, passage{doc: d.ID, index: i, text: text, terms: terms, len: n})
			r.totalLen += n
			i++
		}
	}
}

func splitLong(p string) []string {
	if len(p) <= maxPassage {
		return []string{p}
	}
	var out []string
	var cur strings.Builder
	for _, s := range strings.SplitAfter(p, ". ") {
		if cur.Len() > 0 && cur.Len()+len(s) > maxPassage {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
		cur.WriteString(s)
	}
	return append(out, strings.TrimSpace(cur.String()))
}

// TermOverlap is the Jaccard index of two texts' terms (Tokenize):
// |A∩B| / |A∪B|, and 1 for two texts without terms. It is the subnet
// language's similarity() and the reference judge's similarity.
func TermOverlap(a, b string) float64 {
	ta, tb := map[string]bool{}, map[string]bool{}
	for _, t := range Tokenize(a) {
		ta[t] = true
	}
	for _, t := range Tokenize(b) {
		tb[t] = true
	}
	if len(ta) == 0 && len(tb) == 0 {
		return 1
	}
	inter := 0
	for t := range ta {
		if tb[t] {
			inter++
		}
	}
	return float64(inter) / float64(len(ta)+len(tb)-inter)
}

// Tokenize lower-cases s and splits it on anything that is not a letter or
// digit, dropping very common English words: the terms BM25 ranks by (the
// knowledge library's search uses it too).
func Tokenize(s string) []string {
	fields := strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	out := fields[:0]
	for _, f := range fields {
		if !stopword[f] {
			out = append(out, f)
		}
	}
	return out
}

var stopword = map[string]bool{"a": true, "an": true, "the": true, "is": true, "are": true, "was": true, "of": true, "to": true,
	"in": true, "and": true, "or": true, "what": true, "which": true, "who": true, "how": true, "does": true, "do": true,
	"on": true, "for": true, "by": true, "with": true, "it": true, "its": true, "as": true, "at": true, "be": true}

// Hit is a ranked passage.
type Hit struct {
	DocID string  `json:"doc_id"`
	Index int     `json:"index"`
	Text  string  `json:"text"`
	Score float64 `json:"score"`
}

// ErrNoAnswer is returned when nothing in the index matches.
var ErrNoAnswer = errors.New("backend: no passage matches the question")

// Search returns the k best passages for query, best first (ties by
// document ID and position).
func (r *Retrieval) Search(query string, k int) []Hit {
	r.mu.RLock()
	defer r.mu.RUnlock()
	q := Tokenize(query)
	if len(q) == 0 || len(r.passages) == 0 {
		return nil
	}
	n := float64(len(r.passages))
	avg := float64(r.totalLen) / n
	var hits []Hit
	for _, p := range r.passages {
		var score float64
		for _, t := range q {
			tf := float64(p.terms[t])
			if tf == 0 {
				continue
			}
			df := float64(r.df[t])
			idf := math.Log(1 + (n-df+0.5)/(df+0.5))
			score += idf * tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*float64(p.len)/avg))
		}
		if score > 0 {
			hits = append(hits, Hit{DocID: p.doc, Index: p.index, Text: p.text, Score: score})
		}
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].Score != hits[j].Score {
			return hits[i].Score > hits[j].Score
		}
		if hits[i].DocID != hits[j].DocID {
			return hits[i].DocID < hits[j].DocID
		}
		return hits[i].Index < hits[j].Index
	})
	if len(hits) > k {
		hits = hits[:k]
	}
	return hits
}

// Generate answers prompt with the best passage (one chunk).
func (r *Retrieval) Generate(ctx context.Context, prompt string, emit func(string) error) error {
	hits := r.Search(prompt, 1)
	if len(hits) == 0 {
		return ErrNoAnswer
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return emit(hits[0].Text)
}

// Chat answers the last user message of the conversation with the best
// passage (one chunk); the other messages and the sampling parameters do
// not matter to it. Usage counts words (runs of non-space characters) as
// tokens: there is no tokenizer.
func (r *Retrieval) Chat(ctx context.Context, req ChatRequest, emit func(string) error) (Usage, error) {
	q := req.LastUser()
	hits := r.Search(q, 1)
	if len(hits) == 0 {
		return Usage{}, ErrNoAnswer
	}
	if err := ctx.Err(); err != nil {
		return Usage{}, err
	}
	var prompt []string
	for _, m := range req.Messages {
		prompt = append(prompt, m.Content)
	}
	u := Usage{PromptTokens: countWords(prompt...), CompletionTokens: countWords(hits[0].Text)}
	return u, emit(hits[0].Text)
}

// DefaultEmbedDimensions is the length of HashEmbedding's vectors when a
// request names none.
const DefaultEmbedDimensions = 256

// Embed implements Embedder with HashEmbedding (dimensions 0:
// DefaultEmbedDimensions). Usage counts the inputs' words as prompt
// tokens.
func (r *Retrieval) Embed(ctx context.Context, texts []string, dimensions int) ([][]float64, Usage, error) {
	if dimensions <= 0 {
		dimensions = DefaultEmbedDimensions
	}
	out := make([][]float64, len(texts))
	for i, t := range texts {
		if err := ctx.Err(); err != nil {
			return nil, Usage{}, err
		}
		out[i] = HashEmbedding(t, dimensions)
	}
	return out, Usage{PromptTokens: countWords(texts...)}, nil
}

// HashEmbedding is a deterministic hashed bag-of-words vector of text: a
// baseline, not a model. Each token of Tokenize(text) adds +1 to bucket
// h mod dimensions, where h is the token's FNV-1a 64-bit hash, or −1 if
// h's top bit is set (the signed hashing trick, so collisions cancel on
// average rather than pile up); the vector is then scaled to Euclidean
// norm 1. A text with no tokens (or whose counts cancel) is all zeros.
// Texts that share words get similar vectors; synonyms do not.
func HashEmbedding(text string, dimensions int) []float64 {
	v := make([]float64, dimensions)
	for _, t := range Tokenize(text) {
		h := fnv.New64a()
		h.Write([]byte(t))
		sum := h.Sum64()
		if sum>>63 == 0 {
			v[sum%uint64(dimensions)]++
		} else {
			v[sum%uint64(dimensions)]--
		}
	}
	var norm float64
	for _, x := range v {
		norm += x * x
	}
	if norm > 0 {
		norm = math.Sqrt(norm)
		for i := range v {
			v[i] /= norm
		}
	}
	return v
}
