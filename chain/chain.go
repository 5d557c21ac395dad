package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// State is the whole chain state and its transition function. It does no
// I/O and reads no clock: applying the same blocks to the same genesis
// gives the same state and app hash on every machine. It is not safe for
// concurrent use; the engine that drives it serializes access.
type State struct {
	height  uint64
	appHash []byte
	g       globalsRecord
	// subnetDefaults are the hyperparameters of new subnets.
	subnetDefaults Hyperparams

	accounts map[Address]*Account
	hotkeys  map[Address]*Hotkey
	subnets  map[uint16]*Subnet

	// epoch runs the Yuma consensus epoch.
	epoch EpochFunc

	dirty dirtySet
	// hashes caches each stored object's hash by its storage key; keys
	// is its sorted key list. The app hash is computed from them.
	hashes map[string][32]byte
	keys   []string

	// ids are the coldkeys' and subnets' identities.
	ids identities
	// ch holds child hotkeys (children.go).
	ch childIndex
	// mech holds the subnets' mechanisms (mechanisms.go) and specs their
	// spec changes (subnetspec.go).
	mech  mechanismIndex
	specs specIndex
}

type neuronKey struct{ netuid, uid uint16 }

type dirtySet struct {
	globals  bool
	accounts map[Address]struct{}
	hotkeys  map[Address]struct{}
	subnets  map[uint16]struct{}
	neurons  map[neuronKey]struct{}
}

func newDirtySet() dirtySet {
	return dirtySet{
		accounts: map[Address]struct{}{},
		hotkeys:  map[Address]struct{}{},
		subnets:  map[uint16]struct{}{},
		neurons:  map[neuronKey]struct{}{},
	}
}

// NewState builds the state at height 0 from a genesis. epoch computes the
// Yuma consensus at each subnet's tempo; pass YumaEpoch.
func NewState(gen Genesis, epoch EpochFunc) (*State, error) {
	if epoch == nil {
		return nil, errors.New("chain: no epoch function")
	}
	if err := gen.validate(); err != nil {
		return nil, err
	}
	s := newEmptyState(epoch)
	s.g = globalsRecord{ChainID: gen.ChainID, Root: gen.Root, Globals: gen.Globals, SubnetDefaults: gen.SubnetDefaults}
	s.subnetDefaults = gen.SubnetDefaults
	s.dirty.globals = true
	for _, b := range gen.Balances {
		s.account(b.Address).Balance += b.Amount
		s.g.TotalIssuance += b.Amount
		s.markAccount(b.Address)
	}
	root := &Subnet{Netuid: RootNetuid, Name: "root", Owner: gen.Root, Params: s.subnetDefaults, uids: map[Address]uint16{}}
	root.Params.MaxAllowedUIDs = gen.Globals.MaxRootValidators
	root.Params.MaxAllowedValidators = gen.Globals.MaxRootValidators
	root.Params.Tempo = gen.Globals.RootTempo
	root.Params.MinAllowedWeights = 1
	s.subnets[RootNetuid] = root
	s.markSubnet(RootNetuid)
	for _, gs := range gen.Subnets {
		params := s.subnetDefaults
		if gs.Params != nil {
			params = *gs.Params
		}
		netuid := s.nextNetuid()
		s.subnets[netuid] = &Subnet{Netuid: netuid, Name: gs.Name, Owner: gs.Owner, Params: params, uids: map[Address]uint16{}}
		s.markSubnet(netuid)
	}
	s.finishBlock()
	return s, nil
}

func newEmptyState(epoch EpochFunc) *State {
	return &State{
		accounts: map[Address]*Account{},
		hotkeys:  map[Address]*Hotkey{},
		subnets:  map[uint16]*Subnet{},
		epoch:    epoch,
		dirty:    newDirtySet(),
		hashes:   map[string][32]byte{},
		ch:       newChildIndex(),
	}
}

// Height is the last applied block (0 at genesis).
func (s *State) Height() uint64 { return s.height }

// AppHash is the hash over the whole state after the last applied block.
func (s *State) AppHash() []byte { return append([]byte(nil), s.appHash...) }

// ChainID is the chain's ID.
func (s *State) ChainID() string { return s.g.ChainID }

func (s *State) account(a Address) *Account {
	acc, ok := s.accounts[a]
	if !ok {
		acc = &Account{}
		s.accounts[a] = acc
	}
	return acc
}

