package hook

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// shConfig is a config that runs a /bin/sh script.
func shConfig(t *testing.T, script string) ExecConfig {
	cfg := DefaultExecConfig("tasks", "/bin/sh", "-c", script)
	cfg.Limits.Timeout = 10 * time.Second
	cfg.Logger = testConfig(t, nil).Logger
	return cfg
}

func TestRunReturnsLines(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		script   string
		stdin    string
		maxLines int
		limits   func(*Limits)
		want     []string
		err      error
	}{
		{name: "lines", script: `printf '{"a":1}\n\n  \n{"a":2}\r\n{"a":3}'`, maxLines: 10,
			want: []string{`{"a":1}`, `{"a":2}`, `{"a":3}`}},
		{name: "stdin", script: `tr a-z A-Z`, stdin: "hello\nworld\n", maxLines: 10, want: []string{"HELLO", "WORLD"}},
		{name: "nothing", script: `true`, maxLines: 1, want: nil},
		{name: "exactly max lines", script: `seq 3`, maxLines: 3, want: []string{"1", "2", "3"}},
		{name: "too many lines", script: `seq 4`, maxLines: 3, err: ErrTooLarge},
		{name: "too many bytes", script: `seq 1000`, maxLines: 10000, limits: func(l *Limits) { l.MaxOutput = 100 }, err: ErrTooLarge},
		{name: "one long line", script: `head -c 5000 /dev/zero | tr '\0' x`, maxLines: 10, limits: func(l *Limits) { l.MaxOutput = 4096 }, err: ErrTooLarge},
		{name: "endless", script: `yes '{"a":1}'`, maxLines: 1 << 20, err: ErrTooLarge},
		{name: "exit status", script: `echo '{"a":1}'; exit 3`, maxLines: 10, err: ErrCrashed},
		{name: "timeout", script: `echo '{"a":1}'; sleep 60`, maxLines: 10, limits: func(l *Limits) { l.Timeout = 300 * time.Millisecond }, err: ErrTimeout},
		{name: "closes stdout, runs on", script: `exec >&-; sleep 60`, maxLines: 10, limits: func(l *Limits) { l.Timeout = 300 * time.Millisecond }, err: ErrTimeout},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := shConfig(t, c.script)
			if c.limits != nil {
				c.limits(&cfg.Limits)
			}
			start := time.Now()
			lines, err := Run(ctx, cfg, []byte(c.stdin), c.maxLines)
			if time.Since(start) > 30*time.Second {
				t.Fatalf("took %v", time.Since(start))
			}
			if c.err != nil {
				if !errors.Is(err, c.err) || !strings.Contains(err.Error(), "hook tasks") || lines != nil {
					t.Fatalf("%q, %v; want no lines and %v", lines, err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range lines {
				got = append(got, string(l))
			}
			if fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Fatalf("lines %q, want %q", got, c.want)
			}
		})
	}
}

func TestRunRefusesBadArguments(t *testing.T) {
	if _, err := Run(context.Background(), shConfig(t, "true"), nil, 0); err == nil {
		t.Fatal("max lines 0 accepted")
	}
	cfg := DefaultExecConfig("tasks", "./tasks.py")
	cfg.Dir = t.TempDir()
	if _, err := Run(context.Background(), cfg, nil, 10); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("missing program: %v", err)
	}
}

func TestRunLeavesNoOrphans(t *testing.T) {
	// The program leaves a background process behind and exits at once.
	cfg := testConfig(t, nil, "serve")
	lines, err := Run(context.Background(), cfg, []byte(`{"spawn": true}`+"\n"), 10)
	if err != nil || len(lines) != 1 {
		t.Fatalf("%q %v", lines, err)
	}
	var grandchild int
	if _, err := fmt.Sscanf(string(lines[0]), `{"grandchild":%d}`, &grandchild); err != nil {
		t.Fatalf("%s: %v", lines[0], err)
	}
	eventually(t, 10*time.Second, "the background process is killed", func() bool { return gone(grandchild) })
}

func TestRunHonoursTheCallersContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cfg := shConfig(t, `echo x; sleep 60`)
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, cfg, nil, 10)
		done <- err
	}()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || errors.Is(err, ErrFailed) {
			t.Fatalf("canceled run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("a canceled run did not end")
	}
	dctx, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := Run(dctx, cfg, nil, 10); !errors.Is(err, ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("run past the caller's deadline: %v", err)
	}
}

func TestRunManyLines(t *testing.T) {
	cfg := shConfig(t, `seq 100000`)
	cfg.Limits.MaxOutput = 1 << 20
	lines, err := Run(context.Background(), cfg, nil, 100000)
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != 100000 || string(lines[99999]) != strconv.Itoa(100000) {
		t.Fatalf("%d lines, last %q", len(lines), lines[len(lines)-1])
	}
}
