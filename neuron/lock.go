package neuron

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// LockFile is the file a running neuron locks in each directory it keeps
// state in (HostConfig.DataDir, KnowledgeDir, StateDir): a second neuron
// on the same state, e.g. a second "miner run" for a running hotkey, is
// refused before it binds a port or touches the chain.
const LockFile = "neuron.lock"

// ErrInUse is returned (wrapped, naming the directory and the process) by
// StartMiner and StartValidator when another process runs a neuron on
// the same state directory or holds its knowledge library.
var ErrInUse = lockfile.ErrInUse

// lockDirs takes the neuron lock of each directory given (empty ones
// skipped, each once), creating them; release gives them all up.
func lockDirs(dirs ...string) (release func(), err error) {
	var locks []*lockfile.Lock
	release = func() {
		for _, l := range locks {
			l.Release()
		}
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		if dir == "" || seen[filepath.Clean(dir)] {
			continue
		}
		seen[filepath.Clean(dir)] = true
		if err := os.MkdirAll(dir, 0o700); err != nil {
			release()
			return nil, fmt.Errorf("neuron: state directory: %w", err)
		}
		l, err := lockfile.Acquire(filepath.Join(dir, LockFile), 0)
		if errors.Is(err, ErrInUse) {
			release()
			return nil, fmt.Errorf("neuron: state directory %s is %w", dir, err)
		}
		if err != nil {
			release()
			return nil, fmt.Errorf("neuron: locking %s: %w", dir, err)
		}
		locks = append(locks, l)
	}
	return release, nil
}
