package scoring

import (
	"math/rand/v2"
	"testing"
)

// Dense rows (n weights, n bonds) with one bad uid, in the weights or in
// the bonds, with and without another validator's sparse row or a lost
// permit, and a bond holder's rows out of order: Epoch fails with the
// error Validate gives, and valid rows run.
func TestEpochChecksDenseRows(t *testing.T) {
	r := rand.New(rand.NewPCG(57, 58))
	for run := range 200 {
		n, v := 2+r.IntN(100), 1+r.IntN(8)
		v = min(v, n)
		in := denseInput(n, v)
		if run%3 == 2 && v >= 2 { // one validator loses its permit: the general path
			in.Params.MaxAllowedValidators = uint64(v - 1)
		}
		bad := r.IntN(v)
		if run%5 >= 3 && v >= 2 {
			// Another validator's sparse row: not every column gathers
			// from every source.
			o := (bad + 1 + r.IntN(v-1)) % v
			gap := r.IntN(n)
			in.Weights[o] = append(in.Weights[o][:gap:gap], in.Weights[o][gap+1:]...)
		}
		if run%4 != 0 {
			rows := in.Weights
			if run%2 == 1 {
				rows = in.Bonds
			}
			row := rows[bad]
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
		if run%6 == 5 && v < n { // a bond holder without a permit, out of order
			in.Bonds[v] = []Entry{{UID: 1, Value: 5}, {UID: 0, Value: 5}}
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
