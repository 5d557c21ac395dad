package metering

import (
	"math"
	"sync"
	"time"

	"github.com/cybertensor/cybertensor/gateway"
)

// RetryNever is the retry-after of a request that can never pass: an
// unknown or revoked key, a cost below 1, or a cost above the key's burst
// or daily request quota.
const RetryNever = time.Duration(math.MaxInt64)

// day is the length of a quota day (a UTC day: Unix time has no leap
// seconds).
const day = int64(24 * time.Hour)

// LimitSource gives the limits of a key; false for a key that may not be
// used. *KeyStore is one.
type LimitSource interface {
	Limits(keyID string) (Limits, bool)
}

// Limiter enforces each key's rate limit and daily quotas. It implements
// gateway.Limiter and is pure logic: all time comes from the caller.
//
// The rate limit is a token bucket of Burst requests refilled at RPS per
// second, kept as a generic cell rate algorithm: per key one theoretical
// arrival time in integer nanoseconds, each request pushing it 1/RPS
// later, refused when it would end more than Burst/RPS in the future.
// Retry-after times are therefore exact.
//
// Daily quotas count requests (charged by Allow) and tokens (charged by
// ChargeTokens after the answer) per UTC day. A request is refused while
// the day's tokens have reached the quota, so a key can overshoot its
// token quota by the tokens of the answers already under way.
type Limiter struct {
	src LimitSource

	mu   sync.Mutex
	keys map[string]*bucket
}

type bucket struct {
	tat      int64 // theoretical arrival time, Unix ns (GCRA)
	day      int64 // UTC day of the counters, days since the Unix epoch
	requests int64 // requests charged on that day
	tokens   int64 // tokens charged on that day
}

var _ gateway.Limiter = (*Limiter)(nil)

// NewLimiter makes a limiter that reads each key's limits from src.
func NewLimiter(src LimitSource) *Limiter {
	return &Limiter{src: src, keys: map[string]*bucket{}}
}

// interval is the rate's emission interval: 1/RPS in whole nanoseconds
// (at least 1).
func interval(rps float64) int64 {
	return max(1, int64(math.Round(float64(time.Second)/rps)))
}

// dayOf is the UTC day of a Unix-nanosecond time.
func dayOf(t int64) int64 {
	d := t / day
	if t%day < 0 {
		d--
	}
	return d
}

// bucketAt returns keyID's state with its counters rolled over to t's UTC
// day (a clock that went back keeps the later day's counters).
func (l *Limiter) bucketAt(keyID string, t int64) *bucket {
	b := l.keys[keyID]
	if b == nil {
		b = &bucket{day: dayOf(t)}
		l.keys[keyID] = b
	}
	if d := dayOf(t); d > b.day {
		b.day, b.requests, b.tokens = d, 0, 0
	}
	return b
}

// Allow charges cost requests (1 for one API request) to keyID at now, if
// the key's rate limit and daily quotas let them pass. When it refuses, it
// charges nothing, and retryAfter is exactly how long until a request of
// that cost would pass (RetryNever if none ever will).
func (l *Limiter) Allow(keyID string, cost int64, now time.Time) (bool, time.Duration) {
	lim, ok := l.src.Limits(keyID)
	if !ok || cost < 1 {
		return false, RetryNever
	}
	if lim.RPS > 0 && cost > lim.Burst || lim.DailyRequests > 0 && cost > lim.DailyRequests {
		return false, RetryNever
	}
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketAt(keyID, t)
	var wait int64
	var tat int64
	if lim.RPS > 0 {
		T := interval(lim.RPS)
		tat = max(b.tat, t) + cost*T
		if at := tat - lim.Burst*T; at > t {
			wait = at - t
		}
	}
	// A quota refusal lasts until the next UTC midnight, when the bucket
	// will also have room (cost ≤ burst), unless it is already full past
	// then: the wait is the later of the two.
	midnight := (b.day+1)*day - t
	if lim.DailyRequests > 0 && b.requests+cost > lim.DailyRequests {
		wait = max(wait, midnight)
	}
	if lim.DailyTokens > 0 && b.tokens >= lim.DailyTokens {
		wait = max(wait, midnight)
	}
	if wait > 0 {
		return false, time.Duration(wait)
	}
	if lim.RPS > 0 {
		b.tat = tat
	}
	b.requests += cost
	return true, 0
}

// ChargeTokens charges tokens (an answer's prompt and completion tokens)
// against keyID's daily token quota at now; the gateway calls it after
// the answer. It never refuses: a key over its quota is refused by its
// next Allow.
func (l *Limiter) ChargeTokens(keyID string, tokens int64, now time.Time) {
	if tokens <= 0 {
		return
	}
	if _, ok := l.src.Limits(keyID); !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.bucketAt(keyID, now.UnixNano())
	b.tokens = satAdd(b.tokens, tokens)
}

// DayCount is what a key used on one UTC day.
type DayCount struct {
	Requests int64 `json:"requests"`
	Tokens   int64 `json:"tokens"`
}

// Restore adds what keys used earlier on now's UTC day (read from the
// ledger by Ledger.Today) to their daily counters, so a restarted gateway
// does not hand out a fresh quota.
func (l *Limiter) Restore(counts map[string]DayCount, now time.Time) {
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, c := range counts {
		if _, ok := l.src.Limits(id); !ok {
			continue
		}
		b := l.bucketAt(id, t)
		b.requests = satAdd(b.requests, max(0, c.Requests))
		b.tokens = satAdd(b.tokens, max(0, c.Tokens))
	}
}

// satAdd adds non-negative numbers, saturating at MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
