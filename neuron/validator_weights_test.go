package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
)

// levels records the level of each log record.
type levels struct {
	mu  sync.Mutex
	got []slog.Level
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, r.Level)
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

// A failure to set weights is not silent: it is a warning when failures
// start (then at most once a minute while they go on); rounds with nothing
// to set yet are not failures.
func TestWeightsFailuresAreWarnedOnce(t *testing.T) {
	h := &levels{}
	v := &Validator{log: slog.New(h)}
	ctx := context.Background()
	v.weightsFailed(ctx, "setting weights", fmt.Errorf("%w: no scores yet", errNoWeightsYet))
	for range 3 {
		v.weightsFailed(ctx, "setting weights", errors.New("the chain refused the transaction"))
	}
	want := fmt.Sprint([]slog.Level{slog.LevelDebug, slog.LevelWarn, slog.LevelDebug, slog.LevelDebug})
	if got := fmt.Sprint(h.got); got != want || v.weightsFailing.n != 3 {
		t.Fatalf("levels %s, want %s; %d failures counted", got, want, v.weightsFailing.n)
	}
}

// Weights go on chain every WeightsEvery blocks and also two blocks before
// each epoch (subnet 1, tempo 10: epochs at blocks 9, 20, 31, ...), unless
// the rate limit or commit-reveal says otherwise.
func TestWeightsDue(t *testing.T) {
	sched := epochSchedule{netuid: 1, tempo: 10}
	limited := sched
	limited.rateLimit = 4
	hidden := sched
	hidden.commitReveal = true
	for _, tc := range []struct {
		name            string
		height, lastSet uint64
		schedule        epochSchedule
		want            bool
	}{
		{"every blocks passed", 25, 20, sched, true},
		{"too soon, no epoch near", 23, 20, sched, false},
		{"two blocks before the epoch at 31", 29, 26, sched, true},
		{"one block before: too late for it", 30, 26, sched, false},
		{"the epoch block itself", 31, 27, sched, false},
		{"already set at this height", 29, 29, sched, false},
		{"schedule not read yet", 29, 26, epochSchedule{}, false},
		{"rate limit not passed", 29, 26, limited, false},
		{"rate limit passed", 29, 25, limited, true},
		{"commit-reveal: only every blocks", 29, 26, hidden, false},
		{"state from before a chain reset", 3, 40, sched, true},
		{"first set at height every", 5, 0, epochSchedule{}, true},
		{"another subnet's phase (netuid 2: epochs at 8, 19, 30)", 28, 26, epochSchedule{netuid: 2, tempo: 10}, true},
	} {
		if got := weightsDue(tc.height, tc.lastSet, 5, tc.schedule); got != tc.want {
			t.Errorf("%s: weightsDue(%d, last %d) = %v, want %v", tc.name, tc.height, tc.lastSet, got, tc.want)
		}
	}
}
