package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScoringEpochCommand(t *testing.T) {
	c := newCLI(t)
	example := filepath.Join("..", "..", "scoring", "testdata", "epoch", "two_validators_disagree.in.json")
	r := c.ok("scoring", "epoch", "--in", example)
	if !strings.HasPrefix(r.stdout, `{"active":[true,true,false,false]`) || !strings.HasSuffix(r.stdout, "}\n") {
		t.Fatalf("output: %s", r.stdout)
	}
	if !strings.Contains(r.stdout, `"emission":[350786049,149213950,352941176,147058823]`) {
		t.Errorf("emission amounts: %s", r.stdout)
	}
	// stdin, and byte-identical output.
	data, _ := os.ReadFile(example)
	c.stdin = string(data)
	if again := c.ok("scoring", "epoch", "--in", "-"); again.stdout != r.stdout {
		t.Error("stdin gives different bytes")
	}
	// Invalid input: one line naming the field, nothing on stdout, exit 2.
	c.stdin = strings.Replace(string(data), `"uid": 2`, `"uid": 7`, 1)
	bad := c.fail(exitUsage, "scoring", "epoch", "--in", "-")
	if bad.stdout != "" || !strings.Contains(bad.stderr, "neurons[2].uid: uids must be dense") || strings.Count(bad.stderr, "\n") != 1 {
		t.Errorf("invalid input: stdout %q stderr %q", bad.stdout, bad.stderr)
	}
	c.stdin = "{not json"
	c.fail(exitUsage, "scoring", "epoch", "--in", "-")
	c.fail(exitUsage, "scoring", "epoch", "--in", filepath.Join(t.TempDir(), "missing.json"))
	c.fail(exitUsage, "scoring", "epoch")
}
