package main

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// runCtx runs the command tree in-process under ctx, as main does under
// the context that SIGINT cancels.
func runCtx(ctx context.Context, args ...string) result {
	var out, errb bytes.Buffer
	e := env{
		stdin: strings.NewReader(""), stdout: &out, stderr: &errb,
		getenv:   func(string) string { return "" },
		userHome: func() (string, error) { return "", errors.New("no home in tests") },
	}
	code := run(ctx, args, e)
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// feedFIFO writes pseudo-random bytes into the named pipe path, at most
// limit bytes, stalling (pipe kept open) once stall bytes are written if
// stall > 0, until stop is closed; written counts them.
func feedFIFO(t *testing.T, path string, limit, stall int64, written *atomic.Int64, stop <-chan struct{}) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		rng := rand.NewChaCha8([32]byte{9})
		buf := make([]byte, 1<<20)
		for written.Load() < limit {
			if stall > 0 && written.Load() >= stall {
				<-stop
				return
			}
			rng.Read(buf)
			n, err := f.Write(buf)
			written.Add(int64(n))
			if err != nil { // the reader is gone
				return
			}
		}
	}()
	return done
}

// Ctrl-C (the context main cancels on SIGINT) stops "knowledge publish"
// within a second, exit 1, and stores nothing: a body still streaming in,
// and a pipe that stalls with no data.
func TestKnowledgePublishInterrupted(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	for _, tc := range []struct {
		name  string
		stall int64
	}{{"streaming", 0}, {"stalled", 1 << 20}} {
		t.Run(tc.name, func(t *testing.T) {
			fifo := filepath.Join(dir, tc.name)
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("no named pipes: %v", err)
			}
			var written atomic.Int64
			stop := make(chan struct{})
			fed := feedFIFO(t, fifo, 300<<20, tc.stall, &written, stop)
			defer func() { close(stop); <-fed }()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			res := make(chan result, 1)
			go func() { res <- runCtx(ctx, "--home", home, "knowledge", "publish", fifo, "--password-file", pw) }()
			want := int64(32 << 20)
			if tc.stall > 0 {
				want = tc.stall
			}
			deadline := time.Now().Add(60 * time.Second)
			for written.Load() < want {
				if time.Now().After(deadline) {
					t.Fatalf("only %d bytes written into the pipe", written.Load())
				}
				select {
				case r := <-res:
					t.Fatalf("publish ended before the interrupt: %+v", r)
				case <-time.After(10 * time.Millisecond):
				}
			}
			cancel()
			at := time.Now()
			select {
			case r := <-res:
				t.Logf("returned %v after the interrupt, %d MiB fed: %s", time.Since(at), written.Load()>>20, strings.TrimSpace(r.stderr))
				if took := time.Since(at); took > time.Second {
					t.Errorf("publish returned %v after the interrupt", took)
				}
				if r.code != 1 || !strings.Contains(r.stderr, "publish interrupted (context canceled); nothing was stored") {
					t.Errorf("interrupted publish: exit %d, stderr %q", r.code, r.stderr)
				}
			case <-time.After(time.Second):
				t.Fatalf("publish still running 1s after the interrupt (%d MiB fed)", written.Load()>>20)
			}
		})
	}
	ls := c.ok("--home", home, "knowledge", "ls").stdout
	if !strings.Contains(ls, "0 entries, 0.0 of") {
		t.Fatalf("after interrupted publishes: %s", ls)
	}
}

// An over-limit file is refused at once, before the password prompt, and
// the limit is in --help; stdin ("-") publishes.
func TestKnowledgePublishLimitAndStdin(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	huge := filepath.Join(dir, "huge.bin")
	if err := os.WriteFile(huge, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(huge, defaultMaxObjectSize+1); err != nil { // sparse: nothing to read
		t.Fatal(err)
	}
	r := c.fail(2, "--home", home, "knowledge", "publish", huge)
	if !strings.Contains(r.stderr, "over the 256 MiB limit") {
		t.Fatalf("over-limit file: %s", r.stderr)
	}
	if help := c.ok("knowledge", "publish", "--help").stdout; !strings.Contains(help, "at most 256 MiB") || !strings.Contains(help, "knowledge gc") {
		t.Fatalf("publish --help does not state the limit and gc:\n%s", help)
	}
	c.stdin = "from stdin\n"
	o := decode[objectJSON](t, c.ok("--home", home, "knowledge", "publish", "-", "--title", "piped", "--password-file", pw, "--json").stdout)
	if got := c.ok("--home", home, "knowledge", "get", o.CID).stdout; got != "from stdin\n" || o.Title != "piped" {
		t.Fatalf("stdin object %+v holds %q", o, got)
	}
}

// "knowledge get" takes an object's CID or its body's, and says clearly
// when a CID is held nowhere (#20 bug 6).
func TestKnowledgeGetBodyCID(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	file := writeFile(t, dir, "doc.txt", strings.Repeat("body by its own CID\n", 30_000)) // several chunks
	o := decode[objectJSON](t, c.ok("--home", home, "knowledge", "publish", file, "--password-file", pw, "--json").stdout)
	want, _ := os.ReadFile(file)
	for _, id := range []string{o.CID, o.Body} {
		if got := c.ok("--home", home, "knowledge", "get", id).stdout; got != string(want) {
			t.Fatalf("get %s: %d bytes, want %d", id, len(got), len(want))
		}
	}
	// A body held nowhere: the library is offline without --peer.
	other := writeFile(t, dir, "other.txt", "never published")
	home2 := filepath.Join(dir, "home2")
	c.ok("--home", home2, "wallet", "new", "--name", "default", "--password-file", pw)
	o2 := decode[objectJSON](t, c.ok("--home", home2, "knowledge", "publish", other, "--password-file", pw, "--json").stdout)
	for _, id := range []string{o2.CID, o2.Body} {
		r := c.fail(1, "--home", home, "knowledge", "get", id)
		if !strings.Contains(r.stderr, id+" is not in the library; give --peer to fetch it from the swarm") {
			t.Fatalf("get %s held nowhere: %s", id, r.stderr)
		}
	}
}
