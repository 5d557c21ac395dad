package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/backend/openaitest"
)

// The openai backend's key comes from --openai-key-file (first line),
// else CYBERTENSOR_OPENAI_KEY, else OPENAI_API_KEY, and reaches the
// server; the --openai-* flags need the openai backend.
func TestOpenAIBackendFlags(t *testing.T) {
	up := openaitest.New(openaitest.Config{APIKey: "from-file", Answer: "ok"})
	defer up.Close()
	environ := map[string]string{envOpenAIKeyCommon: "common", envOpenAIKey: "ours"}
	getenv := func(k string) string { return environ[k] }
	file := filepath.Join(t.TempDir(), "key")
	os.WriteFile(file, []byte("from-file\r\nsecond line\n"), 0o600)

	for _, c := range []struct {
		name string
		of   openaiFlags
		env  map[string]string
		want string
	}{
		{"file", openaiFlags{keyFile: file}, environ, "from-file"},
		{"ours", openaiFlags{}, environ, "ours"},
		{"common", openaiFlags{}, map[string]string{envOpenAIKeyCommon: "common"}, "common"},
		{"none", openaiFlags{}, nil, ""},
	} {
		got, err := c.of.apiKey(func(k string) string { return c.env[k] })
		if err != nil || got != c.want {
			t.Errorf("%s: %q %v", c.name, got, err)
		}
	}
	gen, closeBackend, err := parseBackend("openai:m@"+up.URL, openaiFlags{keyFile: file, timeout: 5 * time.Second}, getenv)
	if err != nil {
		t.Fatal(err)
	}
	defer closeBackend()
	var out string
	if err := gen.Generate(context.Background(), "hi", func(s string) error { out += s; return nil }); err != nil || out != "ok" {
		t.Fatalf("through the key file: %q %v", out, err)
	}
	if _, ok := gen.(backend.Chatter); !ok {
		t.Fatal("the openai backend does not chat")
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, []byte("\nkey on the second line\n"), 0o600)
	for name, run := range map[string]func() error{
		"key file without openai": func() error {
			_, _, err := parseBackend("retrieval", openaiFlags{keyFile: file}, getenv)
			return err
		},
		"missing key file": func() error {
			_, _, err := parseBackend("openai:m@"+up.URL, openaiFlags{keyFile: file + ".no", timeout: time.Second}, getenv)
			return err
		},
		"empty first line": func() error {
			_, _, err := parseBackend("openai:m@"+up.URL, openaiFlags{keyFile: empty, timeout: time.Second}, getenv)
			return err
		},
	} {
		if err := run(); err == nil || !strings.Contains(err.Error(), "openai") {
			t.Errorf("%s: %v", name, err)
		}
	}
}
