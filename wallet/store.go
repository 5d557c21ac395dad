package wallet

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
)

// Config says where wallets live and how new keys are written.
type Config struct {
	// Home is the cybertensor home directory; wallets are kept under
	// Home/wallets.
	Home string
	// AddressPrefix is the bech32 prefix of addresses shown and written.
	AddressPrefix string
	// KDF are the argon2id parameters for newly encrypted keys. Existing
	// keyfiles carry their own parameters.
	KDF KDFParams
}

// DefaultConfig returns the configuration for a home directory: the
// default address prefix and DefaultKDFParams.
func DefaultConfig(home string) Config {
	return Config{Home: home, AddressPrefix: DefaultAddressPrefix, KDF: DefaultKDFParams()}
}

// DefaultTestConfig is DefaultConfig with TestKDFParams, for fast tests.
func DefaultTestConfig(home string) Config {
	c := DefaultConfig(home)
	c.KDF = TestKDFParams()
	return c
}

func (c Config) validate() error {
	if c.Home == "" {
		return errors.New("wallet: config: Home is empty")
	}
	if err := ValidatePrefix(c.AddressPrefix); err != nil {
		return fmt.Errorf("wallet: config: %w", err)
	}
	if err := c.KDF.validate(); err != nil {
		return fmt.Errorf("wallet: config: %w", err)
	}
	return nil
}

// Store reads and writes the wallets under one home directory:
//
//	<home>/wallets/<name>/coldkey         encrypted keyfile
//	<home>/wallets/<name>/coldkeypub.txt  the coldkey's public part
//	<home>/wallets/<name>/hotkeys/<hotkey> keyfile, plain unless encrypted
type Store struct {
	cfg Config
}

// NewStore returns a store for cfg. It touches no files.
func NewStore(cfg Config) (*Store, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg}, nil
}

// DefaultHotkey is the name of the hotkey created with a new wallet.
const DefaultHotkey = "default"

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)

func checkName(kind, name string) error {
	if !namePattern.MatchString(name) {
		return fmt.Errorf("%w: %s name %q (use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit)", ErrInvalidName, kind, name)
	}
	return nil
}

func (s *Store) walletsDir() string           { return filepath.Join(s.cfg.Home, "wallets") }
func (s *Store) walletDir(name string) string { return filepath.Join(s.walletsDir(), name) }

const (
	coldkeyFile    = "coldkey"
	coldkeyPubFile = "coldkeypub.txt"
	hotkeysDir     = "hotkeys"
)

// KeyInfo is the public description of one key.
type KeyInfo struct {
	// Name is the hotkey name, or "coldkey".
	Name      string `json:"name"`
	Address   string `json:"address"`
	PublicKey string `json:"public_key"`
	// PeerID is the libp2p peer ID of a hotkey, the identity of the neuron
	// it operates. Empty for a coldkey.
	PeerID    string `json:"peer_id,omitempty"`
	Encrypted bool   `json:"encrypted"`
}

// Info describes a wallet: its coldkey and hotkeys, sorted by name.
type Info struct {
	Name    string    `json:"name"`
	Coldkey KeyInfo   `json:"coldkey"`
	Hotkeys []KeyInfo `json:"hotkeys"`
	// Error is set by List for a wallet that could not be read.
	Error string `json:"error,omitempty"`
}

// Created is what Create returns: the new wallet, and the mnemonics of its
// keys, which are shown once and never stored.
type Created struct {
	Info            Info
	ColdkeyMnemonic string
	HotkeyMnemonic  string
}

// CreateOptions configure Create.
type CreateOptions struct {
	// Words is the mnemonic length, 12 or 24 (default 12).
	Words int
	// Password encrypts the coldkey; it must not be empty.
	Password []byte
	// Hotkey is the name of the first hotkey (default DefaultHotkey).
	Hotkey string
	// HotkeyPassword encrypts the hotkey; nil stores it in the clear.
	HotkeyPassword []byte
	// Force overwrites the coldkey and that hotkey of an existing wallet.
	Force bool
}

