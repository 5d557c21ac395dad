package scoring

import (
	"math/rand/v2"
	"testing"
)

// Dense rows (n weights, n bonds) with one bad uid, in the weights or in
// the bonds: Epoch fails with the error Validate gives, and dense rows
// that are valid run.
func TestEpochChecksDenseRows(t *testing.T) {
	r := rand.New(rand.NewPCG(57, 58))
	for run := range 200 {
		n, v := 2+r.IntN(100), 1+r.IntN(8)
		v = min(v, n)
		in := denseInput(n, v)
		if run%4 != 0 {
			rows := in.Weights
			if run%2 == 1 {
				rows = in.Bonds
			}
			row := rows[r.IntN(v)]
			k := r.IntN(n)
			switch run % 3 {
			case 0:
				row[k].UID = uint16(n + r.IntN(3)) // out of range
			case 1:
				row[k].UID = row[(k+1)%n].UID // repeated or out of order
			default:
				row[k].UID ^= 1 << r.IntN(4)
			}
		}
		want := in.Validate()
		_, err := Epoch(in)
		switch {
		case want == nil && err != nil:
			t.Fatalf("run %d: valid input fails: %v", run, err)
		case want != nil && (err == nil || err.Error() != want.Error()):
			t.Fatalf("run %d: error %v, Validate gives %v", run, err, want)
		}
	}
}
