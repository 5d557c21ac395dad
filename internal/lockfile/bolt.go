package lockfile

import (
	"errors"
	"os"
	"time"

	bolt "go.etcd.io/bbolt"
)

// OpenBolt opens the bbolt database at path for this process alone. It
// takes the lock path+".lock" first, then opens the database with opts,
// waiting at most wait for each (opts.Timeout is set to wait: bbolt would
// otherwise wait for its own lock forever). Another process holding
// either is an *InUseError; only the lock file names the process. Release
// the lock after closing the database.
func OpenBolt(path string, mode os.FileMode, opts bolt.Options, wait time.Duration) (*bolt.DB, *Lock, error) {
	lock, err := Acquire(path+".lock", wait)
	if err != nil {
		return nil, nil, err
	}
	opts.Timeout = wait
	if opts.Timeout <= 0 {
		opts.Timeout = time.Millisecond // bbolt's 0 is forever
	}
	db, err := bolt.Open(path, mode, &opts)
	if err != nil {
		lock.Release()
		if errors.Is(err, bolt.ErrTimeout) {
			return nil, nil, &InUseError{}
		}
		return nil, nil, err
	}
	return db, lock, nil
}
