package neuron

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// publish stores body in lib (sharing it with nobody is fine) and returns
// its body's CID.
func publish(t *testing.T, lib *knowledge.Library, body []byte, title string) string {
	t.Helper()
	obj, err := lib.Publish(context.Background(), bytes.NewReader(body), knowledge.Meta{Title: title})
	if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
		t.Fatal(err)
	}
	return obj.Body.String()
}

// The owner sets a new spec on chain: at the tempo boundary the validator
// loads it from its knowledge library, fetches the dataset it locks by
// CID, and runs its mechanisms, the one that kept its name with its
// scores; a spec it cannot load is logged loudly and the running one goes
// on.
func TestValidatorSwitchesToTheSpecOnChain(t *testing.T) {
	first, dir := v2Spec(t, upperSynapse, fmt.Sprintf(`tasks: {source: exec, command: %s, limits: %s}
judge: {kind: exec, command: %s, limits: %s}
reward: 'judge.score'
`, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML, testHookCommand(t, "judge"), hookLimitsYAML))
	var colds []*wallet.PrivateKey
	for i := range 2 {
		colds = append(colds, testKey(t, "switch cold", i))
	}
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logs := &records{}
	vcfg := SpecValidatorConfig(1, first, nil)
	vcfg.Logger, vcfg.SpecDir, vcfg.Swarm, vcfg.KnowledgeDir, vcfg.StateDir = slog.New(logs), dir, fastSwarm(), t.TempDir(), t.TempDir()
	v, err := StartValidator(ctx, c, colds[0], testKey(t, "switch hot", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close() })
	mcfg := SpecMinerConfig(1, first, nil)
	mcfg.Logger, mcfg.Swarm.Disabled = slog.New(slog.DiscardHandler), true
	mcfg.Handlers = map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)}
	m, err := StartMiner(ctx, c, colds[1], testKey(t, "switch hot", 1), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	waitUntil(t, time.Minute, "the miner to score under the first spec", func() bool { return scoreOf(v, m.UID()) > 0.5 })
	v.mu.Lock()
	mainScores := v.pipes[0].scores
	v.mu.Unlock()

	// The second spec keeps "main" and adds a mechanism whose tasks are a
	// dataset it locks by CID (published to the validator's library only:
	// the validator has no copy by path).
	data := []byte(`{"request": {"text": "abc"}, "expected": "ABC"}` + "\n" + `{"request": {"text": "xyz"}, "expected": "XYZ"}` + "\n")
	dataCID := publish(t, v.Library(), data, "switch dataset")
	text := fmt.Sprintf(`version: 2
name: switched
synapses:
%smechanisms:
  - name: main
    share: 0.5
    tasks: {source: exec, command: %s, limits: %s}
    judge: {kind: exec, command: %s, limits: %s}
    reward: 'judge.score'
  - name: dataset
    share: 0.5
    tasks: {source: dataset, path: data/tasks.jsonl}
    reward: 'answer == expected ? 1.0 : 0.0'
query: {every: 1, sample: 0, timeout: 3s}
alpha: 0.5
weights_every: 4
files:
  data/tasks.jsonl: %s
`, upperSynapse, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML, testHookCommand(t, "judge"), hookLimitsYAML, dataCID)
	second, err := subnet.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if got := publish(t, v.Library(), second.Text(), "switch spec"); got != mustSpecCID(t, second) {
		t.Fatalf("the spec's body CID %s is not SpecCID %s", got, mustSpecCID(t, second))
	}
	owner := testKey(t, "root", 0)
	setSpec := func(hash []byte) {
		t.Helper()
		if _, err := chainlink.NewSender(c, owner).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: 1, SpecHash: hash}}}); err != nil {
			t.Fatal(err)
		}
	}
	h := second.Hash()
	setSpec(h[:])
	waitUntil(t, time.Minute, "the validator to run the second spec", func() bool {
		return slices.Equal(v.Mechanisms(), []string{"main", "dataset"})
	})
	v.mu.Lock()
	kept := v.pipes[0].scores == mainScores
	v.mu.Unlock()
	if !kept {
		t.Fatal("the mechanism that kept its name lost its scores")
	}
	v.mu.Lock()
	weightsEvery, timeout := v.cfg.WeightsEvery, v.cfg.Timeout
	v.mu.Unlock()
	if weightsEvery != 4 || timeout != 3*time.Second {
		t.Fatalf("the cadence taken from the spec did not follow it: weights every %d, timeout %v", weightsEvery, timeout)
	}
	if got, err := os.ReadFile(filepath.Join(vcfg.StateDir, "specs", fmt.Sprintf("%x", h[:]), "data", "tasks.jsonl")); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("the locked dataset: %q, %v", got, err)
	}
	waitUntil(t, time.Minute, "the dataset mechanism to pay the miner", func() bool {
		v.mu.Lock()
		defer v.mu.Unlock()
		vals := v.pipes[1].scores.Values()
		return int(m.UID()) < len(vals) && vals[m.UID()] > 0.5
	})

	// A spec nobody published: the validator says so and keeps going.
	missing := sha256.Sum256([]byte("a spec nobody published"))
	setSpec(missing[:])
	waitUntil(t, time.Minute, "the failure logged", func() bool { return logs.find("CANNOT LOAD IT") != "" })
	q, _ := v.Stats()
	waitRounds(t, v, 4)
	if got := v.Mechanisms(); !slices.Equal(got, []string{"main", "dataset"}) || v.Spec() != nil && v.Spec().Name != "switched" {
		t.Fatalf("after a failed switch: mechanisms %v", got)
	}
	if q2, _ := v.Stats(); q2 <= q {
		t.Fatal("the validator stopped querying")
	}
}

