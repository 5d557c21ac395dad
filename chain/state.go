package chain

import (
	"bytes"
	"sort"

	"github.com/cybertensor/cybertensor/scoring"

	"github.com/cybertensor/cybertensor/wallet"
)

// Address is an account address: a coldkey or a hotkey.
type Address = wallet.Address

// RootNetuid is the root network, whose members split emission between
// subnets.
const RootNetuid uint16 = 0

// Account is the balance side of an address.
type Account struct {
	Balance uint64 `json:"balance"`
	// Sequence is the number of transactions the address has signed; the
	// next one must carry it.
	Sequence uint64 `json:"sequence"`
	// LastTxBlock is the block of the last rate-limited (staking or
	// delegate) transaction.
	LastTxBlock uint64 `json:"last_tx_block"`
	// LastFaucetBlock is the block of the last faucet payment.
	LastFaucetBlock uint64 `json:"last_faucet_block"`
}

// Hotkey is the stake side of a hotkey: who owns it and who staked on it.
type Hotkey struct {
	Owner Address `json:"owner"`
	// Delegate is set once the owner opened the hotkey to others' stake.
	Delegate bool `json:"delegate"`
	// Take is the delegate's u16 share of validator emission.
	Take uint16 `json:"take"`
	// Stakes maps each staking coldkey to its stake.
	Stakes map[Address]uint64 `json:"stakes"`
	// Total is the sum of Stakes.
	Total uint64 `json:"total"`
	// TakeRaisedAt is the block the delegate opened or last raised its
	// take (0: never); take_rate_limit counts from it.
	TakeRaisedAt uint64 `json:"take_raised_at"`
	// Payouts are the delegate's last MaxPayouts epoch payouts, oldest
	// first (takes.go).
	Payouts []Payout `json:"payouts,omitempty"`
}

// sortedStakers returns the coldkeys staking on h in address order.
func (h *Hotkey) sortedStakers() []Address {
	out := make([]Address, 0, len(h.Stakes))
	for c := range h.Stakes {
		out = append(out, c)
	}
	sortAddresses(out)
	return out
}

func sortAddresses(a []Address) {
	sort.Slice(a, func(i, j int) bool { return bytes.Compare(a[i][:], a[j][:]) < 0 })
}

// Entry is one sparse matrix entry: a weight or bond on uid.
type Entry = scoring.Entry

// Axon says where a neuron is reachable on the libp2p network.
type Axon struct {
	PeerID     string   `json:"peer_id"`
	Multiaddrs []string `json:"multiaddrs"`
	Protocols  []string `json:"protocols"`
	Version    uint32   `json:"version"`
	Block      uint64   `json:"block"`
}

// WeightCommit is a committed, not yet revealed, weight vector.
type WeightCommit struct {
	Hash  [32]byte `json:"hash"`
	Block uint64   `json:"block"`
}

// Neuron is one uid of a subnet.
type Neuron struct {
	UID             uint16  `json:"uid"`
	Hotkey          Address `json:"hotkey"`
	RegisteredAt    uint64  `json:"registered_at"`
	LastUpdate      uint64  `json:"last_update"`
	Active          bool    `json:"active"`
	ValidatorPermit bool    `json:"validator_permit"`
	// The epoch's results, as u16 fractions of 65535.
	Rank           uint16 `json:"rank"`
	Trust          uint16 `json:"trust"`
	Consensus      uint16 `json:"consensus"`
	Incentive      uint16 `json:"incentive"`
	Dividends      uint16 `json:"dividends"`
	ValidatorTrust uint16 `json:"validator_trust"`
	PruningScore   uint16 `json:"pruning_score"`
	// Emission is what the neuron earned in the last epoch, base units.
	Emission uint64 `json:"emission"`
	// Weights and Bonds are sparse rows sorted by uid.
	Weights []Entry       `json:"weights"`
	Bonds   []Entry       `json:"bonds"`
	Axon    *Axon         `json:"axon,omitempty"`
	Commit  *WeightCommit `json:"commit,omitempty"`
	// Commitment is the data the hotkey committed on the subnet; it goes
	// with the uid when the neuron is replaced.
	Commitment *Commitment `json:"commitment,omitempty"`
}

