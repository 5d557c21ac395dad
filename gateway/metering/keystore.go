package metering

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/internal/lockfile"
)

// SecretPrefix starts every API key secret.
const SecretPrefix = "ct-"

// secretBytes is the entropy of a secret.
const secretBytes = 32

// maxSecretLen is the longest string Authenticate hashes; longer ones are
// no secret of ours.
const maxSecretLen = 256

// Errors of the key store.
var (
	// ErrUnknownKey is the error of an operation on a key ID not in the
	// store.
	ErrUnknownKey = errors.New("metering: no such key")
	// ErrBadPermissions is the error of a key file that others may read or
	// write.
	ErrBadPermissions = errors.New("metering: key file permissions too broad")
)

// KeyStoreConfig configures a KeyStore.
type KeyStoreConfig struct {
	// Create makes a missing file an empty store (written on the first
	// change) instead of an error.
	Create bool
	// ReloadEvery is how often Authenticate and Limits look at the file
	// for changes made by another process (keys added or revoked by
	// `gateway keys`); 0 never.
	ReloadEvery time.Duration
	// LockWait is how long a change waits for another process changing
	// the file.
	LockWait time.Duration
	// Now is the clock; Rand the source of secrets and IDs.
	Now    func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
}

// DefaultKeyStoreConfig checks the file for changes every second.
func DefaultKeyStoreConfig() KeyStoreConfig {
	return KeyStoreConfig{
		ReloadEvery: time.Second,     // a revoked key stops working within a second
		LockWait:    5 * time.Second, // another `gateway keys` finishing its write
		Now:         time.Now,
		Rand:        rand.Reader,
		Logger:      slog.Default(),
	}
}

func (c *KeyStoreConfig) validate() error {
	if c.ReloadEvery < 0 || c.LockWait < 0 {
		return errors.New("metering: negative ReloadEvery or LockWait")
	}
	if c.Now == nil || c.Rand == nil || c.Logger == nil {
		return errors.New("metering: KeyStoreConfig needs Now, Rand and Logger")
	}
	return nil
}

// KeyStore is the file of API keys. It implements gateway.Authenticator.
// It is safe for concurrent use; several processes may change the file
// (changes take a lock file beside it and re-read it first).
type KeyStore struct {
	path string
	cfg  KeyStoreConfig

	mu        sync.RWMutex
	keys      []Key
	stamp     os.FileInfo // of the file last read; nil if there was none
	lastCheck time.Time

	// beforeRename, in tests, runs between writing the temporary file
	// and renaming it; an error stops the write there (a crash).
	beforeRename func(tmp string) error
}

var _ gateway.Authenticator = (*KeyStore)(nil)

// OpenKeyStore reads the key file at path.
func OpenKeyStore(path string, cfg KeyStoreConfig) (*KeyStore, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &KeyStore{path: path, cfg: cfg}
	keys, stamp, err := s.read()
	if err != nil {
		return nil, err
	}
	s.keys, s.stamp, s.lastCheck = keys, stamp, cfg.Now()
	return s, nil
}

// Path is the key file's path.
func (s *KeyStore) Path() string { return s.path }

// read reads and decodes the file, checking its permissions.
func (s *KeyStore) read() ([]Key, os.FileInfo, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) && s.cfg.Create {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("opening key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("key file %s: %w", s.path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("key file %s: not a regular file", s.path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, nil, fmt.Errorf("%w: %s has mode %04o; it must be readable by its owner only (chmod 600 %s)",
			ErrBadPermissions, s.path, perm, s.path)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxKeyFileSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading key file %s: %w", s.path, err)
	}
	keys, err := DecodeKeyFile(b)
	if err != nil {
		return nil, nil, fmt.Errorf("key file %s: %w", s.path, err)
	}
	return keys, fi, nil
}

// Reload reads the file again if it changed since it was last read. On an
// error the keys read before stay in use.
func (s *KeyStore) Reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reloadLocked()
}

