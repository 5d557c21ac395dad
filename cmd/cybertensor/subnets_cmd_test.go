package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// "subnets create --spec" refuses a spec whose dataset is missing or does
// not parse before it keeps anything or sends anything: no password
// asked, no spec in the library, no transaction (#20 bug 8: it locked the
// subnet cost for a spec the validators then could not run). The chain
// here is unreachable, so only a check made before any transaction can
// give this answer.
func TestSubnetsCreateChecksTheSpecsDataset(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	trivia, err := os.ReadFile("../../examples/trivia/spec.yaml")
	if err != nil {
		t.Fatal(err)
	}
	specDir := t.TempDir()
	spec := writeFile(t, specDir, "spec.yaml", string(trivia))
	create := func() result {
		return c.fail(exitUsage, "--home", home, "subnets", "create", "--spec", spec, "--password-file", pw, "--chain", "http://127.0.0.1:1", "--timeout", "2s")
	}
	dataset := filepath.Join(specDir, "questions.jsonl")
	if r := create(); !strings.Contains(r.stderr, "the spec's dataset") || !strings.Contains(r.stderr, dataset) || !strings.Contains(r.stderr, "no such file") {
		t.Fatalf("a missing dataset: %s", r.stderr)
	}
	writeFile(t, specDir, "questions.jsonl", "{\"prompt\": \"a\", \"answer\": \"b\"}\n{\"prompt\": \"no answer\"}\n")
	if r := create(); !strings.Contains(r.stderr, dataset+": dataset line 2: prompt and answer must not be empty") {
		t.Fatalf("a broken dataset: %s", r.stderr)
	}
	if _, err := os.Stat(filepath.Join(home, "knowledge")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused spec was kept in the knowledge library: %v", err)
	}
}
