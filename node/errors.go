package node

import "errors"

// ErrAddrInUse is returned (wrapped, with the address) by New when a
// listen address is one another socket listens on: another process, or
// another node, without Config.ReusePort on both (TCP) or at all (QUIC).
var ErrAddrInUse = errors.New("node: address already in use")
