package chain

import (
	"fmt"
	"testing"

	"github.com/cybertensor/cybertensor/wallet"
)

// benchSubnet builds a state with one subnet of n neurons, the first v of
// them validators with permits and stake. Neurons are installed directly:
// registration itself is measured elsewhere.
func benchSubnet(b *testing.B, n, v int) (*State, []*wallet.PrivateKey) {
	b.Helper()
	gen := testGenesis(kOwner)
	gen.SubnetDefaults.MaxAllowedUIDs = 4096
	gen.SubnetDefaults.MaxAllowedValidators = uint64(v)
	gen.SubnetDefaults.WeightsRateLimit = 0
	gen.SubnetDefaults.Tempo = 1 << 15
	gen.Subnets = []GenesisSubnet{{Name: "bench", Owner: addr(kOwner)}}
	s, err := NewState(gen, stakeEpoch)
	if err != nil {
		b.Fatal(err)
	}
	sub := s.subnets[1]
	keys := make([]*wallet.PrivateKey, n)
	for i := range n {
		keys[i] = testKey(10_000 + i)
		uid := s.registerNeuron(sub, addr(kOwner), addr(keys[i]))
		if i < v {
			sub.neurons[uid].ValidatorPermit = true
			s.addStake(addr(kOwner), addr(keys[i]), 1_000_000)
		}
	}
	s.finishBlock()
	return s, keys
}

// setWeightsTxs signs one set_weights per validator, each with w weights.
func setWeightsTxs(b *testing.B, s *State, keys []*wallet.PrivateKey, v, w, round int) [][]byte {
	txs := make([][]byte, v)
	for i := range v {
		uids, vals := make([]uint32, w), make([]uint32, w)
		for j := range w {
			uids[j] = uint32((j*7 + i) % len(keys))
			vals[j] = uint32(1 + (i*31+j*17+round)%65535)
		}
		// Distinct uids: stride 7 over n >= w is a permutation prefix when
		// gcd(7, n) = 1.
		raw, err := SignTx(keys[i], testChainID, s.Account(addr(keys[i])).Sequence+uint64(round), mWeights(1, uids, vals, 0))
		if err != nil {
			b.Fatal(err)
		}
		txs[i] = raw
	}
	return txs
}

// BenchmarkSetWeightsThroughput applies blocks of set_weights transactions
// (64 validators × 256 weights each on a 1,024-uid subnet), including
// signature checks, rule checks, storage and the app hash, and reports
// transactions per second. BenchmarkSetWeightsVerifyOnly is its baseline:
// decoding and verifying the same transactions and nothing else.
func BenchmarkSetWeightsThroughput(b *testing.B) {
	const n, v, w = 1023, 64, 256
	s, keys := benchSubnet(b, n, v)
	rounds := make([][][]byte, 16)
	for r := range rounds {
		rounds[r] = setWeightsTxs(b, s, keys, v, w, r)
	}
	b.ResetTimer()
	var applied int
	for i := 0; i < b.N; i++ {
		r := i % len(rounds)
		if r == 0 && i > 0 {
			b.StopTimer()
			for k := range rounds {
				rounds[k] = setWeightsTxs(b, s, keys, v, w, k)
			}
			b.StartTimer()
		}
		res, err := s.ApplyBlock(Block{Height: s.Height() + 1, Hash: blockHashFor(s.Height() + 1), Txs: rounds[r]})
		if err != nil {
			b.Fatal(err)
		}
		for _, tr := range res.Txs {
			if tr.Code != 0 {
				b.Fatalf("tx failed: %s", tr.Error)
			}
		}
		applied += len(res.Txs)
	}
	b.ReportMetric(float64(applied)/b.Elapsed().Seconds(), "tx/s")
}

func BenchmarkSetWeightsVerifyOnly(b *testing.B) {
	const n, v, w = 1023, 64, 256
	s, keys := benchSubnet(b, n, v)
	txs := setWeightsTxs(b, s, keys, v, w, 0)
	b.ResetTimer()
	var done int
	for i := 0; i < b.N; i++ {
		for _, raw := range txs {
			if _, err := DecodeTx(raw); err != nil {
				b.Fatal(err)
			}
			done++
		}
	}
	b.ReportMetric(float64(done)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkMetagraph4096 answers a full metagraph of 4,096 uids (64
// validators with 4,096 weights each) in one call; the naive baseline asks
// for each neuron separately, as a client without a metagraph query would.
func BenchmarkMetagraph4096(b *testing.B) {
	s, _ := metagraphState(b)
	for _, lite := range []bool{false, true} {
		b.Run(fmt.Sprintf("lite=%v", lite), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				m, ok := s.Metagraph(1, lite)
				if !ok || m.N != 4096 {
					b.Fatal("metagraph")
				}
			}
		})
	}
	b.Run("naive-per-neuron", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for uid := range 4096 {
				if _, ok := s.Neuron(1, uint16(uid)); !ok {
					b.Fatal("neuron")
				}
			}
		}
	})
}

func metagraphState(b *testing.B) (*State, []*wallet.PrivateKey) {
	s, keys := benchSubnet(b, 4096, 64)
	sub := s.subnets[1]
	for i := range 64 {
		row := make([]Entry, 4096)
		for j := range row {
			row[j] = Entry{UID: uint16(j), Value: uint16(1 + (i+j)%65535)}
		}
		sub.neurons[i].Weights = row
		sub.neurons[i].Bonds = append([]Entry(nil), row...)
	}
	return s, keys
}

// BenchmarkEpochStep4096 runs the block step of a block at the subnet's
// tempo on a 4,096-uid subnet whose 64 validators weight every uid (dense
// rows, 262,144 weights) and hold bonds: the Yuma epoch, the emission
// payout into stake and the storage of every neuron's results. The
// baseline is the same block step with the stake-proportional stand-in
// epoch, which isolates the cost of Yuma consensus itself.
func BenchmarkEpochStep4096(b *testing.B) {
	for _, tc := range []struct {
		name  string
		epoch EpochFunc
	}{{"yuma", YumaEpoch}, {"baseline-stake-epoch", stakeEpoch}} {
		b.Run(tc.name, func(b *testing.B) {
			s, _ := metagraphState(b)
			s.epoch = tc.epoch
			sub := s.subnets[1]
			sub.Params.Tempo = 1
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				for BlocksUntilNextEpoch(1, sub.Params.Tempo, s.Height()+1) != 0 {
					s.ApplyBlock(Block{Height: s.Height() + 1, Hash: blockHashFor(s.Height() + 1)})
				}
				for v := range 64 { // the validators keep voting
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
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(64*4096), "ns/weight")
		})
	}
}

// BenchmarkMetagraphEncode4096 is the node's and the client's share of a
// full metagraph query (4,096 uids, 64 dense weight and bond rows):
// choosing the columns and encoding them, then decoding the bytes.
func BenchmarkMetagraphEncode4096(b *testing.B) {
	s, _ := metagraphState(b)
	m, _ := s.MetagraphColumns(1, AllMetagraphFields)
	enc, err := EncodeMetagraph(m)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("columns+encode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			m, _ := s.MetagraphColumns(1, AllMetagraphFields)
			if _, err := EncodeMetagraph(m); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(enc)), "bytes")
	})
	b.Run("decode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := DecodeMetagraph(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}
