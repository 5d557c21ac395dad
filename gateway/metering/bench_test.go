package metering

import (
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkLedgerRecord measures Record (each returning after its fsynced
// commit): alone, and from 64 concurrent requests sharing commits.
func BenchmarkLedgerRecord(b *testing.B) {
	for _, tc := range []struct {
		name  string
		delay time.Duration
		par   int
	}{{"serial", 0, 1}, {"parallel64-nobatch", 0, 64}, {"parallel64-batch2ms", 2 * time.Millisecond, 64}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testLedgerConfig()
			cfg.BatchDelay = tc.delay
			l, err := OpenLedger(filepath.Join(b.TempDir(), "usage.db"), cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()
			var n atomic.Int64
			record := func() {
				i := n.Add(1)
				u := usage(int(i % 1000))
				u.RequestID = fmt.Sprint("b", i)
				if err := l.Record(u); err != nil {
					b.Error(err)
				}
			}
			b.SetParallelism(tc.par)
			if tc.par == 1 {
				for b.Loop() {
					record()
				}
				return
			}
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					record()
				}
			})
		})
	}
}

// BenchmarkAuthenticate measures the constant-time scan over every key.
func BenchmarkAuthenticate(b *testing.B) {
	for _, n := range []int{1, 100, MaxKeys} {
		b.Run(fmt.Sprint(n, "keys"), func(b *testing.B) {
			s := &KeyStore{cfg: DefaultKeyStoreConfig()}
			s.cfg.ReloadEvery = 0
			for i := range n {
				s.keys = append(s.keys, Key{ID: fmt.Sprint("k", i), hash: secretHash(fmt.Sprint("secret", i))})
			}
			want := fmt.Sprint("secret", n-1)
			for b.Loop() {
				if _, ok := s.Authenticate(want); !ok {
					b.Fatal("refused")
				}
			}
		})
	}
}
