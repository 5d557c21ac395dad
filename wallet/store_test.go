package wallet

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

func testStore(t *testing.T) (*Store, string) {
	t.Helper()
	home := t.TempDir()
	s, err := NewStore(DefaultTestConfig(home))
	if err != nil {
		t.Fatal(err)
	}
	return s, home
}

// snapshot returns every file under dir with its content, to prove that a
// failed operation changed nothing.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if !d.IsDir() {
			b, _ := os.ReadFile(path)
			out[path] = string(b)
		} else {
			out[path+"/"] = ""
		}
		return nil
	})
	return out
}

func sameSnapshot(t *testing.T, before, after map[string]string) {
	t.Helper()
	if len(before) != len(after) {
		t.Fatalf("files changed: %d before, %d after: %v", len(before), len(after), keys(after))
	}
	for k, v := range before {
		if after[k] != v {
			t.Fatalf("%s changed", k)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestCreateAndShow(t *testing.T) {
	s, home := testStore(t)
	c, err := s.Create("alice", CreateOptions{Password: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	if len(strings.Fields(c.ColdkeyMnemonic)) != 12 || c.ColdkeyMnemonic == c.HotkeyMnemonic {
		t.Fatalf("mnemonics %q / %q", c.ColdkeyMnemonic, c.HotkeyMnemonic)
	}
	info, err := s.Info("alice")
	if err != nil {
		t.Fatal(err)
	}
	cold := testKey(t, c.ColdkeyMnemonic).PublicKey()
	hot := testKey(t, c.HotkeyMnemonic).PublicKey()
	if info.Coldkey.Address != cold.Address().String() || !info.Coldkey.Encrypted || info.Coldkey.PeerID != "" {
		t.Errorf("coldkey info %+v", info.Coldkey)
	}
	if len(info.Hotkeys) != 1 || info.Hotkeys[0].Name != DefaultHotkey || info.Hotkeys[0].PeerID != hot.PeerID().String() || info.Hotkeys[0].Encrypted {
		t.Errorf("hotkeys %+v", info.Hotkeys)
	}
	// Modes: 0700 directories, 0600 files.
	filepath.WalkDir(filepath.Join(home, "wallets"), func(path string, d fs.DirEntry, err error) error {
		st, _ := os.Stat(path)
		want := fs.FileMode(fileMode)
		if d.IsDir() {
			want = fs.ModeDir | dirMode
		}
		if st.Mode() != want {
			t.Errorf("%s has mode %v, want %v", path, st.Mode(), want)
		}
		if strings.Contains(d.Name(), ".tmp-") || strings.HasPrefix(d.Name(), ".new-") {
			t.Errorf("temporary file left behind: %s", path)
		}
		return nil
	})
	k, err := s.Coldkey("alice", []byte("pw"))
	if err != nil || !k.PublicKey().Equal(cold) {
		t.Fatalf("coldkey open: %v", err)
	}
	if _, err := s.Coldkey("alice", []byte("nope")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	hk, err := s.Hotkey("alice", DefaultHotkey, nil)
	if err != nil || !hk.PublicKey().Equal(hot) {
		t.Fatalf("hotkey open: %v", err)
	}
}

func TestCreateRefusesToOverwrite(t *testing.T) {
	s, home := testStore(t)
	first, err := s.Create("alice", CreateOptions{Password: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, home)
	if _, err := s.Create("alice", CreateOptions{Password: []byte("pw")}); !errors.Is(err, ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	sameSnapshot(t, before, snapshot(t, home))
	if _, err := s.ImportColdkey("alice", testMnemonic, []byte("pw"), false); !errors.Is(err, ErrExists) {
		t.Fatalf("regen coldkey without force: %v", err)
	}
	if _, err := s.ImportHotkey("alice", DefaultHotkey, testMnemonic, nil, false); !errors.Is(err, ErrExists) {
		t.Fatalf("regen hotkey without force: %v", err)
	}
	sameSnapshot(t, before, snapshot(t, home))

	second, err := s.Create("alice", CreateOptions{Password: []byte("pw2"), Words: 24, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	if second.Info.Coldkey.Address == first.Info.Coldkey.Address || len(strings.Fields(second.ColdkeyMnemonic)) != 24 {
		t.Fatal("force did not replace the coldkey")
	}
	if _, err := s.Coldkey("alice", []byte("pw2")); err != nil {
		t.Fatal(err)
	}
}

func TestBadInputChangesNothing(t *testing.T) {
	s, home := testStore(t)
	if _, err := s.Create("alice", CreateOptions{Password: []byte("pw")}); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, home)
	badWords := "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon"
	cases := map[string]func() error{
		"regen coldkey, bad checksum": func() error { _, err := s.ImportColdkey("alice", badWords, []byte("pw"), true); return err },
		"regen hotkey, bad checksum":  func() error { _, err := s.ImportHotkey("alice", "h2", badWords, nil, true); return err },
		"regen coldkey, no password":  func() error { _, err := s.ImportColdkey("alice", testMnemonic, nil, true); return err },
		"new wallet, no password":     func() error { _, err := s.Create("bob", CreateOptions{}); return err },
		"new wallet, 13 words":        func() error { _, err := s.Create("bob", CreateOptions{Password: []byte("x"), Words: 13}); return err },
		"path in name":                func() error { _, err := s.Create("../evil", CreateOptions{Password: []byte("x")}); return err },
		"path in hotkey":              func() error { _, _, err := s.NewHotkey("alice", "../../x", 12, nil, false); return err },
		"hotkey of missing wallet":    func() error { _, _, err := s.NewHotkey("nobody", "h", 12, nil, false); return err },
		"empty hotkey password":       func() error { _, _, err := s.NewHotkey("alice", "h", 12, []byte{}, false); return err },
	}
	for name, op := range cases {
		if err := op(); err == nil {
			t.Errorf("%s: succeeded", name)
		}
		sameSnapshot(t, before, snapshot(t, home))
	}
}

func TestHotkeys(t *testing.T) {
	s, _ := testStore(t)
	if _, err := s.Create("alice", CreateOptions{Password: []byte("pw")}); err != nil {
		t.Fatal(err)
	}
	m, ki, err := s.NewHotkey("alice", "miner1", 24, []byte("hotpw"), false)
	if err != nil {
		t.Fatal(err)
	}
	if !ki.Encrypted || len(strings.Fields(m)) != 24 {
		t.Errorf("info %+v, %d words", ki, len(strings.Fields(m)))
	}
	if _, err := s.Hotkey("alice", "miner1", nil); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("encrypted hotkey without password: %v", err)
	}
	k, err := s.Hotkey("alice", "miner1", func() ([]byte, error) { return []byte("hotpw"), nil })
	if err != nil || k.PublicKey().PeerID().String() != ki.PeerID {
		t.Fatalf("open encrypted hotkey: %v", err)
	}
	// regen-hotkey reproduces the same key from the mnemonic.
	ri, err := s.ImportHotkey("alice", "copy", m, nil, false)
	if err != nil || ri.PeerID != ki.PeerID || ri.Encrypted {
		t.Fatalf("regen: %+v %v", ri, err)
	}
	info, _ := s.Info("alice")
	var names []string
	for _, h := range info.Hotkeys {
		names = append(names, h.Name)
	}
	if strings.Join(names, ",") != "copy,default,miner1" {
		t.Errorf("hotkeys %v", names)
	}
	if _, err := s.Hotkey("alice", "missing", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing hotkey: %v", err)
	}
}

func TestRegenColdkeyKeepsHotkeys(t *testing.T) {
	s, _ := testStore(t)
	c, err := s.Create("alice", CreateOptions{Password: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	// A fresh machine restores the coldkey from its words.
	s2, _ := testStore(t)
	ki, err := s2.ImportColdkey("alice", c.ColdkeyMnemonic, []byte("other"), false)
	if err != nil || ki.Address != c.Info.Coldkey.Address {
		t.Fatalf("restore: %+v %v", ki, err)
	}
	// Regenerating over an existing wallet with force keeps its hotkeys.
	if _, err := s.ImportColdkey("alice", testMnemonic, []byte("pw"), true); err != nil {
		t.Fatal(err)
	}
	info, err := s.Info("alice")
	if err != nil || len(info.Hotkeys) != 1 || info.Coldkey.Address != testKey(t, testMnemonic).PublicKey().Address().String() {
		t.Fatalf("after regen: %+v %v", info, err)
	}
}

func TestCorruptFilesAreReported(t *testing.T) {
	s, home := testStore(t)
	if _, err := s.Create("alice", CreateOptions{Password: []byte("pw")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("bob", CreateOptions{Password: []byte("pw")}); err != nil {
		t.Fatal(err)
	}
	cold := filepath.Join(home, "wallets", "alice", "coldkey")
	data, _ := os.ReadFile(cold)
	if err := os.WriteFile(cold, data[:len(data)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Coldkey("alice", []byte("pw")); !errors.Is(err, ErrCorruptKeyfile) {
		t.Errorf("truncated coldkey: %v", err)
	}
	if _, err := s.Info("alice"); !errors.Is(err, ErrCorruptKeyfile) {
		t.Errorf("info of truncated coldkey: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Error == "" || list[1].Error != "" {
		t.Fatalf("list with one broken wallet: %+v %v", list, err)
	}
	// A coldkeypub.txt that disagrees with the coldkey is caught.
	pub := filepath.Join(home, "wallets", "bob", "coldkeypub.txt")
	alicePub, _ := os.ReadFile(filepath.Join(home, "wallets", "alice", "coldkeypub.txt"))
	os.WriteFile(pub, alicePub, 0o600)
	if _, err := s.Info("bob"); !errors.Is(err, ErrCorruptKeyfile) {
		t.Errorf("mismatched coldkeypub: %v", err)
	}
}

func TestUnreadableHome(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	if err := os.WriteFile(home, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := NewStore(DefaultTestConfig(home))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create("alice", CreateOptions{Password: []byte("pw")}); err == nil {
		t.Error("created a wallet under a file")
	}
	if _, err := s.List(); err == nil {
		t.Error("listed wallets under a file")
	}
	b, _ := os.ReadFile(home)
	if string(b) != "not a directory" {
		t.Error("the file in the way was changed")
	}
	if _, err := NewStore(Config{}); err == nil {
		t.Error("empty config accepted")
	}
}

func TestListEmptyHome(t *testing.T) {
	s, _ := testStore(t)
	list, err := s.List()
	if err != nil || len(list) != 0 {
		t.Fatalf("%v %v", list, err)
	}
}

func TestAddressPrefixIsConfigurable(t *testing.T) {
	cfg := DefaultTestConfig(t.TempDir())
	cfg.AddressPrefix = "bostrom"
	s, err := NewStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create("alice", CreateOptions{Password: []byte("pw")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Info.Coldkey.Address, "bostrom1") || !strings.HasPrefix(c.Info.Hotkeys[0].Address, "bostrom1") {
		t.Errorf("addresses %s %s", c.Info.Coldkey.Address, c.Info.Hotkeys[0].Address)
	}
	cfg.AddressPrefix = "Bad"
	if _, err := NewStore(cfg); err == nil {
		t.Error("upper-case prefix accepted")
	}
}