func mustSpecCID(t *testing.T, s *subnet.Spec) string {
	t.Helper()
	h := s.Hash()
	c, err := SpecCID(h[:])
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

// Close stops a v2 validator's hooks: its judge's processes are gone and
// no goroutine of its pipelines is left.
func TestCloseStopsTheHooks(t *testing.T) {
	spec, dir := v2Spec(t, upperSynapse, fmt.Sprintf(`tasks: {source: exec, command: %s, limits: %s}
judge: {kind: exec, command: %s, limits: {memory_mb: 8192, timeout: 3s, concurrency: 2}}
reward: 'judge.score'
`, testHookCommand(t, "tasks", "upper", "8"), hookLimitsYAML, testHookCommand(t, "judge")))
	var colds []*wallet.PrivateKey
	for i := range 2 {
		colds = append(colds, testKey(t, "close cold", i))
	}
	before := goleak.IgnoreCurrent()
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := slog.New(slog.DiscardHandler)
	vcfg := SpecValidatorConfig(1, spec, nil)
	vcfg.Logger, vcfg.SpecDir, vcfg.Swarm.Disabled = log, dir, true
	v, err := StartValidator(ctx, c, colds[0], testKey(t, "close hot", 0), 1e12, vcfg)
	if err != nil {
		t.Fatal(err)
	}
	mcfg := SpecMinerConfig(1, spec, nil)
	mcfg.Logger, mcfg.Swarm.Disabled = log, true
	mcfg.Handlers = map[string]protocol.Handler{"upper.v1": answer(strings.ToUpper)}
	m, err := StartMiner(ctx, c, colds[1], testKey(t, "close hot", 1), mcfg)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, time.Minute, "judged answers", func() bool { return scoreOf(v, m.UID()) > 0 })
	if n := len(hookChildren(t)); n == 0 {
		t.Fatal("no judge process is running")
	}
	v.Close()
	if kids := hookChildren(t); len(kids) != 0 {
		t.Fatalf("hook processes %v outlive Close", kids)
	}
	m.Close()
	c.Close()
	goleak.VerifyNone(t, before,
		goleak.IgnoreAnyFunction("github.com/ipfs/go-log/v2/writer.(*MirrorWriter).logRoutine"),
		goleak.IgnoreAnyFunction("go.opencensus.io/stats/view.(*worker).start"))
}

// hookChildren lists this process's children that run as test hooks.
func hookChildren(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	self := strconv.Itoa(os.Getpid())
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		cmd, err2 := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err1 != nil || err2 != nil {
			continue
		}
		// stat: pid (comm) state ppid …; comm may hold spaces.
		rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
		fields := strings.Fields(rest)
		if len(fields) > 1 && fields[1] == self && fields[0] != "Z" && bytes.Contains(cmd, []byte(testHookArg)) {
			out = append(out, pid)
		}
	}
	return out
}
