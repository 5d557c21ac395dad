package gateway

import (
	"time"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

// Organic receives a sample of the answers miners give the gateway's
// clients, so that a validator running the gateway scores them as it
// scores the answers to its own tasks (organic scoring: the quality of
// real traffic earns incentive). neuron.Validator implements it.
type Organic interface {
	// WantOrganic reports whether the answer to a request for synapse on
	// netuid is to be handed over. It is asked once per API request,
	// before the first miner is asked, and must be cheap: the answer of a
	// streamed request is kept only when it says yes.
	WantOrganic(netuid uint16, synapse string) bool
	// Organic hands over the answer of one miner to a sampled request:
	// an answer the gateway accepted (status OK), or a miner's failure to
	// give one. It must not block; it owns a's slices.
	Organic(a OrganicAnswer)
}

// OrganicAnswer is one miner's answer to an organic request.
type OrganicAnswer struct {
	Netuid  uint16
	Synapse string
	// UID and Hotkey are the miner's as the gateway last read them from
	// the metagraph (the scorer checks they still go together).
	UID    uint16
	Hotkey string
	// Request is the query's body as sent to the miner.
	Request []byte
	// Status is the query's final status; Answer the whole answer when
	// it is OK and the gateway accepted it (nil otherwise).
	Status protocol.Status
	Answer []byte
	// Invalid, if set, is why the gateway refused an answer the miner
	// called OK (not UTF-8, too large, not the embeddings asked for): the
	// scorer counts it an invalid answer.
	Invalid string
	// Latency is from the query's start to the answer's end; Timeout
	// what the query allowed.
	Latency, Timeout time.Duration
}

// handOrganic hands one miner's answer to a sampled call's request to the
// organic scorer: whole is the answer the gateway accepted (nil if it
// refused it: invalid says why), or the miner's failure in res. The
// caller leaves out failures that are not the miner's (the client left,
// the gateway's own deadline passed).
func (c *call) handOrganic(m Miner, req *pb.Request, res protocol.Result, whole []byte, invalid error, timeout time.Duration) {
	if !c.organic {
		return
	}
	a := OrganicAnswer{Netuid: uint16(req.Netuid), Synapse: req.Synapse, UID: m.UID, Hotkey: m.Hotkey,
		Request: append([]byte(nil), req.Body...), Status: res.Status, Latency: res.Latency, Timeout: timeout}
	switch {
	case invalid != nil:
		a.Invalid = invalid.Error()
	case res.Status == protocol.StatusOK:
		a.Answer = append([]byte(nil), whole...)
	}
	c.s.deps.Organic.Organic(a)
	c.s.metrics.organic.WithLabelValues(req.Synapse).Inc()
}
