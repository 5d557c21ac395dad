package lockfile

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ErrInUse is what an *InUseError is: another process holds the lock.
var ErrInUse = errors.New("in use by another process")

// InUseError says that another process holds a lock, and which one. Its
// message names no path: callers say what is in use, as in
// fmt.Errorf("database %s is %w", path, err).
type InUseError struct {
	// PID is the holder's process ID; 0 when it is not known (the holder
	// has not recorded it yet, or the lock is not a lock file's).
	PID int
}

func (e *InUseError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%v (pid %d)", ErrInUse, e.PID)
	}
	return ErrInUse.Error()
}

// Is makes errors.Is(err, ErrInUse) true.
func (e *InUseError) Is(target error) bool { return target == ErrInUse }

// retryEvery is how often Acquire tries again while it waits.
const retryEvery = 20 * time.Millisecond

// errLocked is tryLock's answer when another holds the lock.
var errLocked = errors.New("locked")

// Lock is a held lock; Release gives it up.
type Lock struct {
	f    *os.File
	once sync.Once
	err  error
}

// Acquire takes the lock of the file at path, creating it if needed, and
// records this process's ID in it. If another process holds the lock,
// Acquire tries again until wait has passed (0: once), then returns an
// *InUseError with the holder's ID.
func Acquire(path string, wait time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lockfile: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := tryLock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errLocked) {
			f.Close()
			return nil, fmt.Errorf("lockfile: locking %s: %w", path, err)
		}
		left := time.Until(deadline)
		if left <= 0 {
			pid := readPID(f)
			f.Close()
			return nil, &InUseError{PID: pid}
		}
		time.Sleep(min(left, retryEvery))
	}
	if err := writePID(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("lockfile: recording the holder in %s: %w", path, err)
	}
	return &Lock{f: f}, nil
}

// Release gives the lock up. It is safe to call more than once.
func (l *Lock) Release() error {
	l.once.Do(func() {
		// Forget the holder first, while still holding the lock: a process
		// that finds the lock taken by the next holder, before that one
		// records itself, then names no process rather than this one.
		l.f.Truncate(0)
		l.err = l.f.Close()
	})
	return l.err
}

func writePID(f *os.File) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return err
}

// readPID reads the holder's ID from a lock file; 0 if there is none.
func readPID(f *os.File) int {
	buf := make([]byte, 24)
	n, _ := f.ReadAt(buf, 0)
	pid, err := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}
