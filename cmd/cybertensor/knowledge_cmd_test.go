package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/dht"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/wallet"
)

type searchJSON struct {
	CID   string  `json:"cid"`
	Title string  `json:"title"`
	Score float64 `json:"score"`
	Local bool    `json:"local"`
}

type lsJSON struct {
	CID    string      `json:"cid"`
	Size   int64       `json:"size"`
	Pinned bool        `json:"pinned"`
	Object *objectJSON `json:"object"`
}

// publish, ls, search, get, pin, unpin and gc on a home's library.
func TestKnowledgeCommands(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)

	pub := decode[objectJSON](t, c.ok("--home", home, "knowledge", "publish", "--text", "Bonds make validators earn dividends.",
		"--title", "Bonds", "--tags", "yuma,bonds", "--netuid", "2", "--json").stdout)
	if pub.Title != "Bonds" || pub.Netuid != 2 || strings.Join(pub.Tags, ",") != "yuma,bonds" || !strings.HasPrefix(pub.MediaType, "text/plain") {
		t.Fatalf("published %+v", pub)
	}
	// A file: its body CID is what "ipfs add --cid-version=1" gives.
	file := writeFile(t, dir, "file1.txt", "file1\n")
	f := decode[objectJSON](t, c.ok("--home", home, "knowledge", "publish", file, "--json").stdout)
	if f.Body != "bafkreihm3rktn5z33luic3youqdsn326toaq3ekesmdvsa53sbrd3f5r3a" || f.Title != "file1.txt" {
		t.Fatalf("file object %+v", f)
	}
	ls := decode[[]lsJSON](t, c.ok("--home", home, "knowledge", "ls", "--json").stdout)
	if len(ls) != 2 || ls[0].CID != pub.CID || !ls[0].Pinned || ls[0].Object == nil || ls[0].Object.Title != "Bonds" {
		t.Fatalf("ls %+v", ls)
	}
	if out := c.ok("--home", home, "knowledge", "ls").stdout; !strings.Contains(out, "Bonds") || !strings.Contains(out, "2 entries") {
		t.Fatalf("ls: %s", out)
	}
	hits := decode[[]searchJSON](t, c.ok("--home", home, "knowledge", "search", "dividends", "--json").stdout)
	if len(hits) != 1 || hits[0].CID != pub.CID || !hits[0].Local {
		t.Fatalf("search %+v", hits)
	}
	if got := c.ok("--home", home, "knowledge", "get", pub.CID).stdout; got != "Bonds make validators earn dividends." {
		t.Fatalf("get: %q", got)
	}
	out := filepath.Join(dir, "out")
	c.ok("--home", home, "knowledge", "get", f.CID, "-o", out)
	if b, _ := os.ReadFile(out); string(b) != "file1\n" {
		t.Fatalf("get -o: %q", b)
	}
	c.ok("--home", home, "knowledge", "unpin", f.CID)
	gc := decode[knowledge.GCStats](t, c.ok("--home", home, "knowledge", "gc", "--json").stdout)
	if gc.Roots != 1 {
		t.Fatalf("gc %+v", gc)
	}
	r := c.fail(1, "--home", home, "knowledge", "get", f.CID)
	if !strings.Contains(r.stderr, "not in the library") {
		t.Fatalf("get after gc: %s", r.stderr)
	}
	c.ok("--home", home, "knowledge", "pin", pub.CID)

	// Bad input: exit 2 and a clear message.
	for _, args := range [][]string{
		{"knowledge", "get", "not-a-cid"},
		{"knowledge", "pin", "bafyreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		{"knowledge", "publish"},
		{"knowledge", "publish", file, "--text", "x"},
		{"knowledge", "publish", "--text", "x", "--title", strings.Repeat("t", 300)},
		{"knowledge", "get", pub.CID, "--peer", "nonsense"},
	} {
		r := c.fail(2, append([]string{"--home", home}, args...)...)
		if len(r.stderr) < 10 {
			t.Fatalf("%v: %q", args, r.stderr)
		}
	}
	if r := c.fail(2, "--home", home, "knowledge", "get", "bafy"); !strings.Contains(r.stderr, "invalid CID") {
		t.Fatalf("bad CID message: %s", r.stderr)
	}
}

// servingLibrary starts a neuron serving a library, in-process, and
// returns the library and the neuron's address with its peer ID.
func servingLibrary(t *testing.T) (*knowledge.Library, string) {
	t.Helper()
	seed := sha256.Sum256([]byte("cli knowledge server"))
	k, _ := wallet.PrivateKeyFromBytes(seed[:])
	n, err := node.New(context.Background(), node.DefaultTestConfig(k))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close() })
	dcfg := dht.DefaultConfig(knowledgeDHTChain)
	dcfg.Logger = slog.New(slog.DiscardHandler)
	d, err := dht.New(n, k, noRegistry{}, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	cfg := knowledge.DefaultTestConfig(t.TempDir())
	cfg.Key = k
	lib, err := knowledge.Open(cfg, knowledge.WithNetwork(n, d))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lib.Close() })
	return lib, n.FullAddrs()[0]
}

// get --peer fetches from the swarm what the local library lacks.
func TestKnowledgeGetFromSwarm(t *testing.T) {
	lib, addr := servingLibrary(t)
	body := bytes.Repeat([]byte("knowledge "), 300_000) // 3 MB: progress is shown
	obj, err := lib.Publish(context.Background(), bytes.NewReader(body), knowledge.Meta{Title: "served"})
	if err == nil || obj == nil {
		// The lone server has no DHT peers to provide to; the object is
		// stored all the same.
		t.Logf("publish: %v", err)
	}

	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	out := filepath.Join(dir, "body")
	r := c.ok("--home", home, "--log-level", "error", "knowledge", "get", obj.CID.String(), "--peer", addr, "--listen", "/ip4/127.0.0.1/tcp/0", "-o", out)
	if b, _ := os.ReadFile(out); !bytes.Equal(b, body) {
		t.Fatalf("fetched %d bytes", len(b))
	}
	if !strings.Contains(r.stderr, "fetched 2.9 of 2.9 MiB (100%)") {
		t.Fatalf("no progress on stderr: %q", r.stderr)
	}
	// Now local: no --peer needed, and it is unpinned.
	ls := decode[[]lsJSON](t, c.ok("--home", home, "knowledge", "ls", "--json").stdout)
	if len(ls) != 1 || ls[0].Pinned || ls[0].Size != int64(len(body)) {
		t.Fatalf("ls %+v", ls)
	}
}
