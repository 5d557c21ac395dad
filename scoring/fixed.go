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
