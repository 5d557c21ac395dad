package charlm

import (
	"bytes"
	"context"
	"testing"
)

// The benchmarks train an order-5 model (the default) on 1 MiB of
// pseudo-English and evaluate it on another 1 MiB, against a naive
// baseline over string-keyed maps in the same run:
//
//	go test ./model/charlm -run '^$' -bench 'Train|Loss' -benchtime 5x -count 3
const benchOrder, benchBytes = 5, 1 << 20

func BenchmarkTrain(b *testing.B) {
	text := newTextGen(100).text(benchBytes)[:benchBytes]
	b.Run("charlm", func(b *testing.B) {
		cfg := DefaultTrainConfig()
		cfg.Order = benchOrder
		b.SetBytes(benchBytes)
		for b.Loop() {
			if _, err := Train(context.Background(), bytes.NewReader(text), cfg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("naive-map-string", func(b *testing.B) {
		b.SetBytes(benchBytes)
		for b.Loop() {
			newNaiveModel(text, benchOrder)
		}
	})
}

func BenchmarkLoss(b *testing.B) {
	text := newTextGen(100).text(benchBytes)[:benchBytes]
	held := newTextGen(101).text(benchBytes)[:benchBytes]
	b.Run("charlm", func(b *testing.B) {
		m := train(b, text, benchOrder)
		b.SetBytes(benchBytes)
		var bits float64
		for b.Loop() {
			var err error
			if bits, err = m.Loss(context.Background(), held); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(bits, "bits/byte")
	})
	b.Run("naive-map-string", func(b *testing.B) {
		e := newNaiveEvaluator(newNaiveModel(text, benchOrder))
		b.SetBytes(benchBytes)
		var bits float64
		for b.Loop() {
			bits = e.loss(held)
		}
		b.ReportMetric(bits, "bits/byte")
	})
}

// The naive evaluator computes the same loss (a check on the baseline).
func TestNaiveEvaluatorAgrees(t *testing.T) {
	text := newTextGen(102).text(20_000)
	held := newTextGen(103).text(2_000)
	m := train(t, text, benchOrder)
	got, want := loss(t, m, held), newNaiveEvaluator(newNaiveModel(text, benchOrder)).loss(held)
	if d := got - want; d > 1e-12 || d < -1e-12 {
		t.Errorf("charlm loss %v, naive %v", got, want)
	}
}
