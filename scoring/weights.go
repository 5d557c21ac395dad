package scoring

import (
	"fmt"
	"math"
	"sort"
)

// This file is the validator's side: from the scores it measures to the
// weights it may set on chain, as Bittensor's process_weights_for_netuid
// does. It runs off-chain, in float64, deterministically for a given input.

// Scores keeps a validator's exponential moving average of each uid's
// score. When a uid changes hands (a new hotkey registers on it) its
// average restarts from zero.
type Scores struct {
	alpha   float64
	values  []float64
	holders []string
}

// NewScores returns an empty table; alpha in (0, 1] is the weight of a new
// observation.
func NewScores(alpha float64) (*Scores, error) {
	if !(alpha > 0 && alpha <= 1) {
		return nil, fmt.Errorf("scoring: moving-average alpha %v outside (0, 1]", alpha)
	}
	return &Scores{alpha: alpha}, nil
}

// Update folds score into uid's average. holder identifies who holds the
// uid (its hotkey); a different holder resets the average first.
func (s *Scores) Update(uid uint16, holder string, score float64) error {
	if math.IsNaN(score) || math.IsInf(score, 0) {
		return fmt.Errorf("%w: uid %d: %v", ErrNonFinite, uid, score)
	}
	s.grow(uid)
	if s.holders[uid] != holder {
		s.holders[uid], s.values[uid] = holder, 0
	}
	s.values[uid] = s.alpha*score + (1-s.alpha)*s.values[uid]
	return nil
}

// grow makes room for uid.
func (s *Scores) grow(uid uint16) {
	for int(uid) >= len(s.values) {
		s.values = append(s.values, 0)
		s.holders = append(s.holders, "")
	}
}

// Values returns the averages indexed by uid.
func (s *Scores) Values() []float64 { return append([]float64(nil), s.values...) }

// Holder returns who held uid when it was last updated.
func (s *Scores) Holder(uid uint16) string {
	if int(uid) < len(s.holders) {
		return s.holders[uid]
	}
	return ""
}

// ScoreEntry is one uid's moving average and who held the uid, as a
// validator persists its table across restarts.
type ScoreEntry struct {
	UID    uint16  `json:"uid"`
	Holder string  `json:"holder"`
	Value  float64 `json:"value"`
}

// Entries returns the table's rows that have a holder, by uid.
func (s *Scores) Entries() []ScoreEntry {
	var out []ScoreEntry
	for uid, h := range s.holders {
		if h != "" {
			out = append(out, ScoreEntry{UID: uint16(uid), Holder: h, Value: s.values[uid]})
		}
	}
	return out
}

// RestoreScores rebuilds a table from Entries. It rejects a uid listed
// twice, an empty holder and a value that is not finite.
func RestoreScores(alpha float64, entries []ScoreEntry) (*Scores, error) {
	s, err := NewScores(alpha)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		switch {
		case math.IsNaN(e.Value) || math.IsInf(e.Value, 0):
			return nil, fmt.Errorf("%w: uid %d: %v", ErrNonFinite, e.UID, e.Value)
		case e.Holder == "":
			return nil, fmt.Errorf("scoring: uid %d has no holder", e.UID)
		case int(e.UID) < len(s.holders) && s.holders[e.UID] != "":
			return nil, fmt.Errorf("scoring: uid %d listed twice", e.UID)
		}
		s.grow(e.UID)
		s.holders[e.UID], s.values[e.UID] = e.Holder, e.Value
	}
	return s, nil
}

// NormalizeMaxWeight scales x to sum 1 with no entry above limit, cutting
// the largest entries to a common cap and renormalizing (exactly, not by
// Bittensor's epsilon estimate). With n·limit <= 1 or an all-zero x the
// result is uniform.
func NormalizeMaxWeight(x []float64, limit float64) []float64 {
	n := len(x)
	out := make([]float64, n)
	if n == 0 {
		return out
	}
	var sum float64
	for _, v := range x {
		sum += v
	}
	if sum == 0 || float64(n)*limit <= 1 {
		for i := range out {
			out[i] = 1 / float64(n)
		}
		return out
	}
	sorted := append([]float64(nil), x...)
	sort.Sort(sort.Reverse(sort.Float64Slice(sorted)))
	// Cap the top k entries at c so that c / (k·c + rest) = limit, for the
	// smallest k whose cap stays at or above the next entry.
	cap := math.Inf(1)
	rest := sum
	for k := 0; k < n; k++ {
		if sorted[k]/(float64(k)*sorted[k]+rest) <= limit {
			break
		}
		rest -= sorted[k]
		c := limit * rest / (1 - limit*float64(k+1))
		if k+1 == n || c >= sorted[k+1] {
			cap = c
			break
		}
	}
	var total float64
	for i, v := range x {
		out[i] = math.Min(v, cap)
		total += out[i]
	}
	for i := range out {
		out[i] /= total
	}
	return out
}

