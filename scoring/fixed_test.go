package scoring

import (
	"math/rand/v2"
	"testing"
)

// The divider agrees with exact division to within one unit.
func TestDividerMatchesDivision(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 5))
	for range 200_000 {
		y := r.Uint64() >> (1 + r.IntN(63)) // below 2^63, as newScaledDivider requires
		if y == 0 {
			continue
		}
		x := y
		if r.IntN(4) != 0 {
			x = r.Uint64N(y + 1)
		}
		got, want := newDivider(y).div(x), ratio(x, y)
		if got > want || want-got > 1 {
			t.Fatalf("%d/%d: divider %d, exact %d", x, y, got, want)
		}
	}
}
