package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
)

func TestGatewayAdminAddressMustBeLoopback(t *testing.T) {
	c := newCLI(t)
	for _, addr := range []string{"0.0.0.0:8001", "192.168.1.2:8001", "localhost:8001", "[::]:8001", "127.0.0.1"} {
		r := c.fail(exitUsage, "--home", t.TempDir(), "gateway", "--netuid", "1", "--admin", addr)
		if !strings.Contains(r.stderr, "--admin") {
			t.Errorf("--admin %s: %s", addr, r.stderr)
		}
	}
	for _, u := range []string{"https://127.0.0.1:1", "127.0.0.1:1", "http://127.0.0.1", "http://127.0.0.1:1/usage?key=x", "http://u:p@127.0.0.1:1"} {
		if r := c.fail(exitUsage, "--home", t.TempDir(), "gateway", "usage", "--admin", u); !strings.Contains(r.stderr, "admin URL") {
			t.Errorf("usage --admin %s: %s", u, r.stderr)
		}
	}
	if r := c.fail(exitUsage, "--home", t.TempDir(), "gateway", "usage", "--key", "a b"); !strings.Contains(r.stderr, "--key") {
		t.Errorf("usage --key 'a b': %s", r.stderr)
	}
}

// TestGatewayUsageWhileRunning runs a miner and the gateway command (with
// its real key store and ledger) on a CometBFT chain, sends it requests,
// and reads them with "gateway usage" while the gateway holds the ledger:
// through the admin address it recorded, with its token; a wrong token is
// refused; after the gateway stops, the offline read prints the same.
func TestGatewayUsageWhileRunning(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node, a miner and the gateway")
	}
	c := newCLI(t)
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	h := []string{"--home", home}
	pw := writeFile(t, dir, "pw", "pw")
	c.ok("--home", home, "wallet", "new", "--name", "default", "--password-file", pw)
	c.ok("--home", home, "wallet", "new", "--name", "m", "--password-file", pw)
	fund := decode[infoJSON](t, c.ok("--home", home, "wallet", "show", "--name", "m", "--json").stdout).Coldkey.Address + "=100000"
	url := runningChainWith(t, c, home, chain.YumaEpoch, "--fund", fund)
	c.ok("--home", home, "subnets", "create", "--name", "qa", "--password-file", pw, "--chain", url)
	c.ok("--home", home, "subnets", "register", "--netuid", "1", "--password-file", pw, "--chain", url)
	key := decode[map[string]any](t, c.ok(append(h, "gateway", "keys", "add", "--name", "app", "--json")...).stdout)
	secret, keyID := key["secret"].(string), key["id"].(string)

	stopMiner, minerOut := startCommand(t, home, "miner", "run", "--wallet", "m", "--netuid", "1", "--listen", "/ip4/127.0.0.1/tcp/0", "--password-file", pw, "--chain", url)
	defer stopMiner()
	waitOutput(t, "the miner", minerOut, regexp.MustCompile(`miner uid \d+ on subnet 1 serving`))
	stopGateway, gwOut := startCommand(t, home, "gateway", "--netuid", "1", "--password-file", pw, "--chain", url, "--listen", "127.0.0.1:0")
	stopped := false
	defer func() {
		if !stopped {
			stopGateway()
		}
	}()
	base := waitOutput(t, "the gateway", gwOut, regexp.MustCompile(`gateway for subnet 1 at (http://\S+)/v1 `))[1]
	admin := waitOutput(t, "the admin address", gwOut, regexp.MustCompile(`usage readable while running at (http://\S+)/usage `))[1]

	hc := &http.Client{Transport: &http.Transport{}}
	defer hc.CloseIdleConnections()
	do := func(method, u, auth, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, u, strings.NewReader(body))
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Two requests (the miner answers text.chat, or NOT_FOUND on a main
	// without it: either way each is a ledger entry).
	var codes []int
	for range 2 {
		code, body := do("POST", base+"/v1/chat/completions", secret, `{"model":"sn1/text.chat","messages":[{"role":"user","content":"hi"}]}`)
		if code != 200 && code != 503 {
			t.Fatalf("chat: %d %s", code, body)
		}
		codes = append(codes, code)
	}

	// The token and the address are next to the ledger, 0600.
	gwDir := filepath.Join(home, "gateway")
	for _, f := range []string{"admin.json", "admin.token"} {
		if fi, err := os.Stat(filepath.Join(gwDir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", f, fi, err)
		}
	}
	token, err := os.ReadFile(filepath.Join(gwDir, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}

	// gateway usage, with the ledger locked by the running gateway, asks it.
	live := c.ok(append(h, "gateway", "usage", "--json", "--verify")...)
	u := decode[usageJSON](t, live.stdout)
	if u.Summary.Total.Requests != 2 || len(u.Entries) != 2 || u.Ledger != defaultGatewayUsageFile(home) {
		t.Fatalf("live usage: %s", live.stdout)
	}
	for i, e := range u.Entries {
		if e.KeyID != keyID || e.HTTPStatus != codes[i] || e.Model != "sn1/text.chat" || e.ReceiptCheck == "" {
			t.Fatalf("entry %d: %+v (status %d)", i, e, codes[i])
		}
		if codes[i] == 200 && e.ReceiptCheck != "valid" {
			t.Fatalf("entry %d of a 200 has receipt check %q", i, e.ReceiptCheck)
		}
	}
	if u.Receipts == nil || u.Receipts.Valid+u.Receipts.None != 2 || u.Receipts.Invalid != 0 {
		t.Fatalf("receipts %+v", u.Receipts)
	}
	if r := c.ok(append(h, "gateway", "usage", "--key", keyID)...); !strings.Contains(r.stdout, "2 requests in "+defaultGatewayUsageFile(home)+" for key "+keyID) || !strings.Contains(r.stdout, keyID) {
		t.Fatalf("live text usage: %s", r.stdout)
	}
	if r := c.ok(append(h, "gateway", "usage", "--json", "--key", "knobody")...); decode[usageJSON](t, r.stdout).Summary.Total.Requests != 0 {
		t.Fatalf("another key: %s", r.stdout)
	}
	// --admin names the address; the answer names the gateway's ledger.
	if r := c.ok(append(h, "gateway", "usage", "--json", "--admin", admin)...); decode[usageJSON](t, r.stdout).Summary.Total.Requests != 2 {
		t.Fatalf("--admin: %s", r.stdout)
	}

	// A wrong token is refused (401), by the command and over HTTP; the
	// public API address serves no usage.
	wrong := filepath.Join(dir, "wrong.token")
	if err := os.WriteFile(wrong, []byte("cta-"+strings.Repeat("A", 43)), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := c.fail(exitFailure, append(h, "gateway", "usage", "--admin-token", wrong)...); !strings.Contains(r.stderr, "401") {
		t.Fatalf("wrong token: %s", r.stderr)
	}
	if code, body := do("GET", admin+"/usage", "", ""); code != 401 || strings.Contains(body, keyID) {
		t.Fatalf("no token: %d %s", code, body)
	}
	if code, body := do("GET", admin+"/usage?entries=1", string(token[:len(token)-2]), ""); code != 401 || strings.Contains(body, keyID) {
		t.Fatalf("truncated token: %d %s", code, body)
	}
	if code, body := do("GET", admin+"/usage?entries=1&key="+keyID, strings.TrimSpace(string(token)), ""); code != 200 || !strings.Contains(body, keyID) {
		t.Fatalf("right token: %d %s", code, body)
	}
	if code, body := do("GET", base+"/usage?entries=1", strings.TrimSpace(string(token)), ""); code == 200 || strings.Contains(body, keyID) {
		t.Fatalf("public address served usage: %d %s", code, body)
	}

	// A clean stop removes the admin files; the ledger, read offline now,
	// prints exactly what the live read did.
	stopGateway()
	stopped = true
	for _, f := range []string{"admin.json", "admin.token"} {
		if _, err := os.Stat(filepath.Join(gwDir, f)); !os.IsNotExist(err) {
			t.Fatalf("%s after a clean exit: %v", f, err)
		}
	}
	if off := c.ok(append(h, "gateway", "usage", "--json", "--verify")...); off.stdout != live.stdout {
		t.Fatalf("offline read differs from the live one:\n%s\nlive:\n%s", off.stdout, live.stdout)
	}
	// Stopped, --admin fails clearly rather than printing nothing.
	if r := c.fail(exitFailure, append(h, "gateway", "usage", "--admin", admin, "--admin-token", wrong)...); !strings.Contains(r.stderr, "admin address") {
		t.Fatalf("--admin of a stopped gateway: %s", r.stderr)
	}

	// A killed gateway's admin files are removed by the next one, even
	// with --admin off; usage then says the ledger is in use and why it
	// cannot ask.
	stale := `{"url":"` + admin + `","token_file":"x","ledger":"y","pid":1}`
	if err := os.WriteFile(filepath.Join(gwDir, "admin.json"), []byte(stale), 0o600); err != nil {
		t.Fatal(err)
	}
	stopOff, offOut := startCommand(t, home, "gateway", "--netuid", "1", "--password-file", pw, "--chain", url, "--listen", "127.0.0.1:0", "--admin", "off")
	defer stopOff()
	waitOutput(t, "the gateway without an admin address", offOut, regexp.MustCompile(`gateway for subnet 1 at `))
	if _, err := os.Stat(filepath.Join(gwDir, "admin.json")); !os.IsNotExist(err) {
		t.Fatalf("stale admin.json kept: %v", err)
	}
	if r := c.fail(exitFailure, append(h, "gateway", "usage")...); !strings.Contains(r.stderr, "in use") || !strings.Contains(r.stderr, "cannot be asked") {
		t.Fatalf("usage of a gateway without an admin address: %s", r.stderr)
	}
}
