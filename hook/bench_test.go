package hook

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkExecCall measures calls per second through a trivial persistent
// judge (the test binary answering {"score":1} to each line), with 1, 2
// and 4 processes, one call at a time per process (pipeline=1) or up to 8
// in flight, as many callers as calls fit. The target is 5,000
// judged answers/s on 2 cores.
func BenchmarkExecCall(b *testing.B) {
	req := []byte(`{"bench":1,"task":{"request":{"text":"Summarize the history of the printing press in one sentence."},"expected":null},"answer":"Gutenberg's movable type spread literacy across Europe.","synapse":"summarize.v1"}`)
	for _, c := range []struct{ conc, pipeline int }{{1, 1}, {2, 1}, {4, 1}, {1, 8}, {2, 8}, {4, 8}} {
		conc := c.conc
		b.Run(fmt.Sprintf("concurrency=%d/pipeline=%d", conc, c.pipeline), func(b *testing.B) {
			cfg := testConfig(b, nil, "serve")
			cfg.Limits.Concurrency = conc
			cfg.Limits.Pipeline = c.pipeline
			e, err := StartExec(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer e.Close()
			ctx := context.Background()
			// Start the processes before timing.
			var wg sync.WaitGroup
			for range conc {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := e.Call(ctx, []byte(`{"sleep":50}`)); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			var left atomic.Int64
			left.Store(int64(b.N))
			b.ResetTimer()
			start := time.Now()
			for range conc * c.pipeline {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for left.Add(-1) >= 0 {
						if _, err := e.Call(ctx, req); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}
