package dashboard

import (
	"errors"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config configures the dashboard server.
type Config struct {
	// Addr is the TCP address to listen on; port 0 picks a free port
	// (see Server.URL).
	Addr string
	// Gatherer, if set, is served on /metrics; without one /metrics is
	// not found.
	Gatherer prometheus.Gatherer
	// ReadHeaderTimeout bounds how long a client may take to send a
	// request's headers; ShutdownTimeout how long Close waits for requests
	// in flight before cutting their connections.
	ReadHeaderTimeout time.Duration
	ShutdownTimeout   time.Duration
	Logger            *slog.Logger
}

// DefaultConfig listens on a free loopback port, with no metrics.
func DefaultConfig() Config {
	return Config{
		Addr:              "127.0.0.1:0", // loopback only: the dashboard has no authentication
		ReadHeaderTimeout: 5 * time.Second,
		ShutdownTimeout:   2 * time.Second,
		Logger:            slog.Default(),
	}
}

// DefaultTestConfig is DefaultConfig with a quiet logger and a short
// shutdown.
func DefaultTestConfig() Config {
	cfg := DefaultConfig()
	cfg.ShutdownTimeout = 500 * time.Millisecond
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func (c *Config) validate() error {
	if c.Addr == "" {
		return errors.New("dashboard: config: Addr is empty")
	}
	if c.ReadHeaderTimeout <= 0 || c.ShutdownTimeout <= 0 {
		return errors.New("dashboard: config: ReadHeaderTimeout and ShutdownTimeout must be positive")
	}
	if c.Logger == nil {
		return errors.New("dashboard: config: Logger is nil")
	}
	return nil
}
