package metering

import (
	"testing"
	"time"
)

// limitTable is a LimitSource backed by a map.
type limitTable map[string]Limits

func (m limitTable) Limits(id string) (Limits, bool) {
	l, ok := m[id]
	return l, ok
}

// step is one call on a limiter: Allow (tokens == 0) or ChargeTokens.
type step struct {
	at     time.Duration // after the test's start
	cost   int64
	tokens int64 // > 0: ChargeTokens(tokens) instead of Allow
	ok     bool
	retry  time.Duration
}

func TestLimiterTable(t *testing.T) {
	// 10:00 UTC, so midnight is 14h away.
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	toMidnight := 14 * time.Hour
	ms := time.Millisecond
	for _, tc := range []struct {
		name  string
		lim   Limits
		steps []step
	}{
		{"no limits", Limits{}, []step{
			{at: 0, cost: 1, ok: true}, {at: 0, cost: 1000, ok: true}, {at: 0, cost: 1, ok: true},
		}},
		{"burst then refill at the rate", Limits{RPS: 10, Burst: 3}, []step{
			{at: 0, cost: 1, ok: true}, {at: 0, cost: 1, ok: true}, {at: 0, cost: 1, ok: true},
			// The bucket is empty: one more needs 100 ms of refill.
			{at: 0, cost: 1, retry: 100 * ms},
			{at: 99 * ms, cost: 1, retry: 1 * ms},
			{at: 100 * ms, cost: 1, ok: true},
			{at: 100 * ms, cost: 1, retry: 100 * ms},
			// A cost of 2 needs two intervals more.
			{at: 100 * ms, cost: 2, retry: 200 * ms},
			// After a long pause the bucket is full again, but no fuller.
			{at: 10 * time.Second, cost: 3, ok: true},
			{at: 10 * time.Second, cost: 1, retry: 100 * ms},
		}},
		{"burst edge: exactly burst passes, burst+1 never", Limits{RPS: 1, Burst: 5}, []step{
			{at: 0, cost: 6, retry: RetryNever},
			{at: 0, cost: 5, ok: true},
			{at: 0, cost: 5, retry: 5 * time.Second},
			{at: 4999 * ms, cost: 5, retry: ms},
			{at: 5 * time.Second, cost: 5, ok: true},
		}},
		{"refusals charge nothing", Limits{RPS: 2, Burst: 1}, []step{
			{at: 0, cost: 1, ok: true},
			{at: 0, cost: 1, retry: 500 * ms},
			{at: 0, cost: 1, retry: 500 * ms},
			{at: 250 * ms, cost: 1, retry: 250 * ms},
			{at: 500 * ms, cost: 1, ok: true},
		}},
		{"fractional rate", Limits{RPS: 0.5, Burst: 1}, []step{
			{at: 0, cost: 1, ok: true},
			{at: time.Second, cost: 1, retry: time.Second},
			{at: 2 * time.Second, cost: 1, ok: true},
		}},
		{"daily requests until midnight", Limits{DailyRequests: 3}, []step{
			{at: 0, cost: 2, ok: true},
			{at: time.Hour, cost: 2, retry: toMidnight - time.Hour},
			{at: time.Hour, cost: 1, ok: true},
			{at: 2 * time.Hour, cost: 1, retry: toMidnight - 2*time.Hour},
			{at: 0, cost: 4, retry: RetryNever},
			// One nanosecond before midnight: still refused, for 1 ns.
			{at: toMidnight - 1, cost: 1, retry: 1},
			// Day rollover: a fresh quota at 00:00:00 UTC.
			{at: toMidnight, cost: 3, ok: true},
			{at: toMidnight, cost: 1, retry: 24 * time.Hour},
		}},
		{"quota and rate: the later wait wins", Limits{RPS: 1, Burst: 2, DailyRequests: 2}, []step{
			{at: toMidnight - 1500*ms, cost: 2, ok: true},
			// Both refuse; the quota resets in 1.5 s, the bucket has room
			// in 1 s: 1.5 s.
			{at: toMidnight - 1500*ms, cost: 1, retry: 1500 * ms},
			// Across midnight the counters reset, the bucket does not.
			{at: toMidnight, cost: 2, retry: 500 * ms},
			{at: toMidnight, cost: 1, ok: true},
		}},
		{"rate wait longer than the quota's", Limits{RPS: 0.001, Burst: 1, DailyRequests: 1}, []step{
			{at: toMidnight - time.Second, cost: 1, ok: true},
			// Quota back at midnight (1 s), the bucket in 1000 s.
			{at: toMidnight - time.Second, cost: 1, retry: 1000 * time.Second},
		}},
		{"daily tokens charged after the answer", Limits{DailyTokens: 100}, []step{
			{at: 0, cost: 1, ok: true},
			{at: 0, tokens: 60},
			{at: 0, cost: 1, ok: true},
			{at: 0, tokens: 60}, // 120: over, by the answer under way
			{at: time.Minute, cost: 1, retry: toMidnight - time.Minute},
			{at: toMidnight, cost: 1, ok: true},
			{at: toMidnight, tokens: 99},
			{at: toMidnight, cost: 1, ok: true},
			{at: toMidnight, tokens: 1},
			{at: toMidnight, cost: 1, retry: 24 * time.Hour},
		}},
		{"cost below one", Limits{}, []step{
			{at: 0, cost: 0, retry: RetryNever}, {at: 0, cost: -3, retry: RetryNever},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := NewLimiter(limitTable{"k": tc.lim})
			for i, s := range tc.steps {
				now := start.Add(s.at)
				if s.tokens > 0 {
					l.ChargeTokens("k", s.tokens, now)
					continue
				}
				ok, retry := l.Allow("k", s.cost, now)
				if ok != s.ok || retry != s.retry {
					t.Fatalf("step %d (at %v, cost %d): Allow = %v, %v; want %v, %v", i, s.at, s.cost, ok, retry, s.ok, s.retry)
				}
			}
		})
	}
}

