package wallet

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func sealed(t testing.TB, password []byte) (*PrivateKey, []byte) {
	t.Helper()
	k := testKey(t, testMnemonic)
	f, err := NewKeyfile(k, password, TestKDFParams(), DefaultAddressPrefix)
	if err != nil {
		t.Fatal(err)
	}
	return k, f.Encode()
}

func TestKeyfileRoundTrip(t *testing.T) {
	for _, pw := range [][]byte{nil, []byte("correct horse")} {
		k, data := sealed(t, pw)
		f, err := DecodeKeyfile(data)
		if err != nil {
			t.Fatal(err)
		}
		if f.Encrypted() != (pw != nil) {
			t.Errorf("encrypted = %v with password %q", f.Encrypted(), pw)
		}
		if pw != nil && bytes.Contains(data, []byte(string(k.Bytes()))) {
			t.Error("encrypted keyfile contains the raw key")
		}
		got, err := f.Open(pw)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), k.Bytes()) {
			t.Error("opened a different key")
		}
	}
}

func TestKeyfileDefaultParamsOpen(t *testing.T) {
	if testing.Short() {
		t.Skip("argon2id at 64 MiB")
	}
	k := testKey(t, testMnemonic)
	f, err := NewKeyfile(k, []byte("pw"), DefaultKDFParams(), DefaultAddressPrefix)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(f.Encode()), `"memory_kib": 65536`) {
		t.Errorf("default parameters not recorded: %s", f.Encode())
	}
	if _, err := f.Open([]byte("pw")); err != nil {
		t.Fatal(err)
	}
}

func TestKeyfileWrongPassword(t *testing.T) {
	_, data := sealed(t, []byte("right"))
	f, err := DecodeKeyfile(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open([]byte("wrong")); !errors.Is(err, ErrWrongPassword) {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := f.Open(nil); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("no password: %v", err)
	}
	if _, err := NewKeyfile(testKey(t, testMnemonic), []byte{}, TestKDFParams(), "ct"); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("empty password accepted for encryption: %v", err)
	}
}