// Process turns a validator's scores into the weights it may set, as
// process_weights_for_netuid does: non-finite and negative scores count as
// zero; with no positive score (or fewer neurons than min_allowed_weights)
// every one of the n uids gets 1/n; with fewer positive scores than
// minAllowed, or too few to stay under the cap, every uid gets a floor of
// 1e-5 so enough weights are set;
// otherwise the positive scores are kept. The result is normalized with
// no weight above maxWeightLimit (a share in (0, 1]).
func Process(scores []float64, minAllowed int, maxWeightLimit float64) (uids []uint16, weights []float64) {
	n := len(scores)
	clean := make([]float64, n)
	var positive []int
	for i, v := range scores {
		if v > 0 && !math.IsInf(v, 0) && !math.IsNaN(v) {
			clean[i] = v
			positive = append(positive, i)
		}
	}
	all := func() []uint16 {
		u := make([]uint16, n)
		for i := range u {
			u[i] = uint16(i)
		}
		return u
	}
	switch {
	case n == 0:
		return nil, nil
	case len(positive) == 0 || n < minAllowed:
		w := make([]float64, n)
		for i := range w {
			w[i] = 1 / float64(n)
		}
		return all(), w
	case len(positive) < minAllowed || float64(len(positive))*maxWeightLimit < 1:
		// Too few positive scores to set enough weights, or to respect the
		// cap: spread a floor over every uid.
		w := make([]float64, n)
		for i := range w {
			w[i] = 1e-5 + clean[i]
		}
		return all(), NormalizeMaxWeight(w, maxWeightLimit)
	default:
		u := make([]uint16, len(positive))
		w := make([]float64, len(positive))
		for k, i := range positive {
			u[k], w[k] = uint16(i), clean[i]
		}
		return u, NormalizeMaxWeight(w, maxWeightLimit)
	}
}

// ToU16 converts weights to the chain's form: scaled so the largest is
// 65535, rounded to nearest, zeros dropped (convert_weights_and_uids_for_emit).
func ToU16(uids []uint16, weights []float64) ([]uint16, []uint16, error) {
	if len(uids) != len(weights) {
		return nil, nil, fmt.Errorf("scoring: %d uids, %d weights", len(uids), len(weights))
	}
	var max float64
	for i, w := range weights {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return nil, nil, fmt.Errorf("scoring: weight %d is %v", i, w)
		}
		max = math.Max(max, w)
	}
	if max == 0 {
		return nil, nil, nil
	}
	var ou, ov []uint16
	for i, w := range weights {
		if v := math.Round(w / max * 65535); v != 0 {
			ou, ov = append(ou, uids[i]), append(ov, uint16(v))
		}
	}
	return ou, ov, nil
}

// FromU16 is the inverse of ToU16: the normalized row of n uids.
func FromU16(n int, uids, values []uint16) []float64 {
	row := make([]float64, n)
	var sum float64
	for i, u := range uids {
		if int(u) < n && i < len(values) {
			row[u] = float64(values[i])
			sum += float64(values[i])
		}
	}
	if sum > 0 {
		for i := range row {
			row[i] /= sum
		}
	}
	return row
}

// ChainAcceptsMax reports whether the chain's max_weight_limit check
// accepts u16 values: the largest share of the sum must not exceed
// limit/65535, compared exactly.
func ChainAcceptsMax(values []uint16, limit uint16) bool {
	if limit == 65535 || len(values) <= 1 {
		return true
	}
	var sum, max uint64
	for _, v := range values {
		sum += uint64(v)
		if uint64(v) > max {
			max = uint64(v)
		}
	}
	return sum == 0 || max*65535 <= uint64(limit)*sum
}

// LegalWeights is the whole path from scores to a set_weights payload: it
// processes the scores for the subnet's min_allowed_weights and
// max_weight_limit (u16, as the chain stores it) and converts to u16,
// tightening the cap if rounding would break the chain's limit.
func LegalWeights(scores []float64, minAllowed int, maxWeightLimit uint16) ([]uint16, []uint16, error) {
	limit := float64(maxWeightLimit) / 65535
	for try := 0; try < 64; try++ {
		uids, w := Process(scores, minAllowed, limit)
		u, v, err := ToU16(uids, w)
		if err != nil {
			return nil, nil, err
		}
		if ChainAcceptsMax(v, maxWeightLimit) {
			return u, v, nil
		}
		limit -= 1.0 / 65535
		if limit <= 0 {
			break
		}
	}
	return nil, nil, fmt.Errorf("scoring: cannot meet max_weight_limit %d with %d uids", maxWeightLimit, len(scores))
}