// Create makes a wallet with a new coldkey and one hotkey. A new wallet is
// staged in a temporary directory and renamed into place, so a failure
// leaves no wallet at all.
// Exists reports whether wallet name exists (so a caller can say so
// before it asks for a password).
func (s *Store) Exists(name string) (bool, error) {
	if err := checkName("wallet", name); err != nil {
		return false, err
	}
	return exists(s.walletDir(name))
}

func (s *Store) Create(name string, o CreateOptions) (*Created, error) {
	if o.Words == 0 {
		o.Words = 12
	}
	if o.Hotkey == "" {
		o.Hotkey = DefaultHotkey
	}
	if err := checkName("wallet", name); err != nil {
		return nil, err
	}
	if err := checkName("hotkey", o.Hotkey); err != nil {
		return nil, err
	}
	if len(o.Password) == 0 {
		return nil, fmt.Errorf("%w: the coldkey is always encrypted", ErrPasswordRequired)
	}
	if o.HotkeyPassword != nil && len(o.HotkeyPassword) == 0 {
		return nil, fmt.Errorf("%w: empty hotkey password", ErrPasswordRequired)
	}
	dir := s.walletDir(name)
	there, err := exists(dir)
	if err != nil {
		return nil, err
	}
	if there && !o.Force {
		return nil, fmt.Errorf("wallet %q at %s: %w", name, dir, ErrExists)
	}
	coldWords, err := NewMnemonic(o.Words)
	if err != nil {
		return nil, err
	}
	hotWords, err := NewMnemonic(o.Words)
	if err != nil {
		return nil, err
	}
	cold, hot, err := s.sealPair(coldWords, o.Password, hotWords, o.HotkeyPassword)
	if err != nil {
		return nil, err
	}
	if there {
		// Overwrite in place, hotkey first: the coldkey, which holds funds,
		// is replaced last and only if everything before it succeeded.
		if err := s.writeHotkey(name, o.Hotkey, hot); err != nil {
			return nil, err
		}
		if err := s.writeColdkey(name, cold); err != nil {
			return nil, err
		}
	} else if err := s.createStaged(name, o.Hotkey, cold, hot); err != nil {
		return nil, err
	}
	info, err := s.Info(name)
	if err != nil {
		return nil, err
	}
	return &Created{Info: info, ColdkeyMnemonic: coldWords, HotkeyMnemonic: hotWords}, nil
}

func (s *Store) sealPair(coldWords string, coldPass []byte, hotWords string, hotPass []byte) (cold, hot *Keyfile, err error) {
	coldKey, err := KeyFromMnemonic(coldWords)
	if err != nil {
		return nil, nil, err
	}
	hotKey, err := KeyFromMnemonic(hotWords)
	if err != nil {
		return nil, nil, err
	}
	if cold, err = NewKeyfile(coldKey, coldPass, s.cfg.KDF, s.cfg.AddressPrefix); err != nil {
		return nil, nil, err
	}
	if hot, err = NewKeyfile(hotKey, hotPass, s.cfg.KDF, s.cfg.AddressPrefix); err != nil {
		return nil, nil, err
	}
	return cold, hot, nil
}

func (s *Store) createStaged(name, hotkey string, cold, hot *Keyfile) (err error) {
	if err := mkdirPrivate(s.walletsDir()); err != nil {
		return err
	}
	stage, err := os.MkdirTemp(s.walletsDir(), ".new-"+name+"-*")
	if err != nil {
		return fmt.Errorf("wallet: staging %q: %w", name, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(stage)
		}
	}()
	if err := os.Chmod(stage, dirMode); err != nil {
		return fmt.Errorf("wallet: staging %q: %w", name, err)
	}
	if err := mkdirPrivate(filepath.Join(stage, hotkeysDir)); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(stage, hotkeysDir, hotkey), hot.Encode()); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(stage, coldkeyPubFile), encodeColdkeyPub(cold)); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(stage, coldkeyFile), cold.Encode()); err != nil {
		return err
	}
	if err := os.Rename(stage, s.walletDir(name)); err != nil {
		if there, _ := exists(s.walletDir(name)); there {
			return fmt.Errorf("wallet %q: %w", name, ErrExists)
		}
		return fmt.Errorf("wallet: creating %q: %w", name, err)
	}
	return syncDir(s.walletsDir())
}

