package chain

import (
	"testing"
)

// lendChildren makes every one of the 64 validators of metagraphState a
// parent or a child: validator i < 32 lends 50% of its stake to validator
// 32+i, whose owner is another coldkey and whose childkey take is 10%, so
// every dividend path (lent stake, payback, take) runs.
func lendChildren(b *testing.B, s *State) {
	sub := s.subnets[1]
	for i := range 32 {
		parent, child := sub.neurons[i].Hotkey, sub.neurons[32+i].Hotkey
		s.hotkeys[parent].Owner = addr(kOther)
		s.ch.install(childKey{1, parent}, &childRecord{children: []Child{{Hotkey: child, Proportion: 1 << 63}}})
		s.ch.record(childKey{1, child}).take = 6553
		s.markChildren(childKey{1, parent})
		s.markChildren(childKey{1, child})
	}
	s.finishBlock()
	if s.ch.edges[1] != 32 {
		b.Fatalf("%d edges", s.ch.edges[1])
	}
}

// delegateWithTakes opens every one of the 64 validators as a delegate
// with an 18% take and stake from 4 nominators, so each validator payout
// pays its nominators net of the take and records a payout.
func delegateWithTakes(s *State) {
	sub := s.subnets[1]
	for i := range 64 {
		hk := sub.neurons[i].Hotkey
		h := s.hotkeys[hk]
		h.Delegate, h.Take = true, 11796
		for n := range 4 {
			var nominator Address
			nominator[0], nominator[1], nominator[2] = 0xde, byte(i), byte(n)
			s.addStake(nominator, hk, 1_000_000_000)
		}
		s.markHotkey(hk)
	}
	s.finishBlock()
}

// BenchmarkEpochStepChildren4096 is BenchmarkEpochStep4096's Yuma block
// step (4,096 uids, 64 validators weighting every uid) with and without
// child hotkeys: with them, each validator is a parent lending half its
// stake or a child with a 10% childkey take, so the epoch computes
// effective stakes and pays dividends back to parents.
func BenchmarkEpochStepChildren4096(b *testing.B) {
	for _, tc := range []struct {
		name     string
		children bool
		takes    bool
	}{{"without-children", false, false}, {"with-children", true, false}, {"with-children-and-takes", true, true}} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := metagraphState(b)
			s.epoch = YumaEpoch
			if tc.children {
				lendChildren(b, s)
			}
			if tc.takes {
				delegateWithTakes(s)
			}
			sub := s.subnets[1]
			sub.Params.Tempo = 1
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for BlocksUntilNextEpoch(1, sub.Params.Tempo, s.Height()+1) != 0 {
					s.ApplyBlock(Block{Height: s.Height() + 1, Hash: blockHashFor(s.Height() + 1)})
				}
				for v := range 64 {
					sub.neurons[v].LastUpdate = s.Height()
				}
				b.StartTimer()
				res, err := s.ApplyBlock(Block{Height: s.Height() + 1, Hash: blockHashFor(s.Height() + 1)})
				if err != nil {
					b.Fatal(err)
				}
				ran := false
				for _, e := range res.Events {
					ran = ran || (e.Type == "epoch" && e.Attrs["netuid"] == "1")
				}
				if !ran {
					b.Fatal("no epoch ran")
				}
			}
		})
	}
}

// BenchmarkChildStakes4096 isolates what children add to the epoch step
// of BenchmarkEpochStepChildren4096: computing effective stakes (and the
// parents' parts) for the epoch input and paying the 32 children's
// validator emission back through their parents. "none" is the same on a
// subnet without children: one map lookup, then the plain payout.
func BenchmarkChildStakes4096(b *testing.B) {
	for _, children := range []bool{false, true} {
		name := "none"
		if children {
			name = "32-parents-64-validators"
		}
		b.Run(name, func(b *testing.B) {
			s, _ := metagraphState(b)
			if children {
				lendChildren(b, s)
			}
			sub := s.subnets[1]
			in := make([]EpochNeuron, len(sub.neurons))
			for i, n := range sub.neurons {
				in[i].Stake = s.hotkeyStake(n.Hotkey)
			}
			work := make([]EpochNeuron, len(in))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				copy(work, in)
				inh := s.applyChildStakes(sub, work)
				for uid := range 64 {
					s.payValidator(sub, inh, uint16(uid), 0, 1_000_000)
				}
			}
		})
	}
}