func (s *State) markAccount(a Address)         { s.dirty.accounts[a] = struct{}{} }
func (s *State) markHotkey(a Address)          { s.dirty.hotkeys[a] = struct{}{} }
func (s *State) markSubnet(n uint16)           { s.dirty.subnets[n] = struct{}{} }
func (s *State) markNeuron(netuid, uid uint16) { s.dirty.neurons[neuronKey{netuid, uid}] = struct{}{} }

// nextNetuid returns the lowest free netuid above the root's.
func (s *State) nextNetuid() uint16 {
	for n := uint16(1); ; n++ {
		if _, used := s.subnets[n]; !used {
			return n
		}
	}
}

// Storage keys of state objects.
func keyGlobals() string          { return "g" }
func keyAccount(a Address) string { return "a/" + string(a[:]) }
func keyHotkey(a Address) string  { return "h/" + string(a[:]) }
func keySubnet(n uint16) string   { return "s/" + string(binary.BigEndian.AppendUint16(nil, n)) }
func keyNeuron(n, uid uint16) string {
	return "n/" + string(binary.BigEndian.AppendUint16(binary.BigEndian.AppendUint16(nil, n), uid))
}

// record is one dirty object to persist: key and encoding. A nil value
// is an object removed from the state: the store deletes its key, and the
// key leaves the app hash.
type record struct {
	key   string
	value []byte
}

// takeDirty encodes every object changed since the last call, updates the
// hash cache, and returns the records in key order.
func (s *State) takeDirty() []record {
	var out []record
	add := func(k string, v []byte) { out = append(out, record{k, v}) }
	if s.dirty.globals {
		add(keyGlobals(), s.g.encode())
	}
	for a := range s.dirty.accounts {
		add(keyAccount(a), s.accounts[a].encode())
	}
	for a := range s.dirty.hotkeys {
		if hk, ok := s.hotkeys[a]; ok {
			add(keyHotkey(a), hk.encode())
		} else {
			add(keyHotkey(a), nil) // deleted (a swapped-out hotkey)
		}
	}
	for n := range s.dirty.subnets {
		add(keySubnet(n), s.subnets[n].encodeHeader())
	}
	for k := range s.dirty.neurons {
		add(keyNeuron(k.netuid, k.uid), s.subnets[k.netuid].neurons[k.uid].encode())
	}
	out = append(out, s.ids.takeDirty()...)
	out = append(out, s.dirtyChildRecords()...)
	out = append(out, s.mech.takeDirty()...)
	out = append(out, s.specs.takeDirty()...)
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	for _, r := range out {
		if r.value == nil {
			if _, known := s.hashes[r.key]; known {
				delete(s.hashes, r.key)
				i := sort.SearchStrings(s.keys, r.key)
				s.keys = append(s.keys[:i], s.keys[i+1:]...)
			}
			continue
		}
		if _, known := s.hashes[r.key]; !known {
			i := sort.SearchStrings(s.keys, r.key)
			s.keys = append(s.keys, "")
			copy(s.keys[i+1:], s.keys[i:])
			s.keys[i] = r.key
		}
		s.hashes[r.key] = sha256.Sum256(r.value)
	}
	s.dirty = newDirtySet()
	return out
}

// computeAppHash hashes the height and every object's hash in key order.
func (s *State) computeAppHash() []byte {
	h := sha256.New()
	h.Write([]byte("cybertensor-app/1"))
	h.Write(binary.BigEndian.AppendUint64(nil, s.height))
	var lenBuf [binary.MaxVarintLen64]byte
	for _, k := range s.keys {
		n := binary.PutUvarint(lenBuf[:], uint64(len(k)))
		h.Write(lenBuf[:n])
		h.Write([]byte(k))
		v := s.hashes[k]
		h.Write(v[:])
	}
	return h.Sum(nil)
}

// finishBlock collects dirty records and sets the app hash; it returns the
// records for the store to persist.
func (s *State) finishBlock() []record {
	recs := s.takeDirty()
	s.appHash = s.computeAppHash()
	return recs
}

