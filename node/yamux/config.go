package yamux

import (
	"errors"
	"math"
	"time"
)

// Config configures sessions. The zero value is not valid; start from
// DefaultConfig.
type Config struct {
	// AcceptBacklog bounds the streams the peer opened that were not
	// accepted yet; a stream beyond it is reset. The queue starts small
	// and grows up to this bound.
	AcceptBacklog int
	// EnableKeepAlive pings the peer after KeepAliveInterval without a
	// frame from it, and closes the session when the ping is not
	// answered (nor anything else received) within
	// ConnectionWriteTimeout. Pings also measure the round trip time the
	// receive windows are tuned with.
	EnableKeepAlive   bool
	KeepAliveInterval time.Duration
	// ConnectionWriteTimeout bounds one write to the connection; a
	// session whose writes stall longer is closed.
	ConnectionWriteTimeout time.Duration
	// MaxIncomingStreams bounds the streams the peer may have open at
	// once; a stream beyond it is reset.
	MaxIncomingStreams uint32
	// MaxStreamWindowSize is the most a stream's receive window grows
	// to; it starts at the protocol's 256 KiB.
	MaxStreamWindowSize uint32
	// MaxMessageSize bounds the body of a data frame this side sends
	// (the peer may send frames as large as the window).
	MaxMessageSize uint32
}

// DefaultConfig is go-libp2p's yamux configuration: 30 s keepalive, 10 s
// write timeout, windows from 256 KiB up to 16 MiB, no stream limit of
// its own (the resource manager has one), data frames of at most 64 KiB.
func DefaultConfig() Config {
	return Config{
		AcceptBacklog:          256,
		EnableKeepAlive:        true,
		KeepAliveInterval:      30 * time.Second,
		ConnectionWriteTimeout: 10 * time.Second,
		MaxIncomingStreams:     math.MaxUint32,
		MaxStreamWindowSize:    16 << 20,
		MaxMessageSize:         64<<10 - headerSize,
	}
}

func (c Config) validate() error {
	switch {
	case c.AcceptBacklog <= 0:
		return errors.New("yamux: config: AcceptBacklog must be positive")
	case c.EnableKeepAlive && c.KeepAliveInterval <= 0:
		return errors.New("yamux: config: KeepAliveInterval must be positive")
	case c.ConnectionWriteTimeout <= 0:
		return errors.New("yamux: config: ConnectionWriteTimeout must be positive")
	case c.MaxStreamWindowSize < initialWindow:
		return errors.New("yamux: config: MaxStreamWindowSize must be at least 256 KiB")
	case c.MaxMessageSize < 1024:
		return errors.New("yamux: config: MaxMessageSize must be at least 1 KiB")
	}
	return nil
}

// initialWindow is every stream's window when it opens (the protocol's).
const initialWindow = 256 << 10

// goAwayWait bounds sending a go away while closing.
const goAwayWait = 100 * time.Millisecond
