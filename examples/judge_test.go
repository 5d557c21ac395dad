package examples

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// python3 is the interpreter the examples' programs run under; a test
// without it skips, unless CI requires it.
func python3(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("CYBERTENSOR_REQUIRE_PYTHON") == "1" {
			t.Fatalf("python3 is required (CYBERTENSOR_REQUIRE_PYTHON=1): %v", err)
		}
		t.Skipf("python3 not found: %v", err)
	}
	return p
}

// taskLine is one line of a dataset or a task program's output.
type taskLine struct {
	Request  map[string]any  `json:"request"`
	Expected json.RawMessage `json:"expected,omitempty"`
	Meta     json.RawMessage `json:"meta,omitempty"`
}

func readTaskLines(t *testing.T, path string) []taskLine {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return decodeTaskLines(t, path, b)
}

func decodeTaskLines(t *testing.T, name string, b []byte) []taskLine {
	t.Helper()
	var out []taskLine
	for i, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
			continue // as subnet.ParseTaskLines skips them
		}
		var l taskLine
		dec := json.NewDecoder(strings.NewReader(line))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&l); err != nil || l.Request == nil {
			t.Fatalf("%s line %d: %v (%q)", name, i+1, err, line)
		}
		out = append(out, l)
	}
	return out
}

// solutions are the reference answers to the code example's problems, by
// signature: what an honest model writes.
func solutions(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join("code", "testdata", "solutions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var s struct{ Signature, Code string }
		if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
			t.Fatal(err)
		}
		out[s.Signature] = s.Code
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// judgeProcess runs code/judge.py as the validator does: one long-lived
// process, a JSON line in, a JSON line out.
type judgeProcess struct {
	t   *testing.T
	cmd *exec.Cmd
	in  *json.Encoder
	out *bufio.Scanner
}

func startJudge(t *testing.T) *judgeProcess {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cmd := exec.CommandContext(ctx, python3(t), "judge.py")
	cmd.Dir = "code"
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("judge.py exited: %v", err)
		}
		cancel()
	})
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 1<<20)
	return &judgeProcess{t: t, cmd: cmd, in: json.NewEncoder(stdin), out: sc}
}

type verdict struct {
	Score  *float64       `json:"score"`
	Fields map[string]any `json:"fields"`
	Error  string         `json:"error"`
}

func (j *judgeProcess) judge(msg any) verdict {
	j.t.Helper()
	if err := j.in.Encode(msg); err != nil {
		j.t.Fatal(err)
	}
	if !j.out.Scan() {
		j.t.Fatalf("judge.py answered nothing: %v", j.out.Err())
	}
	var v verdict
	if err := json.Unmarshal(j.out.Bytes(), &v); err != nil {
		j.t.Fatalf("judge.py answered %q: %v", j.out.Text(), err)
	}
	return v
}

// The code example's judge scores every reference solution 1, and code
// that loops, eats memory, floods its output, exits early or prints
// passes of its own 0, each within the judge's own time bound; a task
// without tests is a judge failure, not a score.
func TestCodeJudge(t *testing.T) {
	problems := readTaskLines(t, filepath.Join("code", "problems.jsonl"))
	sols := solutions(t)
	j := startJudge(t)
	for _, p := range problems {
		sig, _ := p.Request["signature"].(string)
		code, ok := sols[sig]
		if !ok {
			t.Fatalf("no reference solution for %q", sig)
		}
		v := j.judge(map[string]any{"task": p, "answer": map[string]string{"code": code}, "synapse": "code.v1"})
		var tests []string
		if err := json.Unmarshal(p.Meta, &struct {
			Tests *[]string `json:"tests"`
		}{&tests}); err != nil {
			t.Fatal(err)
		}
		if v.Score == nil || *v.Score != 1 || v.Fields["passed"] != float64(len(tests)) || v.Fields["total"] != float64(len(tests)) {
			t.Errorf("%s: reference solution judged %+v, want all %d tests passed", sig, v, len(tests))
		}
	}
	first := problems[0] // total(xs), three tests
	// judge.py gives code 2 CPU seconds and 5 s of wall time; the bound
	// leaves room for starting Python on a loaded machine.
	const judgeBound = 15 * time.Second
	for _, c := range []struct {
		name, code string
		passed     float64
	}{
		{"wrong for two of three", "def total(xs):\n    return 6\n", 1},
		{"loops forever", "while True:\n    pass\n", 0},
		{"sleeps past the wall clock", "import time\ntime.sleep(60)\n", 0},
		{"allocates 1 GiB", "x = bytearray(1 << 30)\n", 0},
		{"floods its output", "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", 0},
		{"exits at import", "import os\nos._exit(0)\n", 0},
		{"prints passes of its own", "print('0 0')\nprint('0 1')\nprint('0 2')\n", 0},
		{"does not compile", "def total(xs) return 0\n", 0},
	} {
		began := time.Now()
		v := j.judge(map[string]any{"task": first, "answer": map[string]string{"code": c.code}, "synapse": "code.v1"})
		if took := time.Since(began); took > judgeBound {
			t.Errorf("%s: judged in %v, want within %v", c.name, took, judgeBound)
		}
		if v.Score == nil || *v.Score != c.passed/3 || v.Fields["passed"] != c.passed || v.Error != "" {
			t.Errorf("%s: judged %+v, want %v of 3 passed", c.name, v, c.passed)
		}
	}
	// The miner's fault: an answer without code scores 0.
	if v := j.judge(map[string]any{"task": first, "answer": map[string]any{"code": 7}}); v.Score == nil || *v.Score != 0 {
		t.Errorf("answer without code: %+v, want score 0", v)
	}
	// Not the miner's fault: an unusable task or line is an error.
	for _, msg := range []any{
		map[string]any{"task": map[string]any{"request": first.Request}, "answer": map[string]string{"code": "x = 1"}},
		map[string]any{"task": map[string]any{"meta": map[string]any{"tests": []int{1}}}, "answer": map[string]string{"code": "x = 1"}},
		"not an object",
	} {
		if v := j.judge(msg); v.Error == "" || v.Score != nil {
			t.Errorf("%v: judged %+v, want an error and no score", msg, v)
		}
	}
}
