package charlm

import "math"

// naiveModel is the reference: Witten–Bell over string-keyed counts,
// written straight from the formula in the package doc.
type naiveModel struct {
	order  int
	counts map[string]int // k-gram → count, k = 1..order
}

func newNaiveModel(text []byte, order int) *naiveModel {
	m := &naiveModel{order: order, counts: map[string]int{}}
	for i := range text {
		for k := 1; k <= order && k <= i+1; k++ {
			m.counts[string(text[i+1-k:i+1])]++
		}
	}
	return m
}

func (m *naiveModel) prob(context []byte, x byte) float64 {
	if len(context) > m.order-1 {
		context = context[len(context)-(m.order-1):]
	}
	p := 1.0 / 256
	for k := 1; k <= len(context)+1; k++ {
		h := string(context[len(context)-(k-1):])
		total, distinct := 0, 0
		for y := range 256 {
			if n := m.counts[h+string([]byte{byte(y)})]; n > 0 {
				total += n
				distinct++
			}
		}
		if total == 0 {
			continue
		}
		c := float64(m.counts[h+string([]byte{x})])
		p = (c + float64(distinct)*p) / float64(total+distinct)
	}
	return p
}

// naiveEvaluator is the baseline evaluator of the benchmarks: the same
// formula with each context's total and distinct count kept in string-keyed
// maps, as a first implementation would.
type naiveEvaluator struct {
	*naiveModel
	total, distinct map[string]int
}

func newNaiveEvaluator(m *naiveModel) *naiveEvaluator {
	e := &naiveEvaluator{naiveModel: m, total: map[string]int{}, distinct: map[string]int{}}
	for g, n := range m.counts {
		e.total[g[:len(g)-1]] += n
		e.distinct[g[:len(g)-1]]++
	}
	return e
}

func (e *naiveEvaluator) loss(text []byte) float64 {
	sum := 0.0
	for i, x := range text {
		context := text[max(0, i-e.order+1):i]
		p := 1.0 / 256
		for k := 1; k <= len(context)+1; k++ {
			h := string(context[len(context)-(k-1):])
			total := e.total[h]
			if total == 0 {
				continue
			}
			d := float64(e.distinct[h])
			p = (float64(e.counts[h+string(x)]) + d*p) / (float64(total) + d)
		}
		sum -= math.Log2(p)
	}
	return sum / float64(len(text))
}