// loadRecord installs one persisted object while restoring a state.
func (s *State) loadRecord(key string, value []byte, neurons map[uint16][]*Neuron) error {
	var err error
	switch {
	case key == keyGlobals():
		var g *globalsRecord
		if g, err = decodeGlobals(value); err == nil {
			s.g = *g
			s.subnetDefaults = g.SubnetDefaults
		}
	case len(key) == 22 && key[:2] == "a/":
		var a *Account
		if a, err = decodeAccount(value); err == nil {
			s.accounts[Address([]byte(key[2:]))] = a
		}
	case len(key) == 22 && key[:2] == "h/":
		var h *Hotkey
		if h, err = decodeHotkey(value); err == nil {
			s.hotkeys[Address([]byte(key[2:]))] = h
		}
	case len(key) == 4 && key[:2] == "s/":
		var sub *Subnet
		var n int
		if sub, n, err = decodeSubnetHeader(value); err == nil {
			s.subnets[sub.Netuid] = sub
			sub.neurons = make([]*Neuron, n)
		}
	case len(key) == 6 && key[:2] == "n/":
		var nr *Neuron
		if nr, err = decodeNeuron(value); err == nil {
			netuid := binary.BigEndian.Uint16([]byte(key[2:4]))
			neurons[netuid] = append(neurons[netuid], nr)
		}
	case len(key) == 22 && key[:2] == "i/":
		err = s.ids.loadColdkey(Address([]byte(key[2:])), value)
	case len(key) == 4 && key[:2] == "j/":
		err = s.ids.loadSubnet(binary.BigEndian.Uint16([]byte(key[2:])), value)
	case len(key) == 24 && key[:2] == "c/":
		err = s.loadChildRecord(key, value)
	case len(key) == 4 && key[:2] == "e/":
		err = s.mech.loadSubnet(key, value)
	case len(key) == 7 && key[:2] == "w/":
		err = s.mech.loadRow(key, value)
	case len(key) == 4 && key[:2] == "u/":
		err = s.specs.load(key, value)
	default:
		return fmt.Errorf("chain: unknown state key %x", key)
	}
	if err != nil {
		return fmt.Errorf("chain: state record %x: %w", key, err)
	}
	s.hashes[key] = sha256.Sum256(value)
	s.keys = append(s.keys, key)
	return nil
}

// restoreState rebuilds a state from persisted records (in any order).
func restoreState(height uint64, appHash []byte, recs []record, epoch EpochFunc) (*State, error) {
	s := newEmptyState(epoch)
	neurons := map[uint16][]*Neuron{}
	for _, r := range recs {
		if err := s.loadRecord(r.key, r.value, neurons); err != nil {
			return nil, err
		}
	}
	for netuid, list := range neurons {
		sub, ok := s.subnets[netuid]
		if !ok {
			return nil, fmt.Errorf("chain: neurons of missing subnet %d", netuid)
		}
		for _, n := range list {
			if int(n.UID) >= len(sub.neurons) || sub.neurons[n.UID] != nil {
				return nil, fmt.Errorf("chain: subnet %d: unexpected neuron uid %d", netuid, n.UID)
			}
			sub.neurons[n.UID] = n
			sub.uids[n.Hotkey] = n.UID
		}
	}
	for netuid, sub := range s.subnets {
		for uid, n := range sub.neurons {
			if n == nil {
				return nil, fmt.Errorf("chain: subnet %d: neuron %d missing", netuid, uid)
			}
		}
	}
	sort.Strings(s.keys)
	s.height = height
	s.appHash = s.computeAppHash()
	if string(s.appHash) != string(appHash) {
		return nil, fmt.Errorf("chain: restored state hashes to %x, stored app hash is %x", s.appHash, appHash)
	}
	return s, nil
}

// allRecords encodes every object of the state, in key order: what a
// fresh store persists, and what tests compare.
func (s *State) allRecords() []record {
	out := []record{{keyGlobals(), s.g.encode()}}
	for a, acc := range s.accounts {
		out = append(out, record{keyAccount(a), acc.encode()})
	}
	for a, hk := range s.hotkeys {
		out = append(out, record{keyHotkey(a), hk.encode()})
	}
	for n, sub := range s.subnets {
		out = append(out, record{keySubnet(n), sub.encodeHeader()})
		for uid, nr := range sub.neurons {
			out = append(out, record{keyNeuron(n, uint16(uid)), nr.encode()})
		}
	}
	out = append(out, s.ids.all()...)
	out = append(out, s.allChildRecords()...)
	out = append(out, s.mech.all()...)
	out = append(out, s.specs.all()...)
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}
