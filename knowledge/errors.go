package knowledge

import (
	"errors"

	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// Errors of the library. Each is wrapped with what was being done; check
// them with errors.Is.
var (
	// ErrBadCID: a CID the library cannot address (not a CID, an
	// unsupported version, codec or hash function).
	ErrBadCID = errors.New("knowledge: invalid CID")
	// ErrTooLarge: a body, block, object or message over its limit.
	ErrTooLarge = errors.New("knowledge: over the size limit")
	// ErrStoreFull: the store cannot take more bytes even after removing
	// every unpinned object.
	ErrStoreFull = errors.New("knowledge: store full")
	// ErrNotFound: not in the local store (and, when fetching, at no
	// provider).
	ErrNotFound = errors.New("knowledge: not found")
	// ErrBadObject: an object envelope or header that does not decode,
	// breaks a limit or whose signature does not verify.
	ErrBadObject = errors.New("knowledge: invalid object")
	// ErrBadBlock: a block that does not hash to its CID or does not decode
	// as UnixFS.
	ErrBadBlock = errors.New("knowledge: invalid block")
	// ErrBadMessage: a transfer or announcement message that does not
	// decode or breaks a limit.
	ErrBadMessage = errors.New("knowledge: invalid message")
	// ErrNoKey: publishing needs the hotkey (Config.Key).
	ErrNoKey = errors.New("knowledge: no hotkey to sign with")
	// ErrOffline: fetching or sharing needs a host and routing.
	ErrOffline = errors.New("knowledge: no network")
	// ErrNotShared: the object is stored and pinned, but providing it on
	// the DHT or announcing it failed.
	ErrNotShared = errors.New("knowledge: stored but not shared")
	// ErrOutOfRange: a range read past the end of a body.
	ErrOutOfRange = errors.New("knowledge: range past the end of the body")
	// ErrClosed: the library is closed.
	ErrClosed = errors.New("knowledge: closed")
	// ErrInUse: another process has the library open (Open waits at most
	// Config.OpenTimeout); the error names the process when it can
	// (lockfile.InUseError).
	ErrInUse = lockfile.ErrInUse
)
