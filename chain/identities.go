package chain

import (
	"encoding/binary"
	"fmt"
	"unicode"
	"unicode/utf8"

	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// Bounds of an identity's fields, in bytes of UTF-8.
const (
	MaxIdentityNameLen        = 64
	MaxIdentityURLLen         = 256
	MaxIdentityDescriptionLen = 1024
)

// Identity is the public face of a coldkey or of a subnet: who runs it,
// where to read more. The chain checks its bounds and characters and does
// not otherwise interpret it; the URL is not fetched or checked.
type Identity struct {
	Name        string `json:"name"`
	URL         string `json:"url,omitempty"`
	Description string `json:"description,omitempty"`
}

// Empty reports whether every field is empty: setting an empty identity
// removes the one stored.
func (id Identity) Empty() bool { return id.Name == "" && id.URL == "" && id.Description == "" }

// Check returns an error wrapping ErrInvalidIdentity, saying which field
// is wrong, unless id is empty or has a name of 1 to MaxIdentityNameLen
// bytes, a URL of at most MaxIdentityURLLen and a description of at most
// MaxIdentityDescriptionLen, all valid UTF-8 without control characters
// (Unicode category Cc); the description may contain newlines.
func (id Identity) Check() error {
	if id.Empty() {
		return nil
	}
	if id.Name == "" {
		return txErr(ErrInvalidIdentity, "the name is empty (an identity with a URL or description needs a name)")
	}
	for _, f := range []struct {
		field, v string
		max      int
		newlines bool
	}{
		{"name", id.Name, MaxIdentityNameLen, false},
		{"url", id.URL, MaxIdentityURLLen, false},
		{"description", id.Description, MaxIdentityDescriptionLen, true},
	} {
		if len(f.v) > f.max {
			return txErr(ErrInvalidIdentity, "the %s is %d bytes (at most %d)", f.field, len(f.v), f.max)
		}
		if !utf8.ValidString(f.v) {
			return txErr(ErrInvalidIdentity, "the %s is not valid UTF-8", f.field)
		}
		for i, r := range f.v {
			if unicode.IsControl(r) && !(f.newlines && r == '\n') {
				return txErr(ErrInvalidIdentity, "the %s has control character %U at byte %d", f.field, r, i)
			}
		}
	}
	return nil
}

func (id *Identity) encode() []byte {
	var e encoder
	e.str(id.Name)
	e.str(id.URL)
	e.str(id.Description)
	return e.b
}

func decodeIdentity(b []byte) (*Identity, error) {
	d := decoder{b: b}
	id := &Identity{Name: d.str(), URL: d.str(), Description: d.str()}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if id.Empty() {
		return nil, fmt.Errorf("empty identity stored")
	}
	if err := id.Check(); err != nil {
		return nil, err
	}
	return id, nil
}

// identities holds the coldkeys' and subnets' identities and which of them
// changed since the last block was stored.
type identities struct {
	coldkeys      map[Address]*Identity
	subnets       map[uint16]*Identity
	dirtyColdkeys map[Address]struct{}
	dirtySubnets  map[uint16]struct{}
}

// Storage keys of identities.
func keyIdentity(a Address) string { return "i/" + string(a[:]) }
func keySubnetIdentity(n uint16) string {
	return "j/" + string(binary.BigEndian.AppendUint16(nil, n))
}

// init makes the maps on first use, so a new State needs no setup.
func (ids *identities) init() {
	if ids.coldkeys == nil {
		ids.coldkeys, ids.subnets = map[Address]*Identity{}, map[uint16]*Identity{}
		ids.dirtyColdkeys, ids.dirtySubnets = map[Address]struct{}{}, map[uint16]struct{}{}
	}
}

// setColdkey stores id for a coldkey, or removes the coldkey's identity
// if id is empty.
func (ids *identities) setColdkey(a Address, id Identity) {
	ids.init()
	if id.Empty() {
		delete(ids.coldkeys, a)
	} else {
		ids.coldkeys[a] = &id
	}
	ids.dirtyColdkeys[a] = struct{}{}
}

// setSubnet stores id for a subnet, or removes the subnet's identity if id
// is empty.
func (ids *identities) setSubnet(n uint16, id Identity) {
	ids.init()
	if id.Empty() {
		delete(ids.subnets, n)
	} else {
		ids.subnets[n] = &id
	}
	ids.dirtySubnets[n] = struct{}{}
}

// takeDirty returns a record for every identity changed since the last
// call: its encoding, or a nil value for one removed.
func (ids *identities) takeDirty() []record {
	var out []record
	for a := range ids.dirtyColdkeys {
		r := record{key: keyIdentity(a)}
		if id, ok := ids.coldkeys[a]; ok {
			r.value = id.encode()
		}
		out = append(out, r)
	}
	for n := range ids.dirtySubnets {
		r := record{key: keySubnetIdentity(n)}
		if id, ok := ids.subnets[n]; ok {
			r.value = id.encode()
		}
		out = append(out, r)
	}
	clear(ids.dirtyColdkeys)
	clear(ids.dirtySubnets)
	return out
}

// all returns a record for every identity, in no particular order.
func (ids *identities) all() []record {
	var out []record
	for a, id := range ids.coldkeys {
		out = append(out, record{keyIdentity(a), id.encode()})
	}
	for n, id := range ids.subnets {
		out = append(out, record{keySubnetIdentity(n), id.encode()})
	}
	return out
}

// loadColdkey installs a stored coldkey identity while restoring a state.
func (ids *identities) loadColdkey(a Address, value []byte) error {
	id, err := decodeIdentity(value)
	if err == nil {
		ids.init()
		ids.coldkeys[a] = id
	}
	return err
}

// loadSubnet installs a stored subnet identity while restoring a state.
func (ids *identities) loadSubnet(n uint16, value []byte) error {
	id, err := decodeIdentity(value)
	if err == nil {
		ids.init()
		ids.subnets[n] = id
	}
	return err
}

func identityOf(name, url, description string) Identity {
	return Identity{Name: name, URL: url, Description: description}
}

// execSetIdentity sets or, with every field empty, removes the signer's
// coldkey identity. As in subtensor, setting one needs a hotkey of the
// coldkey registered on some subnet (the root network counts); removing
// one does not, so a coldkey whose hotkeys were all deregistered can still
// take its identity down. There is no fee beyond the transaction.
func (s *State) execSetIdentity(c *txContext, m *chainpb.SetIdentity) ([]Event, error) {
	id := identityOf(m.Name, m.Url, m.Description)
	if err := id.Check(); err != nil {
		return nil, err
	}
	coldkey := c.tx.Signer
	if !id.Empty() && !s.hasRegisteredHotkey(coldkey) {
		return nil, txErr(ErrNoRegisteredHotkey, "%s owns no hotkey registered on a subnet", coldkey)
	}
	if c.check {
		return nil, nil
	}
	s.ids.setColdkey(coldkey, id)
	if id.Empty() {
		return []Event{event("identity_removed", "coldkey", coldkey.String())}, nil
	}
	return []Event{event("identity_set", "coldkey", coldkey.String(), "name", id.Name)}, nil
}

// hasRegisteredHotkey reports whether some hotkey owned by coldkey holds a
// uid on some subnet.
func (s *State) hasRegisteredHotkey(coldkey Address) bool {
	for _, netuid := range s.sortedNetuids() {
		for _, n := range s.subnets[netuid].neurons {
			if hk, ok := s.hotkeys[n.Hotkey]; ok && hk.Owner == coldkey {
				return true
			}
		}
	}
	return false
}

// execSetSubnetIdentity sets or, with every field empty, removes a
// subnet's identity. As in subtensor only the subnet's owner may, not the
// chain root; the root network has none.
func (s *State) execSetSubnetIdentity(c *txContext, m *chainpb.SetSubnetIdentity) ([]Event, error) {
	id := identityOf(m.Name, m.Url, m.Description)
	if err := id.Check(); err != nil {
		return nil, err
	}
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if sub.Netuid == RootNetuid {
		return nil, txErr(ErrOnRootNetwork, "the root network has no identity")
	}
	if c.tx.Signer != sub.Owner {
		return nil, txErr(ErrNotSubnetOwner, "subnet %d is owned by %s, not %s", sub.Netuid, sub.Owner, c.tx.Signer)
	}
	if c.check {
		return nil, nil
	}
	s.ids.setSubnet(sub.Netuid, id)
	if id.Empty() {
		return []Event{event("subnet_identity_removed", "netuid", u64s(uint64(sub.Netuid)))}, nil
	}
	return []Event{event("subnet_identity_set", "netuid", u64s(uint64(sub.Netuid)), "name", id.Name)}, nil
}

// Identity returns a coldkey's identity; ok is false if it has none.
func (s *State) Identity(coldkey Address) (Identity, bool) {
	if id, ok := s.ids.coldkeys[coldkey]; ok {
		return *id, true
	}
	return Identity{}, false
}

// SubnetIdentity returns a subnet's identity; ok is false if the subnet
// does not exist or has none.
func (s *State) SubnetIdentity(netuid uint16) (Identity, bool) {
	if id, ok := s.ids.subnets[netuid]; ok {
		return *id, true
	}
	return Identity{}, false
}

// subnetIdentity is a copy of a subnet's identity, or nil.
func (s *State) subnetIdentity(netuid uint16) *Identity {
	if id, ok := s.ids.subnets[netuid]; ok {
		c := *id
		return &c
	}
	return nil
}

// identityName is a coldkey's identity name, or "".
func (s *State) identityName(coldkey Address) string {
	if id, ok := s.ids.coldkeys[coldkey]; ok {
		return id.Name
	}
	return ""
}
