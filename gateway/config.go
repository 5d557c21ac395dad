package gateway

import (
	"errors"
	"fmt"
	"time"

	"github.com/cybertensor/cybertensor/subnet"
)

// Config configures the gateway server.
type Config struct {
	// Listen is the HTTP listen address (host:port).
	Listen string
	// Subnets are the netuids served; each serves the models
	// "sn<netuid>/text.chat" and "sn<netuid>/text.embed".
	Subnets []uint16
	// Deadline bounds one API request from its arrival to its last byte;
	// past it the client gets 504 (or, mid-stream, an error event).
	Deadline time.Duration
	// MaxBody bounds an API request body; larger ones get 413.
	MaxBody int64
	// MaxAnswer bounds the answer the gateway takes from a miner for one
	// request (a miner sending more has failed).
	MaxAnswer int
	// Retries is how many other miners a request is tried on when its
	// miner fails before the first byte of its answer reached the client.
	Retries int
	// MetagraphEvery is how often the subnets' miners are read from the
	// chain.
	MetagraphEvery time.Duration
	// Routing configures the miner picker.
	Routing PickerConfig
	// ReceiptAsked asks every miner for a signed receipt of its answer
	// (want_receipt), which the Recorder keeps.
	ReceiptAsked bool
}

// DefaultConfig listens on 127.0.0.1:8000, gives a request 60 s and
// 1 MiB, takes answers of up to 16 MiB, retries on 2 more miners and
// reads the metagraph every 12 s.
func DefaultConfig() Config {
	return Config{
		Listen:         "127.0.0.1:8000",
		Deadline:       60 * time.Second,
		MaxBody:        1 << 20,
		MaxAnswer:      16 << 20,
		Retries:        2,
		MetagraphEvery: 12 * time.Second,
		Routing:        DefaultPickerConfig(),
		ReceiptAsked:   true,
	}
}

// DefaultTestConfig listens on a free loopback port and gives a request
// 10 s.
func DefaultTestConfig() Config {
	c := DefaultConfig()
	c.Listen = "127.0.0.1:0"
	c.Deadline = 10 * time.Second
	c.MetagraphEvery = time.Second
	return c
}

// Models are the models the gateway serves, as GET /v1/models lists
// them: sn<netuid>/text.chat and sn<netuid>/text.embed for each subnet, in
// the order of Subnets.
func (c Config) Models() []string {
	var out []string
	for _, n := range c.Subnets {
		for _, syn := range []string{subnet.SynapseChat, subnet.SynapseEmbed} {
			out = append(out, fmt.Sprintf("sn%d/%s", n, syn))
		}
	}
	return out
}

func (c Config) validate() error {
	switch {
	case c.Listen == "":
		return errors.New("gateway: config: Listen is required")
	case len(c.Subnets) == 0:
		return errors.New("gateway: config: serve at least one subnet")
	case c.Deadline <= 0 || c.MetagraphEvery <= 0:
		return errors.New("gateway: config: Deadline and MetagraphEvery must be positive")
	case c.MaxBody < 1024 || c.MaxAnswer < 1024:
		return errors.New("gateway: config: MaxBody and MaxAnswer must be at least 1 KiB")
	case c.Retries < 0 || c.Retries > 16:
		return fmt.Errorf("gateway: config: Retries %d, want 0 to 16", c.Retries)
	}
	seen := map[uint16]bool{}
	for _, n := range c.Subnets {
		if seen[n] {
			return fmt.Errorf("gateway: config: subnet %d listed twice", n)
		}
		seen[n] = true
	}
	return c.Routing.validate()
}
