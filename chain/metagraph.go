package chain

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
)

// This file holds the metagraph a client can afford: a chosen set of
// columns (MetagraphFields), computed by State.MetagraphColumns, and their
// compact binary encoding (EncodeMetagraph, DecodeMetagraph), which the
// ABCI query /metagraph/<netuid>?fields=… answers with.

// MetagraphFields is a set of metagraph columns, one bit per name in
// MetagraphFieldNames order.
type MetagraphFields uint32

// metagraphFieldNames are the column names, as chain.Metagraph's JSON
// spells them, in answer order.
var metagraphFieldNames = []string{
	"uids", "hotkeys", "coldkeys", "stake", "ranks", "trust", "consensus", "validator_trust",
	"incentive", "dividends", "pruning_scores", "emission", "active", "last_update", "registered_at",
	"validator_permit", "axons", "weights", "bonds", "commitments", "identity_names",
}

// Column bits used by name below.
const (
	fieldWeights     MetagraphFields = 1 << 17
	fieldBonds       MetagraphFields = 1 << 18
	fieldCommitments MetagraphFields = 1 << 19
	// fieldIdentityNames: each uid's coldkey's identity name.
	fieldIdentityNames MetagraphFields = 1 << 20
)

// AllMetagraphFields is every column; LiteMetagraphFields leaves out
// weights, bonds, commitments (the per-neuron rows that make a full
// metagraph large) and the coldkeys' identity names.
const (
	AllMetagraphFields  MetagraphFields = 1<<21 - 1
	LiteMetagraphFields                 = AllMetagraphFields &^ (fieldWeights | fieldBonds | fieldCommitments | fieldIdentityNames)
)

// ErrUnknownMetagraphField is returned (wrapped, with the valid names) for
// a field name that is not a metagraph column.
var ErrUnknownMetagraphField = errors.New("unknown metagraph field")

// MetagraphFieldNames lists the valid column names in answer order.
func MetagraphFieldNames() []string { return append([]string(nil), metagraphFieldNames...) }

// ParseMetagraphFields parses a comma-separated list of column names:
// each a name from MetagraphFieldNames or its singular ("uid", "rank",
// "axon"), or "all" for every column, or "lite" for LiteMetagraphFields.
// An empty list is LiteMetagraphFields.
func ParseMetagraphFields(list string) (MetagraphFields, error) {
	if strings.TrimSpace(list) == "" {
		return LiteMetagraphFields, nil
	}
	var f MetagraphFields
	for _, raw := range strings.Split(list, ",") {
		name := strings.ToLower(strings.TrimSpace(raw))
		switch name {
		case "all":
			f |= AllMetagraphFields
			continue
		case "lite":
			f |= LiteMetagraphFields
			continue
		}
		bit, ok := metagraphFieldBit(name)
		if !ok {
			return 0, fmt.Errorf("%w %q; valid fields: %s (or all, lite)", ErrUnknownMetagraphField, raw, strings.Join(metagraphFieldNames, ", "))
		}
		f |= bit
	}
	return f, nil
}

func metagraphFieldBit(name string) (MetagraphFields, bool) {
	for i, n := range metagraphFieldNames {
		if name == n || name+"s" == n {
			return 1 << i, true
		}
	}
	return 0, false
}

// Has reports whether every column of g is in f.
func (f MetagraphFields) Has(g MetagraphFields) bool { return f&g == g }

// Names lists f's column names in answer order.
func (f MetagraphFields) Names() []string {
	out := make([]string, 0, bits.OnesCount32(uint32(f)))
	for i, n := range metagraphFieldNames {
		if f&(1<<i) != 0 {
			out = append(out, n)
		}
	}
	return out
}

// String is the comma-separated list of f's names.
func (f MetagraphFields) String() string { return strings.Join(f.Names(), ",") }

func (f MetagraphFields) has(i int) bool { return f&(1<<i) != 0 }

