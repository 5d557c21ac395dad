package charlm

import (
	"math/rand/v2"
	"strings"
)

// Pseudo-English for tests: sentences from a fixed grammar, words drawn
// with a skew towards the start of each list (as real word frequencies
// are), from a seeded generator, so every run and CPU gets the same text.
var (
	determiners  = []string{"the", "a", "every", "this", "that", "each", "some", "no"}
	adjectives   = []string{"small", "honest", "quick", "old", "bright", "lazy", "careful", "distant", "green", "heavy", "quiet", "early", "patient", "clever", "silver"}
	nouns        = []string{"miner", "validator", "block", "river", "stone", "garden", "model", "letter", "window", "market", "teacher", "village", "engine", "library", "lantern", "harbour", "orchard", "signal", "ledger", "bridge"}
	verbs        = []string{"sees", "finds", "keeps", "builds", "follows", "answers", "carries", "writes", "measures", "trusts", "remembers", "signs", "crosses", "opens", "rewards"}
	prepositions = []string{"near", "under", "beyond", "with", "after", "before", "behind", "inside", "across"}
	adverbs      = []string{"slowly", "again", "often", "never", "quietly", "today", "together", "at last"}
)

type textGen struct{ r *rand.Rand }

func newTextGen(seed uint64) *textGen {
	return &textGen{r: rand.New(rand.NewPCG(seed, 0x636861726c6d))}
}

// pick favours early words: the square of a uniform draw.
func (g *textGen) pick(words []string) string {
	u := g.r.Float64()
	return words[int(u*u*float64(len(words)))]
}

func (g *textGen) phrase(b *strings.Builder) {
	b.WriteString(g.pick(determiners))
	if g.r.IntN(2) == 0 {
		b.WriteString(" " + g.pick(adjectives))
	}
	b.WriteString(" " + g.pick(nouns))
}

func (g *textGen) sentence(out *strings.Builder) {
	var b strings.Builder
	g.phrase(&b)
	b.WriteString(" " + g.pick(verbs) + " ")
	g.phrase(&b)
	if g.r.IntN(3) == 0 {
		b.WriteString(" " + g.pick(prepositions) + " ")
		g.phrase(&b)
	}
	if g.r.IntN(4) == 0 {
		b.WriteString(" " + g.pick(adverbs))
	}
	if g.r.IntN(5) == 0 {
		b.WriteString(", and ")
		g.phrase(&b)
		b.WriteString(" " + g.pick(verbs) + " it")
	}
	s := b.String()
	out.WriteString(strings.ToUpper(s[:1]) + s[1:])
	if g.r.IntN(6) == 0 {
		out.WriteString("?\n")
	} else {
		out.WriteString(". ")
	}
}

// text returns at least n bytes of pseudo-English.
func (g *textGen) text(n int) []byte {
	var b strings.Builder
	for b.Len() < n {
		g.sentence(&b)
	}
	return []byte(b.String())
}
