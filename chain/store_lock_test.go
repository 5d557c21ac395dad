package chain

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A database another process has open is refused at once with ErrInUse
// naming that process, instead of waiting for its lock forever (#20 bug
// 1: a second "chain run" on a home hung, printing nothing). Once the
// holder is gone, even killed, the database opens.
func TestOpenDBHeldByAnotherProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a process")
	}
	path := filepath.Join(t.TempDir(), "chain.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	kill := func() {
		if !killed {
			killed = true
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
		}
	}
	defer kill()
	// The child holds the database once it reports a commit.
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || !strings.HasPrefix(sc.Text(), "committed ") {
		t.Fatalf("child said %q", sc.Text())
	}
	go func() { // keep the child's output flowing
		for sc.Scan() {
		}
	}()

	done := make(chan error, 1)
	start := time.Now()
	go func() {
		db, err := OpenDB(path, testGenesis(propertyKeys()...), stakeEpoch)
		if err == nil {
			db.Close()
		}
		done <- err
	}()
	select {
	case err = <-done:
	case <-time.After(15 * time.Second):
		kill() // lets the waiting open finish
		<-done
		t.Fatal("OpenDB still waited for another process's lock after 15 s")
	}
	took := time.Since(start)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), fmt.Sprintf("in use by another process (pid %d)", cmd.Process.Pid)) || !strings.Contains(err.Error(), path) {
		t.Fatalf("opening a held database: %v", err)
	}
	if took > 5*time.Second {
		t.Fatalf("refused only after %v", took)
	}
	kill()
	db, err := OpenDB(path, testGenesis(propertyKeys()...), stakeEpoch)
	if err != nil {
		t.Fatalf("opening after the holder died: %v", err)
	}
	db.Close()
}
