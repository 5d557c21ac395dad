package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/cybertensor/cybertensor/neuron"
)

// validator run --gateway from the command line: a chat subnet from
// examples/chat, a miner in front of a model server, and a validator that
// serves the gateway and scores every organic answer (--organic-fraction
// 1) with the spec's LLM judge while it asks no task of its own: an
// application's requests through the gateway alone earn the miner a
// score, which "validator scores" shows as organic.
func TestValidatorRunGatewayScoresOrganic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node and two neurons")
	}
	model := openaitest.New(openaitest.Config{Answer: "The capital of France is Paris."})
	defer model.Close()
	judge := openaitest.New(openaitest.Config{Reply: func(r openaitest.ChatRequest) string {
		if strings.Contains(r.Messages[len(r.Messages)-1].Content, "ANSWER:\nThe capital of France is Paris.") {
			return "Correct and brief.\nScore: 9/10"
		}
		return "Wrong.\nScore: 0/10"
	}})
	defer judge.Close()
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	spec, _ := filepath.Abs("../../examples/chat/spec.yaml")
	url := minerAndValidatorChain(t, c, home, pw)
	c.ok("--home", home, "subnets", "create", "--spec", spec, "--password-file", pw, "--chain", url)

	// Without API keys the validator refuses to start, before it
	// registers.
	gwAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	r := runBounded(t, c, 30*time.Second, func() {}, "--home", home, "validator", "run", "--wallet", "v", "--netuid", "1", "--spec", spec,
		"--judge-url", judge.URL+"/v1", "--gateway", gwAddr, "--password-file", pw, "--chain", url)
	if r.code == 0 || !strings.Contains(r.stderr, "no API keys at") || !strings.Contains(r.stderr, "gateway keys add") {
		t.Fatalf("--gateway without keys: exit %d, %s", r.code, r.stderr)
	}
	if r := c.run("--home", home, "validator", "run", "--wallet", "v", "--netuid", "1", "--organic-fraction", "1.5", "--chain", url); r.code != exitUsage || !strings.Contains(r.stderr, "--organic-fraction 1.5: want 0 to 1") {
		t.Fatalf("--organic-fraction 1.5: exit %d, %s", r.code, r.stderr)
	}
	var key struct {
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal([]byte(c.ok("--home", home, "gateway", "keys", "add", "--name", "app", "--json").stdout), &key); err != nil || key.Secret == "" {
		t.Fatalf("gateway keys add: %v %+v", err, key)
	}

	start := func(args ...string) (func(), *syncBuffer) { return startCommand(t, home, args...) }
	stopMiner, minerOut := start("miner", "run", "--wallet", "m", "--netuid", "1", "--spec", spec, "--backend", "openai:test-model@"+model.URL,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	defer stopMiner()
	stopValidator, validatorOut := start("validator", "run", "--wallet", "v", "--netuid", "1", "--stake", "50", "--spec", spec,
		"--judge-url", judge.URL+"/v1", "--gateway", gwAddr, "--organic-fraction", "1", "--query-every", "100000",
		"--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	defer stopValidator()

	scored := func() (neuron.Answer, bool) {
		r := c.run("--home", home, "validator", "scores", "--wallet", "v", "--json")
		if r.code != 0 {
			return neuron.Answer{}, false
		}
		st := decode[neuron.ValidatorStatus](t, r.stdout)
		for _, a := range st.Answers {
			if a.Organic && a.Score > 0 {
				return a, true
			}
		}
		return neuron.Answer{}, false
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		body := `{"model": "sn1/text.chat", "messages": [{"role": "user", "content": "What is the capital of France?"}]}`
		req, _ := http.NewRequest(http.MethodPost, "http://"+gwAddr+"/v1/chat/completions", bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+key.Secret)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		if a, ok := scored(); ok {
			if a.Status != "OK" || a.Score < 0.5 {
				t.Errorf("the organic answer: %+v", a)
			}
			if !strings.Contains(validatorOut.String(), "gateway for subnet 1 at http://"+gwAddr+"/v1") {
				t.Errorf("the validator said:\n%s", validatorOut.String())
			}
			if q := c.run("--home", home, "validator", "scores", "--wallet", "v"); !strings.Contains(q.stdout, "(organic)") {
				t.Errorf("validator scores:\n%s", q.stdout)
			}
			// The miner answers once its axon is on chain, which can be
			// before its own start-up has seen that transaction
			// confirmed; stopped in between, it exits 1 ("waiting for
			// transaction: context canceled"). Stop it once it is up.
			for !strings.Contains(minerOut.String(), "miner uid ") {
				if time.Now().After(deadline) {
					t.Fatalf("the miner answered but never said it was up:\n%s", minerOut.String())
				}
				time.Sleep(50 * time.Millisecond)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no organic answer scored; miner said:\n%s\nvalidator said:\n%s", minerOut.String(), validatorOut.String())
		}
		time.Sleep(300 * time.Millisecond)
	}
}
