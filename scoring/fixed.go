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

// divider divides many numerators by one denominator with a multiply and
// a shift instead of a 128-bit division per value: q = floor(x·R / 2^L)
// with R = floor(2^(60+L)/y) and L the bit length of y. For 0 <= x <= y
// the result is floor(x/y) in fixed point or one unit (2^-60) less —
// still integer arithmetic, identical on every machine.
type divider struct {
	r     uint64
	shift uint
}

func newDivider(y uint64) divider {
	if y == 0 {
		return divider{}
	}
	l := uint(bits.Len64(y))
	// 2^(60+l) as a 128-bit hi:lo; hi = 2^(l-4) < y.
	hi, lo := uint64(0), uint64(0)
	if e := fracBits + l; e >= 64 {
		hi = 1 << (e - 64)
	} else {
		lo = 1 << e
	}
	r, _ := bits.Div64(hi, lo, y)
	return divider{r: r, shift: l}
}

// div returns x/y for 0 <= x <= y (0 when y was 0).
func (d divider) div(x uint64) Fixed {
	hi, lo := bits.Mul64(x, d.r)
	if d.shift == 0 {
		return 0
	}
	return Fixed(hi<<(64-d.shift) | lo>>d.shift)
}