// Subnet is one incentive market.
type Subnet struct {
	Netuid       uint16  `json:"netuid"`
	Name         string  `json:"name"`
	Owner        Address `json:"owner"`
	SpecHash     []byte  `json:"spec_hash"`
	RegisteredAt uint64  `json:"registered_at"`
	// Locked is the balance locked by the owner at registration.
	Locked uint64      `json:"locked"`
	Params Hyperparams `json:"params"`
	// EmissionPerBlock is the subnet's share of block emission, set by the
	// root epoch; PendingEmission accrues it until the subnet's epoch.
	EmissionPerBlock uint64 `json:"emission_per_block"`
	PendingEmission  uint64 `json:"pending_emission"`
	LastEpochBlock   uint64 `json:"last_epoch_block"`
	// Registration accounting for difficulty and burn adjustment.
	LastAdjustmentBlock  uint64 `json:"last_adjustment_block"`
	RegsThisInterval     uint64 `json:"regs_this_interval"`
	PowRegsThisInterval  uint64 `json:"pow_regs_this_interval"`
	BurnRegsThisInterval uint64 `json:"burn_regs_this_interval"`
	RegsThisBlock        uint64 `json:"regs_this_block"`

	neurons []*Neuron
	uids    map[Address]uint16
}

// N is the number of neurons on the subnet.
func (s *Subnet) N() int { return len(s.neurons) }

// globalsRecord is the part of the state that is not accounts, hotkeys or
// subnets.
type globalsRecord struct {
	ChainID               string
	Root                  Address
	Globals               Globals
	SubnetDefaults        Hyperparams
	TotalIssuance         uint64
	TotalStake            uint64
	NetworkLastLock       uint64
	NetworkLastLockBlock  uint64
	NetworkLastRegistered uint64
	RecentHashes          []blockHash
	UsedWork              []usedWork
}

type blockHash struct {
	Height uint64
	Hash   []byte
}

type usedWork struct {
	Seal  [32]byte
	Block uint64
}

func (g *globalsRecord) encode() []byte {
	var e encoder
	e.str(g.ChainID)
	e.bytes(g.Root[:])
	e.u64(uint64(len(GlobalNames())))
	for _, name := range GlobalNames() {
		e.str(name)
		e.u64(*globalRules[name].field(&g.Globals))
	}
	encodeHyperparams(&e, &g.SubnetDefaults)
	e.u64(g.TotalIssuance)
	e.u64(g.TotalStake)
	e.u64(g.NetworkLastLock)
	e.u64(g.NetworkLastLockBlock)
	e.u64(g.NetworkLastRegistered)
	e.u64(uint64(len(g.RecentHashes)))
	for _, h := range g.RecentHashes {
		e.u64(h.Height)
		e.bytes(h.Hash)
	}
	e.u64(uint64(len(g.UsedWork)))
	for _, w := range g.UsedWork {
		e.bytes(w.Seal[:])
		e.u64(w.Block)
	}
	return e.b
}

func decodeGlobals(b []byte) (*globalsRecord, error) {
	d := decoder{b: b}
	g := &globalsRecord{}
	g.ChainID = d.str()
	copy(g.Root[:], d.fixed(len(g.Root)))
	n := d.length()
	for range n {
		name := d.str()
		v := d.u64()
		if r, ok := globalRules[name]; ok {
			*r.field(&g.Globals) = v
		}
	}
	decodeHyperparams(&d, &g.SubnetDefaults)
	g.TotalIssuance = d.u64()
	g.TotalStake = d.u64()
	g.NetworkLastLock = d.u64()
	g.NetworkLastLockBlock = d.u64()
	g.NetworkLastRegistered = d.u64()
	n = d.length()
	for range n {
		g.RecentHashes = append(g.RecentHashes, blockHash{Height: d.u64(), Hash: d.bytes()})
	}
	n = d.length()
	for range n {
		var w usedWork
		copy(w.Seal[:], d.fixed(32))
		w.Block = d.u64()
		g.UsedWork = append(g.UsedWork, w)
	}
	return g, d.finish()
}

