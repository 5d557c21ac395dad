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
