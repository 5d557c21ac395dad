package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/subnet"
)

// A version 2 spec from the command line: subnets create --spec, a miner
// serving its custom synapse with --backend exec (a Python program), and
// a validator whose LLM judge asks --judge-url with --judge-key-file's key
// instead of the spec's url: the metagraph shows the miner earning.
func TestV2SpecMinerAndValidator(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node and two neurons")
	}
	judge := openaitest.New(openaitest.Config{APIKey: "judge-secret", Reply: func(r openaitest.ChatRequest) string {
		answer, expected, _ := strings.Cut(r.Messages[len(r.Messages)-1].Content, "\nEXPECTED: ")
		_, answer, _ = strings.Cut(answer, "\nANSWER: ")
		if strings.TrimSpace(answer) == strings.Trim(strings.TrimSpace(expected), `"`) {
			return "10/10"
		}
		return "0/10"
	}})
	defer judge.Close()
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	keyFile := writeFile(t, dir, "judge.key", "judge-secret\n")
	spec, _ := filepath.Abs("../../localnet/testdata/headline/spec.yaml")
	program, _ := filepath.Abs("testdata/headline_backend.py")
	url := minerAndValidatorChain(t, c, home, pw)
	c.ok("--home", home, "subnets", "create", "--spec", spec, "--password-file", pw, "--chain", url)

	// The judge flags are for v2 specs; a reference judge needs its backend.
	r := runBounded(t, c, 30*time.Second, func() {}, "--home", home, "validator", "run", "--wallet", "v", "--netuid", "1", "--builtin", "qa",
		"--judge-url", judge.URL+"/v1", "--password-file", pw, "--chain", url)
	if r.code != exitUsage || !strings.Contains(r.stderr, "are for a version 2 spec") {
		t.Fatalf("judge flags with a v1 spec: exit %d, %s", r.code, r.stderr)
	}

	start := func(args ...string) (func(), *syncBuffer) { return startCommand(t, home, args...) }
	stopMiner, minerOut := start("miner", "run", "--wallet", "m", "--netuid", "1", "--spec", spec, "--backend", "exec:python3 "+program,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	defer stopMiner()
	stopValidator, validatorOut := start("validator", "run", "--wallet", "v", "--netuid", "1", "--stake", "50", "--spec", spec,
		"--judge-url", judge.URL+"/v1", "--judge-key-file", keyFile, "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url,
		"--query-every", "1", "--weights-every", "3")
	defer stopValidator()

	deadline := time.Now().Add(60 * time.Second)
	for {
		r := c.run("--home", home, "metagraph", "--netuid", "1", "--json", "--chain", url)
		if r.code == 0 {
			m := decode[chain.Metagraph](t, r.stdout)
			for uid := range m.N {
				if m.Axons[uid] != nil && m.Incentive[uid] > 0 {
					if !strings.Contains(validatorOut.String(), `running spec "headline" mechanism main (share 1): dataset tasks to headline.v1, llm judge`) {
						t.Errorf("the validator said:\n%s", validatorOut.String())
					}
					if judge.Requests("/v1/chat/completions") == 0 {
						t.Error("the judge at --judge-url was never asked")
					}
					return
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no incentive for the miner; miner said:\n%s\nvalidator said:\n%s", minerOut.String(), validatorOut.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// What a v2 spec's judges need from validator run's flags: a reference
// judge needs --reference-backend (which then answers and embeds), a key
// file's first line is the judge key, and the flags need a v2 spec.
func TestSpecJudgeFlags(t *testing.T) {
	parse := func(text string) *subnet.Spec {
		t.Helper()
		s, err := subnet.Parse([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	reference := parse(`version: 2
name: ref
synapses:
  - name: answer.v1
    request: {type: object, required: [q], properties: {q: {type: string}}}
    answer: text
    prompt: "{{q}}"
tasks: {source: http, url: "http://127.0.0.1:1/tasks"}
judge: {kind: reference, compare: embedding}
reward: 'judge.score'
query: {every: 2, sample: 4, timeout: 5s}
alpha: 0.3
weights_every: 5
`)
	qa, _ := subnet.Builtin("qa")
	a := &app{env: env{getenv: func(string) string { return "" }}}
	key := writeFile(t, t.TempDir(), "key", "\n")
	for _, tc := range []struct {
		name string
		spec *subnet.Spec
		jf   judgeFlags
		want string
	}{
		{"no reference backend", reference, judgeFlags{}, "has a reference judge: give the validator's own backend with --reference-backend"},
		{"flags with a v1 spec", qa, judgeFlags{url: "http://127.0.0.1:1/v1"}, "are for a version 2 spec"},
		{"flags without a spec", nil, judgeFlags{reference: "retrieval"}, "are for a version 2 spec"},
		{"an empty key file", reference, judgeFlags{keyFile: key, reference: "retrieval"}, "--judge-key-file " + key + ": the first line is empty"},
		{"a bad backend", reference, judgeFlags{reference: "gpu"}, "--reference-backend: --backend \"gpu\""},
		{"a reference key without its backend", parse(strings.NewReplacer("judge: {kind: reference, compare: embedding}\n", "", "judge.score", "1.0").Replace(string(reference.Text()))), judgeFlags{refKey: key}, "--reference-key-file needs --reference-backend"},
	} {
		var cfg neuron.ValidatorConfig
		err := a.specJudges("spec.yaml", tc.spec, &tc.jf, &cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
	jf := judgeFlags{url: "http://127.0.0.1:1/v1", keyFile: writeFile(t, t.TempDir(), "key", "k1\nk2\n"), reference: "retrieval"}
	var cfg neuron.ValidatorConfig
	if err := a.specJudges("dir/spec.yaml", reference, &jf, &cfg); err != nil {
		t.Fatal(err)
	}
	defer jf.closeReference()
	if cfg.SpecDir != "dir" || cfg.JudgeURL != jf.url || cfg.JudgeKey != "k1" || cfg.Reference == nil || cfg.ReferenceEmbedder == nil || cfg.Getenv == nil {
		t.Fatalf("config %+v", cfg)
	}
	got, err := cfg.Reference.Answer(context.Background(), "answer.v1", []byte(`{"q": "what is yuma consensus"}`))
	if err != nil || len(got) == 0 {
		t.Fatalf("the reference backend answered %q, %v", got, err)
	}
}
