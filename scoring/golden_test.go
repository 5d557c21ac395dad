package scoring

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// hashOut writes every field of y, in a fixed order, to h.
func hashOut(h interface{ Write([]byte) (int, error) }, y *Output) {
	var b [8]byte
	w := func(x uint64) { binary.LittleEndian.PutUint64(b[:], x); h.Write(b[:]) }
	for i := range y.Active {
		w(uint64(oneIf(y.Active[i])) | uint64(oneIf(y.ValidatorPermit[i]))<<1)
		for _, v := range []Fixed{y.Ranks[i], y.Trust[i], y.Consensus[i], y.Incentive[i], y.Dividends[i], y.ValidatorTrust[i], y.Combined[i]} {
			w(uint64(v))
		}
		w(y.Emission[i])
		w(y.ServerEmission[i])
		w(y.ValidatorEmission[i])
		w(uint64(len(y.Bonds[i])))
		for _, e := range y.Bonds[i] {
			w(uint64(e.UID)<<16 | uint64(e.Value))
		}
	}
}

// goldenHash is the SHA-256 of every output field of the epochs of
// TestEpochBitsUnchanged, as the code computed them when the test was
// written (commit 03c7202 and since): a change of any bit of any result
// changes it. Change it only with a change of the spec's arithmetic.
const goldenHash = "c51bc75c2d3b24097501e36d56b658b8a8bcea190e70cc89a7e2125a7766872a"

// The epoch's results stay the same bits, on random dense, masked,
// sparse, multi-block, ρ < 1 and κ inputs, as the code is optimized.
func TestEpochBitsUnchanged(t *testing.T) {
	h := sha256.New()
	r := rand.New(rand.NewPCG(7, 8))
	var ins []*Input
	for run := range 12 {
		in := largeEpochInput(r, 200+r.IntN(1400), 16+r.IntN(64))
		in.Params.BondsPenalty = []uint64{65535, 20000, 0}[run%3]
		in.Params.Kappa = uint64(r.IntN(65536))
		ins = append(ins, in)
	}
	for run := range 12 {
		in := denseEpochInput(r, 64+r.IntN(1200), 8+r.IntN(60), run%2 == 1)
		in.Params.BondsPenalty = []uint64{65535, 30000, 65535}[run%3]
		if run%4 == 0 {
			in.Params.MaxAllowedValidators = uint64(len(in.Neurons))
		}
		ins = append(ins, in)
	}
	ins = append(ins, denseInput(256, 64), denseInput(4096, 64), denseInput(5000, 70))
	for _, in := range ins {
		y, err := Epoch(in)
		if err != nil {
			t.Fatal(err)
		}
		hashOut(h, y)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != goldenHash {
		t.Fatalf("results changed: hash %s, want %s", got, goldenHash)
	}
}
