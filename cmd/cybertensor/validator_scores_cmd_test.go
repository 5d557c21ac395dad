package main

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/neuron"
	"github.com/cybertensor/cybertensor/wallet"
)

// "validator scores" prints the state file a validator keeps: moving
// averages, last answers with statuses and reasons, and the weights last
// set; --json the same as JSON; a hotkey with no state says what to run.
func TestValidatorScores(t *testing.T) {
	c := newCLI(t)
	home := t.TempDir()
	seed := sha256.Sum256([]byte("scores cmd"))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	hot := k.PublicKey().Address().String()
	dir := filepath.Join(home, "neurons", "v", "default")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	state := fmt.Sprintf(`{"version": 1, "netuid": 3, "hotkey": %q,
  "scores": [{"uid": 1, "holder": "m1", "value": 0.75}, {"uid": 2, "holder": "m2", "value": 0}],
  "last_set": 40,
  "answers": [
    {"uid": 1, "hotkey": "m1", "status": "OK", "score": 0.8, "latency_ms": 12, "time": 1700000000000},
    {"uid": 2, "hotkey": "m2", "status": "INTERNAL", "reason": "model server down", "score": 0, "latency_ms": 3, "time": 1700000000000}],
  "weights": {"uids": [1], "values": [65535], "block": 40, "time": 1700000000000},
  "saved": 1700000001000}`, hot)
	if err := os.WriteFile(filepath.Join(dir, neuron.ValidatorStateFile), []byte(state), 0o600); err != nil {
		t.Fatal(err)
	}
	out := c.ok("--home", home, "validator", "scores", "--wallet", "v").stdout
	for _, want := range []string{"subnet 3", "0.7500", "OK 0.800", "INTERNAL 0.000", "model server down", "weights set at block 40", "1=65535"} {
		if !strings.Contains(out, want) {
			t.Fatalf("validator scores lacks %q:\n%s", want, out)
		}
	}
	st := decode[neuron.ValidatorStatus](t, c.ok("--home", home, "validator", "scores", "--wallet", "v", "--json").stdout)
	if st.Netuid != 3 || len(st.Scores) != 2 || len(st.Answers) != 2 || st.Answers[1].Reason != "model server down" ||
		st.Weights == nil || st.Weights.Block != 40 || st.Saved.UnixMilli() != 1700000001000 {
		t.Fatalf("--json: %+v", st)
	}
	r := c.fail(1, "--home", home, "validator", "scores", "--wallet", "nobody")
	if !strings.Contains(r.stderr, "no validator state in") || !strings.Contains(r.stderr, "validator run --wallet nobody") {
		t.Fatalf("no state: %s", r.stderr)
	}
}
