package dashboard

// Source supplies what the dashboard shows. The server calls State once per
// request to /api/state, from the request's goroutine, so State must be safe
// for concurrent use and cheap: return a snapshot, do not compute one. The
// server only reads the returned value; a source may share its slices
// between calls as long as it never modifies them afterwards.
type Source interface {
	State() State
}

// State is a network as the dashboard shows it.
type State struct {
	ChainID string `json:"chain_id"`
	// Block is the chain's latest block.
	Block uint64 `json:"block"`
	// Epochs counts the epochs run since the source started, all subnets
	// counted.
	Epochs int `json:"epochs"`
	// Decimals is the number of decimal places of the chain's token:
	// stake and emission are in its smallest unit.
	Decimals int      `json:"decimals"`
	Subnets  []Subnet `json:"subnets"`
	// ChainOnly says the source reads nothing but the chain, which cannot
	// know what the neurons count themselves: their Role and Adversary,
	// Online, queries, heartbeats and knowledge, and the Gossip and
	// Knowledge totals. Those are then left zero, and the page and the
	// metrics show them as unknown rather than as zeros.
	ChainOnly bool `json:"chain_only,omitempty"`
	// Gossip and Knowledge total the neurons' counters.
	Gossip    GossipStats    `json:"gossip"`
	Knowledge KnowledgeStats `json:"knowledge"`
}

// Subnet is one subnet's metagraph and its history.
type Subnet struct {
	Netuid uint16 `json:"netuid"`
	Name   string `json:"name"`
	// Tempo is the epoch length in blocks.
	Tempo uint64 `json:"tempo"`
	// Epochs counts this subnet's epochs since the source started.
	Epochs int `json:"epochs"`
	// Neurons is the metagraph as of the last epoch, one per UID in UID
	// order, with the neurons' live counters.
	Neurons []Neuron `json:"neurons"`
	// History has a point per epoch, oldest first (a source may drop the
	// oldest).
	History []EpochPoint `json:"history"`
}

// Neuron is one row of a subnet's metagraph.
type Neuron struct {
	UID    uint16 `json:"uid"`
	Hotkey string `json:"hotkey"`
	// Role is "validator" or "miner"; Adversary names a deliberately
	// misbehaving neuron's kind ("lazy", "copier", ...), if it is one.
	Role      string `json:"role"`
	Adversary string `json:"adversary,omitempty"`
	// Online is false once the neuron has stopped.
	Online bool `json:"online"`
	// ValidatorPermit is the chain's permit to set weights.
	ValidatorPermit bool `json:"validator_permit,omitempty"`
	// Stake and Emission are in the token's smallest unit.
	Stake    uint64 `json:"stake"`
	Emission uint64 `json:"emission"`
	// Incentive, Dividends, Trust and Consensus are shares in [0, 1].
	Incentive float64 `json:"incentive"`
	Dividends float64 `json:"dividends"`
	Trust     float64 `json:"trust"`
	Consensus float64 `json:"consensus"`
	// QueriesServed counts a miner's answers; QueriesSent and WeightSets
	// a validator's queries and weight submissions.
	QueriesServed int64 `json:"queries_served"`
	QueriesSent   int64 `json:"queries_sent"`
	WeightSets    int64 `json:"weight_sets"`
	// Heard counts the neurons whose heartbeats it heard over gossip;
	// Duplicates the gossip messages it received more than once.
	Heard      int   `json:"heard"`
	Duplicates int64 `json:"duplicates"`
	// KnowledgeShared counts the knowledge objects it published,
	// KnowledgeFetched those it fetched from others.
	KnowledgeShared  int   `json:"knowledge_shared"`
	KnowledgeFetched int64 `json:"knowledge_fetched"`
	// OrganicRequests counts the requests of applications (through an
	// OpenAI-compatible gateway) a miner answered or failed,
	// OrganicTokens their prompt and completion tokens and
	// OrganicFailures those that failed. All zero without a gateway.
	OrganicRequests int64 `json:"organic_requests"`
	OrganicTokens   int64 `json:"organic_tokens"`
	OrganicFailures int64 `json:"organic_failures"`
}

// EpochPoint is a subnet's incentive and dividends after one epoch, indexed
// by UID.
type EpochPoint struct {
	Epoch     int       `json:"epoch"`
	Block     uint64    `json:"block"`
	Incentive []float64 `json:"incentive"`
	Dividends []float64 `json:"dividends"`
}

// GossipStats totals the neurons' gossip counters.
type GossipStats struct {
	// Neurons counts the neurons in a swarm; Heard the (listener, speaker)
	// pairs in which the listener has heard the speaker's heartbeat, out
	// of Pairs possible.
	Neurons int `json:"neurons"`
	Heard   int `json:"heard"`
	Pairs   int `json:"pairs"`
	// Duplicates counts messages received again after their first copy.
	Duplicates int64 `json:"duplicates"`
}

// KnowledgeStats totals the neurons' knowledge counters.
type KnowledgeStats struct {
	Shared  int   `json:"shared"`
	Fetched int64 `json:"fetched"`
}
