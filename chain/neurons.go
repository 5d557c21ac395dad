package chain

import (
	"math/bits"
)

// hotkeyStake is the total stake on a hotkey.
func (s *State) hotkeyStake(h Address) uint64 {
	if hk, ok := s.hotkeys[h]; ok {
		return hk.Total
	}
	return 0
}

// ownerAllowed reports whether coldkey may use hotkey: it owns it, or the
// hotkey has no owner yet.
func (s *State) ownerAllowed(coldkey, hotkey Address) bool {
	hk, ok := s.hotkeys[hotkey]
	return !ok || hk.Owner == coldkey
}

// ensureHotkey creates hotkey's stake account owned by coldkey.
func (s *State) ensureHotkey(coldkey, hotkey Address) *Hotkey {
	hk, ok := s.hotkeys[hotkey]
	if !ok {
		hk = &Hotkey{Owner: coldkey, Stakes: map[Address]uint64{}}
		s.hotkeys[hotkey] = hk
		s.markHotkey(hotkey)
	}
	return hk
}

// addStake moves nothing: it credits stake (the caller debits the source).
func (s *State) addStake(coldkey, hotkey Address, amount uint64) {
	if amount == 0 {
		return
	}
	hk := s.hotkeys[hotkey]
	hk.Stakes[coldkey] += amount
	hk.Total += amount
	s.g.TotalStake += amount
	s.markHotkey(hotkey)
	s.dirty.globals = true
}

func (s *State) subStake(coldkey, hotkey Address, amount uint64) {
	hk := s.hotkeys[hotkey]
	hk.Stakes[coldkey] -= amount
	if hk.Stakes[coldkey] == 0 {
		delete(hk.Stakes, coldkey)
	}
	hk.Total -= amount
	s.g.TotalStake -= amount
	s.markHotkey(hotkey)
	s.dirty.globals = true
}

// registeredAnywhere reports whether hotkey holds a uid on any subnet.
func (s *State) registeredAnywhere(hotkey Address) bool {
	for _, sub := range s.subnets {
		if _, ok := sub.uids[hotkey]; ok {
			return true
		}
	}
	return false
}

// unstakeAll returns every stake on hotkey to its coldkeys' balances, as
// cybernet does when a hotkey loses its last registration.
func (s *State) unstakeAll(hotkey Address) {
	hk, ok := s.hotkeys[hotkey]
	if !ok {
		return
	}
	for _, c := range hk.sortedStakers() {
		amt := hk.Stakes[c]
		s.subStake(c, hotkey, amt)
		s.account(c).Balance += amt
		s.markAccount(c)
	}
}

// neuronToPrune picks the uid a new registration replaces on a full
// subnet: the lowest pruning score outside the immunity period (lowest uid
// on ties), or if all are immune, the lowest pruning score among them.
func (s *State) neuronToPrune(sub *Subnet) uint16 {
	minScore, minImmune := uint32(1<<16), uint32(1<<16)
	var uid, uidImmune uint16
	for i, n := range sub.neurons {
		score := uint32(n.PruningScore)
		if s.height-n.RegisteredAt < sub.Params.ImmunityPeriod {
			if score < minImmune {
				minImmune, uidImmune = score, uint16(i)
			}
		} else if score < minScore {
			minScore, uid = score, uint16(i)
		}
	}
	if minScore == 1<<16 {
		return uidImmune
	}
	return uid
}

// registerNeuron gives hotkey a uid on sub: the next free one, or the one
// of the neuron to prune when the subnet is full. It returns the uid.
func (s *State) registerNeuron(sub *Subnet, coldkey, hotkey Address) uint16 {
	s.ensureHotkey(coldkey, hotkey)
	fresh := &Neuron{Hotkey: hotkey, RegisteredAt: s.height, LastUpdate: s.height, Active: true}
	var uid uint16
	if uint64(len(sub.neurons)) < sub.Params.MaxAllowedUIDs {
		uid = uint16(len(sub.neurons))
		sub.neurons = append(sub.neurons, fresh)
		s.markSubnet(sub.Netuid)
	} else {
		uid = s.neuronToPrune(sub)
		old := sub.neurons[uid]
		delete(sub.uids, old.Hotkey)
		// The newcomer keeps a maximal pruning score until its first epoch.
		fresh.PruningScore = 0xffff
		sub.neurons[uid] = fresh
		s.mech.clearUID(sub.Netuid, uid)
		if !s.registeredAnywhere(old.Hotkey) {
			s.unstakeAll(old.Hotkey)
		}
	}
	fresh.UID = uid
	sub.uids[hotkey] = uid
	s.markNeuron(sub.Netuid, uid)
	return uid
}

// mulDiv returns floor(a*b/c) with a 128-bit intermediate; c must be > 0
// and the result must fit 64 bits (true when b <= c).
func mulDiv(a, b, c uint64) uint64 {
	hi, lo := bits.Mul64(a, b)
	if hi >= c {
		// The quotient overflows; callers pass b <= c, so never.
		return ^uint64(0)
	}
	q, _ := bits.Div64(hi, lo, c)
	return q
}

// emitThroughHotkey pays a neuron's epoch emission into stake: server
// emission to the owner; validator emission, less the delegate's take, to
// every staker in proportion to its stake; the take and any rounding
// remainder to the owner.
func (s *State) emitThroughHotkey(hotkey Address, server, validator uint64) {
	hk, ok := s.hotkeys[hotkey]
	if !ok {
		return
	}
	if !hk.Delegate || hk.Total == 0 {
		s.addStake(hk.Owner, hotkey, server+validator)
		return
	}
	take := mulDiv(validator, uint64(hk.Take), 65535)
	rest := validator - take
	s.recordPayout(hotkey, hk, rest)
	remaining := rest
	total := hk.Total
	for _, c := range hk.sortedStakers() {
		share := mulDiv(rest, hk.Stakes[c], total)
		s.addStake(c, hotkey, share)
		remaining -= share
	}
	s.addStake(hk.Owner, hotkey, take+remaining+server)
}
