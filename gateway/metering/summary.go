package metering

import (
	"cmp"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Totals sum a group of entries.
type Totals struct {
	Requests         int64 `json:"requests"`
	Failures         int64 `json:"failures"`
	PromptTokens     int64 `json:"prompt_tokens"`
	CompletionTokens int64 `json:"completion_tokens"`
	RequestBytes     int64 `json:"request_bytes"`
	ResponseBytes    int64 `json:"response_bytes"`
	// Receipts is how many entries hold a miner receipt.
	Receipts int64 `json:"receipts"`
	// LatencyP50 and LatencyP95 are nearest-rank percentiles of the
	// entries' latencies.
	LatencyP50 time.Duration `json:"latency_p50"`
	LatencyP95 time.Duration `json:"latency_p95"`
}

// Group is the totals of one key, one miner or one subnet.
type Group struct {
	// ID is the key ID, the miner's hotkey address ("" if no miner
	// answered), or the netuid in decimal.
	ID string `json:"id"`
	Totals
}

// Summary sums entries in total, per key, per miner and per subnet
// (groups sorted by ID; subnets by netuid).
type Summary struct {
	Total   Totals  `json:"total"`
	Keys    []Group `json:"keys"`
	Miners  []Group `json:"miners"`
	Subnets []Group `json:"subnets"`
}

// acc accumulates one group.
type acc struct {
	Totals
	latencies []time.Duration
}

func (a *acc) add(e Entry) {
	a.Requests++
	if Failed(e.Usage) {
		a.Failures++
	}
	a.PromptTokens = satAdd(a.PromptTokens, e.PromptTokens)
	a.CompletionTokens = satAdd(a.CompletionTokens, e.CompletionTokens)
	a.RequestBytes = satAdd(a.RequestBytes, e.RequestBytes)
	a.ResponseBytes = satAdd(a.ResponseBytes, e.ResponseBytes)
	if len(e.Receipt) > 0 {
		a.Receipts++
	}
	a.latencies = append(a.latencies, e.Latency)
}

func (a *acc) totals() Totals {
	t := a.Totals
	slices.Sort(a.latencies)
	t.LatencyP50, t.LatencyP95 = percentile(a.latencies, 50), percentile(a.latencies, 95)
	return t
}

// percentile is the nearest-rank p-th percentile of sorted durations (0
// for none): the smallest value with at least p% of them at or below it.
func percentile(sorted []time.Duration, p int) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 · n)
	return sorted[max(rank, 1)-1]
}

// Summarizer sums entries as they are scanned.
type Summarizer struct {
	total   acc
	keys    map[string]*acc
	miners  map[string]*acc
	subnets map[uint16]*acc
}

// NewSummarizer returns an empty Summarizer.
func NewSummarizer() *Summarizer {
	return &Summarizer{keys: map[string]*acc{}, miners: map[string]*acc{}, subnets: map[uint16]*acc{}}
}

// Add counts an entry.
func (s *Summarizer) Add(e Entry) {
	s.total.add(e)
	for _, g := range []struct {
		m  map[string]*acc
		id string
	}{{s.keys, e.KeyID}, {s.miners, e.Miner}} {
		a := g.m[g.id]
		if a == nil {
			a = &acc{}
			g.m[g.id] = a
		}
		a.add(e)
	}
	a := s.subnets[e.Netuid]
	if a == nil {
		a = &acc{}
		s.subnets[e.Netuid] = a
	}
	a.add(e)
}

// Summary returns the sums so far.
func (s *Summarizer) Summary() Summary {
	groups := func(m map[string]*acc) []Group {
		out := make([]Group, 0, len(m))
		for id, a := range m {
			out = append(out, Group{ID: id, Totals: a.totals()})
		}
		slices.SortFunc(out, func(a, b Group) int { return cmp.Compare(a.ID, b.ID) })
		return out
	}
	subnets := make([]Group, 0, len(s.subnets))
	for _, n := range slices.Sorted(maps.Keys(s.subnets)) {
		subnets = append(subnets, Group{ID: strconv.Itoa(int(n)), Totals: s.subnets[n].totals()})
	}
	return Summary{Total: s.total.totals(), Keys: groups(s.keys), Miners: groups(s.miners), Subnets: subnets}
}

// Summarize reads the entries the query selects and sums them.
func (l *Ledger) Summarize(q Query) (Summary, error) {
	s := NewSummarizer()
	err := l.Scan(q, func(e Entry) bool { s.Add(e); return true })
	return s.Summary(), err
}