func (s *KeyStore) reloadLocked() error {
	s.lastCheck = s.cfg.Now()
	fi, err := os.Stat(s.path)
	switch {
	case errors.Is(err, fs.ErrNotExist) && s.stamp == nil:
		return nil
	case err == nil && s.stamp != nil && os.SameFile(fi, s.stamp) && fi.ModTime().Equal(s.stamp.ModTime()) &&
		fi.Size() == s.stamp.Size() && fi.Mode() == s.stamp.Mode():
		return nil // unchanged (writes replace the file, so it is a new inode)
	}
	keys, stamp, err := s.read()
	if err != nil {
		return err
	}
	s.keys, s.stamp = keys, stamp
	return nil
}

// maybeReload reloads when ReloadEvery has passed since the last look.
func (s *KeyStore) maybeReload() {
	if s.cfg.ReloadEvery <= 0 {
		return
	}
	s.mu.RLock()
	due := s.cfg.Now().Sub(s.lastCheck) >= s.cfg.ReloadEvery
	s.mu.RUnlock()
	if !due {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cfg.Now().Sub(s.lastCheck) < s.cfg.ReloadEvery {
		return // another caller just did
	}
	if err := s.reloadLocked(); err != nil {
		s.cfg.Logger.Warn("key file changed but cannot be read; keeping the keys read before", "path", s.path, "err", err)
	}
}

// Authenticate returns the ID of the unrevoked key whose secret this is.
// It hashes the secret and compares the hash with every stored hash in
// constant time, so its timing says nothing about which key, or which
// part of a secret, came close.
func (s *KeyStore) Authenticate(secret string) (string, bool) {
	if len(secret) > maxSecretLen {
		return "", false
	}
	s.maybeReload()
	h := secretHash(secret)
	s.mu.RLock()
	defer s.mu.RUnlock()
	found := -1
	for i := range s.keys {
		eq := subtle.ConstantTimeCompare(h[:], s.keys[i].hash[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 || s.keys[found].Revoked {
		return "", false
	}
	return s.keys[found].ID, true
}

// Limits returns the limits of an unrevoked key: the Limiter's source.
func (s *KeyStore) Limits(keyID string) (Limits, bool) {
	s.maybeReload()
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, k := range s.keys {
		if k.ID == keyID {
			return k.Limits, !k.Revoked
		}
	}
	return Limits{}, false
}

// Keys returns the stored keys (without secrets), in the file's order.
func (s *KeyStore) Keys() []Key {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return append([]Key(nil), s.keys...)
}

// Add makes a key named name with these limits and returns it with its
// secret, which is not stored and cannot be shown again.
func (s *KeyStore) Add(name string, limits Limits) (Key, string, error) {
	if err := validName(name); err != nil {
		return Key{}, "", fmt.Errorf("adding key: %w", err)
	}
	if err := limits.Validate(); err != nil {
		return Key{}, "", fmt.Errorf("adding key: %w", err)
	}
	var raw [secretBytes]byte
	if _, err := io.ReadFull(s.cfg.Rand, raw[:]); err != nil {
		return Key{}, "", fmt.Errorf("adding key: reading random bytes: %w", err)
	}
	secret := SecretPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	var added Key
	err := s.change(func(keys []Key) ([]Key, error) {
		if len(keys) >= MaxKeys {
			return nil, fmt.Errorf("the key file holds %d keys already (at most %d)", len(keys), MaxKeys)
		}
		id, err := s.newID(keys)
		if err != nil {
			return nil, err
		}
		added = Key{ID: id, Name: name, Created: s.cfg.Now().UTC().Truncate(time.Second), Limits: limits, hash: secretHash(secret)}
		return append(keys, added), nil
	})
	if err != nil {
		return Key{}, "", fmt.Errorf("adding key: %w", err)
	}
	return added, secret, nil
}

// newID picks an ID ("k" and 12 hex digits) not in keys.
func (s *KeyStore) newID(keys []Key) (string, error) {
	for range 8 {
		var b [6]byte
		if _, err := io.ReadFull(s.cfg.Rand, b[:]); err != nil {
			return "", fmt.Errorf("reading random bytes: %w", err)
		}
		id := "k" + hex.EncodeToString(b[:])
		if !hasKey(keys, id) {
			return id, nil
		}
	}
	return "", errors.New("no unused key ID found")
}

func hasKey(keys []Key, id string) bool {
	for _, k := range keys {
		if k.ID == id {
			return true
		}
	}
	return false
}

// Revoke revokes the key with this ID; revoking a revoked key changes
// nothing. The key stays in the file (its ID still names its usage).
func (s *KeyStore) Revoke(keyID string) (Key, error) {
	var out Key
	err := s.change(func(keys []Key) ([]Key, error) {
		for i := range keys {
			if keys[i].ID == keyID {
				if !keys[i].Revoked {
					keys[i].Revoked, keys[i].RevokedAt = true, s.cfg.Now().UTC().Truncate(time.Second)
				}
				out = keys[i]
				return keys, nil
			}
		}
		return nil, fmt.Errorf("%w: %q", ErrUnknownKey, keyID)
	})
	if err != nil {
		return Key{}, fmt.Errorf("revoking key: %w", err)
	}
	return out, nil
}

// change applies edit to the file's keys under the lock file, reading the
// file first (another process may have changed it) and writing it
// atomically after.
func (s *KeyStore) change(edit func([]Key) ([]Key, error)) error {
	if err := os.MkdirAll(filepath.Dir(s.path), 0o700); err != nil {
		return fmt.Errorf("creating the key file's directory: %w", err)
	}
	lock, err := lockfile.Acquire(s.path+".lock", s.cfg.LockWait)
	if err != nil {
		return fmt.Errorf("locking key file %s: %w", s.path, err)
	}
	defer lock.Release()
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, _, err := s.read()
	if err != nil {
		return err
	}
	keys, err = edit(keys)
	if err != nil {
		return err
	}
	b, err := EncodeKeyFile(keys)
	if err != nil {
		return err
	}
	if err := s.writeAtomic(b); err != nil {
		return err
	}
	fi, err := os.Stat(s.path)
	if err != nil {
		return fmt.Errorf("key file %s: %w", s.path, err)
	}
	s.keys, s.stamp, s.lastCheck = keys, fi, s.cfg.Now()
	return nil
}

// tmpPrefix names the temporary files of atomic writes of the key file.
func (s *KeyStore) tmpPrefix() string { return filepath.Base(s.path) + ".tmp-" }

// writeAtomic replaces the file with b: a temporary file (0600) in the
// same directory, written and fsynced, renamed over the file, then the
// directory fsynced. A crash at any point leaves the old file or the new
// one, never a mix; a temporary file a crash left is removed by the next
// write.
func (s *KeyStore) writeAtomic(b []byte) error {
	dir := filepath.Dir(s.path)
	s.removeStaleTemps(dir)
	tmp, err := os.CreateTemp(dir, s.tmpPrefix())
	if err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(name)
		}
	}()
	// CreateTemp makes 0600 files; say so regardless of the umask.
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	if _, err := tmp.Write(b); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	if s.beforeRename != nil {
		if err := s.beforeRename(name); err != nil {
			ok = true // a simulated crash leaves the temporary file behind
			return err
		}
	}
	if err := os.Rename(name, s.path); err != nil {
		return fmt.Errorf("writing key file: %w", err)
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("writing key file: syncing %s: %w", dir, err)
		}
	}
	return nil
}

// removeStaleTemps removes temporary files earlier writes left (called
// under the lock file, so no other write is under way).
func (s *KeyStore) removeStaleTemps(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), s.tmpPrefix()) {
			os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}