func TestLimiterUnknownKeyAndIsolation(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l := NewLimiter(limitTable{"a": {RPS: 1, Burst: 1}, "b": {RPS: 1, Burst: 1}})
	if ok, retry := l.Allow("nobody", 1, now); ok || retry != RetryNever {
		t.Fatalf("unknown key: %v %v", ok, retry)
	}
	if ok, _ := l.Allow("a", 1, now); !ok {
		t.Fatal("a refused")
	}
	if ok, _ := l.Allow("a", 1, now); ok {
		t.Fatal("a's second request passed")
	}
	if ok, _ := l.Allow("b", 1, now); !ok {
		t.Fatal("b refused because of a")
	}
	l.ChargeTokens("nobody", 10, now)
	if len(l.keys) != 2 {
		t.Fatalf("state for %d keys, want 2", len(l.keys))
	}
}

func TestLimiterClockBackwardsKeepsTheDay(t *testing.T) {
	day2 := time.Date(2026, 1, 2, 0, 0, 1, 0, time.UTC)
	l := NewLimiter(limitTable{"k": {DailyRequests: 1}})
	if ok, _ := l.Allow("k", 1, day2); !ok {
		t.Fatal("first refused")
	}
	// The clock steps back across midnight: still day 2's counters, and
	// the wait runs to the end of day 2.
	back := day2.Add(-2 * time.Second)
	ok, retry := l.Allow("k", 1, back)
	if ok || retry != 24*time.Hour+time.Second {
		t.Fatalf("after a step back: %v %v", ok, retry)
	}
}

func TestLimiterRestore(t *testing.T) {
	now := time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)
	l := NewLimiter(limitTable{"k": {DailyRequests: 10, DailyTokens: 1000}})
	l.Restore(map[string]DayCount{"k": {Requests: 9, Tokens: 10}, "gone": {Requests: 5}}, now)
	if ok, _ := l.Allow("k", 1, now); !ok {
		t.Fatal("10th request refused")
	}
	if ok, retry := l.Allow("k", 1, now); ok || retry != 12*time.Hour {
		t.Fatalf("11th request: %v %v", ok, retry)
	}
	if _, ok := l.keys["gone"]; ok {
		t.Fatal("restored a key the source does not know")
	}
}

// The limiter against a naive reference: a token bucket in exact rational
// arithmetic (tokens scaled by the interval), for random request streams.
func TestLimiterMatchesNaiveBucket(t *testing.T) {
	const T = int64(37 * time.Millisecond) // interval for RPS 1000/37
	lim := Limits{RPS: 1000.0 / 37, Burst: 4}
	if interval(lim.RPS) != T {
		t.Fatalf("interval %d", interval(lim.RPS))
	}
	l := NewLimiter(limitTable{"k": lim})
	start := time.Unix(1_700_000_000, 0)
	// level is the bucket's content in units of 1/T tokens·ns: full is
	// Burst·T.
	level, last := lim.Burst*T, int64(0)
	seed := uint64(7)
	at := int64(0)
	for i := range 5000 {
		seed = seed*6364136223846793005 + 1442695040888963407
		at += int64(seed>>40) % (3 * T)
		cost := int64(seed>>20)%3 + 1
		level = min(lim.Burst*T, level+(at-last))
		last = at
		wantOK := level >= cost*T
		var wantRetry time.Duration
		if !wantOK {
			wantRetry = time.Duration(cost*T - level)
		}
		ok, retry := l.Allow("k", cost, start.Add(time.Duration(at)))
		if ok != wantOK || retry != wantRetry {
			t.Fatalf("request %d at %d cost %d: got %v %v, want %v %v", i, at, cost, ok, retry, wantOK, wantRetry)
		}
		if ok {
			level -= cost * T
		}
	}
}