// fixed reads a length-prefixed byte string that must have length n.
func (d *decoder) fixed(n int) []byte {
	b := d.bytes()
	if d.err == nil && len(b) != n {
		d.fail(errTruncated)
		return make([]byte, n)
	}
	if b == nil {
		return make([]byte, n)
	}
	return b
}

func (a *Account) encode() []byte {
	var e encoder
	e.u64(a.Balance)
	e.u64(a.Sequence)
	e.u64(a.LastTxBlock)
	e.u64(a.LastFaucetBlock)
	return e.b
}

func decodeAccount(b []byte) (*Account, error) {
	d := decoder{b: b}
	a := &Account{Balance: d.u64(), Sequence: d.u64(), LastTxBlock: d.u64(), LastFaucetBlock: d.u64()}
	return a, d.finish()
}

func (h *Hotkey) encode() []byte {
	var e encoder
	e.bytes(h.Owner[:])
	e.boolean(h.Delegate)
	e.u64(uint64(h.Take))
	e.u64(h.Total)
	stakers := h.sortedStakers()
	e.u64(uint64(len(stakers)))
	for _, c := range stakers {
		e.bytes(c[:])
		e.u64(h.Stakes[c])
	}
	// The take's rate-limit block and the payouts are a trailing
	// optional part: a hotkey without them encodes as it did before they
	// existed, so stored records and their hashes stay valid.
	if h.TakeRaisedAt != 0 || len(h.Payouts) != 0 {
		e.u64(h.TakeRaisedAt)
		e.u64(uint64(len(h.Payouts)))
		for _, p := range h.Payouts {
			e.u64(p.Block)
			e.u64(p.Paid)
			e.u64(p.Stake)
		}
	}
	return e.b
}

func decodeHotkey(b []byte) (*Hotkey, error) {
	d := decoder{b: b}
	h := &Hotkey{Stakes: map[Address]uint64{}}
	copy(h.Owner[:], d.fixed(20))
	h.Delegate = d.boolean()
	h.Take = d.u16()
	h.Total = d.u64()
	n := d.length()
	for range n {
		var c Address
		copy(c[:], d.fixed(20))
		h.Stakes[c] = d.u64()
	}
	if d.more() {
		h.TakeRaisedAt = d.u64()
		n := d.length()
		if n > MaxPayouts {
			d.fail(errTruncated)
			n = 0
		}
		for range n {
			h.Payouts = append(h.Payouts, Payout{Block: d.u64(), Paid: d.u64(), Stake: d.u64()})
		}
		if d.err == nil && h.TakeRaisedAt == 0 && len(h.Payouts) == 0 {
			d.fail(errTruncated) // not the canonical encoding
		}
	}
	return h, d.finish()
}

func (s *Subnet) encodeHeader() []byte {
	var e encoder
	e.u64(uint64(s.Netuid))
	e.str(s.Name)
	e.bytes(s.Owner[:])
	e.bytes(s.SpecHash)
	e.u64(s.RegisteredAt)
	e.u64(s.Locked)
	encodeHyperparams(&e, &s.Params)
	e.u64(s.EmissionPerBlock)
	e.u64(s.PendingEmission)
	e.u64(s.LastEpochBlock)
	e.u64(s.LastAdjustmentBlock)
	e.u64(s.RegsThisInterval)
	e.u64(s.PowRegsThisInterval)
	e.u64(s.BurnRegsThisInterval)
	e.u64(s.RegsThisBlock)
	e.u64(uint64(len(s.neurons)))
	return e.b
}

