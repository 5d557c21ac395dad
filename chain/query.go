package chain

// This file holds the read side of the state: what clients query. Every
// result is a copy; callers may keep and change it.

// Account returns an address's balance side (zero if unknown).
func (s *State) Account(a Address) Account {
	if acc, ok := s.accounts[a]; ok {
		return *acc
	}
	return Account{}
}

// HotkeyInfo describes a hotkey's stake.
type HotkeyInfo struct {
	Hotkey   Address     `json:"hotkey"`
	Owner    Address     `json:"owner"`
	Delegate bool        `json:"delegate"`
	Take     uint16      `json:"take"`
	Total    uint64      `json:"total_stake"`
	Stakes   []StakeInfo `json:"stakes"`
	Netuids  []uint16    `json:"netuids"`
}

// StakeInfo is one coldkey's stake on a hotkey.
type StakeInfo struct {
	Coldkey Address `json:"coldkey"`
	Hotkey  Address `json:"hotkey"`
	Amount  uint64  `json:"amount"`
}

// Hotkey returns a hotkey's stake and registrations; ok is false for an
// unknown hotkey.
func (s *State) Hotkey(h Address) (HotkeyInfo, bool) {
	hk, ok := s.hotkeys[h]
	if !ok {
		return HotkeyInfo{}, false
	}
	info := HotkeyInfo{Hotkey: h, Owner: hk.Owner, Delegate: hk.Delegate, Take: hk.Take, Total: hk.Total, Stakes: []StakeInfo{}, Netuids: []uint16{}}
	for _, c := range hk.sortedStakers() {
		info.Stakes = append(info.Stakes, StakeInfo{Coldkey: c, Hotkey: h, Amount: hk.Stakes[c]})
	}
	for _, n := range s.sortedNetuids() {
		if _, ok := s.subnets[n].uids[h]; ok {
			info.Netuids = append(info.Netuids, n)
		}
	}
	return info, true
}

// Stake returns coldkey's stake on hotkey.
func (s *State) Stake(coldkey, hotkey Address) uint64 {
	if hk, ok := s.hotkeys[hotkey]; ok {
		return hk.Stakes[coldkey]
	}
	return 0
}

// SubnetInfo summarizes a subnet.
type SubnetInfo struct {
	Netuid           uint16      `json:"netuid"`
	Name             string      `json:"name"`
	Owner            Address     `json:"owner"`
	SpecHash         []byte      `json:"spec_hash,omitempty"`
	N                int         `json:"n"`
	RegisteredAt     uint64      `json:"registered_at"`
	Locked           uint64      `json:"locked"`
	EmissionPerBlock uint64      `json:"emission_per_block"`
	PendingEmission  uint64      `json:"pending_emission"`
	LastEpochBlock   uint64      `json:"last_epoch_block"`
	Params           Hyperparams `json:"hyperparams"`
	// Identity is the one the owner set, if any.
	Identity *Identity `json:"identity,omitempty"`
	// PendingSpecHash is a spec hash SetSubnetSpec made pending; it
	// becomes SpecHash at SpecEffectiveBlock, the subnet's next epoch
	// block. Without one, SpecEffectiveBlock is the block SpecHash took
	// effect (the registration block for the spec it was registered with).
	PendingSpecHash    []byte `json:"pending_spec_hash,omitempty"`
	SpecEffectiveBlock uint64 `json:"spec_effective_block"`
	// Mechanisms is the number of incentive mechanisms the subnet runs.
	Mechanisms int `json:"mechanisms"`
}

func (sub *Subnet) info() SubnetInfo {
	return SubnetInfo{
		Netuid: sub.Netuid, Name: sub.Name, Owner: sub.Owner, SpecHash: append([]byte(nil), sub.SpecHash...),
		N: len(sub.neurons), RegisteredAt: sub.RegisteredAt, Locked: sub.Locked,
		EmissionPerBlock: sub.EmissionPerBlock, PendingEmission: sub.PendingEmission,
		LastEpochBlock: sub.LastEpochBlock, Params: sub.Params,
	}
}

