package lockfile

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"
)

const childEnv = "CYBERTENSOR_LOCKFILE_CHILD"

// TestMain doubles as a child process that holds the lock named by
// childEnv, says "locked", and holds it until its stdin closes.
func TestMain(m *testing.M) {
	if path := os.Getenv(childEnv); path != "" {
		l, err := Acquire(path, 0)
		if err != nil {
			fmt.Println("error", err)
			os.Exit(3)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		l.Release()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// Another process's lock is refused at once with its process ID; once
// that process is killed the lock is free.
func TestLockHeldByAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+path)
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
	defer func() {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
	}()
	if sc := bufio.NewScanner(stdout); !sc.Scan() || sc.Text() != "locked" {
		t.Fatalf("child said %q", sc.Text())
	}
	start := time.Now()
	_, err = Acquire(path, 0)
	var inUse *InUseError
	if !errors.As(err, &inUse) || !errors.Is(err, ErrInUse) || inUse.PID != cmd.Process.Pid {
		t.Fatalf("acquiring a lock process %d holds: %v", cmd.Process.Pid, err)
	}
	if want := fmt.Sprintf("in use by another process (pid %d)", cmd.Process.Pid); err.Error() != want {
		t.Fatalf("message %q, want %q", err, want)
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("refused after %v", took)
	}
	// Killed, it holds nothing.
	cmd.Process.Kill()
	cmd.Wait()
	l, err := Acquire(path, 0)
	if err != nil {
		t.Fatalf("after the holder died: %v", err)
	}
	l.Release()
}

// Within one process each Acquire is a holder of its own; Release frees
// the lock and is idempotent.
func TestLockInProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	l, err := Acquire(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var inUse *InUseError
	if _, err := Acquire(path, 50*time.Millisecond); !errors.As(err, &inUse) || inUse.PID != os.Getpid() {
		t.Fatalf("second acquire: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	l.Release()
	l2, err := Acquire(path, 0)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	l2.Release()
}

// OpenBolt refuses a database open elsewhere: through the lock file, with
// the holder's ID; without it (bbolt's own lock, held by a process that
// does not use OpenBolt), within the wait and without an ID.
func TestOpenBoltInUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.db")
	db, lock, err := OpenBolt(path, 0o600, bolt.Options{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var inUse *InUseError
	if _, _, err := OpenBolt(path, 0o600, bolt.Options{}, 100*time.Millisecond); !errors.As(err, &inUse) || inUse.PID != os.Getpid() {
		t.Fatalf("second OpenBolt: %v", err)
	}
	db.Close()
	lock.Release()

	raw, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	start := time.Now()
	if _, _, err := OpenBolt(path, 0o600, bolt.Options{}, 100*time.Millisecond); !errors.As(err, &inUse) || inUse.PID != 0 {
		t.Fatalf("OpenBolt of a database bbolt holds: %v", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("refused after %v", took)
	}
	// The failed open left the lock file free.
	l, err := Acquire(path+".lock", 0)
	if err != nil {
		t.Fatal(err)
	}
	l.Release()
}
