package knowledge

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
)

// endless is a body that never ends: pseudo-random bytes (so no two
// chunks dedupe), counting what was read.
type endless struct {
	rng  *rand.ChaCha8
	read atomic.Int64
}

func (e *endless) Read(p []byte) (int, error) {
	n, _ := e.rng.Read(p)
	e.read.Add(int64(n))
	return n, nil
}

// A publish cancelled mid-way returns at once with the context's error,
// and leaves the store as it was: no root, no block, no bytes counted.
func TestPublishCancelled(t *testing.T) {
	l := openTest(t, t.TempDir(), 1)
	publish(t, l, []byte("kept"), Meta{Title: "kept"}) // a root the cancel must not touch
	before := snapshot(t, l)
	usedBefore, _ := l.Usage()

	body := &endless{rng: rand.NewChaCha8([32]byte{1})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := l.Publish(ctx, body, Meta{Title: "endless"})
		done <- err
	}()
	// Cancel once more than a flush (so some blocks are committed) is read.
	waitFor(t, "the publish to read past a flush", 60*time.Second, func() bool { return body.read.Load() > flushBytes+8<<20 })
	cancel()
	cancelled := time.Now()
	select {
	case err := <-done:
		if took := time.Since(cancelled); took > time.Second {
			t.Fatalf("Publish returned %v after the cancel", took)
		}
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("cancelled publish: %v, want context.Canceled", err)
		}
	case <-time.After(time.Second):
		t.Fatalf("Publish still running 1s after the cancel (%d MiB read)", body.read.Load()>>20)
	}
	if got := snapshot(t, l); got != before {
		t.Fatalf("a cancelled publish changed the store: %s, was %s", got, before)
	}
	if _, err := l.GC(); err != nil {
		t.Fatal(err)
	}
	if used, _ := l.Usage(); used != usedBefore {
		t.Fatalf("after gc %d bytes used, %d before the publish", used, usedBefore)
	}
}

// A file over the limit is refused before a byte of it is read: a sparse
// file one byte over MaxObjectSize is refused at once, its offset at 0.
func TestPublishOverLimitFileNotRead(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, filepath.Join(dir, "lib"), 1)
	before := snapshot(t, l)
	path := filepath.Join(dir, "huge")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Truncate(path, l.cfg.MaxObjectSize+1); err != nil {
		t.Fatal(err)
	}
	_, err = l.Publish(context.Background(), f, Meta{Title: "huge"})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("over-limit file: %v, want ErrTooLarge", err)
	}
	if off, _ := f.Seek(0, io.SeekCurrent); off != 0 {
		t.Fatalf("the over-limit file was read: offset %d", off)
	}
	if got := snapshot(t, l); got != before {
		t.Fatalf("store changed: %s, was %s", got, before)
	}
	// A file of exactly the limit is not refused by its size.
	if err := os.Truncate(path, 3*ChunkSize); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Publish(context.Background(), f, Meta{Title: "fits"}); err != nil {
		t.Fatalf("a file within the limit: %v", err)
	}
}

// A body of unknown size is refused as soon as it passes the limit, not
// read to its end.
func TestPublishOverLimitStreamStopsAtLimit(t *testing.T) {
	l := openTest(t, t.TempDir(), 1, func(c *Config) { c.MaxObjectSize = 4 << 20 })
	before := snapshot(t, l)
	body := &endless{rng: rand.NewChaCha8([32]byte{2})}
	_, err := l.Publish(context.Background(), body, Meta{Title: "stream"})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("endless body: %v, want ErrTooLarge", err)
	}
	if n := body.read.Load(); n > l.cfg.MaxObjectSize+ChunkSize {
		t.Fatalf("read %d bytes of a body limited to %d", n, l.cfg.MaxObjectSize)
	}
	if got := snapshot(t, l); got != before {
		t.Fatalf("store changed: %s, was %s", got, before)
	}
}

// Blocks an unfinished publish left behind (the process died between two
// flushes) belong to no root: gc removes them all.
func TestGCCollectsBlocksOfUnfinishedPublish(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, dir, 1)
	publish(t, l, goRandom(2*ChunkSize, 3), Meta{Title: "kept"})
	usedBefore, _ := l.Usage()
	// What a crash leaves: blocks flushed, no root, no abort.
	im := l.store.newImport(context.Background())
	if _, _, err := importBody(context.Background(), &io.LimitedReader{R: &endless{rng: rand.NewChaCha8([32]byte{3})}, N: 8 << 20}, l.cfg.MaxObjectSize, im.put); err != nil {
		t.Fatal(err)
	}
	if err := im.flush(); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = openTest(t, dir, 1)
	if used, _ := l.Usage(); used < usedBefore+8<<20 {
		t.Fatalf("setup: %d bytes used, want the 8 MiB left behind over %d", used, usedBefore)
	}
	st, err := l.GC()
	if err != nil {
		t.Fatal(err)
	}
	if used, _ := l.Usage(); used != usedBefore || st.Bytes < 8<<20 || st.Roots != 0 {
		t.Fatalf("gc %+v left %d bytes used, want %d", st, used, usedBefore)
	}
}

// A local object's body is held by its own CID too: Holds says so, and
// Fetch has nothing to do for it, even offline.
func TestHoldsBodyOfLocalObject(t *testing.T) {
	l := openTest(t, t.TempDir(), 1)
	o := publish(t, l, goRandom(3*ChunkSize, 4), Meta{Title: "three chunks"})
	for _, c := range []cid.Cid{o.CID, o.Body} {
		if !l.Holds(c) {
			t.Fatalf("Holds(%s) = false", c)
		}
		if err := l.Fetch(context.Background(), c); err != nil {
			t.Fatalf("Fetch(%s) of what is held: %v", c, err)
		}
	}
	missing := sumCID(cid.Raw, []byte("held nowhere"))
	if l.Holds(missing) {
		t.Fatal("Holds a CID never stored")
	}
	if err := l.Fetch(context.Background(), missing); !errors.Is(err, ErrOffline) {
		t.Fatalf("Fetch of a CID held nowhere, offline: %v", err)
	}
}