// Subnets lists every subnet, the root network first.
func (s *State) Subnets() []SubnetInfo {
	out := make([]SubnetInfo, 0, len(s.subnets))
	for _, n := range s.sortedNetuids() {
		out = append(out, s.subnetInfo(s.subnets[n]))
	}
	return out
}

// Subnet returns one subnet.
func (s *State) Subnet(netuid uint16) (SubnetInfo, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return SubnetInfo{}, false
	}
	return s.subnetInfo(sub), true
}

func (s *State) subnetInfo(sub *Subnet) SubnetInfo {
	info := sub.info()
	info.Identity = s.subnetIdentity(sub.Netuid)
	info.Mechanisms = s.mech.count(sub.Netuid)
	s.specInfo(sub, &info)
	return info
}

// Globals returns the chain-wide parameters.
func (s *State) Globals() Globals { return s.g.Globals }

// Root returns the chain root's address.
func (s *State) Root() Address { return s.g.Root }

// Supply is the chain's token accounting.
type Supply struct {
	TotalIssuance uint64 `json:"total_issuance"`
	TotalStake    uint64 `json:"total_stake"`
}

// Supply returns the total issuance and stake.
func (s *State) Supply() Supply {
	return Supply{TotalIssuance: s.g.TotalIssuance, TotalStake: s.g.TotalStake}
}

// NeuronInfo is one neuron with its stake and owner.
type NeuronInfo struct {
	Netuid  uint16  `json:"netuid"`
	Coldkey Address `json:"coldkey"`
	Stake   uint64  `json:"stake"`
	Neuron
	// Mechanisms is the neuron's side of each mechanism when the subnet
	// runs several (the embedded Neuron's weights, bonds and commit are
	// mechanism 0's); omitted for a subnet with one.
	Mechanisms []MechanismNeuron `json:"mechanisms,omitempty"`
}

// Mechanism returns the neuron's side of mechanism m: from Mechanisms, or
// for a subnet with one mechanism, from the neuron itself (m = 0). ok is
// false for a mechanism the subnet does not run.
func (n NeuronInfo) Mechanism(m uint8) (MechanismNeuron, bool) {
	if len(n.Mechanisms) == 0 {
		if m != 0 {
			return MechanismNeuron{}, false
		}
		return MechanismNeuron{Incentive: n.Incentive, LastUpdate: n.LastUpdate, Weights: n.Weights, Bonds: n.Bonds, Commit: n.Commit}, true
	}
	if int(m) >= len(n.Mechanisms) {
		return MechanismNeuron{}, false
	}
	return n.Mechanisms[m], true
}

func (s *State) neuronInfo(sub *Subnet, uid uint16, withRows bool) NeuronInfo {
	n := *sub.neurons[uid]
	if withRows {
		n.Weights = append([]Entry(nil), n.Weights...)
		n.Bonds = append([]Entry(nil), n.Bonds...)
	} else {
		n.Weights, n.Bonds = nil, nil
	}
	if n.Axon != nil {
		a := *n.Axon
		a.Multiaddrs = append([]string(nil), a.Multiaddrs...)
		a.Protocols = append([]string(nil), a.Protocols...)
		n.Axon = &a
	}
	if n.Commit != nil {
		c := *n.Commit
		n.Commit = &c
	}
	n.Commitment = n.Commitment.clone()
	info := NeuronInfo{Netuid: sub.Netuid, Stake: s.hotkeyStake(n.Hotkey), Neuron: n, Mechanisms: s.mechanismNeurons(sub, uid, withRows)}
	if hk, ok := s.hotkeys[n.Hotkey]; ok {
		info.Coldkey = hk.Owner
	}
	return info
}

// Neuron returns the neuron at uid.
func (s *State) Neuron(netuid, uid uint16) (NeuronInfo, bool) {
	sub, ok := s.subnets[netuid]
	if !ok || int(uid) >= len(sub.neurons) {
		return NeuronInfo{}, false
	}
	return s.neuronInfo(sub, uid, true), true
}

