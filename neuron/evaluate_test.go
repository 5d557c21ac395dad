package neuron

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/hook"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/model/charlm"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// markovText is n bytes of word-level Markov text: a fixed vocabulary and
// transition table (the "language", the same for every seed), sampled
// with seed. More of it teaches a model more of the language.
func markovText(n int, seed uint64) []byte {
	lang := rand.New(rand.NewPCG(7, 7))
	syll := []string{"ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "ze", "pa", "qu", "do"}
	words := make([]string, 300)
	for i := range words {
		var b strings.Builder
		for range 1 + lang.IntN(3) {
			b.WriteString(syll[lang.IntN(len(syll))])
		}
		words[i] = b.String()
	}
	next := make([][]int, len(words))
	for i := range next {
		for range 4 {
			next[i] = append(next[i], lang.IntN(len(words)))
		}
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	var b bytes.Buffer
	w := rng.IntN(len(words))
	for b.Len() < n {
		b.WriteString(words[w])
		if rng.IntN(12) == 0 {
			b.WriteString(".\n")
		} else {
			b.WriteByte(' ')
		}
		w = next[w][rng.IntN(len(next[w]))]
	}
	return b.Bytes()[:n]
}

func trainArtifact(t *testing.T, text []byte, name string) []byte {
	t.Helper()
	cfg := charlm.DefaultTestTrainConfig()
	cfg.Order, cfg.Name = 3, name
	m, err := charlm.Train(context.Background(), bytes.NewReader(text), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m.Encode()
}

// modelMiner is a registered miner that publishes artifacts in its
// library (and so serves them to the swarm) and commits their CIDs.
type modelMiner struct {
	m   *Miner
	hot *wallet.PrivateKey
}

func startModelMiners(t *testing.T, ctx context.Context, c chainlink.Chain, spec *subnet.Spec, colds []*wallet.PrivateKey) []modelMiner {
	t.Helper()
	var out []modelMiner
	for i, cold := range colds {
		hot := testKey(t, "model miner hot", i)
		cfg := SpecMinerConfig(1, spec, nil)
		cfg.Logger, cfg.Swarm, cfg.KnowledgeDir = slog.New(slog.DiscardHandler), fastSwarm(), t.TempDir()
		m, err := StartMiner(ctx, c, cold, hot, cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { m.Close() })
		out = append(out, modelMiner{m, hot})
	}
	return out
}

// publish stores artifact in the miner's library and returns the object's
// CID.
func (mm modelMiner) publish(t *testing.T, ctx context.Context, artifact []byte, title string) string {
	t.Helper()
	obj, err := mm.m.Library().Publish(ctx, bytes.NewReader(artifact), knowledge.Meta{Title: title, Netuid: 1, MediaType: "application/octet-stream"})
	if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
		t.Fatal(err)
	}
	return obj.CID.String()
}

// commit commits data on subnet 1 and returns once it is in a block.
func (mm modelMiner) commit(t *testing.T, ctx context.Context, c chainlink.Chain, data string) {
	t.Helper()
	addr := mm.hot.PublicKey().Address()
	msg := &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: 1, Hotkey: addr[:], Data: []byte(data)}}}
	if _, err := chainlink.NewSender(c, mm.hot).Send(ctx, msg); err != nil {
		t.Fatal(err)
	}
}

// lastAnswer is the validator's last note on uid.
func lastAnswer(v *Validator, uid uint16) (Answer, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	as := v.answers[uid]
	if len(as) == 0 {
		return Answer{}, false
	}
	return as[len(as)-1], true
}

func droppedCount(v *Validator, reason string) int64 {
	for _, d := range v.Dropped() {
		if d.Reason == reason {
			return d.Count
		}
	}
	return 0
}