// Every header field is bound to the ciphertext: editing one makes the file
// fail to open rather than open to something else.
func TestKeyfileHeaderTamperDetected(t *testing.T) {
	_, data := sealed(t, []byte("pw"))
	edits := map[string]func(m map[string]any){
		"kdf time":   func(m map[string]any) { enc(m)["params"].(map[string]any)["time"] = 2.0 },
		"kdf memory": func(m map[string]any) { enc(m)["params"].(map[string]any)["memory_kib"] = 128.0 },
		"salt":       func(m map[string]any) { enc(m)["salt"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=" },
		"nonce":      func(m map[string]any) { enc(m)["nonce"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
		"ciphertext": func(m map[string]any) {
			c := []byte(m["ciphertext"].(string))
			if c[0] == 'A' {
				c[0] = 'B'
			} else {
				c[0] = 'A'
			}
			m["ciphertext"] = string(c)
		},
		"public key": func(m map[string]any) {
			other := testKey(t, "legal winner thank year wave sausage worth useful legal winner thank yellow").PublicKey()
			m["public_key"] = other.Hex()
			m["address"] = other.Address().String()
		},
	}
	for name, edit := range edits {
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		edit(m)
		b, _ := json.Marshal(m)
		f, err := DecodeKeyfile(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		if _, err := f.Open([]byte("pw")); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("%s edited: open gave %v, want ErrWrongPassword", name, err)
		}
	}
}

func enc(m map[string]any) map[string]any { return m["encryption"].(map[string]any) }

func TestDecodeKeyfileRejectsCorruption(t *testing.T) {
	_, encrypted := sealed(t, []byte("pw"))
	_, plain := sealed(t, nil)
	replace := func(data []byte, old, new string) []byte {
		if !bytes.Contains(data, []byte(old)) {
			t.Fatalf("fixture lacks %q", old)
		}
		return bytes.Replace(data, []byte(old), []byte(new), 1)
	}
	var m map[string]any
	json.Unmarshal(plain, &m)
	secret := m["secret"].(string)
	other := testKey(t, "legal winner thank year wave sausage worth useful legal winner thank yellow")
	cases := []struct {
		name string
		data []byte
		want error
	}{
		{"empty", nil, ErrCorruptKeyfile},
		{"truncated", encrypted[:len(encrypted)/2], ErrCorruptKeyfile},
		{"truncated plain", plain[:len(plain)-20], ErrCorruptKeyfile},
		{"not json", []byte("-----BEGIN PRIVATE KEY-----"), ErrCorruptKeyfile},
		{"trailing data", append(append([]byte(nil), plain...), []byte("{}")...), ErrCorruptKeyfile},
		{"unknown field", replace(plain, `"format"`, `"extra": 1, "format"`), ErrCorruptKeyfile},
		{"other format", replace(plain, KeyfileFormat, "bittensor"), ErrCorruptKeyfile},
		{"newer version", replace(plain, `"version": 1`, `"version": 2`), ErrUnsupportedVersion},
		{"key type", replace(plain, "secp256k1", "ed25519"), ErrCorruptKeyfile},
		{"address mismatch", replace(plain, testKey(t, testMnemonic).PublicKey().Address().String(), other.PublicKey().Address().String()), ErrCorruptKeyfile},
		{"upper-case public key", replace(plain, "02baa4ef", "02BAA4EF"), ErrCorruptKeyfile},
		{"short secret", replace(plain, secret, secret[:62]), ErrCorruptKeyfile},
		{"huge memory", replace(encrypted, `"memory_kib": 64`, `"memory_kib": 4294967295`), ErrCorruptKeyfile},
		{"huge time", replace(encrypted, `"time": 1`, `"time": 100000`), ErrCorruptKeyfile},
		{"zero threads", replace(encrypted, `"threads": 1`, `"threads": 0`), ErrCorruptKeyfile},
		{"unknown kdf", replace(encrypted, "argon2id", "scrypt"), ErrCorruptKeyfile},
		{"unknown cipher", replace(encrypted, cipherXChaCha, "aes-256-gcm"), ErrCorruptKeyfile},
		{"too large", bytes.Repeat([]byte(" "), maxKeyfileSize+1), ErrCorruptKeyfile},
	}
	for _, tc := range cases {
		if _, err := DecodeKeyfile(tc.data); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", tc.name, err, tc.want)
		}
	}
	// A plain keyfile whose secret belongs to another key decodes (the
	// header is consistent) but does not open.
	wrongSecret := replace(plain, secret, hexOf(other.Bytes()))
	f, err := DecodeKeyfile(wrongSecret)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Open(nil); !errors.Is(err, ErrCorruptKeyfile) {
		t.Errorf("mismatched secret: %v", err)
	}
}

func hexOf(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// FuzzDecodeKeyfile feeds arbitrary bytes to the keyfile decoder: it must
// never panic, and whatever it accepts must open (or fail with a wallet
// error) and re-encode to a file that decodes the same.
func FuzzDecodeKeyfile(f *testing.F) {
	_, encrypted := sealed(f, []byte("pw"))
	_, plain := sealed(f, nil)
	f.Add(encrypted)
	f.Add(plain)
	f.Add([]byte(`{"format":"cybertensor-keyfile","version":1}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := DecodeKeyfile(data)
		if err != nil {
			if !errors.Is(err, ErrCorruptKeyfile) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		again, err := DecodeKeyfile(kf.Encode())
		if err != nil {
			t.Fatalf("re-encoded keyfile does not decode: %v", err)
		}
		if again.PublicKey != kf.PublicKey || again.Encrypted() != kf.Encrypted() {
			t.Fatal("re-encoding changed the keyfile")
		}
		if kf.Encrypted() && kf.Encryption.Params.MemoryKiB > 1<<12 {
			return // do not spend the fuzzer's time on expensive KDFs
		}
		k, err := kf.Open([]byte("pw"))
		if err != nil {
			if !errors.Is(err, ErrWrongPassword) && !errors.Is(err, ErrCorruptKeyfile) {
				t.Fatalf("unexpected open error: %v", err)
			}
			return
		}
		if k.PublicKey().Hex() != kf.PublicKey {
			t.Fatal("opened key does not match the header")
		}
	})
}