// decodeSubnetHeader decodes a subnet header and returns the number of
// neurons it has.
func decodeSubnetHeader(b []byte) (*Subnet, int, error) {
	d := decoder{b: b}
	s := &Subnet{uids: map[Address]uint16{}}
	s.Netuid = d.u16()
	s.Name = d.str()
	copy(s.Owner[:], d.fixed(20))
	s.SpecHash = d.bytes()
	s.RegisteredAt = d.u64()
	s.Locked = d.u64()
	decodeHyperparams(&d, &s.Params)
	s.EmissionPerBlock = d.u64()
	s.PendingEmission = d.u64()
	s.LastEpochBlock = d.u64()
	s.LastAdjustmentBlock = d.u64()
	s.RegsThisInterval = d.u64()
	s.PowRegsThisInterval = d.u64()
	s.BurnRegsThisInterval = d.u64()
	s.RegsThisBlock = d.u64()
	count := d.u64()
	if count > 65536 {
		d.fail(errTruncated)
	}
	return s, int(count), d.finish()
}

func encodeEntries(e *encoder, row []Entry) {
	e.u64(uint64(len(row)))
	for _, x := range row {
		e.u64(uint64(x.UID))
		e.u64(uint64(x.Value))
	}
}

func decodeEntries(d *decoder) []Entry {
	n := d.length()
	if d.err != nil || n == 0 {
		return nil
	}
	row := make([]Entry, 0, n)
	for range n {
		row = append(row, Entry{UID: d.u16(), Value: d.u16()})
	}
	return row
}

func (n *Neuron) encode() []byte {
	var e encoder
	e.b = make([]byte, 0, 64+4*len(n.Weights)+4*len(n.Bonds))
	e.u64(uint64(n.UID))
	e.bytes(n.Hotkey[:])
	e.u64(n.RegisteredAt)
	e.u64(n.LastUpdate)
	e.boolean(n.Active)
	e.boolean(n.ValidatorPermit)
	for _, v := range []uint16{n.Rank, n.Trust, n.Consensus, n.Incentive, n.Dividends, n.ValidatorTrust, n.PruningScore} {
		e.u64(uint64(v))
	}
	e.u64(n.Emission)
	encodeEntries(&e, n.Weights)
	encodeEntries(&e, n.Bonds)
	encodeAxon(&e, n.Axon)
	e.boolean(n.Commit != nil)
	if c := n.Commit; c != nil {
		e.bytes(c.Hash[:])
		e.u64(c.Block)
	}
	// A commitment is a trailing optional part: a neuron without one
	// encodes as it did before commitments existed, so stored records
	// and their hashes stay valid.
	if c := n.Commitment; c != nil {
		e.bytes(c.Data)
		e.u64(c.Block)
	}
	return e.b
}

func decodeNeuron(b []byte) (*Neuron, error) {
	d := decoder{b: b}
	n := &Neuron{}
	n.UID = d.u16()
	copy(n.Hotkey[:], d.fixed(20))
	n.RegisteredAt = d.u64()
	n.LastUpdate = d.u64()
	n.Active = d.boolean()
	n.ValidatorPermit = d.boolean()
	for _, p := range []*uint16{&n.Rank, &n.Trust, &n.Consensus, &n.Incentive, &n.Dividends, &n.ValidatorTrust, &n.PruningScore} {
		*p = d.u16()
	}
	n.Emission = d.u64()
	n.Weights = decodeEntries(&d)
	n.Bonds = decodeEntries(&d)
	n.Axon = decodeAxon(&d)
	if d.boolean() {
		c := &WeightCommit{}
		copy(c.Hash[:], d.fixed(32))
		c.Block = d.u64()
		n.Commit = c
	}
	if d.more() {
		n.Commitment = &Commitment{Data: d.bytes(), Block: d.u64()}
		if d.err == nil && (len(n.Commitment.Data) == 0 || len(n.Commitment.Data) > MaxCommitmentLen) {
			d.fail(errTruncated)
		}
	}
	return n, d.finish()
}

func encodeHyperparams(e *encoder, h *Hyperparams) {
	names := HyperparamNames()
	e.u64(uint64(len(names)))
	for _, name := range names {
		e.str(name)
		e.u64(*hyperparamRules[name].field(h))
	}
}

func decodeHyperparams(d *decoder, h *Hyperparams) {
	n := d.length()
	for range n {
		name := d.str()
		v := d.u64()
		if r, ok := hyperparamRules[name]; ok {
			*r.field(h) = v
		}
	}
}
