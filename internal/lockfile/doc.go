// Package lockfile keeps a file or a directory to one process at a time.
//
// A lock is an advisory lock (flock) on a lock file that records the
// holder's process ID. A process that finds the lock taken is told at once
// (or after a short wait it chooses) with an *InUseError naming the
// holder, instead of waiting for the lock as bbolt does by default. The
// kernel releases the lock when its holder exits, however it exits, so a
// crash leaves nothing to clean up; the lock file itself stays behind, as
// removing it would let two processes lock two files of one name.
//
// OpenBolt opens a bbolt database under such a lock (path + ".lock").
//
// # Platforms
//
// Locks are flock(2) locks on Linux, the BSDs and macOS. Elsewhere Acquire
// takes no lock; a bbolt database is then still kept to one process by
// bbolt's own lock, reported as an InUseError without a process ID.
package lockfile