func (s *Store) writeColdkey(name string, cold *Keyfile) error {
	dir := s.walletDir(name)
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	// The public part first: if the coldkey write fails, a stale
	// coldkeypub.txt is detected by Info as not matching the coldkey.
	if err := writeFileAtomic(filepath.Join(dir, coldkeyPubFile), encodeColdkeyPub(cold)); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, coldkeyFile), cold.Encode())
}

func (s *Store) writeHotkey(name, hotkey string, hot *Keyfile) error {
	dir := filepath.Join(s.walletDir(name), hotkeysDir)
	if err := mkdirPrivate(dir); err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, hotkey), hot.Encode())
}

// NewHotkey adds a hotkey with a fresh mnemonic to an existing wallet and
// returns the mnemonic. A nil password stores the hotkey in the clear.
func (s *Store) NewHotkey(name, hotkey string, words int, password []byte, force bool) (string, KeyInfo, error) {
	if words == 0 {
		words = 12
	}
	mnemonic, err := NewMnemonic(words)
	if err != nil {
		return "", KeyInfo{}, err
	}
	info, err := s.ImportHotkey(name, hotkey, mnemonic, password, force)
	return mnemonic, info, err
}

// ImportHotkey writes the hotkey derived from mnemonic into an existing
// wallet (regen-hotkey).
func (s *Store) ImportHotkey(name, hotkey, mnemonic string, password []byte, force bool) (KeyInfo, error) {
	if err := checkName("wallet", name); err != nil {
		return KeyInfo{}, err
	}
	if err := checkName("hotkey", hotkey); err != nil {
		return KeyInfo{}, err
	}
	if password != nil && len(password) == 0 {
		return KeyInfo{}, fmt.Errorf("%w: empty hotkey password", ErrPasswordRequired)
	}
	if there, err := exists(s.walletDir(name)); err != nil {
		return KeyInfo{}, err
	} else if !there {
		return KeyInfo{}, fmt.Errorf("wallet %q: %w (create it with wallet new)", name, ErrNotFound)
	}
	path := filepath.Join(s.walletDir(name), hotkeysDir, hotkey)
	if there, err := exists(path); err != nil {
		return KeyInfo{}, err
	} else if there && !force {
		return KeyInfo{}, fmt.Errorf("hotkey %q of wallet %q: %w", hotkey, name, ErrExists)
	}
	key, err := KeyFromMnemonic(mnemonic)
	if err != nil {
		return KeyInfo{}, err
	}
	f, err := NewKeyfile(key, password, s.cfg.KDF, s.cfg.AddressPrefix)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := s.writeHotkey(name, hotkey, f); err != nil {
		return KeyInfo{}, err
	}
	return s.keyInfo(hotkey, f, true)
}

// ImportColdkey writes the coldkey derived from mnemonic, encrypted with
// password (regen-coldkey). The wallet is created if it does not exist;
// its hotkeys are kept.
func (s *Store) ImportColdkey(name, mnemonic string, password []byte, force bool) (KeyInfo, error) {
	if err := checkName("wallet", name); err != nil {
		return KeyInfo{}, err
	}
	if len(password) == 0 {
		return KeyInfo{}, fmt.Errorf("%w: the coldkey is always encrypted", ErrPasswordRequired)
	}
	if there, err := exists(filepath.Join(s.walletDir(name), coldkeyFile)); err != nil {
		return KeyInfo{}, err
	} else if there && !force {
		return KeyInfo{}, fmt.Errorf("coldkey of wallet %q: %w", name, ErrExists)
	}
	key, err := KeyFromMnemonic(mnemonic)
	if err != nil {
		return KeyInfo{}, err
	}
	f, err := NewKeyfile(key, password, s.cfg.KDF, s.cfg.AddressPrefix)
	if err != nil {
		return KeyInfo{}, err
	}
	if err := s.writeColdkey(name, f); err != nil {
		return KeyInfo{}, err
	}
	return s.keyInfo("coldkey", f, false)
}