// A model subnet on the embedded chain: three miners publish charlm models
// trained on more or less text and commit them; a copier commits the
// leader's CID later, another the leader's weights under another card, and
// one commits an artifact that does not parse, one an artifact over the
// subnet's size limit. The validator fetches them
// from the miners through its library, and the best model earns the most;
// the copies and the broken one score 0, each with its reason; an
// artifact nobody commits any more is unpinned.
func TestModelSubnetRanksCommittedModels(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "eval.txt"), markovText(96<<10, 99), 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := subnet.Parse([]byte(`version: 2
name: model-test
tasks: {source: commitments}
evaluate: {kind: builtin, model: charlm, data: {path: eval.txt}, sample_bytes: 16384, max_artifact_bytes: 8388608}
reward: 'win_rate'
query: {every: 2, timeout: 5s}
alpha: 0.5
weights_every: 1000
`))
	if err != nil {
		t.Fatal(err)
	}
	const good, medium, poor, copier, recard, broken, huge = 0, 1, 2, 3, 4, 5, 6
	var colds []*wallet.PrivateKey
	for i := range 8 {
		colds = append(colds, testKey(t, "model cold", i))
	}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	logs := &records{}
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Logger, vcfg.SpecDir, vcfg.Swarm, vcfg.KnowledgeDir, vcfg.StateDir = slog.New(logs), dir, fastSwarm(), t.TempDir(), t.TempDir()
	vcfg.FetchTimeout = 30 * time.Second
	v, err := StartValidator(ctx, c, colds[7], testKey(t, "model validator", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	miners := startModelMiners(t, ctx, c, spec, colds[:7])

	train := markovText(512<<10, 1)
	goodArt := trainArtifact(t, train, "good")
	cids := map[int]string{
		good:   miners[good].publish(t, ctx, goodArt, "good"),
		medium: miners[medium].publish(t, ctx, trainArtifact(t, train[:24<<10], "medium"), "medium"),
		poor:   miners[poor].publish(t, ctx, trainArtifact(t, train[:2<<10], "poor"), "poor"),
		broken: miners[broken].publish(t, ctx, []byte("CTCHARLM but not really a model"), "broken"),
		huge:   miners[huge].publish(t, ctx, bytes.Repeat([]byte("weights "), (8<<20)/8+1), "huge"),
	}
	gm, err := charlm.Decode(goodArt, charlm.DefaultLimits())
	if err != nil {
		t.Fatal(err)
	}
	renamed, err := gm.WithCard(charlm.Card{Name: "all my own work"})
	if err != nil {
		t.Fatal(err)
	}
	cids[recard] = miners[recard].publish(t, ctx, renamed.Encode(), "recard")
	if cids[recard] == cids[good] {
		t.Fatal("another card gave the same CID")
	}
	goodCID, err := knowledge.ParseCID(cids[good])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CommitModel(ctx, c, miners[good].hot, 1, goodCID); err != nil {
		t.Fatal(err)
	}
	body, _, err := knowledge.BodyCID(ctx, bytes.NewReader(goodArt), 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := CommitModel(ctx, c, miners[good].hot, 1, body); err == nil || !strings.Contains(err.Error(), "not a knowledge object's CID") {
		t.Fatalf("committing a body's CID: %v", err)
	}
	for _, i := range []int{medium, poor, broken, huge} {
		miners[i].commit(t, ctx, c, cids[i])
	}
	// The copies come later: the copier commits the leader's CID itself.
	miners[copier].commit(t, ctx, c, cids[good])
	miners[recard].commit(t, ctx, c, cids[recard])

	uid := func(i int) uint16 { return miners[i].m.UID() }
	waitUntil(t, 2*time.Minute, "the ranking good > medium > poor", func() bool {
		g, m, p := scoreOf(v, uid(good)), scoreOf(v, uid(medium)), scoreOf(v, uid(poor))
		return g > 0.9 && m > 0.4 && m < 0.6 && p < 0.05
	})
	for _, c := range []struct {
		who    int
		status string
		reason string
	}{
		{good, statusEvaluated, "the best"},
		{medium, statusEvaluated, "1 of 2 others beaten"},
		{copier, statusRefused, fmt.Sprintf("duplicate of uid %d's model (the same CID", uid(good))},
		{recard, statusRefused, fmt.Sprintf("duplicate of uid %d's model (the same weights", uid(good))},
		{broken, statusRefused, "is not a charlm model"},
		{huge, statusRefused, "is over the subnet's limit of 8388608 bytes"},
	} {
		a, ok := lastAnswer(v, uid(c.who))
		if !ok || a.Status != c.status || !strings.Contains(a.Reason, c.reason) {
			t.Errorf("miner %d: %+v; want %s with %q", c.who, a, c.status, c.reason)
		}
		if (a.Loss != nil) != (c.status == statusEvaluated) || a.Loss != nil && !strings.Contains(a.Reason, fmt.Sprintf("loss %.4f", *a.Loss)) {
			t.Errorf("miner %d: loss %v in %+v", c.who, a.Loss, a)
		}
	}
	for _, who := range []int{copier, recard, broken, huge} {
		if s := scoreOf(v, uid(who)); s != 0 {
			t.Errorf("miner %d scores %v", who, s)
		}
	}
	if d := v.Dropped(); len(d) != 0 {
		t.Fatalf("dropped %+v", d)
	}
	if q, _ := v.Stats(); q != 0 || v.Evaluations() < 7 {
		t.Errorf("%d queries sent and %d models evaluated; want none sent and at least one round of the 7 committed", q, v.Evaluations())
	}
	pinned := func(c string) bool {
		es, err := v.Library().List()
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.CID.String() == c {
				return e.Pinned
			}
		}
		return false
	}
	if !pinned(cids[good]) || !pinned(cids[poor]) {
		t.Fatal("the validator does not keep the committed artifacts pinned")
	}
	if hc, err := knowledge.ParseCID(cids[huge]); err != nil || v.Library().Holds(hc) {
		t.Fatal("the validator fetched an artifact over the limit")
	}
	// The poor miner commits something that is not a CID: its old
	// artifact, committed by nobody now, is unpinned, and it scores 0.
	miners[poor].commit(t, ctx, c, "my model is great, trust me")
	waitUntil(t, time.Minute, "the uncommitted artifact unpinned and the miner refused", func() bool {
		a, _ := lastAnswer(v, uid(poor))
		return !pinned(cids[poor]) && a.Status == statusRefused && strings.Contains(a.Reason, "not a knowledge object's CID")
	})
}

// An exec evaluator (the test binary) gets the artifact and the
// evaluation set as files and prints the loss; when it crashes on a
// miner's new artifact, that miner is dropped from the rounds, counted,
// with its score unchanged, while the others go on being scored.
func TestExecEvaluatorCrashDropsTheMiner(t *testing.T) {
	dir := t.TempDir()
	data := markovText(8<<10, 5)
	lib := openTestLibrary(t)
	dataCID := publish(t, lib, data, "evaluation data")
	lib.Close()
	if err := os.WriteFile(filepath.Join(dir, "eval.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	spec, err := subnet.Parse([]byte(fmt.Sprintf(`version: 2
name: exec-model-test
tasks: {source: commitments}
evaluate: {kind: exec, command: %s, limits: {memory_mb: 8192, timeout: 4s}, data: {path: eval.txt, cid: %s}, sample_bytes: 1024}
reward: 'win_rate'
query: {every: 1, timeout: 5s}
alpha: 0.5
weights_every: 1000
`, testHookCommand(t, "evaluate"), dataCID)))
	if err != nil {
		t.Fatal(err)
	}
	var colds []*wallet.PrivateKey
	for i := range 3 {
		colds = append(colds, testKey(t, "exec model cold", i))
	}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Logger, vcfg.SpecDir, vcfg.Swarm, vcfg.KnowledgeDir = slog.New(slog.DiscardHandler), dir, fastSwarm(), t.TempDir()
	v, err := StartValidator(ctx, c, colds[2], testKey(t, "exec model validator", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	miners := startModelMiners(t, ctx, c, spec, colds[:2])
	better, worse := miners[0], miners[1]
	better.commit(t, ctx, c, better.publish(t, ctx, []byte("1.5"), "better"))
	worse.commit(t, ctx, c, worse.publish(t, ctx, []byte("2.5"), "worse"))
	waitUntil(t, 2*time.Minute, "the better model to lead", func() bool {
		return scoreOf(v, better.m.UID()) > 0.9 && scoreOf(v, worse.m.UID()) < 0.1
	})
	if a, _ := lastAnswer(v, better.m.UID()); a.Status != statusEvaluated || !strings.Contains(a.Reason, "loss 1.5000") {
		t.Fatalf("the better model: %+v", a)
	}
	better.commit(t, ctx, c, better.publish(t, ctx, []byte("crash"), "crash"))
	waitUntil(t, time.Minute, "the crash to be counted", func() bool { return droppedCount(v, "evaluator_crashed") >= 3 })
	held := scoreOf(v, better.m.UID())
	// Alone among the evaluated, the worse model now beats everyone.
	waitUntil(t, time.Minute, "the other model to be scored on", func() bool { return scoreOf(v, worse.m.UID()) > 0.9 })
	if s := scoreOf(v, better.m.UID()); s != held || s < 0.9 {
		t.Fatalf("a miner the evaluator failed on was scored: %v, then %v", held, s)
	}
	a, _ := lastAnswer(v, better.m.UID())
	if a.Status != statusNotEvaluated || !a.Dropped || !strings.Contains(a.Reason, "the evaluator failed") {
		t.Fatalf("the dropped miner's note: %+v", a)
	}
	// An artifact the evaluator refuses ({"refused": …}) is the miner's
	// fault: scored 0, with the evaluator's reason.
	worse.commit(t, ctx, c, worse.publish(t, ctx, []byte("not a model"), "garbage"))
	waitUntil(t, time.Minute, "the refused artifact to score 0", func() bool {
		a, _ := lastAnswer(v, worse.m.UID())
		return a.Status == statusRefused && strings.Contains(a.Reason, "the evaluator refused artifact") && strings.Contains(a.Reason, "no weights in this file") &&
			scoreOf(v, worse.m.UID()) < 0.1
	})
	// An evaluator that never finishes is killed at its timeout: the
	// miner is dropped and counted, its score unchanged.
	held = scoreOf(v, better.m.UID())
	better.commit(t, ctx, c, better.publish(t, ctx, []byte("hang"), "hang"))
	waitUntil(t, time.Minute, "the hung evaluator to be counted", func() bool { return droppedCount(v, "evaluator_timeout") >= 1 })
	if s := scoreOf(v, better.m.UID()); s != held {
		t.Fatalf("a miner whose evaluation timed out was scored: %v, then %v", held, s)
	}
	if a, _ := lastAnswer(v, better.m.UID()); a.Status != statusNotEvaluated || !a.Dropped {
		t.Fatalf("the timed-out miner's note: %+v", a)
	}
}

func openTestLibrary(t *testing.T) *knowledge.Library {
	t.Helper()
	cfg := knowledge.DefaultTestConfig(t.TempDir())
	cfg.Key = testKey(t, "evaluation data", 0)
	lib, err := knowledge.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lib
}

func TestParseEvaluatorLine(t *testing.T) {
	for _, c := range []struct {
		line string
		loss float64
		ok   bool
	}{
		{`{"loss": 2.25}`, 2.25, true},
		{`{"loss": 0, "tokens": 100}`, 0, true},
		{`{"loss": 1e3}`, 1000, true},
		{`{"tokens": 100}`, 0, false},
		{`{"loss": -1}`, 0, false},
		{`{"loss": "2"}`, 0, false},
		{`{"loss": 1e999}`, 0, false},
		{`{"loss": null}`, 0, false},
		{`[1]`, 0, false},
		{`loss=2`, 0, false},
		{`{"refused": ""}`, 0, false},
		{`{"refused": 3}`, 0, false},
		{`{"refused": "no", "loss": 2}`, 0, false},
	} {
		got, err := parseEvaluatorLine([]byte(c.line))
		if (err == nil) != c.ok || got != c.loss {
			t.Errorf("%s: %v %v", c.line, got, err)
		}
		if err != nil && !errors.Is(err, hook.ErrBadOutput) {
			t.Errorf("%s: %v is not a bad output", c.line, err)
		}
	}
	// A refusal is the miner's fault, with its reason.
	_, err := parseEvaluatorLine([]byte(`{"refused": "  header is not JSON  "}`))
	var r *artifactRefusal
	if !errors.As(err, &r) || r.reason != "header is not JSON" || errors.Is(err, hook.ErrBadOutput) {
		t.Fatalf("refused: %v", err)
	}
}

// The evaluation set's offset follows the block's hash: in range, the same
// for the same block, different across blocks, and 0 when the sample is
// the whole dataset.
func TestSampleOffset(t *testing.T) {
	seen := map[int64]bool{}
	for h := range uint64(64) {
		head := chainlink.Head{Height: h, Hash: []byte(fmt.Sprintf("hash-%d", h))}
		off := sampleOffset(head, "main", 1000, 100)
		if off < 0 || off > 900 || off != sampleOffset(head, "main", 1000, 100) {
			t.Fatalf("offset %d", off)
		}
		seen[off] = true
		if sampleOffset(head, "main", 100, 100) != 0 {
			t.Fatal("a sample of the whole dataset does not start at 0")
		}
	}
	if len(seen) < 40 {
		t.Fatalf("only %d distinct offsets in 64 blocks", len(seen))
	}
}

// A validator of the built-in model subnet reads its evaluation corpus,
// which the spec names by CID alone, from the binary: nobody publishes it,
// and the committed model is evaluated all the same.
func TestBuiltinModelSubnetNeedsNoDownload(t *testing.T) {
	spec, err := subnet.Builtin("model")
	if err != nil {
		t.Fatal(err)
	}
	corpus, _ := subnet.BuiltinData("model")
	var colds []*wallet.PrivateKey
	for i := range 2 {
		colds = append(colds, testKey(t, "builtin model cold", i))
	}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Logger, vcfg.Swarm, vcfg.KnowledgeDir = slog.New(slog.DiscardHandler), fastSwarm(), t.TempDir()
	vcfg.QueryEvery, vcfg.WeightsEvery = 1, 1000
	v, err := StartValidator(ctx, c, colds[1], testKey(t, "builtin model validator", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	miner := startModelMiners(t, ctx, c, spec, colds[:1])[0]
	miner.commit(t, ctx, c, miner.publish(t, ctx, trainArtifact(t, corpus[:8<<10], "builtin"), "builtin"))
	waitUntil(t, time.Minute, "the model evaluated on the built-in corpus", func() bool {
		a, ok := lastAnswer(v, miner.m.UID())
		return ok && a.Status == statusEvaluated && a.Loss != nil && *a.Loss > 0 && *a.Loss < 8
	})
	if d := v.Dropped(); len(d) != 0 {
		t.Fatalf("dropped %+v", d)
	}
}

// An artifact is asked of its miner and of the subnet's other validators
// (a permit or stake, with a usable axon), most staked first, at most
// maxArtifactPeers of them.
func TestValidatorPeers(t *testing.T) {
	ids := make([]peer.ID, 20)
	for i := range ids {
		ids[i] = testKey(t, "peers", i).PublicKey().PeerID()
	}
	axon := func(i int) *chain.Axon {
		return &chain.Axon{PeerID: ids[i].String(), Multiaddrs: []string{"/ip4/127.0.0.1/tcp/4001"}}
	}
	m := &chain.Metagraph{
		Axons:           []*chain.Axon{axon(0), axon(1), axon(2), nil, {PeerID: "not a peer", Multiaddrs: []string{"/ip4/127.0.0.1/tcp/1"}}, {PeerID: ids[5].String(), Multiaddrs: []string{"junk"}}, axon(6)},
		Stake:           []uint64{100, 0, 300, 500, 400, 400, 0},
		ValidatorPermit: []bool{false, false, false, true, true, true, true},
	}
	// uid 0 is self; 1 is a miner (no stake, no permit); 3 has no axon, 4
	// no peer ID, 5 no address; 2 (stake 300) before 6 (a permit, no stake).
	got := validatorPeers(m, 0)
	if len(got) != 2 || got[0].ID != ids[2] || got[1].ID != ids[6] || len(got[0].Addrs) != 1 {
		t.Fatalf("validator peers %v", got)
	}
	if _, ok := axonInfo(m, 1); !ok {
		t.Fatal("the miner's axon is not usable")
	}
	var many chain.Metagraph
	for i := range 20 {
		many.Axons = append(many.Axons, axon(i))
		many.Stake = append(many.Stake, uint64(i+1))
	}
	if got := validatorPeers(&many, 19); len(got) != maxArtifactPeers || got[0].ID != ids[18] {
		t.Fatalf("%d peers, the first %v; want %d, the most staked other first", len(got), got[0].ID, maxArtifactPeers)
	}
}
