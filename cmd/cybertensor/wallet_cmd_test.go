package main

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p"

	"github.com/cybertensor/cybertensor/wallet"
)

type keyJSON struct {
	Name, Address string
	PublicKey     string `json:"public_key"`
	PeerID        string `json:"peer_id"`
	Encrypted     bool
}

type infoJSON struct {
	Name    string
	Coldkey keyJSON
	Hotkeys []keyJSON
}

// The acceptance check: wallet new with a password file, then
// wallet show prints the address and a peer ID that a libp2p host built
// from the hotkey really has.
func TestWalletNewThenShowPeerIDIsTheHostID(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "p", "correct horse battery staple\n")

	created := c.ok("--home", home, "wallet", "new", "--name", "alice", "--password-file", pw)
	if !strings.Contains(created.stdout, "coldkey mnemonic:") {
		t.Fatalf("no mnemonic printed:\n%s", created.stdout)
	}
	if strings.Contains(created.stdout+created.stderr, "correct horse") {
		t.Fatal("the password was printed")
	}
	shown := c.ok("--home", home, "wallet", "show", "--name", "alice")
	info := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--name", "alice", "--json").stdout)
	if len(info.Hotkeys) != 1 || info.Hotkeys[0].Name != "default" {
		t.Fatalf("hotkeys: %+v", info.Hotkeys)
	}
	hot := info.Hotkeys[0]
	for _, want := range []string{info.Coldkey.Address, hot.Address, hot.PeerID, hot.PublicKey} {
		if want == "" || !strings.Contains(shown.stdout, want) {
			t.Errorf("wallet show lacks %q:\n%s", want, shown.stdout)
		}
	}
	if !strings.HasPrefix(info.Coldkey.Address, "ct1") || !strings.HasPrefix(hot.PeerID, "16Uiu2") {
		t.Errorf("address %s, peer ID %s", info.Coldkey.Address, hot.PeerID)
	}

	// Build a real libp2p host from the hotkey file on disk.
	s, err := wallet.NewStore(wallet.DefaultConfig(home))
	if err != nil {
		t.Fatal(err)
	}
	key, err := s.Hotkey("alice", "default", nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := libp2p.New(libp2p.Identity(key.Libp2p()), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if h.ID().String() != hot.PeerID {
		t.Fatalf("host ID %s, wallet show %s", h.ID(), hot.PeerID)
	}
}

func TestWalletRegenRestoresTheSameKeys(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	c.environ[envPassword] = "from-env"
	c.environ[envHome] = filepath.Join(dir, "a")
	out := decode[struct {
		Wallet          infoJSON
		ColdkeyMnemonic string `json:"coldkey_mnemonic"`
		HotkeyMnemonic  string `json:"hotkey_mnemonic"`
	}](t, c.ok("wallet", "new", "--name", "w", "--words", "24", "--json").stdout)
	if len(strings.Fields(out.ColdkeyMnemonic)) != 24 {
		t.Fatalf("mnemonic %q", out.ColdkeyMnemonic)
	}
	if _, err := os.Stat(filepath.Join(dir, "a", "wallets", "w", "coldkey")); err != nil {
		t.Fatalf("CYBERTENSOR_HOME not used: %v", err)
	}
	// Another home: restore both keys from the words.
	c.environ[envHome] = filepath.Join(dir, "b")
	mf := writeFile(t, dir, "words", out.ColdkeyMnemonic+"\n")
	cold := decode[keyJSON](t, c.ok("wallet", "regen-coldkey", "--name", "w", "--mnemonic-file", mf, "--json").stdout)
	hot := decode[keyJSON](t, c.ok("wallet", "regen-hotkey", "--name", "w", "--mnemonic", out.HotkeyMnemonic, "--json").stdout)
	if cold.Address != out.Wallet.Coldkey.Address || hot.PeerID != out.Wallet.Hotkeys[0].PeerID {
		t.Fatalf("restored %s / %s, want %s / %s", cold.Address, hot.PeerID, out.Wallet.Coldkey.Address, out.Wallet.Hotkeys[0].PeerID)
	}
	// The restored coldkey opens with the new password and signs.
	sig := decode[signature](t, c.ok("wallet", "sign", "--name", "w", "--coldkey", "--message", "hi", "--json").stdout)
	if sig.Address != cold.Address {
		t.Fatalf("signed by %s", sig.Address)
	}
}

func TestWalletSignVerify(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "h")
	pw := writeFile(t, dir, "p", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "alice", "--password-file", pw)
	c.ok("--home", home, "wallet", "new-hotkey", "--name", "alice", "--hotkey", "m1", "--encrypt", "--password-file", pw)
	msgFile := writeFile(t, dir, "msg", "I answered 42")

	for _, signer := range [][]string{{"--hotkey", "default"}, {"--hotkey", "m1", "--password-file", pw}, {"--coldkey", "--password-file", pw}} {
		args := append([]string{"--home", home, "wallet", "sign", "--name", "alice", "--message-file", msgFile, "--json"}, signer...)
		sig := decode[signature](t, c.ok(args...).stdout)
		verify := []string{"--home", home, "wallet", "verify", "--public-key", sig.PublicKey, "--signature", sig.Signature}
		r := c.ok(append(verify, "--message", "I answered 42", "--address", sig.Address)...)
		if !strings.Contains(r.stdout, "valid signature by "+sig.Address) {
			t.Errorf("verify output %q", r.stdout)
		}
		c.fail(exitFailure, append(verify, "--message", "I answered 43")...)
		other := decode[signature](t, c.ok("--home", home, "wallet", "sign", "--name", "alice", "--hotkey", "default", "--message", "x", "--json").stdout)
		if other.Address != sig.Address {
			c.fail(exitFailure, append(verify, "--message", "I answered 42", "--address", other.Address)...)
		}
	}
	c.fail(exitUsage, "--home", home, "wallet", "verify", "--public-key", "zz", "--signature", "00", "--message", "m")
	c.fail(exitUsage, "--home", home, "wallet", "verify", "--public-key", strings.Repeat("0", 66), "--signature", "00", "--message", "m")
	c.fail(exitUsage, "--home", home, "wallet", "sign", "--name", "alice")
	// An encrypted hotkey without a password source fails cleanly.
	c.fail(exitUsage, "--home", home, "wallet", "sign", "--name", "alice", "--hotkey", "m1", "--message", "m")
}

