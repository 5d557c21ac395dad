package chainsource

import (
	"errors"
	"log/slog"
	"time"
)

// Config configures a Source.
type Config struct {
	// PollEvery is how often the chain's head and subnets are read.
	PollEvery time.Duration
	// RefreshEvery is how often the metagraphs are read between epochs
	// (registrations and stake change them too).
	RefreshEvery time.Duration
	// HistoryLimit is how many epochs of each subnet are kept.
	HistoryLimit int
	// Logger receives a warning when the chain stops answering and a
	// note when it is back.
	Logger *slog.Logger
}

// DefaultConfig polls once a second, as often as the page asks.
func DefaultConfig() Config {
	return Config{
		PollEvery:    time.Second,
		RefreshEvery: 10 * time.Second,
		HistoryLimit: 512,
		Logger:       slog.Default(),
	}
}

// DefaultTestConfig polls fast and logs nothing.
func DefaultTestConfig() Config {
	cfg := DefaultConfig()
	cfg.PollEvery, cfg.RefreshEvery = 20*time.Millisecond, 100*time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func (c Config) validate() error {
	if c.PollEvery <= 0 || c.RefreshEvery <= 0 {
		return errors.New("chainsource: config: PollEvery and RefreshEvery must be positive")
	}
	if c.HistoryLimit < 1 {
		return errors.New("chainsource: config: HistoryLimit must be at least 1")
	}
	if c.Logger == nil {
		return errors.New("chainsource: config: Logger is nil")
	}
	return nil
}
