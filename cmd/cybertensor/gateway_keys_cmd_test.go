package main

import (
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/gateway/metering"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestGatewayKeysCommands(t *testing.T) {
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	h := []string{"--home", home}
	file := filepath.Join(home, "gateway", "keys.json")

	r := c.ok(append(h, "gateway", "keys", "add", "--name", "my app", "--rps", "2.5", "--daily-requests", "100", "--json")...)
	added := decode[map[string]any](t, r.stdout)
	secret, _ := added["secret"].(string)
	id, _ := added["id"].(string)
	if !strings.HasPrefix(secret, metering.SecretPrefix) || id == "" || added["file"] != file {
		t.Fatalf("add --json: %s", r.stdout)
	}
	lim, _ := added["limits"].(map[string]any)
	if lim["rps"] != 2.5 || lim["burst"] != 3.0 || lim["daily_requests"] != 100.0 {
		t.Fatalf("limits (burst defaults to the rate rounded up): %v", lim)
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	// Text add prints the secret once, with the warning.
	r = c.ok(append(h, "gateway", "keys", "add", "--name", "other")...)
	if !strings.Contains(r.stdout, "secret: ct-") || !strings.Contains(r.stdout, "cannot be shown again") || !strings.Contains(r.stdout, "limits: none") {
		t.Fatalf("add: %s", r.stdout)
	}
	// The secret authenticates against the file the command wrote.
	cfg := metering.DefaultKeyStoreConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	ks, err := metering.OpenKeyStore(file, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if got, ok := ks.Authenticate(secret); !ok || got != id {
		t.Fatalf("secret does not authenticate: %q %v", got, ok)
	}
	// list: no secrets, in JSON or text.
	r = c.ok(append(h, "gateway", "keys", "list", "--json")...)
	list := decode[[]map[string]any](t, r.stdout)
	if len(list) != 2 || list[0]["id"] != id || strings.Contains(r.stdout, secret[3:]) || strings.Contains(r.stdout, `"secret"`) {
		t.Fatalf("list --json: %s", r.stdout)
	}
	r = c.ok(append(h, "gateway", "keys", "list")...)
	if !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "2.5/s burst 3, 100 requests/day") || strings.Contains(r.stdout, secret[3:]) {
		t.Fatalf("list: %s", r.stdout)
	}
	// revoke.
	r = c.ok(append(h, "gateway", "keys", "revoke", id)...)
	if !strings.Contains(r.stdout, "revoked") {
		t.Fatalf("revoke: %s", r.stdout)
	}
	if err := ks.Reload(); err != nil {
		t.Fatal(err)
	}
	if _, ok := ks.Authenticate(secret); ok {
		t.Fatal("revoked key authenticates")
	}
	if r := c.ok(append(h, "gateway", "keys", "list")...); !strings.Contains(r.stdout, "revoked ") {
		t.Fatalf("list after revoke: %s", r.stdout)
	}
	before, _ := os.ReadFile(file)
	// Bad input: exit 2, nothing changed.
	c.fail(exitUsage, append(h, "gateway", "keys", "revoke", "knope")...)
	c.fail(exitUsage, append(h, "gateway", "keys", "revoke")...)
	c.fail(exitUsage, append(h, "gateway", "keys", "add")...)
	c.fail(exitUsage, append(h, "gateway", "keys", "add", "--name", "x", "--burst", "3")...)
	c.fail(exitUsage, append(h, "gateway", "keys", "add", "--name", "x", "--rps", "-1")...)
	c.fail(exitUsage, append(h, "gateway", "keys", "add", "--name", "x", "--daily-tokens", "-5")...)
	c.fail(exitFailure, append(h, "gateway", "keys", "add", "--name", strings.Repeat("n", 65))...)
	if after, _ := os.ReadFile(file); string(after) != string(before) {
		t.Fatal("a refused command changed the key file")
	}
	// A key file others may read is refused, naming the fix.
	os.Chmod(file, 0o644)
	if r := c.fail(exitFailure, append(h, "gateway", "keys", "list")...); !strings.Contains(r.stderr, "chmod 600") {
		t.Fatalf("broad permissions: %s", r.stderr)
	}
	// --keys names another file.
	other := filepath.Join(t.TempDir(), "k.json")
	c.ok(append(h, "gateway", "keys", "add", "--name", "elsewhere", "--keys", other)...)
	if r := c.ok(append(h, "gateway", "keys", "list", "--keys", other)...); !strings.Contains(r.stdout, "elsewhere") {
		t.Fatalf("--keys: %s", r.stdout)
	}
}

// signedReceipt is a receipt signed by key as SPEC.md §2.5 says, built
// here independently of the protocol package.
func signedReceipt(t *testing.T, key *wallet.PrivateKey, client peer.ID, status pb.Status) []byte {
	t.Helper()
	server, err := peer.IDFromPrivateKey(key.Libp2p())
	if err != nil {
		t.Fatal(err)
	}
	reqHash, respHash := sha256.Sum256([]byte("request")), sha256.Sum256([]byte("answer"))
	r := &pb.Receipt{RequestHash: reqHash[:], ResponseHash: respHash[:], Server: server.String(), Client: client.String(), Status: status}
	msg := append([]byte("cybertensor-receipt/1\x00"), r.RequestHash...)
	msg = append(msg, r.ResponseHash...)
	for _, s := range []string{r.Server, r.Client} {
		msg = append(append(msg, byte(len(s))), s...)
	}
	r.Signature = key.Sign(append(msg, byte(status)))
	b, err := proto.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGatewayUsageCommand(t *testing.T) {
	c := newCLI(t)
	home := filepath.Join(t.TempDir(), "home")
	h := []string{"--home", home}
	path := filepath.Join(home, "gateway", "usage.db")
	if r := c.fail(exitFailure, append(h, "gateway", "usage")...); !strings.Contains(r.stderr, "no usage ledger at "+path) {
		t.Fatalf("no ledger: %s", r.stderr)
	}
	os.MkdirAll(filepath.Dir(path), 0o700)
	cfg := metering.DefaultLedgerConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	l, err := metering.OpenLedger(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var keys []*wallet.PrivateKey
	var peers []peer.ID
	for i := range 2 {
		seed := sha256.Sum256(fmt.Appendf(nil, "gateway usage test %d", i))
		k, _ := wallet.PrivateKeyFromBytes(seed[:])
		id, _ := peer.IDFromPrivateKey(k.Libp2p())
		keys, peers = append(keys, k), append(peers, id)
	}
	hotkey := keys[0].PublicKey().Address().String()
	t0 := time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)
	base := gateway.Usage{KeyID: "kaaa", Model: "sn1/text.chat", Netuid: 1, Synapse: "text.chat", Miner: hotkey,
		MinerPeer: peers[0].String(), Status: "OK", HTTPStatus: 200, PromptTokens: 10, CompletionTokens: 20,
		RequestBytes: 100, ResponseBytes: 400, Latency: 30 * time.Millisecond, Attempts: 1}
	var entries []gateway.Usage
	for i := range 4 {
		u := base
		u.Time, u.RequestID = t0.Add(time.Duration(i)*time.Hour), fmt.Sprintf("r%d", i)
		u.Receipt = signedReceipt(t, keys[0], peers[1], pb.Status_OK)
		entries = append(entries, u)
	}
	entries[2].KeyID = "kbbb"
	entries[3].Receipt, entries[3].Status, entries[3].HTTPStatus, entries[3].Miner, entries[3].MinerPeer = nil, "UNAVAILABLE", 503, "", ""
	for _, u := range entries {
		if err := l.Record(u); err != nil {
			t.Fatal(err)
		}
	}
	// While the gateway holds the ledger, usage says who does.
	if r := c.fail(exitFailure, append(h, "gateway", "usage")...); !strings.Contains(r.stderr, "in use") {
		t.Fatalf("ledger in use: %s", r.stderr)
	}
	l.Close()

	r := c.ok(append(h, "gateway", "usage", "--key", "kaaa", "--json", "--verify")...)
	type out struct {
		Key     string `json:"key"`
		Summary metering.Summary
		Entries []struct {
			Seq          uint64 `json:"seq"`
			RequestID    string `json:"request_id"`
			Receipt      []byte `json:"receipt"`
			ReceiptCheck string `json:"receipt_check"`
		}
		Receipts struct{ Valid, Invalid, None int }
	}
	got := decode[out](t, r.stdout)
	if got.Key != "kaaa" || len(got.Entries) != 3 || got.Summary.Total.Requests != 3 || got.Summary.Total.Failures != 1 ||
		got.Summary.Total.CompletionTokens != 60 || got.Receipts.Valid != 2 || got.Receipts.None != 1 {
		t.Fatalf("usage --key kaaa --json --verify: %s", r.stdout)
	}
	if got.Entries[0].RequestID != "r0" || got.Entries[0].ReceiptCheck != "valid" || len(got.Entries[0].Receipt) == 0 {
		t.Fatalf("first entry: %+v", got.Entries[0])
	}
	// --since, as a time and a date.
	if got := decode[out](t, c.ok(append(h, "gateway", "usage", "--since", t0.Add(90*time.Minute).Format(time.RFC3339), "--json")...).stdout); len(got.Entries) != 2 {
		t.Fatalf("--since: %d entries", len(got.Entries))
	}
	if got := decode[out](t, c.ok(append(h, "gateway", "usage", "--since", "2026-12-06", "--json")...).stdout); len(got.Entries) != 0 {
		t.Fatalf("--since a later date: %d entries", len(got.Entries))
	}
	// Text: per key and per miner tables.
	r = c.ok(append(h, "gateway", "usage", "--verify")...)
	for _, want := range []string{"4 requests", "kaaa", "kbbb", hotkey, "receipts: 3 valid, 0 invalid, 1 none"} {
		if !strings.Contains(r.stdout, want) {
			t.Fatalf("usage text lacks %q:\n%s", want, r.stdout)
		}
	}
	c.fail(exitUsage, append(h, "gateway", "usage", "--since", "yesterday")...)

	// A ledger with a forged receipt (signed by another key, claimed for
	// the miner): --verify finds it and exits 1.
	l, err = metering.OpenLedger(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	forged := entries[0]
	forged.RequestID, forged.Time = "forged", t0.Add(5*time.Hour)
	var rc pb.Receipt
	proto.Unmarshal(signedReceipt(t, keys[1], peers[1], pb.Status_OK), &rc)
	rc.Server = peers[0].String()
	forged.Receipt, _ = proto.Marshal(&rc)
	if err := l.Record(forged); err != nil {
		t.Fatal(err)
	}
	l.Close()
	r = c.fail(exitFailure, append(h, "gateway", "usage", "--verify")...)
	if !strings.Contains(r.stdout, "1 invalid") || !strings.Contains(r.stdout, "request forged") || !strings.Contains(r.stderr, "1 of 4 receipts do not verify") {
		t.Fatalf("forged receipt:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
}
