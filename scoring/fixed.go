package scoring

import "math/bits"

// Fixed is a fixed-point number with 60 fractional bits, holding values in
// [0, 16). Every operation truncates and uses 128-bit intermediates, so
// results are the same bits on every CPU (no floating point, no fused
// multiply-add).
type Fixed uint64

const (
	fracBits = 60
	// One is 1.0.
	One Fixed = 1 << fracBits
)

// Float64 converts to float64 (for output only; the conversion is exact up
// to float64 rounding and identical everywhere).
func (x Fixed) Float64() float64 { return float64(x) / float64(One) }

// Float64s converts a vector for output.
func Float64s(v []Fixed) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = x.Float64()
	}
	return out
}

// U16 quantizes a value in [0, 1] to floor(x·65535).
func (x Fixed) U16() uint16 {
	v := scale(x, 65535)
	if v > 65535 {
		return 65535
	}
	return uint16(v)
}

// mul returns floor(a·b) for a result below 16.
func mul(a, b Fixed) Fixed {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return Fixed(hi<<(64-fracBits) | lo>>fracBits)
}

// ratio returns floor(x/y) in fixed point for x/y < 16, where x and y are
// integers or fixed-point values of one scale; 0 when y is 0.
func ratio(x, y uint64) Fixed {
	if y == 0 {
		return 0
	}
	hi, lo := x>>(64-fracBits), x<<fracBits
	if hi >= y {
		return ^Fixed(0) // does not fit; never reached for ratios below 16
	}
	q, _ := bits.Div64(hi, lo, y)
	return Fixed(q)
}

// scale returns floor(x·amount) for x in [0, 1].
func scale(x Fixed, amount uint64) uint64 {
	hi, lo := bits.Mul64(uint64(x), amount)
	return hi<<(64-fracBits) | lo>>fracBits
}

// normalize divides each value by the sum in place; all zero stays zero.
func normalize(v []Fixed) {
	var sum uint64
	for _, x := range v {
		sum += uint64(x)
	}
	if sum == 0 {
		return
	}
	for i, x := range v {
		v[i] = ratio(uint64(x), sum)
	}
}

// Share returns x/y for 0 <= x <= y (0 when y is 0).
func Share(x, y Fixed) Fixed { return ratio(uint64(x), uint64(y)) }

// divider computes x·c/y for many x in 0..y with one multiply and a
// shift instead of a 128-bit division each: q = floor(x·R / 2^L) with
// R = floor(c·2^L / y) and L the bit length of y. The result is
// floor(x·c/y) or one or two units less — still integer arithmetic,
// identical on every machine. The zero divider (y = 0) gives 0.
type divider struct {
	r uint64
	// pre is 64−L: as x <= y < 2^L, x<<pre fits 64 bits and
	// floor(x·R / 2^L) is the high word of (x<<pre)·R. Shifting x
	// left costs less than shifting the 128-bit product right.
	pre uint
}

// newDivider divides by y: div(x) is x/y in fixed point.
func newDivider(y uint64) divider { return newScaledDivider(uint64(One), y) }

// newScaledDivider multiplies by c/y: div(x) is x·c/y in the units of c,
// for c <= 2^61 and y < 2^63 (every sum the epoch divides by is below
// 2^62).
func newScaledDivider(c, y uint64) divider {
	if y == 0 || y >= 1<<63 {
		return divider{}
	}
	l := uint(bits.Len64(y))
	// c·2^l as a 128-bit hi:lo; hi <= 2^(l-3) < y since y >= 2^(l-1).
	hi, lo := bits.Mul64(c, 1<<(l-1))
	hi, lo = hi<<1|lo>>63, lo<<1
	r, _ := bits.Div64(hi, lo, y)
	return divider{r: r, pre: 64 - l}
}

// div returns x·c/y (see divider) for 0 <= x <= y.
func (d divider) div(x uint64) Fixed {
	// pre is 1..63, or 0 for the zero divider, whose r is 0: masking the
	// shift only tells the compiler it is below 64.
	hi, _ := bits.Mul64(x<<(d.pre&63), d.r)
	return Fixed(hi)
}
