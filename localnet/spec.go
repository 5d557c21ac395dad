package localnet

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
	"github.com/cybertensor/cybertensor/wallet"
)

// maxSpecFile bounds a spec file localnet reads.
const maxSpecFile = 1 << 20

// runSubnet is one subnet of a run: a built-in, or a spec file's (dir is
// then the file's directory, which the spec's files are relative to).
type runSubnet struct {
	name string
	spec *subnet.Spec
	dir  string
	file string
	// corpus is a model subnet's evaluation corpus (modelCorpus), which
	// its honest miners train on; nil for other subnets.
	corpus []byte
}

// SpecSummary is a subnet of the run from a spec file: its locked spec's
// hash and the files it refers to, by the CID it locked them at (and
// published them under to the subnet's knowledge library).
type SpecSummary struct {
	Netuid   uint16            `json:"netuid"`
	Name     string            `json:"name"`
	File     string            `json:"file"`
	SpecHash string            `json:"spec_hash"`
	Files    map[string]string `json:"files,omitempty"`
}

// subnetsOf loads the run's subnets: the built-ins, then the spec files,
// with netuids 1, 2, … in this order. A spec whose custom synapses the
// honest miners cannot answer is refused: they answer from the synapse's
// prompt with the upstream model, so each needs a prompt and
// Config.Upstream.
func subnetsOf(cfg Config) ([]runSubnet, error) {
	var out []runSubnet
	seen := map[string]string{}
	for _, name := range cfg.Subnets {
		spec, err := subnet.Builtin(name)
		if err != nil {
			return nil, fmt.Errorf("localnet: unknown subnet %q (built in: %s)", name, strings.Join(subnet.BuiltinNames(), ", "))
		}
		out = append(out, runSubnet{name: name, spec: spec})
		seen[name] = "the built-in"
	}
	for _, file := range cfg.Specs {
		spec, err := readSpec(file)
		if err != nil {
			return nil, err
		}
		// The files it refers to (datasets, programs, prompts) must be
		// there; the lock names each by its CID, as subnets create does.
		dir := filepath.Dir(file)
		if spec, err = subnet.Lock(spec, dir); err != nil {
			return nil, fmt.Errorf("localnet: spec %s: %w", file, err)
		}
		if err := subnet.Resolve(spec, dir); err != nil {
			return nil, fmt.Errorf("localnet: spec %s: %w", file, err)
		}
		if prev, ok := seen[spec.Name]; ok {
			return nil, fmt.Errorf("localnet: spec %s: subnet %q listed twice (also %s)", file, spec.Name, prev)
		}
		seen[spec.Name] = file
		for _, syn := range spec.Synapses {
			if syn.Builtin() {
				continue
			}
			switch {
			case syn.Prompt == "":
				return nil, fmt.Errorf("localnet: spec %s: custom synapse %q has no prompt: localnet's honest miners answer a custom synapse from its prompt with the --upstream model", file, syn.Name)
			case cfg.Upstream.BaseURL == "":
				return nil, fmt.Errorf("localnet: spec %s: custom synapse %q is answered by a model: want --upstream URL (an OpenAI-compatible server such as llama.cpp, vLLM or Ollama)", file, syn.Name)
			}
		}
		out = append(out, runSubnet{name: spec.Name, spec: spec, dir: dir, file: file})
	}
	for i := range out {
		corpus, err := modelCorpus(out[i])
		if err != nil {
			return nil, err
		}
		out[i].corpus = corpus
	}
	return out, nil
}

// readSpec reads and parses a spec file.
func readSpec(file string) (*subnet.Spec, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("localnet: spec: %w", err)
	}
	defer f.Close()
	text, err := io.ReadAll(io.LimitReader(f, maxSpecFile+1))
	if err != nil {
		return nil, fmt.Errorf("localnet: spec %s: %w", file, err)
	}
	if len(text) > maxSpecFile {
		return nil, fmt.Errorf("localnet: spec %s: larger than %d bytes", file, maxSpecFile)
	}
	spec, err := subnet.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("localnet: spec %s: %w", file, err)
	}
	return spec, nil
}

// lazyCustom answers a custom synapse without doing the work, with an
// answer its schema accepts: a few random words for a text answer, the
// smallest JSON value the answer schema accepts otherwise (minimalAnswer).
func lazyCustom(syn *subnet.Synapse, rng *mrand.Rand, mu *sync.Mutex) protocol.Handler {
	junk := minimalAnswer(syn)
	return protocol.HandlerFunc(func(_ context.Context, r *protocol.Request, w protocol.ResponseWriter) error {
		if err := syn.ValidateRequest(r.Body); err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		if !syn.AnswerIsText() {
			return w.Write(junk)
		}
		mu.Lock()
		words := make([]string, 3)
		for i := range words {
			words[i] = lazyWords[rng.IntN(len(lazyWords))]
		}
		mu.Unlock()
		return w.Write([]byte(strings.Join(words, " ")))
	})
}

// minimalAnswer is the smallest JSON answer syn's schema accepts that
// localnet can find: one built from the schema (minimalValue), else the
// first of a few small values that validates; failing all, "{}".
func minimalAnswer(syn *subnet.Synapse) []byte {
	schema, _ := syn.Answer.(map[string]any)
	budget := maxMinimalValues
	candidates := []any{minimalValue(schema, 0, &budget), map[string]any{}, "", 0, false, []any{}, nil}
	for _, c := range candidates {
		b, err := json.Marshal(c)
		if err == nil && syn.ValidateAnswer(b) == nil {
			return b
		}
	}
	return []byte("{}")
}

// maxMinimalValues bounds the values minimalValue builds for one schema.
const maxMinimalValues = 4096

