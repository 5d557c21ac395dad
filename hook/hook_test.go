package hook

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv makes the test binary act as a hook program (childMain) instead
// of running tests.
const childEnv = "CYBERTENSOR_HOOK_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(childMain(os.Args[1:]))
	}
	goleak.VerifyTestMain(m)
}

// childMain is the test programs, by their first argument:
//
//	serve   a JSON-lines server (see serveLine)
//	alloc N allocates N MiB, then prints {"ok":true}
//	sleep   sleeps for an hour (a grandchild for orphan tests)
//	limits  prints its RLIMIT_CPU and RLIMIT_AS soft and hard limits
func childMain(args []string) int {
	if len(args) == 0 {
		return 2
	}
	switch args[0] {
	case "serve":
		return serve()
	case "alloc":
		n, _ := strconv.Atoi(args[1])
		// Touch only both ends: address space is what is limited, and a
		// limit that failed to bind should not cost the machine memory.
		b := make([]byte, n<<20)
		b[0], b[len(b)-1] = 1, 1
		fmt.Printf("{\"ok\":true,\"n\":%d}\n", len(b))
		return 0
	case "sleep":
		time.Sleep(time.Hour)
		return 0
	case "limits":
		var cpu, as syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_CPU, &cpu)
		syscall.Getrlimit(syscall.RLIMIT_AS, &as)
		fmt.Printf("{\"cpu\":[%d,%d],\"as\":[%d,%d]}\n", cpu.Cur, cpu.Max, as.Cur, as.Max)
		return 0
	}
	return 2
}

// serve answers each request line: {"sleep": ms} sleeps first; {"exit":
// n} exits with status n; {"big": n} answers a string of n bytes;
// {"garbage": true} answers a line that is not JSON; {"deaf": true} stops
// reading requests and never answers; {"twice": true} answers two lines; {"stderr": s} writes s
// to stderr; {"flood": n} writes n lines to stderr; {"spawn": true} starts
// a grandchild and answers its pid; {"burn": true} burns CPU; anything
// else is answered {"pid": <its pid>, "echo": <the request>}.
func serve() int {
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	for {
		line, err := in.ReadBytes('\n')
		if err != nil {
			return 0
		}
		var req struct {
			Sleep  int
			Exit   *int
			Big    int
			Bench  bool
			Garb   bool `json:"garbage"`
			Stderr string
			Flood  int
			Spawn  bool
			Burn   bool
			Deaf   bool
			Twice  bool
		}
		if bytes.HasPrefix(line, []byte(`{"bench"`)) {
			// The benchmark's fast path: a constant judge's answer.
			out.WriteString("{\"score\":1}\n")
			out.Flush()
			continue
		}
		json.Unmarshal(line, &req)
		time.Sleep(time.Duration(req.Sleep) * time.Millisecond)
		switch {
		case req.Exit != nil:
			return *req.Exit
		case req.Big > 0:
			fmt.Fprintf(out, "%q\n", strings.Repeat("x", req.Big))
		case req.Garb:
			out.WriteString("this is not json\n")
		case req.Stderr != "":
			fmt.Fprintln(os.Stderr, req.Stderr)
			out.WriteString("{}\n")
		case req.Flood > 0:
			for i := range req.Flood {
				fmt.Fprintf(os.Stderr, "flood line %d\n", i)
			}
			out.WriteString("{}\n")
		case req.Spawn:
			exe, _ := os.Executable()
			cmd := exec.Command(exe, "sleep")
			cmd.Env = os.Environ()
			if err := cmd.Start(); err != nil {
				fmt.Fprintf(out, "{\"error\":%q}\n", err.Error())
			} else {
				fmt.Fprintf(out, "{\"grandchild\":%d}\n", cmd.Process.Pid)
			}
		case req.Deaf:
			time.Sleep(time.Hour) // reads no more requests, answers nothing
		case req.Twice:
			fmt.Fprintf(out, "{\"pid\":%d,\"echo\":%s}\n{\"extra\":true}\n", os.Getpid(), bytes.TrimSpace(line))
		case req.Burn:
			x := 0
			for {
				x++
			}
		default:
			fmt.Fprintf(out, "{\"pid\":%d,\"echo\":%s}\n", os.Getpid(), bytes.TrimSpace(line))
		}
		out.Flush()
	}
}

// testConfig is an Exec config that runs the test binary as the program
// mode, with short limits and backoff, logging into log (may be nil).
func testConfig(t testing.TB, log *slog.Logger, mode ...string) ExecConfig {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultExecConfig("test-hook", append([]string{exe}, mode...)...)
	cfg.Env = append(BaseEnv(), childEnv+"=1")
	cfg.Limits.Timeout = 5 * time.Second
	// A Go program reserves about 1.5 GiB of address space (VmSize of
	// this test binary), so the default 1 GiB fails it now and then.
	cfg.Limits.MemoryBytes = 4 << 30
	cfg.MinBackoff = 10 * time.Millisecond
	cfg.MaxBackoff = 100 * time.Millisecond
	cfg.Logger = log
	if log == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

// logBuffer collects log records as text, safely for concurrent writers.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// eventually waits until cond holds, failing the test after d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// gone reports whether pid no longer runs (it may be a zombie nobody
// reaps: in a container, pid 1 may not).
func gone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// callJSON calls e with req and decodes the answer into a map.
func callJSON(ctx context.Context, e *Exec, req string) (map[string]any, error) {
	out, err := e.Call(ctx, []byte(req))
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		return nil, fmt.Errorf("answer %q: %v", out, err)
	}
	return m, nil
}
