package hook

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestSandboxArgv(t *testing.T) {
	defer func(p string) { prlimitPath = p }(prlimitPath)
	prlimitPath = "/usr/bin/prlimit"
	cases := []struct {
		limits  Limits
		prlimit string
		want    []string
	}{
		{Limits{}, "/usr/bin/prlimit", []string{"/bin/prog", "a b", "$HOME"}},
		{Limits{CPUSeconds: 5}, "/usr/bin/prlimit", []string{"/usr/bin/prlimit", "--core=0", "--cpu=5:6", "--", "/bin/prog", "a b", "$HOME"}},
		{Limits{MemoryBytes: 1 << 30}, "/usr/bin/prlimit", []string{"/usr/bin/prlimit", "--core=0", "--as=1073741824", "--", "/bin/prog", "a b", "$HOME"}},
		{Limits{CPUSeconds: 5, MemoryBytes: 1 << 30}, "", []string{"/bin/sh", "-c",
			`ulimit -c 0 && ulimit -t 5 && ulimit -v 1048576 && exec "$0" "$@"`, "/bin/prog", "a b", "$HOME"}},
		{Limits{MemoryBytes: 1<<20 + 1000}, "", []string{"/bin/sh", "-c",
			`ulimit -c 0 && ulimit -v 1024 && exec "$0" "$@"`, "/bin/prog", "a b", "$HOME"}},
	}
	for i, c := range cases {
		prlimitPath = c.prlimit
		if got := sandboxArgv(c.limits, "/bin/prog", []string{"a b", "$HOME"}); !reflect.DeepEqual(got, c.want) {
			t.Errorf("case %d: %q, want %q", i, got, c.want)
		}
	}
}

// launchers runs f with each way of setting the limits.
func launchers(t *testing.T, f func(t *testing.T)) {
	if prlimitPath == "" {
		t.Log("prlimit(1) is not installed: testing the /bin/sh launcher only")
	} else {
		t.Run("prlimit", f)
	}
	t.Run("sh", func(t *testing.T) {
		defer func(p string) { prlimitPath = p }(prlimitPath)
		prlimitPath = ""
		f(t)
	})
}

func TestLimitsAreSetInTheChild(t *testing.T) {
	launchers(t, func(t *testing.T) {
		cfg := testConfig(t, nil, "limits")
		cfg.Limits.CPUSeconds = 7
		cfg.Limits.MemoryBytes = 3 << 30
		lines, err := Run(context.Background(), cfg, nil, 1)
		if err != nil || len(lines) != 1 {
			t.Fatalf("%q %v", lines, err)
		}
		var got struct{ CPU, AS [2]uint64 }
		if err := json.Unmarshal(lines[0], &got); err != nil {
			t.Fatal(err)
		}
		if got.CPU[0] != 7 || (got.CPU[1] != 7 && got.CPU[1] != 8) {
			t.Errorf("RLIMIT_CPU %v, want soft 7", got.CPU)
		}
		if got.AS != [2]uint64{3 << 30, 3 << 30} {
			t.Errorf("RLIMIT_AS %v, want %d", got.AS, uint64(3<<30))
		}
	})
}

func TestCPULimitKills(t *testing.T) {
	launchers(t, func(t *testing.T) {
		// A shell loop: it does not handle SIGXCPU, so it dies at the soft
		// limit, one CPU second.
		cfg := shConfig(t, "while :; do :; done")
		cfg.Limits.CPUSeconds = 1
		cfg.Limits.Timeout = 2 * time.Minute // the CPU limit, not the timeout, must end it
		start := time.Now()
		_, err := Run(context.Background(), cfg, nil, 1)
		if !errors.Is(err, ErrCrashed) {
			t.Fatalf("a program burning CPU past its limit: %v", err)
		}
		if !strings.Contains(err.Error(), "CPU time limit") && !strings.Contains(err.Error(), "killed") {
			t.Fatalf("ended by %v; want SIGXCPU or SIGKILL", err)
		}
		t.Logf("killed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	})
	// A long-lived program too: the call fails, the program is restarted.
	// (With /bin/sh's ulimit, whose hard limit is the soft one, it costs
	// one CPU second, not two.)
	defer func(p string) { prlimitPath = p }(prlimitPath)
	prlimitPath = ""
	cfg := testConfig(t, nil, "serve")
	cfg.Limits.CPUSeconds = 1
	cfg.Limits.Timeout = 2 * time.Minute
	cfg.Limits.Concurrency = 1
	e := startTest(t, cfg)
	if _, err := e.Call(context.Background(), []byte(`{"burn": true}`)); !errors.Is(err, ErrCrashed) {
		t.Fatalf("a call burning CPU past the limit: %v", err)
	}
	eventually(t, 10*time.Second, "the program is restarted", func() bool {
		_, err := e.Call(context.Background(), []byte(`{}`))
		return err == nil
	})
}

func TestMemoryLimitFails(t *testing.T) {
	launchers(t, func(t *testing.T) {
		cfg := testConfig(t, nil, "alloc", "64")
		cfg.Limits.MemoryBytes = 3 << 30
		if _, err := Run(context.Background(), cfg, nil, 1); err != nil {
			t.Fatalf("64 MiB within a 3 GiB limit: %v", err)
		}
		cfg.Command[2] = "4096"
		_, err := Run(context.Background(), cfg, nil, 1)
		if !errors.Is(err, ErrCrashed) {
			t.Fatalf("4 GiB within a 3 GiB limit: %v", err)
		}
	})
}