// NeuronByHotkey returns the neuron a hotkey holds on a subnet.
func (s *State) NeuronByHotkey(netuid uint16, hotkey Address) (NeuronInfo, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return NeuronInfo{}, false
	}
	uid, ok := sub.uids[hotkey]
	if !ok {
		return NeuronInfo{}, false
	}
	return s.neuronInfo(sub, uid, true), true
}

// Weights returns a subnet's weights as sparse rows indexed by uid.
func (s *State) Weights(netuid uint16) ([][]Entry, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return nil, false
	}
	out := make([][]Entry, len(sub.neurons))
	for i, n := range sub.neurons {
		out[i] = append([]Entry(nil), n.Weights...)
	}
	return out, true
}

// Bonds returns a subnet's bonds as sparse rows indexed by uid.
func (s *State) Bonds(netuid uint16) ([][]Entry, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return nil, false
	}
	out := make([][]Entry, len(sub.neurons))
	for i, n := range sub.neurons {
		out[i] = append([]Entry(nil), n.Bonds...)
	}
	return out, true
}

// Metagraph is a subnet's full state in columns indexed by uid, as
// Bittensor's metagraph presents it. Real-valued columns are u16 fractions
// of 65535.
type Metagraph struct {
	Netuid          uint16    `json:"netuid"`
	N               int       `json:"n"`
	Block           uint64    `json:"block"`
	UIDs            []uint16  `json:"uids"`
	Hotkeys         []Address `json:"hotkeys"`
	Coldkeys        []Address `json:"coldkeys"`
	Stake           []uint64  `json:"stake"`
	Ranks           []uint16  `json:"ranks"`
	Trust           []uint16  `json:"trust"`
	Consensus       []uint16  `json:"consensus"`
	ValidatorTrust  []uint16  `json:"validator_trust"`
	Incentive       []uint16  `json:"incentive"`
	Dividends       []uint16  `json:"dividends"`
	PruningScores   []uint16  `json:"pruning_scores"`
	Emission        []uint64  `json:"emission"`
	Active          []bool    `json:"active"`
	LastUpdate      []uint64  `json:"last_update"`
	RegisteredAt    []uint64  `json:"registered_at"`
	ValidatorPermit []bool    `json:"validator_permit"`
	Axons           []*Axon   `json:"axons"`
	// Weights, Bonds and Commitments (nil for a uid without one) are
	// omitted from a lite metagraph.
	Weights     [][]Entry     `json:"weights,omitempty"`
	Bonds       [][]Entry     `json:"bonds,omitempty"`
	Commitments []*Commitment `json:"commitments,omitempty"`
	// EmissionPerBlock is the subnet's share of block emission as the
	// last root epoch set it.
	EmissionPerBlock uint64 `json:"emission_per_block"`
	// SubnetIdentity is the subnet's identity, if its owner set one.
	SubnetIdentity *Identity `json:"subnet_identity,omitempty"`
	// IdentityNames is each uid's coldkey's identity name ("" for none);
	// omitted from a lite metagraph.
	IdentityNames []string `json:"identity_names,omitempty"`
	// MechanismIncentive is, for a subnet running several mechanisms,
	// each mechanism's incentive by uid (MechanismIncentive[m][uid]),
	// present with the incentive column; Incentive is then their
	// share-weighted mean. Nil for a subnet with one mechanism, whose
	// Incentive is that mechanism's.
	MechanismIncentive [][]uint16 `json:"mechanism_incentive,omitempty"`
	// Fields names the columns a metagraph of chosen columns holds (see
	// MetagraphFields); the others are nil. Empty for Metagraph's answer.
	Fields []string `json:"fields,omitempty"`
}

// Metagraph returns a subnet's metagraph; lite leaves out weights, bonds,
// commitments and the coldkeys' identity names. Fields is nil: every
// column of the kind is present.
func (s *State) Metagraph(netuid uint16, lite bool) (*Metagraph, bool) {
	fields := AllMetagraphFields
	if lite {
		fields = LiteMetagraphFields
	}
	m, ok := s.MetagraphColumns(netuid, fields)
	if ok {
		m.Fields = nil
	}
	return m, ok
}
