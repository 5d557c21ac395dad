package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that tests leave no goroutines behind. CometBFT v0.38
// itself leaves a few running after a node stops (its ABCI client watcher,
// WAL file routines, goleveldb's pool drain and RPC keep-alive
// connections); those, and only those, are ignored.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/syndtr/goleveldb/leveldb.(*DB).mpoolDrain"),
		goleak.IgnoreAnyFunction("github.com/cometbft/cometbft/proxy.(*multiAppConn).killTMOnClientError"),
		goleak.IgnoreAnyFunction("github.com/cometbft/cometbft/libs/autofile.OpenAutoFile.func1"),
		goleak.IgnoreAnyFunction("github.com/cometbft/cometbft/libs/autofile.(*AutoFile).closeFileRoutine"),
		goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
		// CometBFT's websocket client meters with go-metrics, whose arbiter is
		// a process-wide goroutine started once and never stopped.
		goleak.IgnoreAnyFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"),
	)
}

// cli runs the command tree in-process with a fake environment.
type cli struct {
	t       *testing.T
	environ map[string]string
	stdin   string
}

type result struct {
	code           int
	stdout, stderr string
}

func newCLI(t *testing.T) *cli {
	return &cli{t: t, environ: map[string]string{}}
}

func (c *cli) run(args ...string) result {
	c.t.Helper()
	var out, errb bytes.Buffer
	e := env{
		stdin:    strings.NewReader(c.stdin),
		stdout:   &out,
		stderr:   &errb,
		getenv:   func(k string) string { return c.environ[k] },
		userHome: func() (string, error) { return "", errors.New("no home in tests") },
	}
	code := run(context.Background(), args, e)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != 0 {
		c.t.Fatalf("%v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r
}

func (c *cli) fail(code int, args ...string) result {
	c.t.Helper()
	r := c.run(args...)
	if r.code != code {
		c.t.Fatalf("%v: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, code, r.stdout, r.stderr)
	}
	if !strings.HasPrefix(r.stderr, "error: ") {
		c.t.Fatalf("%v: no error message on stderr: %q", args, r.stderr)
	}
	return r
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func decode[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, s)
	}
	return v
}