func snapshotDir(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		st, _ := os.Stat(p)
		data := []byte{}
		if !d.IsDir() {
			data, _ = os.ReadFile(p)
		}
		b.WriteString(p + " " + st.Mode().String() + " " + string(data) + "\n")
		return nil
	})
	return b.String()
}

func TestWalletBadInputChangesNothing(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "h")
	pw := writeFile(t, dir, "p", "pw")
	wrong := writeFile(t, dir, "wrong", "not-it")
	empty := writeFile(t, dir, "empty", "\n")
	c.ok("--home", home, "wallet", "new", "--name", "alice", "--password-file", pw)
	before := snapshotDir(t, home)
	bad := "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon"

	cases := []struct {
		name string
		code int
		args []string
		msg  string
	}{
		{"existing wallet", exitFailure, []string{"wallet", "new", "--name", "alice", "--password-file", pw}, "already exists"},
		// Said before a password is asked for (#20: it asked first).
		{"existing wallet, no password", exitFailure, []string{"wallet", "new", "--name", "alice"}, "already exists"},
		{"wrong password", exitFailure, []string{"wallet", "sign", "--name", "alice", "--coldkey", "--message", "m", "--password-file", wrong}, "wrong password"},
		{"empty password file", exitUsage, []string{"wallet", "new", "--name", "bob", "--password-file", empty}, "empty"},
		{"missing password file", exitUsage, []string{"wallet", "new", "--name", "bob", "--password-file", filepath.Join(dir, "nope")}, "password-file"},
		{"no password source", exitUsage, []string{"wallet", "new", "--name", "bob"}, "password is needed"},
		{"bad checksum", exitUsage, []string{"wallet", "regen-coldkey", "--name", "alice", "--force", "--mnemonic", bad, "--password-file", pw}, "checksum"},
		{"unknown word", exitUsage, []string{"wallet", "regen-hotkey", "--name", "alice", "--force", "--mnemonic", strings.Replace(bad, "abandon", "abandonn", 1)}, "not in the BIP 39"},
		{"no mnemonic", exitUsage, []string{"wallet", "regen-hotkey", "--name", "alice"}, "--mnemonic"},
		{"existing coldkey", exitFailure, []string{"wallet", "regen-coldkey", "--name", "alice", "--mnemonic", testWords, "--password-file", pw}, "already exists"},
		{"existing hotkey", exitFailure, []string{"wallet", "regen-hotkey", "--name", "alice", "--mnemonic", testWords}, "already exists"},
		{"bad name", exitUsage, []string{"wallet", "new", "--name", "../x", "--password-file", pw}, "invalid name"},
		{"bad word count", exitUsage, []string{"wallet", "new", "--name", "bob", "--words", "13", "--password-file", pw}, "12 or 24"},
		{"unknown wallet", exitFailure, []string{"wallet", "show", "--name", "nobody"}, "not found"},
		{"unknown hotkey", exitFailure, []string{"wallet", "show", "--name", "alice", "--hotkey", "nope"}, "not found"},
		{"unknown flag", exitUsage, []string{"wallet", "show", "--nme", "alice"}, "unknown flag"},
		{"bad log level", exitUsage, []string{"--log-level", "loud", "wallet", "list"}, "log-level"},
		{"bad log format", exitUsage, []string{"--log-format", "xml", "wallet", "list"}, "log-format"},
	}
	for _, tc := range cases {
		r := c.fail(tc.code, append([]string{"--home", home}, tc.args...)...)
		if !strings.Contains(r.stderr, tc.msg) {
			t.Errorf("%s: message %q lacks %q", tc.name, r.stderr, tc.msg)
		}
		if after := snapshotDir(t, home); after != before {
			t.Fatalf("%s changed the home directory", tc.name)
		}
	}

	// A corrupted (truncated) coldkey is reported, not half-read.
	cold := filepath.Join(home, "wallets", "alice", "coldkey")
	data, _ := os.ReadFile(cold)
	os.WriteFile(cold, data[:40], 0o600)
	r := c.fail(exitFailure, "--home", home, "wallet", "sign", "--name", "alice", "--coldkey", "--message", "m", "--password-file", pw)
	if !strings.Contains(r.stderr, "corrupted keyfile") {
		t.Errorf("truncated coldkey: %q", r.stderr)
	}
	list := c.ok("--home", home, "wallet", "list")
	if !strings.Contains(list.stdout, "unreadable") {
		t.Errorf("list does not flag the broken wallet:\n%s", list.stdout)
	}

	// A home that is a file is an error, and the file is untouched.
	file := writeFile(t, dir, "homefile", "x")
	c.fail(exitFailure, "--home", file, "wallet", "new", "--name", "bob", "--password-file", pw)
	c.fail(exitFailure, "--home", file, "wallet", "list")
	if b, _ := os.ReadFile(file); string(b) != "x" {
		t.Error("home file changed")
	}
}

const testWords = "legal winner thank year wave sausage worth useful legal winner thank yellow"

func TestWalletListAndLogFormat(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "h")
	r := c.ok("--home", home, "wallet", "list")
	if !strings.Contains(r.stdout, "No wallets") {
		t.Errorf("empty list: %q", r.stdout)
	}
	if got := decode[[]infoJSON](t, c.ok("--home", home, "wallet", "list", "--json").stdout); len(got) != 0 {
		t.Errorf("empty JSON list: %v", got)
	}
	pw := writeFile(t, dir, "p", "pw")
	c.ok("--home", home, "wallet", "regen-coldkey", "--name", "b", "--mnemonic", testWords, "--password-file", pw)
	r = c.ok("--home", home, "--log-format", "json", "--log-level", "debug", "wallet", "new", "--name", "a", "--password-file", pw)
	if !strings.Contains(r.stderr, `"msg":"wallet created"`) {
		t.Errorf("no JSON debug log on stderr: %q", r.stderr)
	}
	list := decode[[]infoJSON](t, c.ok("--home", home, "wallet", "list", "--json").stdout)
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" || len(list[1].Hotkeys) != 0 {
		t.Fatalf("list: %+v", list)
	}
}
