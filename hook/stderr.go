package hook

import (
	"bufio"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// Bounds of a program's stderr in the log.
const (
	// stderrMaxLine: a longer line is logged cut, marked truncated.
	stderrMaxLine = 2048
	// stderrRate and stderrBurst: lines a hook may log per second, and at
	// once; the rest are dropped and their number logged with the next
	// line that passes (or at the end of the stream).
	stderrRate  = 20
	stderrBurst = 100
)

// rateLimiter is a token bucket that counts what it refuses.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	tokens  float64
	last    time.Time
	dropped int
}

func newRateLimiter(rate, burst float64) *rateLimiter {
	return &rateLimiter{rate: rate, burst: burst, tokens: burst}
}

// allow takes a token if there is one. When it does, it also returns how
// many events were refused since the last one allowed.
func (l *rateLimiter) allow(now time.Time) (ok bool, dropped int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens < 1 {
		l.dropped++
		return false, 0
	}
	l.tokens--
	dropped, l.dropped = l.dropped, 0
	return true, dropped
}

// flush returns (and forgets) the number of refused events.
func (l *rateLimiter) flush() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	d := l.dropped
	l.dropped = 0
	return d
}

// logStderr logs each line of a program's stderr until its end (or a read
// deadline), then closes f.
func logStderr(f *os.File, log *slog.Logger, limit *rateLimiter) {
	defer f.Close()
	r := bufio.NewReaderSize(f, stderrMaxLine)
	for {
		line, truncated, err := readLogLine(r)
		if len(line) > 0 || truncated {
			if ok, dropped := limit.allow(time.Now()); ok {
				if dropped > 0 {
					log.Warn("hook stderr lines dropped (rate limit)", "dropped", dropped)
				}
				text := strings.ToValidUTF8(string(line), "\uFFFD")
				if truncated {
					log.Info("hook stderr", "line", text, "truncated", true)
				} else {
					log.Info("hook stderr", "line", text)
				}
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) {
				log.Debug("hook stderr: read failed", "err", err)
			}
			if dropped := limit.flush(); dropped > 0 {
				log.Warn("hook stderr lines dropped (rate limit)", "dropped", dropped)
			}
			return
		}
	}
}
