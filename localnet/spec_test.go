package localnet

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink/local"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

const headlineSpec = "testdata/headline/spec.yaml"

// Spec files that localnet cannot run are refused before anything starts,
// with an error naming the file and what to do.
func TestSpecsRefused(t *testing.T) {
	dir := t.TempDir()
	text, err := os.ReadFile(headlineSpec)
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadFile("testdata/headline/tasks.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "tasks.jsonl"), tasks, 0o644)
	noPrompt := filepath.Join(dir, "noprompt.yaml")
	os.WriteFile(noPrompt, []byte(strings.Replace(string(text), `    prompt: "Tag: {{text}}"`+"\n", "", 1)), 0o644)
	qaNamed := filepath.Join(dir, "qa.yaml")
	os.WriteFile(qaNamed, []byte(strings.Replace(string(text), "name: headline", "name: qa", 1)), 0o644)
	broken := filepath.Join(dir, "broken.yaml")
	os.WriteFile(broken, []byte(strings.Replace(string(text), "answer: text", "answer: prose", 1)), 0o644)
	noDataset := filepath.Join(t.TempDir(), "spec.yaml") // tasks.jsonl is not beside it
	os.WriteFile(noDataset, text, 0o644)
	up := backend.OpenAIConfig{BaseURL: "http://127.0.0.1:1"}
	for _, tc := range []struct {
		name     string
		subnets  []string
		specs    []string
		upstream backend.OpenAIConfig
		want     string
	}{
		{"no upstream", nil, []string{headlineSpec}, backend.OpenAIConfig{}, `custom synapse "headline.v1" is answered by a model: want --upstream URL`},
		{"no prompt", nil, []string{noPrompt}, up, `custom synapse "tags.v1" has no prompt`},
		{"missing file", nil, []string{filepath.Join(dir, "absent.yaml")}, up, "absent.yaml: no such file"},
		{"a built-in's name", []string{"qa"}, []string{qaNamed}, up, `subnet "qa" listed twice (also the built-in)`},
		{"twice", nil, []string{headlineSpec, headlineSpec}, up, `subnet "headline" listed twice (also testdata/headline/spec.yaml)`},
		{"bad spec", nil, []string{broken}, up, "synapses[0].answer"},
		{"missing dataset", nil, []string{noDataset}, up, "tasks.path: tasks.jsonl"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Subnets, cfg.Specs, cfg.Upstream, cfg.Logger = tc.subnets, tc.specs, tc.upstream, slog.New(slog.DiscardHandler)
			cfg.Dashboard = ""
			_, err := Run(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
		})
	}
}

// A lazy miner's answer to a custom synapse is schema-valid junk: the
// smallest value minimalValue builds that the answer schema accepts.
func TestMinimalAnswer(t *testing.T) {
	for _, tc := range []struct {
		schema string
		want   string
		valid  bool
	}{
		{`{type: object, required: [tags], properties: {tags: {type: array, minItems: 1, items: {type: string, minLength: 2}}}}`, `{"tags":["xx"]}`, true},
		{`{type: object, required: [code], properties: {code: {type: string, minLength: 1}}}`, `{"code":"x"}`, true},
		{`{type: object, required: [n, ok], properties: {n: {type: integer, minimum: 3}, ok: {type: boolean}}}`, `{"n":3,"ok":false}`, true},
		{`{type: object, required: [kind], properties: {kind: {enum: [summary, list]}}}`, `{"kind":"summary"}`, true},
		{`{type: array}`, `[]`, true},
		{`{type: number, exclusiveMinimum: 0}`, `{}`, false}, // nothing small fits: the fallback, invalid
		{`{type: object, properties: {a: {type: string}}}`, `{}`, true},
		// 64^4 items asked for: the budget stops it, and nothing fits.
		{`{type: array, minItems: 64, items: {type: array, minItems: 64, items: {type: array, minItems: 64, items: {type: array, minItems: 64, items: {type: integer}}}}}`, `{}`, false},
	} {
		spec := "version: 2\nname: t\nsynapses:\n  - name: t.v1\n    request: {type: object}\n    answer: " + tc.schema + `
tasks: {source: dataset, path: t.jsonl}
reward: '1.0'
query: {every: 2, sample: 4, timeout: 5s}
alpha: 0.3
weights_every: 5
`
		s, err := subnet.Parse([]byte(spec))
		if err != nil {
			t.Fatalf("%s: %v", tc.schema, err)
		}
		syn := s.Synapse("t.v1")
		got := minimalAnswer(syn)
		if string(got) != tc.want {
			t.Errorf("%s: %s, want %s", tc.schema, got, tc.want)
		}
		if valid := syn.ValidateAnswer(got) == nil; valid != tc.valid {
			t.Errorf("%s: %s valid %v, want %v", tc.schema, got, valid, tc.valid)
		}
	}
}

// A spec's mechanisms become the subnet's on chain, in proportion to their
// shares, before any neuron starts.
func TestSetMechanisms(t *testing.T) {
	spec, err := readSpec("testdata/twomech/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := mechanismShares(spec); !slices.Equal(got, []uint32{700_000, 300_000}) {
		t.Fatalf("shares %v", got)
	}
	root, err := wallet.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	gen := chain.LocalnetGenesis("t", root.PublicKey().Address(), nil)
	gen.Balances = []chain.GenesisBalance{{Address: root.PublicKey().Address(), Amount: 1e15}}
	gen.Subnets = []chain.GenesisSubnet{{Name: "qa", Owner: root.PublicKey().Address()}, {Name: "twomech", Owner: root.PublicKey().Address()}}
	lcfg := local.DefaultConfig(gen, chain.NewYumaEpoch())
	lcfg.BlockTime, lcfg.Logger = 20*time.Millisecond, slog.New(slog.DiscardHandler)
	c, err := local.New(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	qa, _ := subnet.Builtin("qa")
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := setMechanisms(ctx, c, root, []runSubnet{{name: "qa", spec: qa}, {name: "twomech", spec: spec}}, &out); err != nil {
		t.Fatal(err)
	}
	for netuid, want := range map[uint16][]uint32{1: nil, 2: {700_000, 300_000}} {
		info, err := c.Mechanisms(ctx, netuid)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(info.PendingShares, want) {
			t.Errorf("subnet %d: pending shares %v, want %v", netuid, info.PendingShares, want)
		}
	}
	if want := `localnet: subnet 2 "twomech" has 2 mechanisms, shares [700000 300000] (millionths)`; !strings.Contains(out.String(), want) {
		t.Errorf("printed %q", out.String())
	}
}
