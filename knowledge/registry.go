package knowledge

import "github.com/libp2p/go-libp2p/core/peer"

// Registry tells neurons registered on the subnet from other peers. It
// must answer at once, from what is already known (the neuron's last
// metagraph, as node.Node.SetRegistered is told), not by asking the chain:
// the server asks it while a stream waits.
type Registry interface {
	Registered(p peer.ID) bool
}

// RegistryFunc adapts a function to Registry.
type RegistryFunc func(p peer.ID) bool

// Registered implements Registry.
func (f RegistryFunc) Registered(p peer.ID) bool { return f(p) }
