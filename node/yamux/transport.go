package yamux

import (
	"net"

	"github.com/libp2p/go-libp2p/core/network"
)

// ID is the protocol ID yamux is negotiated under.
const ID = "/yamux/1.0.0"

// Transport makes sessions: a network.Multiplexer for libp2p.Muxer.
type Transport struct {
	cfg Config
}

var _ network.Multiplexer = (*Transport)(nil)

// New returns a transport making sessions configured by cfg.
func New(cfg Config) (*Transport, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Transport{cfg: cfg}, nil
}

// NewConn starts a session on c, a client (odd stream IDs) unless
// isServer. Stream memory is accounted in scope's spans (nil: none).
func (t *Transport) NewConn(c net.Conn, isServer bool, scope network.PeerScope) (network.MuxedConn, error) {
	return newSession(c, !isServer, &t.cfg, scope), nil
}