// MetagraphColumns returns a subnet's metagraph with only the columns in
// fields; the others are nil, and Fields names the chosen ones.
func (s *State) MetagraphColumns(netuid uint16, fields MetagraphFields) (*Metagraph, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return nil, false
	}
	fields &= AllMetagraphFields
	n := len(sub.neurons)
	m := &Metagraph{Netuid: netuid, N: n, Block: s.height, Fields: fields.Names(),
		EmissionPerBlock: sub.EmissionPerBlock, SubnetIdentity: s.subnetIdentity(netuid)}
	u16 := func(i int) []uint16 {
		if fields.has(i) {
			return make([]uint16, n)
		}
		return nil
	}
	u64 := func(i int) []uint64 {
		if fields.has(i) {
			return make([]uint64, n)
		}
		return nil
	}
	flags := func(i int) []bool {
		if fields.has(i) {
			return make([]bool, n)
		}
		return nil
	}
	addrs := func(i int) []Address {
		if fields.has(i) {
			return make([]Address, n)
		}
		return nil
	}
	m.UIDs, m.Hotkeys, m.Coldkeys, m.Stake = u16(0), addrs(1), addrs(2), u64(3)
	m.Ranks, m.Trust, m.Consensus, m.ValidatorTrust = u16(4), u16(5), u16(6), u16(7)
	m.Incentive, m.Dividends, m.PruningScores, m.Emission = u16(8), u16(9), u16(10), u64(11)
	m.Active, m.LastUpdate, m.RegisteredAt, m.ValidatorPermit = flags(12), u64(13), u64(14), flags(15)
	if fields.has(16) {
		m.Axons = make([]*Axon, n)
	}
	if fields.has(17) {
		m.Weights = make([][]Entry, n)
	}
	if fields.has(18) {
		m.Bonds = make([][]Entry, n)
	}
	if fields.has(19) {
		m.Commitments = make([]*Commitment, n)
	}
	if fields.has(20) {
		m.IdentityNames = make([]string, n)
	}
	if fields.has(8) && s.mech.count(netuid) > 1 {
		m.MechanismIncentive = s.mechanismIncentive(sub)
	}
	needKey := fields.has(2) || fields.has(3) || fields.has(20)
	for i, nr := range sub.neurons {
		if m.UIDs != nil {
			m.UIDs[i] = uint16(i)
		}
		if m.Hotkeys != nil {
			m.Hotkeys[i] = nr.Hotkey
		}
		if needKey {
			if hk, ok := s.hotkeys[nr.Hotkey]; ok {
				if m.Coldkeys != nil {
					m.Coldkeys[i] = hk.Owner
				}
				if m.Stake != nil {
					m.Stake[i] = hk.Total
				}
				if m.IdentityNames != nil {
					m.IdentityNames[i] = s.identityName(hk.Owner)
				}
			}
		}
		for _, c := range []struct {
			col []uint16
			v   uint16
		}{{m.Ranks, nr.Rank}, {m.Trust, nr.Trust}, {m.Consensus, nr.Consensus}, {m.ValidatorTrust, nr.ValidatorTrust},
			{m.Incentive, nr.Incentive}, {m.Dividends, nr.Dividends}, {m.PruningScores, nr.PruningScore}} {
			if c.col != nil {
				c.col[i] = c.v
			}
		}
		for _, c := range []struct {
			col []uint64
			v   uint64
		}{{m.Emission, nr.Emission}, {m.LastUpdate, nr.LastUpdate}, {m.RegisteredAt, nr.RegisteredAt}} {
			if c.col != nil {
				c.col[i] = c.v
			}
		}
		if m.Active != nil {
			m.Active[i] = nr.Active
		}
		if m.ValidatorPermit != nil {
			m.ValidatorPermit[i] = nr.ValidatorPermit
		}
		if m.Axons != nil && nr.Axon != nil {
			a := *nr.Axon
			a.Multiaddrs = append([]string(nil), a.Multiaddrs...)
			a.Protocols = append([]string(nil), a.Protocols...)
			m.Axons[i] = &a
		}
		if m.Weights != nil {
			m.Weights[i] = append([]Entry(nil), nr.Weights...)
		}
		if m.Bonds != nil {
			m.Bonds[i] = append([]Entry(nil), nr.Bonds...)
		}
		if m.Commitments != nil {
			m.Commitments[i] = nr.Commitment.clone()
		}
	}
	return m, true
}