// ColdkeyFile reads and checks the wallet's coldkey file.
func (s *Store) ColdkeyFile(name string) (*Keyfile, error) {
	if err := checkName("wallet", name); err != nil {
		return nil, err
	}
	return readKeyfile(filepath.Join(s.walletDir(name), coldkeyFile), fmt.Sprintf("coldkey of wallet %q", name))
}

// HotkeyFile reads and checks one of the wallet's hotkey files.
func (s *Store) HotkeyFile(name, hotkey string) (*Keyfile, error) {
	if err := checkName("wallet", name); err != nil {
		return nil, err
	}
	if err := checkName("hotkey", hotkey); err != nil {
		return nil, err
	}
	return readKeyfile(filepath.Join(s.walletDir(name), hotkeysDir, hotkey), fmt.Sprintf("hotkey %q of wallet %q", hotkey, name))
}

// Coldkey opens the wallet's coldkey with password.
func (s *Store) Coldkey(name string, password []byte) (*PrivateKey, error) {
	f, err := s.ColdkeyFile(name)
	if err != nil {
		return nil, err
	}
	k, err := f.Open(password)
	if err != nil {
		return nil, fmt.Errorf("coldkey of wallet %q: %w", name, err)
	}
	return k, nil
}

// PasswordFunc supplies a password when one is needed; it is called only
// for encrypted keys.
type PasswordFunc func() ([]byte, error)

// Hotkey opens one of the wallet's hotkeys, calling password only if the
// hotkey is encrypted.
func (s *Store) Hotkey(name, hotkey string, password PasswordFunc) (*PrivateKey, error) {
	f, err := s.HotkeyFile(name, hotkey)
	if err != nil {
		return nil, err
	}
	var pw []byte
	if f.Encrypted() {
		if password == nil {
			return nil, fmt.Errorf("hotkey %q of wallet %q: %w", hotkey, name, ErrPasswordRequired)
		}
		if pw, err = password(); err != nil {
			return nil, err
		}
	}
	k, err := f.Open(pw)
	if err != nil {
		return nil, fmt.Errorf("hotkey %q of wallet %q: %w", hotkey, name, err)
	}
	return k, nil
}

func readKeyfile(path, what string) (*Keyfile, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w (%s)", what, ErrNotFound, path)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	f, err := DecodeKeyfile(data)
	if err != nil {
		return nil, fmt.Errorf("%s (%s): %w", what, path, err)
	}
	return f, nil
}

func (s *Store) keyInfo(name string, f *Keyfile, hot bool) (KeyInfo, error) {
	pub, err := f.Public()
	if err != nil {
		return KeyInfo{}, err
	}
	ki := KeyInfo{Name: name, Address: pub.Address().Bech32(s.cfg.AddressPrefix), PublicKey: pub.Hex(), Encrypted: f.Encrypted()}
	if hot {
		ki.PeerID = pub.PeerID().String()
	}
	return ki, nil
}

// coldkeyPub is the content of coldkeypub.txt.
type coldkeyPub struct {
	Format    string `json:"format"`
	Version   int    `json:"version"`
	KeyType   string `json:"key_type"`
	PublicKey string `json:"public_key"`
	Address   string `json:"address"`
}

const coldkeyPubFormat = "cybertensor-coldkeypub"

