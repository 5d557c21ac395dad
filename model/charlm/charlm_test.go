package charlm

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"testing"
	"testing/iotest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func corpus(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/corpus.txt")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func train(t testing.TB, text []byte, order int) *Model {
	t.Helper()
	cfg := DefaultTestTrainConfig()
	cfg.Order = order
	m, err := Train(context.Background(), bytes.NewReader(text), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loss(t testing.TB, m *Model, text []byte) float64 {
	t.Helper()
	l, err := m.Loss(context.Background(), text)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// randomModel has random tables (sparse and dense counts, any bytes), as
// a hostile peer could send.
func randomModel(r *rand.Rand, order int) *Model {
	var grams [MaxOrder + 1]map[uint64]uint32
	for k := 1; k <= order; k++ {
		grams[k] = map[uint64]uint32{}
		for range r.IntN(300) {
			// Few distinct bytes, so contexts repeat.
			var g uint64
			for range k {
				g = g<<8 | uint64(r.IntN(4)+'a')
			}
			n := uint32(r.IntN(10) + 1)
			if r.IntN(20) == 0 {
				n = math.MaxUint32 - uint32(r.IntN(3))
			}
			grams[k][g] = n
		}
	}
	return newModel(order, tablesFromCounts(order, &grams), Card{Name: "random", TrainerVersion: "test"})
}

// Every context gets a distribution summing to 1 within 1e-9, with no
// byte at 0: models trained on text, at every order, and random tables.
func TestDistributionSumsToOne(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	text := newTextGen(3).text(20_000)
	var models []*Model
	for order := 1; order <= MaxOrder; order++ {
		models = append(models, train(t, text, order), randomModel(r, order))
	}
	for _, m := range models {
		for i := range 200 {
			var ctx []byte
			switch i % 3 {
			case 0: // a context from the text
				at := r.IntN(len(text) - MaxOrder)
				ctx = text[at : at+r.IntN(MaxOrder)]
			case 1: // seen bytes in unseen order
				for range r.IntN(MaxOrder + 2) {
					ctx = append(ctx, byte(r.IntN(4)+'a'))
				}
			default: // any bytes
				for range r.IntN(MaxOrder + 2) {
					ctx = append(ctx, byte(r.Uint32()))
				}
			}
			d := m.Distribution(ctx)
			sum := 0.0
			for x, p := range d {
				if !(p > 0) || p > 1 {
					t.Fatalf("order %d %q: P(%q) = %v", m.Order(), ctx, byte(x), p)
				}
				sum += p
			}
			if math.Abs(sum-1) > 1e-9 {
				t.Fatalf("order %d (%s) context %q: probabilities sum to %.15f", m.Order(), m.Card().Name, ctx, sum)
			}
		}
	}
}

// The fast model gives the probabilities of a naive Witten–Bell model
// over string-keyed maps.
func TestProbMatchesNaiveReference(t *testing.T) {
	text := newTextGen(4).text(30_000)
	held := newTextGen(5).text(2_000)
	for _, order := range []int{1, 2, 3, 5, 8} {
		m := train(t, text, order)
		ref := newNaiveModel(text, order)
		if !m.suffixClosed {
			t.Fatalf("order %d: a model trained without pruning is not suffix-closed", order)
		}
		open := *m
		open.suffixClosed = false
		for i := range held {
			ctx := held[max(0, i-order+1):i]
			got, want := m.Prob(ctx, held[i]), ref.prob(ctx, held[i])
			if math.Abs(got-want) > 1e-12*want {
				t.Fatalf("order %d P(%q | %q) = %v, naive %v", order, held[i], ctx, got, want)
			}
			// Stopping at the first unseen context changes nothing.
			if got2 := open.Prob(ctx, held[i]); got2 != got {
				t.Fatalf("order %d P(%q | %q) = %v stopping at the first unseen context, %v without", order, held[i], ctx, got, got2)
			}
		}
	}
}

// A model trained on 4× the text of the same source has strictly lower
// held-out loss: pseudo-English at orders 2 to 6, the test corpus at 1 to
// 4.
func TestMoreDataLowerLoss(t *testing.T) {
	source := newTextGen(6).text(160_000)
	held := newTextGen(7).text(20_000)
	for order := 2; order <= 6; order++ {
		small := loss(t, train(t, source[:40_000], order), held)
		large := loss(t, train(t, source, order), held)
		t.Logf("order %d: 40 kB %.4f bits/byte, 160 kB %.4f", order, small, large)
		if !(large < small) {
			t.Errorf("order %d: 160 kB of text gives %.4f bits/byte, not below 40 kB's %.4f", order, large, small)
		}
	}
	// Natural text: the test corpus's first 4/5 against its first 1/5,
	// held out on its last 1/5.
	c := corpus(t)
	fifth := len(c) / 5
	for order := 1; order <= 4; order++ {
		small := loss(t, train(t, c[:fifth], order), c[4*fifth:])
		large := loss(t, train(t, c[:4*fifth], order), c[4*fifth:])
		t.Logf("corpus order %d: %d bytes %.4f bits/byte, %d bytes %.4f", order, fifth, small, 4*fifth, large)
		if !(large < small) {
			t.Errorf("corpus order %d: 4× the text gives %.4f bits/byte, not below %.4f", order, large, small)
		}
	}
}

// On natural text (testdata/corpus.txt, last fifth held out) and on
// pseudo-English, order 4 beats order 1.
func TestHigherOrderLowerLoss(t *testing.T) {
	c := corpus(t)
	cut := len(c) * 4 / 5
	gen := newTextGen(8).text(100_000)
	for _, tc := range []struct {
		name        string
		train, held []byte
	}{
		{"corpus", c[:cut], c[cut:]},
		{"generated", gen, newTextGen(9).text(10_000)},
	} {
		var losses [5]float64
		for order := 1; order <= 4; order++ {
			losses[order] = loss(t, train(t, tc.train, order), tc.held)
		}
		t.Logf("%s: orders 1-4: %.3f %.3f %.3f %.3f bits/byte", tc.name, losses[1], losses[2], losses[3], losses[4])
		if !(losses[4] < losses[1]) {
			t.Errorf("%s: order 4 %.4f bits/byte, not below order 1's %.4f", tc.name, losses[4], losses[1])
		}
		if losses[1] > 8 || losses[4] < 0.5 {
			t.Errorf("%s: losses %v outside what a byte model can give on English", tc.name, losses[1:])
		}
	}
}

// Loss is the mean of -log2 P over the text, summed in text order.
func TestLossIsMeanCrossEntropyInBits(t *testing.T) {
	text := newTextGen(10).text(5_000)
	held := []byte("The quiet miner opens the old ledger. Zebra!")
	for _, order := range []int{1, 3, 7} {
		m := train(t, text, order)
		sum := 0.0
		for i := range held {
			sum -= math.Log2(m.Prob(held[:i], held[i]))
		}
		if got, want := loss(t, m, held), sum/float64(len(held)); got != want {
			t.Errorf("order %d: Loss %v, the mean of -log2 P in order is %v", order, got, want)
		}
	}
	// A model of one zero byte gives every other byte (0 + 1·1/256)/(1+1):
	// 9 bits.
	m := train(t, []byte{0}, 1)
	if l := loss(t, m, []byte("abc")); l != 9 {
		t.Errorf("a model of one zero byte gives %v bits/byte on unseen bytes, want 9", l)
	}
}

// The same text and config give a byte-identical artifact however the
// reader splits it, with or without pruning; this pins the bytes too.
func TestTrainDeterministic(t *testing.T) {
	text := newTextGen(11).text(200_000)
	for _, tc := range []struct {
		name       string
		order      int
		maxEntries int
	}{
		{"order 3", 3, 1 << 16},
		{"order 6 pruned", 6, 4096},
	} {
		var first []byte
		for i, r := range []io.Reader{
			bytes.NewReader(text),
			iotest.OneByteReader(bytes.NewReader(text)),
			iotest.HalfReader(bytes.NewReader(text)),
			iotest.DataErrReader(bytes.NewReader(text)),
		} {
			cfg := DefaultTestTrainConfig()
			cfg.Order, cfg.MaxEntries = tc.order, tc.maxEntries
			m, err := Train(context.Background(), r, cfg)
			if err != nil {
				t.Fatal(err)
			}
			b := m.Encode()
			if i == 0 {
				first = b
				continue
			}
			if !bytes.Equal(b, first) {
				t.Errorf("%s: reader %d gives another artifact", tc.name, i)
			}
		}
		t.Logf("%s: artifact sha256 %x, %d bytes", tc.name, sha256.Sum256(first), len(first))
	}
	// Golden: the artifact of the test corpus at order 3 (a change here is
	// a change of the trainer or the format).
	b := train(t, corpus(t), 3).Encode()
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); got != goldenCorpusOrder3 {
		t.Errorf("corpus order 3 artifact sha256 %s, want %s", got, goldenCorpusOrder3)
	}
}

const goldenCorpusOrder3 = "5f02ff09878dcca9f27acc0f2c14ba44fa3306ea50eca6c61ec51e56d7b25fa1"

// Pruning keeps the tables within MaxEntries, records its threshold, and
// the pruned model is still a distribution that beats a smaller order.
func TestPruningBoundsEntries(t *testing.T) {
	text := newTextGen(12).text(300_000)
	held := newTextGen(13).text(10_000)
	cfg := DefaultTestTrainConfig()
	cfg.Order, cfg.MaxEntries = 6, 2048
	m, err := Train(context.Background(), bytes.NewReader(text), cfg)
	if err != nil {
		t.Fatal(err)
	}
	full := train(t, text, 6)
	if m.Entries() > cfg.MaxEntries || m.Card().PruneThreshold == 0 || full.Card().PruneThreshold != 0 {
		t.Fatalf("pruned model: %d entries (max %d), threshold %d; unpruned threshold %d",
			m.Entries(), cfg.MaxEntries, m.Card().PruneThreshold, full.Card().PruneThreshold)
	}
	d := m.Distribution([]byte("the mi"))
	sum := 0.0
	for _, p := range d {
		sum += p
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("pruned model's distribution sums to %v", sum)
	}
	lp, lf, l1 := loss(t, m, held), loss(t, full, held), loss(t, train(t, text, 1), held)
	t.Logf("order 6: pruned to %d entries %.4f bits/byte, %d entries %.4f; order 1 %.4f", m.Entries(), lp, full.Entries(), lf, l1)
	if !(lf <= lp && lp < l1) {
		t.Errorf("pruned %.4f, unpruned %.4f, order 1 %.4f: want unpruned ≤ pruned < order 1", lp, lf, l1)
	}
}

func TestTrainErrors(t *testing.T) {
	ctx := context.Background()
	text := []byte("some text")
	for _, tc := range []struct {
		name string
		edit func(*TrainConfig)
	}{
		{"order 0", func(c *TrainConfig) { c.Order = 0 }},
		{"order 9", func(c *TrainConfig) { c.Order = 9 }},
		{"few entries", func(c *TrainConfig) { c.MaxEntries = 100 }},
		{"too many entries", func(c *TrainConfig) { c.MaxEntries = DefaultLimits().MaxEntries + 1 }},
		{"negative max bytes", func(c *TrainConfig) { c.MaxBytes = -1 }},
		{"long name", func(c *TrainConfig) { c.Name = string(make([]byte, 129)) }},
		{"name not UTF-8", func(c *TrainConfig) { c.Name = "\xff" }},
		{"CID with a space", func(c *TrainConfig) { c.DataCID = "bafy x" }},
	} {
		cfg := DefaultTestTrainConfig()
		tc.edit(&cfg)
		if _, err := Train(ctx, bytes.NewReader(text), cfg); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: %v, want ErrBadConfig", tc.name, err)
		}
	}
	if _, err := Train(ctx, bytes.NewReader(nil), DefaultTestTrainConfig()); !errors.Is(err, ErrNoData) {
		t.Errorf("empty text: %v", err)
	}
	boom := errors.New("disk on fire")
	if _, err := Train(ctx, iotest.ErrReader(boom), DefaultTestTrainConfig()); !errors.Is(err, boom) {
		t.Errorf("reader error: %v", err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Train(cancelled, bytes.NewReader(text), DefaultTestTrainConfig()); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	m := train(t, text, 2)
	if _, err := m.Loss(cancelled, text); !errors.Is(err, context.Canceled) {
		t.Errorf("Loss cancelled: %v", err)
	}
	if _, err := m.Loss(ctx, nil); !errors.Is(err, ErrNoData) {
		t.Errorf("Loss of nothing: %v", err)
	}
	// MaxBytes: only the first bytes are read, and the card says so.
	cfg := DefaultTestTrainConfig()
	cfg.MaxBytes = 4
	m, err := Train(ctx, bytes.NewReader(text), cfg)
	if err != nil || m.Card().TrainingBytes != 4 || m.Card().Name != "charlm-o4" || m.Card().TrainerVersion != TrainerVersion {
		t.Errorf("MaxBytes 4: %+v, %v", m.Card(), err)
	}
}
