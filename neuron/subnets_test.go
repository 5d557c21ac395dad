package neuron

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// scoreOf is the validator's moving-average score of uid.
func scoreOf(v *Validator, uid uint16) float64 {
	v.mu.Lock()
	defer v.mu.Unlock()
	vals := v.scores.Values()
	if int(uid) >= len(vals) {
		return 0
	}
	return vals[uid]
}

// waitRounds waits until the validator has sent n more queries.
func waitRounds(t *testing.T, v *Validator, n int64) {
	t.Helper()
	q0, _ := v.Stats()
	waitUntil(t, time.Minute, fmt.Sprintf("%d more queries", n), func() bool {
		q, _ := v.Stats()
		return q >= q0+n
	})
}

type chunks struct{ b bytes.Buffer }

func (c *chunks) Write(p []byte) error { c.b.Write(p); return nil }

// storage.prove answers from the local library only: the proof of the
// challenged bytes, NOT_FOUND for what it does not hold, BAD_REQUEST for a
// body it cannot decode or a range past the end.
func TestStorageProveHandler(t *testing.T) {
	cfg := knowledge.DefaultTestConfig(t.TempDir())
	cfg.Key = testKey(t, "storage", 0)
	lib, err := knowledge.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	// Over one 256 KiB chunk, so the body is a DAG of several blocks.
	body := make([]byte, 300_000)
	for i := range body {
		body[i] = byte(i * 7)
	}
	obj, err := lib.Publish(context.Background(), bytes.NewReader(body), knowledge.Meta{Title: "blob", Netuid: 1})
	if err != nil {
		t.Fatal(err)
	}
	other, err := knowledge.Open(knowledge.DefaultTestConfig(t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	h := storageProve(func() *knowledge.Library { return lib })
	ask := func(h protocol.Handler, b []byte) ([]byte, error) {
		var w chunks
		err := h.Serve(context.Background(), &protocol.Request{Synapse: "storage.prove", Body: b}, &w)
		return w.b.Bytes(), err
	}
	status := func(err error) protocol.Status {
		var se *protocol.StatusError
		if errors.As(err, &se) {
			return se.Status
		}
		return protocol.StatusInternal
	}
	rng := rand.New(rand.NewChaCha8([32]byte{1}))
	for _, at := range []uint64{0, 262_100, uint64(len(body)) - 1024} {
		ch, _ := subnet.NewStorageChallenge(rng, obj.CID, obj.Size)
		ch.Offset, ch.Length = at, 1024
		answer, err := ask(h, ch.Encode())
		if err != nil {
			t.Fatalf("at %d: %v", at, err)
		}
		task := subnet.StorageTask(ch, body[at:at+1024])
		if err := task.Check(answer); err != nil {
			t.Fatalf("at %d: %v", at, err)
		}
	}
	ch, _ := subnet.NewStorageChallenge(rng, obj.CID, obj.Size)
	past := ch
	past.Offset = obj.Size - 10
	for _, c := range []struct {
		name string
		h    protocol.Handler
		body []byte
		want protocol.Status
	}{
		{"not JSON", h, []byte("prove it"), protocol.StatusBadRequest},
		{"past the end", h, past.Encode(), protocol.StatusBadRequest},
		{"not held", storageProve(func() *knowledge.Library { return other }), ch.Encode(), protocol.StatusNotFound},
		{"no library yet", storageProve(func() *knowledge.Library { return nil }), ch.Encode(), protocol.StatusNotFound},
	} {
		if _, err := ask(c.h, c.body); status(err) != c.want {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
	if other.Has(obj.CID) {
		t.Fatal("a challenge made the library fetch")
	}
}

// lazyProof answers storage challenges with random proofs.
func lazyProof() protocol.Handler {
	return protocol.HandlerFunc(func(_ context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		p := sha256.Sum256([]byte(r.ID))
		return w.Write(subnet.StorageProof{Proof: p[:]}.Encode())
	})
}

// notHeld answers storage challenges as a miner without the data does.
func notHeld() protocol.Handler {
	return protocol.HandlerFunc(func(context.Context, *protocol.Request, protocol.ResponseWriter) error {
		return protocol.Errorf(protocol.StatusNotFound, "not held here")
	})
}

// The storage subnet end to end: the validator publishes documents and
// challenges byte ranges of them; a miner that replicated them scores, one
// answering garbage and one without the data do not.
func TestStorageSubnet(t *testing.T) {
	spec, err := subnet.Builtin("storage")
	if err != nil {
		t.Fatal(err)
	}
	var colds []*wallet.PrivateKey
	for i := range 5 {
		colds = append(colds, testKey(t, "storage cold", i))
	}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)

	docs := append([]backend.Document{{ID: "long", Text: strings.Repeat("Storage miners keep every byte of what the subnet publishes. ", 80)}}, clozeDocs...)
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Swarm, vcfg.Logger, vcfg.KnowledgeDir, vcfg.Publish = fastSwarm(), log, t.TempDir(), docs
	vcfg.QueryEvery = 1
	v, err := StartValidator(ctx, c, colds[0], testKey(t, "storage hot", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })

	start := func(i int, handlers map[string]protocol.Handler) *Miner {
		cfg := SpecMinerConfig(1, spec, nil)
		cfg.Swarm, cfg.Logger, cfg.KnowledgeDir, cfg.Handlers = fastSwarm(), log, t.TempDir(), handlers
		if handlers != nil {
			cfg.Swarm.Disabled, cfg.KnowledgeDir = true, ""
		}
		m, err := StartMiner(ctx, c, colds[i], testKey(t, "storage hot", i), cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		return m
	}
	honest := start(1, nil)
	lazy := start(2, map[string]protocol.Handler{"storage.prove": lazyProof()})
	empty := start(3, map[string]protocol.Handler{"storage.prove": notHeld()})
	// A miner with room for about one document keeps no more than that.
	const budget = 6000
	bcfg := SpecMinerConfig(1, spec, nil)
	bcfg.Swarm, bcfg.Logger, bcfg.KnowledgeDir, bcfg.ReplicaBudget = fastSwarm(), log, t.TempDir(), budget
	small, err := StartMiner(ctx, c, colds[4], testKey(t, "storage hot", 4), bcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { small.Close() })

	// Not only text: a binary object is kept too.
	blob := make([]byte, 5000)
	for i := range blob {
		blob[i] = byte(i * 31)
	}
	if _, err := v.Library().Publish(ctx, bytes.NewReader(blob), knowledge.Meta{MediaType: "application/octet-stream", Title: "blob", Netuid: 1}); err != nil && !errors.Is(err, knowledge.ErrNotShared) {
		t.Fatal(err)
	}
	// The honest miner replicates every published object.
	waitUntil(t, time.Minute, "the honest miner to hold the validator's objects", func() bool {
		entries, err := v.Library().List()
		if err != nil {
			return false
		}
		for _, e := range entries {
			if !honest.Library().Has(e.CID) {
				return false
			}
		}
		return len(entries) == len(docs)+1
	})
	// The small miner heard every announcement, kept what fits its budget
	// and stopped there (the objects add up to more than it).
	waitUntil(t, time.Minute, "the small miner to hear every announcement and keep something", func() bool {
		entries, err := v.Library().List()
		if err != nil {
			return false
		}
		for _, e := range entries {
			if _, ok := small.Library().Announced(e.CID); !ok && !small.Library().Has(e.CID) {
				return false
			}
		}
		n, _ := keptForOthers(small.Library(), testKey(t, "storage hot", 4))
		return n > 0
	})
	defer func() {
		n, err := keptForOthers(small.Library(), testKey(t, "storage hot", 4))
		entries, _ := v.Library().List()
		held := 0
		for _, e := range entries {
			if small.Library().Has(e.CID) {
				held++
			}
		}
		if err != nil || n == 0 || n > budget || held == len(entries) {
			t.Errorf("the small miner keeps %d bytes of others' objects (%d of %d objects), budget %d (%v)", n, held, len(entries), budget, err)
		}
	}()
	waitUntil(t, time.Minute, "the honest miner to score", func() bool { return scoreOf(v, honest.UID()) > 0 })
	waitRounds(t, v, 3*5)
	if s := scoreOf(v, honest.UID()); s < 0.1 {
		t.Errorf("the honest miner scores %v", s)
	} else {
		t.Logf("the honest miner scores %.3f after %d queries", s, honest.QueriesServed())
	}
	for name, m := range map[string]*Miner{"garbage": lazy, "no data": empty} {
		// Answered (garbage) or refused (NOT_FOUND): queried all the same.
		if s, n := scoreOf(v, m.UID()), m.QueriesServed()+m.QueriesRefused(); s != 0 || n == 0 {
			t.Errorf("the miner answering %s scores %v after %d queries", name, s, n)
		}
	}
}

// lazyNonces answers compute jobs with random nonces and results, minus
// the one-in-2^difficulty nonces that happen to be right, so the test does
// not depend on luck.
func lazyNonces() protocol.Handler {
	return protocol.HandlerFunc(func(_ context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		job, err := subnet.DecodeComputeJob(r.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		if job.Kind == subnet.GenArithmetic {
			res := make([]byte, len(job.Modulus))
			res[len(res)-1] = 1 // 1 is a fixed point, never x^(2^T) for x ≥ 2 coprime to n
			return w.Write(subnet.ComputeResult{Result: res}.Encode())
		}
		for i := uint64(0); ; i++ {
			seed := sha256.Sum256(append([]byte(r.ID), byte(i)))
			res := subnet.ComputeResult{Nonce: seed[:8]}
			if job.Verify(res, nil) != nil {
				return w.Write(res.Encode())
			}
		}
	})
}

// The compute subnet end to end, with each generator: an honest miner
// scores, a lazy one answering at random does not.
func TestComputeSubnet(t *testing.T) {
	builtin, err := subnet.Builtin("compute")
	if err != nil {
		t.Fatal(err)
	}
	arithmetic, err := subnet.Parse([]byte(strings.Replace(string(builtin.Text()), "generator: hash-preimage\n  difficulty: 16", "generator: arithmetic\n  difficulty: 2000", 1)))
	if err != nil || arithmetic.Tasks.Generator != subnet.GenArithmetic {
		t.Fatalf("%v %+v", err, arithmetic)
	}
	for _, spec := range []*subnet.Spec{builtin, arithmetic} {
		t.Run(spec.Tasks.Generator, func(t *testing.T) {
			v, start, _ := offSwarmSubnet(t, spec, "compute", 2)
			honest := start(1, nil)
			lazy := start(2, map[string]protocol.Handler{"compute.run": lazyNonces()})
			waitUntil(t, time.Minute, "the honest miner to score", func() bool { return scoreOf(v, honest.UID()) > 0 })
			waitRounds(t, v, 2*5)
			if s := scoreOf(v, honest.UID()); s <= 0 {
				t.Errorf("the honest miner scores %v", s)
			} else {
				t.Logf("the honest miner scores %.3f after %d queries", s, honest.QueriesServed())
			}
			if s := scoreOf(v, lazy.UID()); s != 0 || lazy.QueriesServed() == 0 {
				t.Errorf("the lazy miner scores %v after %d queries", s, lazy.QueriesServed())
			}
		})
	}
}

// A miner refuses a config that cannot serve its synapses; a validator one
// that cannot make its tasks.
func TestSpecConfigs(t *testing.T) {
	storage, _ := subnet.Builtin("storage")
	qa, _ := subnet.Builtin("qa")
	c := testChain(t, []*wallet.PrivateKey{testKey(t, "config cold", 0)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	for name, cfg := range map[string]MinerConfig{
		"storage without a library": SpecMinerConfig(1, storage, nil),
		"qa without a generator":    SpecMinerConfig(1, qa, nil),
		"an unserved synapse":       SpecMinerConfig(1, &subnet.Spec{Synapses: []subnet.Synapse{{Name: "knowledge.get"}}}, nil),
		"chat without a chatter":    SpecMinerConfig(1, &subnet.Spec{Synapses: []subnet.Synapse{{Name: "text.chat"}}}, nil),
		"embed without an embedder": SpecMinerConfig(1, &subnet.Spec{Synapses: []subnet.Synapse{{Name: "text.embed"}}}, nil),
	} {
		cfg.Logger = log
		if _, err := StartMiner(ctx, c, testKey(t, "config cold", 0), testKey(t, "config hot", 0), cfg); err == nil || !strings.Contains(err.Error(), "miner config") {
			t.Errorf("%s: %v", name, err)
		}
	}
	vcfg := SpecValidatorConfig(1, storage, nil)
	vcfg.Logger, vcfg.Swarm.Disabled = log, true
	if _, err := StartValidator(ctx, c, testKey(t, "config cold", 0), testKey(t, "config hot", 1), 0, vcfg); err == nil || !strings.Contains(err.Error(), "KnowledgeDir") {
		t.Errorf("storage validator without a library: %v", err)
	}
	if vcfg.Timeout != storage.Query.Timeout || vcfg.QueryEvery != storage.Query.Every || vcfg.Alpha != storage.Alpha {
		t.Errorf("SpecValidatorConfig: %+v", vcfg)
	}
}

// offSwarmSubnet is spec's subnet on an embedded chain with a validator
// querying every block and room for miners uids 1 to miners, all off the
// swarm (queries still reach them through their axons); start starts
// miner i (hotkey testKey(label+" hot", i)), with handlers replacing
// built-in ones.
func offSwarmSubnet(t *testing.T, spec *subnet.Spec, label string, miners int) (v *Validator, start func(i int, handlers map[string]protocol.Handler) *Miner, c *local.Local) {
	t.Helper()
	return v2Subnet(t, spec, "", label, miners, func(vcfg *ValidatorConfig) { vcfg.QueryEvery = 1 })
}

// recordJobs answers nothing useful but records the job bodies it was sent.
func recordJobs(mu *sync.Mutex, seen map[string]int, who int) protocol.Handler {
	return protocol.HandlerFunc(func(_ context.Context, r *protocol.Request, _ protocol.ResponseWriter) error {
		mu.Lock()
		seen[string(r.Body)] |= 1 << who
		mu.Unlock()
		return protocol.Errorf(protocol.StatusBadRequest, "recording only")
	})
}

// Each miner gets a job of its own every round: two miners are never sent
// the same job, so one cannot answer for another.
func TestEveryMinerGetsItsOwnTask(t *testing.T) {
	spec, err := subnet.Builtin("compute")
	if err != nil {
		t.Fatal(err)
	}
	_, start, _ := offSwarmSubnet(t, spec, "own-task", 2)
	var mu sync.Mutex
	seen := map[string]int{} // job body → bit set of the miners sent it
	for i := 1; i <= 2; i++ {
		start(i, map[string]protocol.Handler{"compute.run": recordJobs(&mu, seen, i)})
	}
	waitUntil(t, time.Minute, "both miners to receive several jobs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		got := [3]int{}
		for _, who := range seen {
			for i := 1; i <= 2; i++ {
				if who&(1<<i) != 0 {
					got[i]++
				}
			}
		}
		return got[1] >= 5 && got[2] >= 5
	})
	mu.Lock()
	defer mu.Unlock()
	for body, who := range seen {
		if who == 1<<1|1<<2 {
			t.Fatalf("both miners were sent job %s", body)
		}
	}
}

// A reward that reads commitments sees each miner's own: of two honest
// miners only the one that committed a CID scores, and the other scores
// from the round after it commits one too.
func TestRewardReadsCommitments(t *testing.T) {
	builtin, err := subnet.Builtin("compute")
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Replace(string(builtin.Text()), "reward: ", "reward: 'is_cid(commitment) && commitment_block > 0.0 && block >= commitment_block ? 1.0 : 0.0' # was: ", 1)
	spec, err := subnet.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	v, start, c := offSwarmSubnet(t, spec, "commitments", 2)
	if !v.cfg.Reward.UsesCommitments() {
		t.Fatal("the reward does not read commitments")
	}
	committed, later := start(1, nil), start(2, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	commit := func(i int, data string) {
		t.Helper()
		hot := testKey(t, "commitments hot", i)
		addr := hot.PublicKey().Address()
		msg := &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: 1, Hotkey: addr[:], Data: []byte(data)}}}
		if _, err := chainlink.NewSender(c, hot).Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	commit(1, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	commit(2, "not a CID")
	waitUntil(t, time.Minute, "the committed miner to score", func() bool { return scoreOf(v, committed.UID()) > 0 })
	waitRounds(t, v, 2*3)
	if s := scoreOf(v, later.UID()); s != 0 || later.QueriesServed() == 0 {
		t.Fatalf("the miner without a CID scores %v after %d queries", s, later.QueriesServed())
	}
	commit(2, "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	waitUntil(t, time.Minute, "the second miner to score once it commits a CID", func() bool { return scoreOf(v, later.UID()) > 0 })
}