// minimalValue builds a small instance of a JSON Schema: its const or
// first enum value; for an object its required properties, each minimal;
// a string of minLength "x"s; a number at its minimum (or 0); an array of
// minItems minimal items. Nesting past 8 levels, or past budget values in
// all, gives null.
func minimalValue(schema map[string]any, depth int, budget *int) any {
	if schema == nil || depth > 8 || *budget <= 0 {
		return nil
	}
	*budget--
	if v, ok := schema["const"]; ok {
		return v
	}
	if e, ok := schema["enum"].([]any); ok && len(e) > 0 {
		return e[0]
	}
	typ, _ := schema["type"].(string)
	if ts, ok := schema["type"].([]any); ok && len(ts) > 0 {
		typ, _ = ts[0].(string)
	}
	num := func(key string) int {
		switch v := schema[key].(type) {
		case int:
			return v
		case float64:
			return int(v)
		case uint64:
			return int(v)
		}
		return 0
	}
	switch typ {
	case "object":
		out := map[string]any{}
		props, _ := schema["properties"].(map[string]any)
		req, _ := schema["required"].([]any)
		names := make([]string, 0, len(req))
		for _, r := range req {
			if s, ok := r.(string); ok {
				names = append(names, s)
			}
		}
		sort.Strings(names)
		for _, name := range slices.Compact(names) {
			sub, _ := props[name].(map[string]any)
			out[name] = minimalValue(sub, depth+1, budget)
		}
		return out
	case "string":
		return strings.Repeat("x", min(num("minLength"), 1<<10))
	case "integer", "number":
		return num("minimum")
	case "boolean":
		return false
	case "array":
		items, _ := schema["items"].(map[string]any)
		out := make([]any, min(num("minItems"), 64))
		for i := range out {
			out[i] = minimalValue(items, depth+1, budget)
		}
		return out
	case "null":
		return nil
	}
	return map[string]any{}
}

// publishSpec publishes a spec file's locked text and the files it refers
// to into lib (a validator's library of the subnet), so the subnet's
// neurons can fetch them by CID, and checks each file's body CID is the
// one the lock names.
func publishSpec(ctx context.Context, lib *knowledge.Library, netuid uint16, sn runSubnet) (SpecSummary, error) {
	h := sn.spec.Hash()
	sum := SpecSummary{Netuid: netuid, Name: sn.name, File: sn.file, SpecHash: hex.EncodeToString(h[:]), Files: sn.spec.Files}
	if _, err := lib.Publish(ctx, bytes.NewReader(sn.spec.Text()), knowledge.Meta{MediaType: "application/yaml", Title: "subnet spec: " + sn.name,
		Tags: []string{"subnet-spec"}, Netuid: netuid}); err != nil && !errors.Is(err, knowledge.ErrNotShared) {
		return sum, fmt.Errorf("localnet: publishing spec %s: %w", sn.file, err)
	}
	for _, path := range slices.Sorted(maps.Keys(sn.spec.Files)) {
		f, err := os.Open(filepath.Join(sn.dir, filepath.FromSlash(path)))
		if err != nil {
			return sum, fmt.Errorf("localnet: spec %s: %w", sn.file, err)
		}
		obj, err := lib.Publish(ctx, f, knowledge.Meta{Title: path, Tags: []string{"subnet-file"}, Netuid: netuid})
		f.Close()
		if err != nil && !errors.Is(err, knowledge.ErrNotShared) {
			return sum, fmt.Errorf("localnet: spec %s: publishing %s: %w", sn.file, path, err)
		}
		if obj == nil {
			return sum, fmt.Errorf("localnet: spec %s: publishing %s gave no object", sn.file, path)
		}
		if got := obj.Body.String(); got != sn.spec.Files[path] {
			return sum, fmt.Errorf("localnet: spec %s: %s changed since it was locked (%s, now %s)", sn.file, path, sn.spec.Files[path], got)
		}
	}
	return sum, nil
}

// mechanismShares are the chain's shares of a spec's mechanisms: each
// share in millionths, at least 1.
func mechanismShares(spec *subnet.Spec) []uint32 {
	out := make([]uint32, len(spec.Mechanisms))
	for i, m := range spec.Mechanisms {
		out[i] = max(1, uint32(math.Round(m.Share*1e6)))
	}
	return out
}

// setMechanisms gives each spec subnet with several mechanisms their
// shares on chain, as its owner (root), before any neuron starts: they
// take effect at the subnet's first epoch.
func setMechanisms(ctx context.Context, c chainlink.Chain, owner *wallet.PrivateKey, subnets []runSubnet, out io.Writer) error {
	send := chainlink.NewSender(c, owner)
	for k, sn := range subnets {
		if len(sn.spec.Mechanisms) < 2 {
			continue
		}
		shares := mechanismShares(sn.spec)
		msg := &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: uint32(k + 1), Shares: shares}}}
		if _, err := send.Send(ctx, msg); err != nil {
			return fmt.Errorf("localnet: setting the mechanisms of subnet %d %q: %w", k+1, sn.name, err)
		}
		fmt.Fprintf(out, "localnet: subnet %d %q has %d mechanisms, shares %v (millionths)\n", k+1, sn.name, len(shares), shares)
	}
	return nil
}

// judgeURL is the base URL the specs' LLM judges ask: JudgeURL, else
// Upstream's /v1, else "" (each spec's own url).
func (c Config) judgeURL() string {
	switch {
	case c.JudgeURL != "":
		return c.JudgeURL
	case c.Upstream.BaseURL != "":
		return strings.TrimRight(c.Upstream.BaseURL, "/") + "/v1"
	}
	return ""
}