func encodeColdkeyPub(cold *Keyfile) []byte {
	b, _ := json.MarshalIndent(coldkeyPub{
		Format: coldkeyPubFormat, Version: KeyfileVersion, KeyType: cold.KeyType,
		PublicKey: cold.PublicKey, Address: cold.Address,
	}, "", "  ")
	return append(b, '\n')
}

// Info describes a wallet without opening any key: addresses, public keys
// and peer IDs come from the files' public parts. A coldkeypub.txt that
// disagrees with the coldkey is reported as corrupt.
func (s *Store) Info(name string) (Info, error) {
	if err := checkName("wallet", name); err != nil {
		return Info{}, err
	}
	dir := s.walletDir(name)
	if st, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("wallet %q: %w (%s)", name, ErrNotFound, dir)
	} else if err != nil {
		return Info{}, fmt.Errorf("wallet %q: %w", name, err)
	} else if !st.IsDir() {
		return Info{}, fmt.Errorf("wallet %q: %s is not a directory", name, dir)
	}
	info := Info{Name: name, Hotkeys: []KeyInfo{}}
	cold, err := s.ColdkeyFile(name)
	switch {
	case errors.Is(err, ErrNotFound):
		// A wallet may hold only hotkeys (a miner machine); the coldkey's
		// public part is enough to show it.
		pub, perr := readColdkeyPub(filepath.Join(dir, coldkeyPubFile))
		if perr != nil {
			return Info{}, fmt.Errorf("wallet %q: no coldkey: %w", name, perr)
		}
		info.Coldkey = KeyInfo{Name: "coldkey", Address: pub.Address().Bech32(s.cfg.AddressPrefix), PublicKey: pub.Hex(), Encrypted: true}
	case err != nil:
		return Info{}, err
	default:
		if info.Coldkey, err = s.keyInfo("coldkey", cold, false); err != nil {
			return Info{}, err
		}
		if pub, perr := readColdkeyPub(filepath.Join(dir, coldkeyPubFile)); perr == nil && pub.Hex() != cold.PublicKey {
			return Info{}, fmt.Errorf("wallet %q: %w: coldkeypub.txt does not match coldkey", name, ErrCorruptKeyfile)
		}
	}
	entries, err := os.ReadDir(filepath.Join(dir, hotkeysDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return Info{}, fmt.Errorf("wallet %q: %w", name, err)
	}
	for _, e := range entries {
		if !e.Type().IsRegular() || checkName("hotkey", e.Name()) != nil {
			continue // temporary files and anything not ours
		}
		f, err := s.HotkeyFile(name, e.Name())
		if err != nil {
			return Info{}, err
		}
		ki, err := s.keyInfo(e.Name(), f, true)
		if err != nil {
			return Info{}, err
		}
		info.Hotkeys = append(info.Hotkeys, ki)
	}
	return info, nil
}

func readColdkeyPub(path string) (*PublicKey, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w (%s)", ErrNotFound, path)
	}
	if err != nil {
		return nil, err
	}
	var p coldkeyPub
	if err := json.Unmarshal(data, &p); err != nil || p.Format != coldkeyPubFormat {
		return nil, fmt.Errorf("%w: %s is not a coldkeypub file", ErrCorruptKeyfile, path)
	}
	pub, err := ParsePublicKeyHex(p.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCorruptKeyfile, path, err)
	}
	return pub, nil
}

// List describes every wallet in the home directory, sorted by name. A home
// without wallets gives an empty list; a wallet that cannot be read is
// listed with its Error set.
func (s *Store) List() ([]Info, error) {
	entries, err := os.ReadDir(s.walletsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return []Info{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("wallet: listing %s: %w", s.walletsDir(), err)
	}
	out := []Info{}
	for _, e := range entries {
		if !e.IsDir() || checkName("wallet", e.Name()) != nil {
			continue
		}
		info, err := s.Info(e.Name())
		if err != nil {
			info = Info{Name: e.Name(), Hotkeys: []KeyInfo{}, Error: err.Error()}
		}
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
