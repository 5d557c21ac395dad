package main

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const v2Spec = `version: 2
name: summarize
synapses:
  - name: summarize.v1
    request: {type: object, required: [text], properties: {text: {type: string}}}
    answer: text
tasks: {source: exec, command: [sh, tasks.sh]}
judge: {kind: exec, command: [./judge.sh]}
reward: judge.score
query: {every: 1, timeout: 1s}
alpha: 0.5
weights_every: 3
`

// writeSpecTree writes a v2 spec and the files it refers to.
func writeSpecTree(t *testing.T, spec string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, dir, "tasks.sh", "echo '{\"request\": {\"text\": \"hi\"}}'\n")
	if err := os.WriteFile(filepath.Join(dir, "judge.sh"), []byte("#!/bin/sh\necho '{\"score\": 1}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return writeFile(t, dir, "spec.yaml", spec)
}

// "subnets create --spec" refuses a v2 spec whose files are missing, whose
// judge is not executable or whose templates and schemas are bad, before
// anything is kept or sent (the chain here is unreachable).
func TestSubnetsCreateRefusesV2Specs(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	create := func(spec string) string {
		return c.fail(exitUsage, "--home", home, "subnets", "create", "--spec", spec, "--password-file", pw, "--chain", "http://127.0.0.1:1", "--timeout", "2s").stderr
	}
	missing := writeSpecTree(t, v2Spec)
	os.Remove(filepath.Join(filepath.Dir(missing), "tasks.sh"))
	if r := create(missing); !strings.Contains(r, "spec line 7: tasks.command[1]: tasks.sh: no such file") {
		t.Fatalf("missing task script: %s", r)
	}
	notExec := writeSpecTree(t, v2Spec)
	os.Chmod(filepath.Join(filepath.Dir(notExec), "judge.sh"), 0o644)
	if r := create(notExec); !strings.Contains(r, "spec line 8: judge.command[0]: judge.sh: not executable") {
		t.Fatalf("judge not executable: %s", r)
	}
	if r := create(writeSpecTree(t, strings.Replace(v2Spec, "[sh, tasks.sh]", "[no-such-program-xyz, tasks.sh]", 1))); !strings.Contains(r, "tasks.command[0]: no-such-program-xyz") {
		t.Fatalf("program not found: %s", r)
	}
	if r := create(writeSpecTree(t, strings.Replace(v2Spec, "{type: string}", "{type: strung}", 1))); !strings.Contains(r, "spec line 5: synapses[0].request: schema does not compile") {
		t.Fatalf("bad schema: %s", r)
	}
	if r := create(writeSpecTree(t, strings.Replace(v2Spec, "    answer: text", "    answer: text\n    prompt: '{{body}}'", 1))); !strings.Contains(r, "{{body}} is not a top-level property") {
		t.Fatalf("bad prompt template: %s", r)
	}
	if _, err := os.Stat(filepath.Join(home, "knowledge")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused spec was kept in the knowledge library: %v", err)
	}
}

// A v2 spec opens a subnet locked: the files: section is part of the text
// on chain, each file is in the knowledge library, and "subnets spec
// --json" prints the parsed spec with its files.
func TestSubnetsCreateLocksV2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	url := runningChain(t, c, home)
	spec := writeSpecTree(t, v2Spec)
	c.ok("--home", home, "subnets", "create", "--spec", spec, "--password-file", pw, "--chain", url)
	type specJSON struct {
		Version int               `json:"version"`
		Files   map[string]string `json:"files"`
		Spec    map[string]any    `json:"spec"`
		Text    string            `json:"text"`
		CID     string            `json:"cid"`
	}
	got := decode[specJSON](t, c.ok("--home", home, "subnets", "spec", "1", "--json", "--chain", url).stdout)
	if got.Version != 2 || len(got.Files) != 2 || got.Files["tasks.sh"] == "" || got.Files["judge.sh"] == "" ||
		!strings.HasPrefix(got.Text, v2Spec) || !strings.Contains(got.Text, "\nfiles:\n") || got.Spec["name"] != "summarize" {
		t.Fatalf("%+v", got)
	}
	// Each locked file is in the library under its CID.
	for name, id := range got.Files {
		body := c.ok("--home", home, "knowledge", "get", id).stdout
		want, _ := os.ReadFile(filepath.Join(filepath.Dir(spec), name))
		if body != string(want) {
			t.Errorf("%s (%s) in the library: %q, want %q", name, id, body, want)
		}
	}
}
