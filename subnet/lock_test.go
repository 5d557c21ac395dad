package subnet

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const lockSpec = `version: 2
name: locked
synapses:
  - name: summarize.v1
    request: {type: object, required: [text], properties: {text: {type: string}}}
    answer: text
mechanisms:
  - name: quality
    share: 0.5
    tasks: {source: dataset, path: data/tasks.jsonl}
    judge: {kind: exec, command: [./judge.sh]}
    reward: judge.score
  - name: style
    share: 0.5
    tasks: {source: exec, command: [sh, gen/tasks.py, --n, "3"]}
    judge: {kind: llm, url: "http://127.0.0.1:1/v1", model: m, prompt_file: judge.txt}
    reward: judge.score
query: {every: 1, timeout: 1s}
alpha: 0.5
weights_every: 3
`

// writeTree writes files under a new directory; a name ending in "*" is
// made executable.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		mode := os.FileMode(0o644)
		if strings.HasSuffix(name, "*") {
			name, mode = strings.TrimSuffix(name, "*"), 0o755
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func lockTree(t *testing.T) string {
	return writeTree(t, map[string]string{
		"data/tasks.jsonl": `{"request": {"text": "a"}, "expected": "b"}` + "\n",
		"judge.sh*":        "#!/bin/sh\ncat\n",
		"gen/tasks.py":     "print()\n",
		"judge.txt":        "Rate {{answer}} for {{task.text}}",
	})
}

func TestLockResolve(t *testing.T) {
	s, err := Parse([]byte(lockSpec))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"data/tasks.jsonl", "gen/tasks.py", "judge.sh", "judge.txt"}
	if got := s.ReferencedFiles(); !reflect.DeepEqual(got, want) {
		t.Fatalf("referenced %v, want %v", got, want)
	}
	dir := lockTree(t)
	if err := Resolve(s, dir); err == nil || !strings.Contains(err.Error(), "not locked") {
		t.Fatalf("an unlocked spec resolved: %v", err)
	}
	locked, err := Lock(s, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(locked.Files) != 4 || locked.Hash() == s.Hash() || !strings.HasPrefix(string(locked.Text()), string(s.Text())) {
		t.Fatalf("locked %v\n%s", locked.Files, locked.Text())
	}
	c, err := FileCID(filepath.Join(dir, "judge.sh"))
	if err != nil || locked.Files["judge.sh"] != c || !strings.HasPrefix(c, "bafk") {
		t.Fatalf("judge.sh locked as %q, its CID %q %v", locked.Files["judge.sh"], c, err)
	}
	if err := Resolve(locked, dir); err != nil {
		t.Fatal(err)
	}
	// Locking a locked spec checks it and changes nothing.
	if again, err := Lock(locked, dir); err != nil || again != locked {
		t.Fatalf("relock: %v", err)
	}
	// A changed file no longer resolves, nor relocks.
	os.WriteFile(filepath.Join(dir, "gen/tasks.py"), []byte("print(1)\n"), 0o644)
	err = Resolve(locked, dir)
	var se *SpecError
	if !errors.As(err, &se) || se.Field != "files.gen/tasks.py" || se.Line != 24 || !strings.Contains(err.Error(), "changed since the spec was locked") {
		t.Fatalf("changed file: %v", err)
	}
	if _, err := Lock(locked, dir); err == nil {
		t.Fatal("relocked a changed file")
	}
}

func TestResolveRefuses(t *testing.T) {
	for _, c := range []struct {
		name  string
		edit  func(dir string)
		spec  func(string) string
		field string
		line  int
		want  string
	}{
		{"missing dataset", func(dir string) { os.Remove(filepath.Join(dir, "data/tasks.jsonl")) }, nil, "mechanisms[0].tasks.path", 10, "no such file"},
		{"judge not executable", func(dir string) { os.Chmod(filepath.Join(dir, "judge.sh"), 0o644) }, nil, "mechanisms[0].judge.command[0]", 11, "not executable"},
		{"bad dataset line", func(dir string) {
			os.WriteFile(filepath.Join(dir, "data/tasks.jsonl"), []byte(`{"request": {"text": 1}}`), 0o644)
		}, nil, "mechanisms[0].tasks.path", 10, "task 1: task for summarize.v1: request /text"},
		{"bad prompt file", func(dir string) { os.WriteFile(filepath.Join(dir, "judge.txt"), []byte("{{task.nope}}"), 0o644) }, nil, "mechanisms[1].judge.prompt_file", 16, `"nope" is not a top-level property`},
		{"program not in PATH", nil, func(s string) string { return strings.Replace(s, "[sh, gen", "[no-such-program-xyz, gen", 1) }, "mechanisms[1].tasks.command[0]", 15, "executable file not found"},
		{"dataset cid disagrees", nil, func(s string) string {
			return strings.Replace(s, "path: data/tasks.jsonl}", "path: data/tasks.jsonl, cid: bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku}", 1)
		}, "mechanisms[0].tasks.path", 10, "but the spec's cid is"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := lockTree(t)
			text := lockSpec
			if c.spec != nil {
				text = c.spec(text)
			}
			s, err := Parse([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			locked, err := Lock(s, dir)
			if err == nil {
				if c.edit != nil {
					c.edit(dir)
				}
				err = Resolve(locked, dir)
			}
			var se *SpecError
			if !errors.As(err, &se) || se.Field != c.field || se.Line != c.line || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("%v (field %q line %d); want %s at %d: %q", err, fieldOf(se), lineOf(se), c.field, c.line, c.want)
			}
		})
	}
}

func fieldOf(se *SpecError) string {
	if se == nil {
		return ""
	}
	return se.Field
}

func lineOf(se *SpecError) int {
	if se == nil {
		return 0
	}
	return se.Line
}

// v1 specs lock to themselves.
func TestLockV1(t *testing.T) {
	s, err := Parse([]byte(strings.Replace(valid, "source: knowledge", "source: dataset\n  path: qa.jsonl", 1)))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := Lock(s, t.TempDir()); err != nil || got != s || s.ReferencedFiles() != nil {
		t.Fatalf("v1 lock: %v", err)
	}
}
