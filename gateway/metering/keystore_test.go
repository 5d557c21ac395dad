package metering

import (
	"bytes"
	"encoding/base64"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func testStoreConfig(c *clock) KeyStoreConfig {
	cfg := DefaultKeyStoreConfig()
	cfg.Create = true
	cfg.Now = c.Now
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func openStore(t *testing.T, path string, cfg KeyStoreConfig) *KeyStore {
	t.Helper()
	s, err := OpenKeyStore(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeyStoreAddAuthenticateRevoke(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gateway", "keys.json")
	c := newClock()
	s := openStore(t, path, testStoreConfig(c))
	lim := Limits{RPS: 5, Burst: 10, DailyRequests: 1000, DailyTokens: 50000}
	k, secret, err := s.Add("app one", lim)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if !strings.HasPrefix(secret, SecretPrefix) || err != nil || len(raw) != 32 {
		t.Fatalf("secret %q: %v", secret, err)
	}
	if k.Name != "app one" || k.Limits != lim || k.Revoked || !k.Created.Equal(c.Now()) || !validKeyID(k.ID) {
		t.Fatalf("key %+v", k)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v %v", fi.Mode(), err)
	}
	b, _ := os.ReadFile(path)
	if bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(secret[len(SecretPrefix):])) {
		t.Fatal("the file holds the secret")
	}
	if id, ok := s.Authenticate(secret); !ok || id != k.ID {
		t.Fatalf("Authenticate = %q %v", id, ok)
	}
	k2, secret2, err := s.Add("app two", Limits{})
	if err != nil || secret2 == secret || k2.ID == k.ID {
		t.Fatalf("second key %+v %v", k2, err)
	}
	// Wrong secrets: one character changed, truncated, the hash, empty,
	// huge.
	flipped := []byte(secret)
	flipped[len(flipped)-1] ^= 1
	for _, wrong := range []string{string(flipped), secret[:len(secret)-1], secret + "A", "", strings.Repeat("x", 1<<20), secretHashText(secret)} {
		if id, ok := s.Authenticate(wrong); ok {
			t.Fatalf("wrong secret %.20q accepted as %s", wrong, id)
		}
	}
	// A second process's view: the same keys from the file.
	other := openStore(t, path, testStoreConfig(c))
	if id, ok := other.Authenticate(secret2); !ok || id != k2.ID {
		t.Fatalf("reopened: %q %v", id, ok)
	}
	if l, ok := other.Limits(k.ID); !ok || l != lim {
		t.Fatalf("limits %+v %v", l, ok)
	}
	// Revoke: refused from then on, still listed, twice is no change.
	c.Add(time.Minute)
	r, err := s.Revoke(k.ID)
	if err != nil || !r.Revoked || !r.RevokedAt.Equal(c.Now()) {
		t.Fatalf("revoke %+v %v", r, err)
	}
	if _, ok := s.Authenticate(secret); ok {
		t.Fatal("revoked key accepted")
	}
	if _, ok := s.Limits(k.ID); ok {
		t.Fatal("revoked key has limits")
	}
	c.Add(time.Minute)
	again, err := s.Revoke(k.ID)
	if err != nil || !again.RevokedAt.Equal(r.RevokedAt) {
		t.Fatalf("second revoke %+v %v", again, err)
	}
	if _, err := s.Revoke("knope"); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("revoke unknown: %v", err)
	}
	if ks := s.Keys(); len(ks) != 2 || !ks[0].Revoked || ks[1].Revoked {
		t.Fatalf("keys %+v", ks)
	}
	// Bad input to Add changes nothing.
	before, _ := os.ReadFile(path)
	for _, bad := range []struct {
		name string
		lim  Limits
	}{{"", Limits{}}, {strings.Repeat("n", MaxNameLen+1), Limits{}}, {"a\nb", Limits{}}, {"x", Limits{RPS: 1}},
		{"x", Limits{Burst: 3}}, {"x", Limits{RPS: -1, Burst: 1}}, {"x", Limits{DailyTokens: -1}}, {"x", Limits{RPS: 1e7, Burst: 1}}} {
		if _, _, err := s.Add(bad.name, bad.lim); err == nil {
			t.Fatalf("Add(%q, %+v) accepted", bad.name, bad.lim)
		}
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("a refused Add changed the file")
	}
}

func secretHashText(s string) string {
	h := secretHash(s)
	return base64.RawURLEncoding.EncodeToString(h[:])
}

func TestKeyStoreRefusesBroadPermissions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	c := newClock()
	s := openStore(t, path, testStoreConfig(c))
	if _, _, err := s.Add("a", Limits{}); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []fs.FileMode{0o644, 0o640, 0o604, 0o660} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := OpenKeyStore(path, testStoreConfig(c))
		if !errors.Is(err, ErrBadPermissions) || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("mode %04o: %v", mode, err)
		}
		// Nor does a change go through.
		if _, _, err := s.Add("b", Limits{}); !errors.Is(err, ErrBadPermissions) {
			t.Fatalf("mode %04o: Add: %v", mode, err)
		}
	}
	os.Chmod(path, 0o400)
	if s2 := openStore(t, path, testStoreConfig(c)); len(s2.Keys()) != 1 {
		t.Fatalf("keys %d", len(s2.Keys()))
	}
}

func TestKeyStoreMissingAndBadFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testStoreConfig(newClock())
	cfg.Create = false
	if _, err := OpenKeyStore(filepath.Join(dir, "none.json"), cfg); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	cfg.Create = true
	if s, err := OpenKeyStore(filepath.Join(dir, "none.json"), cfg); err != nil || len(s.Keys()) != 0 {
		t.Fatalf("missing file with Create: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"version":1,"keys":[{"id":"k1","name":"x"}]}`), 0o600)
	if _, err := OpenKeyStore(bad, cfg); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("bad file: %v", err)
	}
}

func TestKeyStoreReloadsChangesOfAnotherProcess(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	c := newClock()
	gw := openStore(t, path, testStoreConfig(c)) // the running gateway
	cli := openStore(t, path, testStoreConfig(c))
	k, secret, err := cli.Add("late", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := gw.Authenticate(secret); ok {
		t.Fatal("seen before ReloadEvery passed")
	}
	c.Add(time.Second)
	if id, ok := gw.Authenticate(secret); !ok || id != k.ID {
		t.Fatal("new key not seen after ReloadEvery")
	}
	if _, err := cli.Revoke(k.ID); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Second)
	if _, ok := gw.Authenticate(secret); ok {
		t.Fatal("revoked key still accepted after ReloadEvery")
	}
	// A file made unreadable keeps the keys read before (logged).
	k2, secret2, _ := cli.Add("kept", Limits{})
	c.Add(time.Second)
	gw.Authenticate("")
	os.WriteFile(path+".garbage", nil, 0o600)
	os.Rename(path+".garbage", path)
	c.Add(time.Second)
	if id, ok := gw.Authenticate(secret2); !ok || id != k2.ID {
		t.Fatal("a broken file dropped the keys in use")
	}
	if err := gw.Reload(); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("Reload of a broken file: %v", err)
	}
}

// A crash after the temporary file is written but before the rename
// leaves the old file whole; the next write cleans the leftover up.
func TestKeyStoreCrashBeforeRename(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys.json")
	c := newClock()
	s := openStore(t, path, testStoreConfig(c))
	k1, secret1, err := s.Add("first", Limits{})
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	crash := errors.New("crash")
	var leftover string
	s.beforeRename = func(tmp string) error { leftover = tmp; return crash }
	if _, _, err := s.Add("second", Limits{}); !errors.Is(err, crash) {
		t.Fatalf("Add: %v", err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("the key file changed")
	}
	if fi, err := os.Stat(leftover); err != nil || fi.Mode().Perm() != 0o600 || fi.Size() == 0 {
		t.Fatalf("temporary file %v %v", fi, err)
	}
	// The "restarted" process sees the old keys only.
	s2 := openStore(t, path, testStoreConfig(c))
	if ks := s2.Keys(); len(ks) != 1 || ks[0].ID != k1.ID {
		t.Fatalf("after the crash: %+v", ks)
	}
	if _, ok := s2.Authenticate(secret1); !ok {
		t.Fatal("first key lost")
	}
	if _, _, err := s2.Add("third", Limits{}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(leftover); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("leftover temporary file: %v", err)
	}
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "keys.json" && e.Name() != "keys.json.lock" {
			t.Errorf("stray file %s", e.Name())
		}
	}
}

// Two processes adding keys at once lose none (the lock file serializes
// them, each re-reads the file).
func TestKeyStoreConcurrentWriters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keys.json")
	c := newClock()
	a, b := openStore(t, path, testStoreConfig(c)), openStore(t, path, testStoreConfig(c))
	var wg sync.WaitGroup
	secrets := make(chan string, 10)
	for _, s := range []*KeyStore{a, b} {
		wg.Go(func() {
			for range 5 {
				_, sec, err := s.Add("k", Limits{})
				if err != nil {
					t.Error(err)
					return
				}
				secrets <- sec
			}
		})
	}
	wg.Wait()
	close(secrets)
	final := openStore(t, path, testStoreConfig(c))
	if n := len(final.Keys()); n != 10 {
		t.Fatalf("%d keys, want 10", n)
	}
	for sec := range secrets {
		if _, ok := final.Authenticate(sec); !ok {
			t.Fatal("a key was lost")
		}
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	c := newClock()
	s := openStore(t, filepath.Join(t.TempDir(), "keys.json"), testStoreConfig(c))
	s.Add("a", Limits{RPS: 0.25, Burst: 2, DailyTokens: 7})
	k, _, _ := s.Add("b", Limits{})
	s.Revoke(k.ID)
	b, err := EncodeKeyFile(s.Keys())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := DecodeKeyFile(b)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := EncodeKeyFile(keys)
	if !bytes.Equal(b, again) {
		t.Fatalf("round trip differs:\n%s\n%s", b, again)
	}
	for name, bad := range map[string]string{
		"unknown field":  strings.Replace(string(b), `"name"`, `"nom"`, 1),
		"trailing data":  string(b) + "{}",
		"version":        strings.Replace(string(b), `"version": 1`, `"version": 2`, 1),
		"duplicate id":   strings.Replace(string(b), keys[1].ID, keys[0].ID, 1),
		"short hash":     strings.Replace(string(b), `"secret_sha256": "`, `"secret_sha256": "0`, 1),
		"revoked no at":  strings.Replace(string(b), `"revoked": true,`, `"revoked": false,`, 1),
		"negative quota": strings.Replace(string(b), `"daily_tokens": 7`, `"daily_tokens": -7`, 1),
	} {
		if _, err := DecodeKeyFile([]byte(bad)); !errors.Is(err, ErrBadKeyFile) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
