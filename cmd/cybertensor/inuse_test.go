package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/knowledge"
)

// runBounded runs the command line in the background and returns its
// result, or fails t if it has not finished within d; unblock is called
// then, to let a command stuck on a lock finish before t fails.
func runBounded(t *testing.T, c *cli, d time.Duration, unblock func(), args ...string) result {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, args, env{
			stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
			getenv: func(k string) string { return c.environ[k] }, userHome: func() (string, error) { return "", errors.New("none") },
		}, nil)
	}()
	select {
	case code := <-done:
		return result{code: code, stdout: out.String(), stderr: errb.String()}
	case <-time.After(d):
		unblock()
		cancel()
		<-done
		t.Fatalf("%v still running after %v; it said: %q %q", args, d, out.String(), errb.String())
		return result{}
	}
}

// A second "chain run" on a node home another process runs is refused at
// once, with one line naming the home and the process, and exit status 1
// (#20 bug 1: it waited on the database lock forever, printing nothing
// and ignoring Ctrl-C).
func TestChainRunOnAHomeInUse(t *testing.T) {
	c := newCLI(t)
	dir := chaintest.RemovableDir(t)
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	nodeHome := filepath.Join(dir, "node")
	c.ok("--home", home, "chain", "init", "--node-home", nodeHome,
		"--rpc", fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), "--p2p", fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)))
	// The running node: its application database held open, as by a
	// "chain run" (here this process holds it).
	_, gen, err := abci.ReadGenesis(nodeHome)
	if err != nil {
		t.Fatal(err)
	}
	db, err := chain.OpenDB(filepath.Join(nodeHome, "data", "cybertensor.db"), gen, chain.NewYumaEpoch())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	start := time.Now()
	r := runBounded(t, c, 15*time.Second, func() { db.Close() }, "--home", home, "chain", "run", "--node-home", nodeHome)
	want := fmt.Sprintf("error: chain home %s is in use by another process (pid %d)\n", nodeHome, os.Getpid())
	if r.code != exitFailure || r.stderr != want || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want exit 1 and %q", r.code, r.stdout, r.stderr, want)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("refused after %v", took)
	}
}

// Knowledge commands on a library another process holds say so, naming
// the process, and exit 1 (#20 bug 1).
func TestKnowledgeLibraryInUse(t *testing.T) {
	c := newCLI(t)
	home := t.TempDir()
	lib, err := knowledge.Open(knowledge.DefaultTestConfig(filepath.Join(home, "knowledge")))
	if err != nil {
		t.Fatal(err)
	}
	defer lib.Close()
	r := runBounded(t, c, 15*time.Second, func() { lib.Close() }, "--home", home, "knowledge", "ls")
	want := fmt.Sprintf("in use by another process (pid %d)", os.Getpid())
	if r.code != exitFailure || !strings.Contains(r.stderr, want) || !strings.Contains(r.stderr, filepath.Join(home, "knowledge")) {
		t.Fatalf("exit %d, stderr %q; want exit 1 and %q", r.code, r.stderr, want)
	}
}