// ColumnsJSON encodes the metagraph as a JSON object holding netuid, n,
// block, fields and only the chosen columns (all of them when Fields is
// empty), in answer order. It decodes into a Metagraph.
func (m *Metagraph) ColumnsJSON() ([]byte, error) {
	names := m.Fields
	if names == nil {
		names = metagraphFieldNames
	}
	cols := map[string]any{
		"uids": m.UIDs, "hotkeys": m.Hotkeys, "coldkeys": m.Coldkeys, "stake": m.Stake, "ranks": m.Ranks,
		"trust": m.Trust, "consensus": m.Consensus, "validator_trust": m.ValidatorTrust, "incentive": m.Incentive,
		"dividends": m.Dividends, "pruning_scores": m.PruningScores, "emission": m.Emission, "active": m.Active,
		"last_update": m.LastUpdate, "registered_at": m.RegisteredAt, "validator_permit": m.ValidatorPermit,
		"axons": m.Axons, "weights": m.Weights, "bonds": m.Bonds, "commitments": m.Commitments,
		"identity_names": m.IdentityNames,
	}
	b := fmt.Appendf(nil, `{"netuid":%d,"n":%d,"block":%d,"emission_per_block":%d`, m.Netuid, m.N, m.Block, m.EmissionPerBlock)
	if m.SubnetIdentity != nil {
		id, err := json.Marshal(m.SubnetIdentity)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"subnet_identity":`...), id...)
	}
	fields, err := json.Marshal(names)
	if err != nil {
		return nil, err
	}
	b = append(append(b, `,"fields":`...), fields...)
	if m.MechanismIncentive != nil {
		mi, err := json.Marshal(m.MechanismIncentive)
		if err != nil {
			return nil, err
		}
		b = append(append(b, `,"mechanism_incentive":`...), mi...)
	}
	for _, name := range names {
		col, ok := cols[name]
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownMetagraphField, name)
		}
		v, err := json.Marshal(col)
		if err != nil {
			return nil, err
		}
		b = append(fmt.Appendf(b, ",%q:", name), v...)
	}
	return append(b, '}'), nil
}

// metagraphMagic starts an encoded metagraph (format version 2: weight
// and bond rows delta-coded, see encodeRow).
const metagraphMagic = "cymg\x02"

// errBadMetagraph is wrapped by DecodeMetagraph's errors.
var errBadMetagraph = errors.New("malformed metagraph answer")

// EncodeMetagraph encodes the chosen columns of m (those Fields names)
// compactly: a header (magic, netuid, block, n, the column set) and then
// each column in order, uvarints for numbers, 20 raw bytes per address,
// length-prefixed sparse rows.
func EncodeMetagraph(m *Metagraph) ([]byte, error) {
	var f MetagraphFields
	for _, name := range m.Fields {
		bit, ok := metagraphFieldBit(name)
		if !ok {
			return nil, fmt.Errorf("%w %q", ErrUnknownMetagraphField, name)
		}
		f |= bit
	}
	n := m.N
	size := 64 + n*len(m.Fields)*3
	if f.has(1) {
		size += 20 * n
	}
	if f.has(2) {
		size += 20 * n
	}
	for _, rows := range [][][]Entry{m.Weights, m.Bonds} {
		for _, r := range rows {
			size += 3 + 3*len(r)
		}
	}
	e := encoder{b: make([]byte, 0, size)}
	e.b = append(e.b, metagraphMagic...)
	e.u64(uint64(m.Netuid))
	e.u64(m.Block)
	e.u64(uint64(n))
	e.u64(uint64(f))
	e.u64(m.EmissionPerBlock)
	e.boolean(m.SubnetIdentity != nil)
	if id := m.SubnetIdentity; id != nil {
		e.str(id.Name)
		e.str(id.URL)
		e.str(id.Description)
	}
	bad := func(name string) error {
		return fmt.Errorf("metagraph column %s has the wrong length for n = %d", name, n)
	}
	for i, name := range metagraphFieldNames {
		if !f.has(i) {
			continue
		}
		var ok bool
		switch i {
		case 0:
			ok = encodeU16s(&e, m.UIDs, n)
		case 1:
			ok = encodeAddrs(&e, m.Hotkeys, n)
		case 2:
			ok = encodeAddrs(&e, m.Coldkeys, n)
		case 3:
			ok = encodeU64s(&e, m.Stake, n)
		case 4:
			ok = encodeU16s(&e, m.Ranks, n)
		case 5:
			ok = encodeU16s(&e, m.Trust, n)
		case 6:
			ok = encodeU16s(&e, m.Consensus, n)
		case 7:
			ok = encodeU16s(&e, m.ValidatorTrust, n)
		case 8:
			ok = encodeU16s(&e, m.Incentive, n)
		case 9:
			ok = encodeU16s(&e, m.Dividends, n)
		case 10:
			ok = encodeU16s(&e, m.PruningScores, n)
		case 11:
			ok = encodeU64s(&e, m.Emission, n)
		case 12:
			ok = encodeBools(&e, m.Active, n)
		case 13:
			ok = encodeU64s(&e, m.LastUpdate, n)
		case 14:
			ok = encodeU64s(&e, m.RegisteredAt, n)
		case 15:
			ok = encodeBools(&e, m.ValidatorPermit, n)
		case 16:
			if ok = len(m.Axons) == n; ok {
				for _, a := range m.Axons {
					encodeAxon(&e, a)
				}
			}
		case 17, 18:
			rows := m.Weights
			if i == 18 {
				rows = m.Bonds
			}
			if ok = len(rows) == n; ok {
				for _, r := range rows {
					if !encodeRow(&e, r) {
						return nil, fmt.Errorf("metagraph column %s: a row's uids are not strictly increasing", name)
					}
				}
			}
		case 19:
			if ok = len(m.Commitments) == n; ok {
				for _, c := range m.Commitments {
					e.boolean(c != nil)
					if c != nil {
						e.bytes(c.Data)
						e.u64(c.Block)
					}
				}
			}
		case 20:
			if ok = len(m.IdentityNames) == n; ok {
				for _, name := range m.IdentityNames {
					e.str(name)
				}
			}
		}
		if !ok {
			return nil, bad(name)
		}
	}
	// The mechanisms' incentive is a trailing optional part: a metagraph
	// of a subnet with one mechanism encodes as it did before them.
	if mi := m.MechanismIncentive; mi != nil {
		if len(mi) < 2 || len(mi) > MaxMechanisms || !f.has(8) {
			return nil, fmt.Errorf("metagraph mechanism incentive: %d mechanisms (2 to %d, with the incentive column)", len(mi), MaxMechanisms)
		}
		e.u64(uint64(len(mi)))
		for _, col := range mi {
			if !encodeU16s(&e, col, n) {
				return nil, bad("mechanism_incentive")
			}
		}
	}
	return e.b, nil
}

// encodeRow writes a sparse row sorted by uid compactly: its length, then
// per entry the gap to the previous uid (uvarint of uid − previous − 1, so
// 0 for consecutive uids; the first counts from −1) and the value as 2
// bytes, little-endian. A dense row of 4,096 weights takes 3 bytes per
// entry instead of up to 5. It reports false for a row whose uids are not
// strictly increasing, which no chain state holds.
func encodeRow(e *encoder, row []Entry) bool {
	e.u64(uint64(len(row)))
	next := 0
	for _, x := range row {
		if int(x.UID) < next {
			return false
		}
		e.u64(uint64(int(x.UID) - next))
		e.b = append(e.b, byte(x.Value), byte(x.Value>>8))
		next = int(x.UID) + 1
	}
	return true
}

// decodeRow reads encodeRow's bytes: at most as many entries as 3 bytes
// each allow in what remains, uids strictly increasing and within 16 bits.
func decodeRow(d *decoder) []Entry {
	n := d.u64()
	if d.err == nil && n > uint64(len(d.b)/3) {
		d.fail(errTruncated)
	}
	if d.err != nil || n == 0 {
		return nil
	}
	row := make([]Entry, 0, n)
	next := uint64(0)
	for range n {
		uid := next + d.u64()
		if d.err == nil && (uid > 0xffff || len(d.b) < 2) {
			d.fail(errors.New("row uid out of range or truncated"))
		}
		if d.err != nil {
			return nil
		}
		row = append(row, Entry{UID: uint16(uid), Value: uint16(d.b[0]) | uint16(d.b[1])<<8})
		d.b = d.b[2:]
		next = uid + 1
	}
	return row
}

func encodeU16s(e *encoder, col []uint16, n int) bool {
	for _, v := range col {
		e.u64(uint64(v))
	}
	return len(col) == n
}

func encodeU64s(e *encoder, col []uint64, n int) bool {
	for _, v := range col {
		e.u64(v)
	}
	return len(col) == n
}

func encodeBools(e *encoder, col []bool, n int) bool {
	for _, v := range col {
		e.boolean(v)
	}
	return len(col) == n
}

func encodeAddrs(e *encoder, col []Address, n int) bool {
	for _, a := range col {
		e.b = append(e.b, a[:]...)
	}
	return len(col) == n
}

func encodeAxon(e *encoder, a *Axon) {
	e.boolean(a != nil)
	if a == nil {
		return
	}
	e.str(a.PeerID)
	e.u64(uint64(len(a.Multiaddrs)))
	for _, m := range a.Multiaddrs {
		e.str(m)
	}
	e.u64(uint64(len(a.Protocols)))
	for _, p := range a.Protocols {
		e.str(p)
	}
	e.u64(uint64(a.Version))
	e.u64(a.Block)
}

// DecodeMetagraph decodes EncodeMetagraph's bytes. The input is treated
// as untrusted: every length is checked against what remains before
// anything is allocated, and malformed input is an error, never a panic.
func DecodeMetagraph(b []byte) (*Metagraph, error) {
	if len(b) < len(metagraphMagic) || string(b[:len(metagraphMagic)]) != metagraphMagic {
		return nil, fmt.Errorf("%w: not a metagraph encoding", errBadMetagraph)
	}
	d := decoder{b: b[len(metagraphMagic):]}
	m := &Metagraph{Netuid: d.u16(), Block: d.u64()}
	n := d.u64()
	rawFields := d.u64()
	if d.err == nil && (n > 1<<16 || rawFields&^uint64(AllMetagraphFields) != 0) {
		d.fail(errors.New("neuron count or column set out of range"))
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMetagraph, d.err)
	}
	m.EmissionPerBlock = d.u64()
	if d.boolean() {
		id := Identity{Name: d.str(), URL: d.str(), Description: d.str()}
		if d.err == nil && id.Check() != nil {
			d.fail(errors.New("subnet identity out of bounds"))
		}
		m.SubnetIdentity = &id
	}
	if d.err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMetagraph, d.err)
	}
	f := MetagraphFields(rawFields)
	m.N, m.Fields = int(n), f.Names()
	// room says whether per bytes per element remain for n elements, so a
	// short answer cannot make the decoder allocate for a large n.
	room := func(per int) bool {
		if d.err == nil && len(d.b) < per*m.N {
			d.fail(errTruncated)
		}
		return d.err == nil
	}
	u16s := func() []uint16 {
		if !room(1) {
			return nil
		}
		col := make([]uint16, m.N)
		for i := range col {
			col[i] = d.u16()
		}
		return col
	}
	u64s := func() []uint64 {
		if !room(1) {
			return nil
		}
		col := make([]uint64, m.N)
		for i := range col {
			col[i] = d.u64()
		}
		return col
	}
	flags := func() []bool {
		if !room(1) {
			return nil
		}
		col := make([]bool, m.N)
		for i := range col {
			col[i] = d.boolean()
		}
		return col
	}
	addrs := func() []Address {
		if !room(20) {
			return nil
		}
		col := make([]Address, m.N)
		for i := range col {
			copy(col[i][:], d.b[20*i:])
		}
		d.b = d.b[20*m.N:]
		return col
	}
	rows := func() [][]Entry {
		if !room(1) {
			return nil
		}
		col := make([][]Entry, m.N)
		for i := range col {
			col[i] = decodeRow(&d)
		}
		return col
	}
	for i := range metagraphFieldNames {
		if !f.has(i) || d.err != nil {
			continue
		}
		switch i {
		case 0:
			m.UIDs = u16s()
		case 1:
			m.Hotkeys = addrs()
		case 2:
			m.Coldkeys = addrs()
		case 3:
			m.Stake = u64s()
		case 4:
			m.Ranks = u16s()
		case 5:
			m.Trust = u16s()
		case 6:
			m.Consensus = u16s()
		case 7:
			m.ValidatorTrust = u16s()
		case 8:
			m.Incentive = u16s()
		case 9:
			m.Dividends = u16s()
		case 10:
			m.PruningScores = u16s()
		case 11:
			m.Emission = u64s()
		case 12:
			m.Active = flags()
		case 13:
			m.LastUpdate = u64s()
		case 14:
			m.RegisteredAt = u64s()
		case 15:
			m.ValidatorPermit = flags()
		case 16:
			if room(1) {
				m.Axons = make([]*Axon, m.N)
				for j := range m.Axons {
					m.Axons[j] = decodeAxon(&d)
				}
			}
		case 17:
			m.Weights = rows()
		case 18:
			m.Bonds = rows()
		case 19:
			if room(1) {
				m.Commitments = make([]*Commitment, m.N)
				for j := range m.Commitments {
					if d.boolean() {
						c := &Commitment{Data: d.bytes(), Block: d.u64()}
						if d.err == nil && (len(c.Data) == 0 || len(c.Data) > MaxCommitmentLen) {
							d.fail(errors.New("commitment length out of range"))
						}
						m.Commitments[j] = c
					}
				}
			}
		case 20:
			if room(1) {
				m.IdentityNames = make([]string, m.N)
				for j := range m.IdentityNames {
					m.IdentityNames[j] = d.str()
					if d.err == nil && len(m.IdentityNames[j]) > MaxIdentityNameLen {
						d.fail(errors.New("identity name too long"))
					}
				}
			}
		}
	}
	if d.more() {
		count := d.u64()
		if d.err == nil && (count < 2 || count > MaxMechanisms || !f.has(8)) {
			d.fail(errors.New("mechanism incentive out of range"))
		}
		for range count {
			if d.err != nil {
				break
			}
			m.MechanismIncentive = append(m.MechanismIncentive, u16s())
		}
	}
	if err := d.finish(); err != nil {
		return nil, fmt.Errorf("%w: %v", errBadMetagraph, err)
	}
	return m, nil
}

func decodeAxon(d *decoder) *Axon {
	if !d.boolean() {
		return nil
	}
	a := &Axon{PeerID: d.str()}
	for range d.length() {
		a.Multiaddrs = append(a.Multiaddrs, d.str())
	}
	for range d.length() {
		a.Protocols = append(a.Protocols, d.str())
	}
	v := d.u64()
	if v > 1<<32-1 {
		d.fail(errors.New("axon version does not fit 32 bits"))
	}
	a.Version = uint32(v)
	a.Block = d.u64()
	return a
}
