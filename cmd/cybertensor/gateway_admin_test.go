package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/gateway/metering"
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

// pagedUsage is a usage source that records entries into its ledger
// after each page it hands out, as a running gateway would meanwhile.
type pagedUsage struct {
	usageSource
	l     *metering.Ledger
	pages *int
	late  func(page int) []gateway.Usage
}

func (p pagedUsage) page(ctx context.Context, q metering.Query, c metering.Cursor) ([]metering.Entry, metering.Cursor, error) {
	es, next, err := p.usageSource.page(ctx, q, c)
	*p.pages++
	for _, u := range p.late(*p.pages) {
		if err := p.l.Record(u); err != nil {
			return nil, metering.Cursor{}, err
		}
	}
	return es, next, err
}

// testUsage is the i-th usage record of a ledger: key k<i%2>, minutes
// apart; every seventh has a receipt that does not decode.
func testUsage(i int) gateway.Usage {
	u := gateway.Usage{Time: time.Date(2026, 12, 6, 10, i, 0, 0, time.UTC), KeyID: fmt.Sprintf("k%d", i%2), Model: "sn1/text.chat",
		Netuid: 1, Synapse: "text.chat", Miner: "m", MinerPeer: "p", RequestID: fmt.Sprintf("req-%d", i), Status: "OK", HTTPStatus: 200,
		PromptTokens: int64(i), CompletionTokens: 10, Latency: time.Duration(i+1) * time.Millisecond, Attempts: 1}
	if i%7 == 3 {
		u.Receipt = []byte{1, 2, 3}
	}
	return u
}

// TestGatewayUsagePagesLive reads a ledger bigger than a page through a
// running admin address whose pages hold 4 entries, while requests are
// recorded between pages (one after every entry, one among those
// already read): the output is byte for byte what writeJSON prints of
// the ledger as it was when usage began (no entry twice, none lost, the
// summary counting exactly the entries), and a second run has the late
// entries once each.
func TestGatewayUsagePagesLive(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "usage.db")
	lcfg := metering.DefaultLedgerConfig()
	lcfg.Logger = slog.New(slog.DiscardHandler)
	l, err := metering.OpenLedger(file, lcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const n = 30
	for i := range n {
		if err := l.Record(testUsage(i)); err != nil {
			t.Fatal(err)
		}
	}
	hcfg := metering.DefaultUsageHandlerConfig()
	hcfg.PageEntries = 4
	ga, err := startGatewayAdmin("127.0.0.1:0", l, file, hcfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer ga.Close()
	live := liveUsage{url: ga.url, tokenFile: ga.tok}

	// want is writeJSON of the whole answer, made from the ledger now.
	want := func(q metering.Query, verify bool) (string, int) {
		t.Helper()
		es, err := l.Entries(q)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Summarize(q)
		if err != nil {
			t.Fatal(err)
		}
		out := usageJSON{Ledger: file, Key: q.KeyID, Since: q.From, Summary: sum, Entries: []usageEntryJSON{}}
		var counts receiptCounts
		for _, e := range es {
			je := usageEntryJSON{Entry: e}
			if verify {
				je.ReceiptCheck, _ = receiptCheck(e)
				switch je.ReceiptCheck {
				case "none":
					counts.None++
				case "valid":
					counts.Valid++
				default:
					counts.Invalid++
				}
			}
			out.Entries = append(out.Entries, je)
		}
		if verify {
			out.Receipts = &counts
		}
		var b bytes.Buffer
		if err := writeJSON(&b, out); err != nil {
			t.Fatal(err)
		}
		return b.String(), counts.Invalid
	}
	late := 0
	for _, c := range []struct {
		q      metering.Query
		verify bool
	}{
		{metering.Query{}, false},
		{metering.Query{}, true},
		{metering.Query{KeyID: "k1", From: time.Date(2026, 12, 6, 10, 5, 0, 0, time.UTC)}, true},
	} {
		q := c.q
		pinned, _ := l.LastSeq()
		q.AsOf = pinned
		exp, invalid := want(q, c.verify)
		pages := 0
		src := pagedUsage{usageSource: live, l: l, pages: &pages, late: func(page int) []gateway.Usage {
			a, b := testUsage(1000+late), testUsage(page)
			a.RequestID, b.RequestID = fmt.Sprintf("late-%d", late), fmt.Sprintf("late-%d-early", late)
			late++
			return []gateway.Usage{a, b}
		}}
		var out bytes.Buffer
		head := usageJSON{Ledger: file, Key: c.q.KeyID, Since: c.q.From}
		bad, _, err := writeUsage(context.Background(), &out, src, head, c.q, true, c.verify, false)
		if err != nil {
			t.Fatalf("%+v: %v", c, err)
		}
		if out.String() != exp || bad != invalid {
			t.Fatalf("%+v: %d invalid (want %d), output\n%s\nwant (the ledger as of entry %d)\n%s", c, bad, invalid, out.String(), pinned, exp)
		}
		if wantPages := 1 + strings.Count(exp, `"seq"`)/4; !c.verify && pages != wantPages {
			t.Fatalf("%+v: %d pages, want %d", c, pages, wantPages)
		}
	}
	// Now the late entries are listed, each once; the offline read
	// prints the same bytes as the live one.
	q := metering.Query{}
	exp, _ := want(q, false)
	var liveOut, offOut bytes.Buffer
	if _, _, err := writeUsage(context.Background(), &liveOut, live, usageJSON{Ledger: file}, q, true, false, false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := writeUsage(context.Background(), &offOut, ledgerUsage{l: l, pageEntries: 3}, usageJSON{Ledger: file}, q, true, false, false); err != nil {
		t.Fatal(err)
	}
	if liveOut.String() != exp || offOut.String() != exp || strings.Count(exp, `"late-`) != 2*late {
		t.Fatalf("after: live\n%s\noffline\n%s\nwant\n%s", liveOut.String(), offOut.String(), exp)
	}
	// The text summary needs no entries: one request, whatever the size.
	pages := 0
	var text bytes.Buffer
	if _, _, err := writeUsage(context.Background(), &text, pagedUsage{usageSource: live, l: l, pages: &pages, late: func(int) []gateway.Usage { return nil }},
		usageJSON{Ledger: file}, q, false, false, false); err != nil || pages != 0 || !strings.Contains(text.String(), fmt.Sprintf("%d requests in %s", n+2*late, file)) {
		t.Fatalf("text: %d pages, %v\n%s", pages, err, text.String())
	}
	// With --verify the invalid receipts are listed after the counts.
	text.Reset()
	bad, checked, err := writeUsage(context.Background(), &text, live, usageJSON{Ledger: file}, q, false, true, false)
	if err != nil || bad == 0 || checked != bad || strings.Count(text.String(), "\n  entry ") != bad || !strings.Contains(text.String(), fmt.Sprintf("receipts: 0 valid, %d invalid", bad)) {
		t.Fatalf("text --verify: %d of %d bad, %v\n%s", bad, checked, err, text.String())
	}
}

// lyingUsage hands out pages that break the listing's rules.
type lyingUsage struct {
	entries []metering.Entry
	total   int64
	next    func(c metering.Cursor) metering.Cursor
}

func (s lyingUsage) summary(context.Context, metering.Query) (metering.Summary, uint64, string, error) {
	return metering.Summary{Total: metering.Totals{Requests: s.total}}, 100, "", nil
}

func (s lyingUsage) page(_ context.Context, _ metering.Query, c metering.Cursor) ([]metering.Entry, metering.Cursor, error) {
	return s.entries, s.next(c), nil
}

// TestListUsageRefusesBrokenPages: a gateway (or a bug) whose pages
// repeat, go backwards, never end, leave the query or disagree with the
// summary stops the listing with an error, never loops or prints twice.
func TestListUsageRefusesBrokenPages(t *testing.T) {
	e := func(i int, seq uint64) metering.Entry { return metering.Entry{Seq: seq, Usage: testUsage(i)} }
	zero := func(metering.Cursor) metering.Cursor { return metering.Cursor{} }
	same := func(c metering.Cursor) metering.Cursor { return c }
	for _, c := range []struct {
		name string
		src  lyingUsage
		q    metering.Query
		says string
	}{
		{"twice", lyingUsage{entries: []metering.Entry{e(1, 1), e(1, 1)}, total: 2, next: zero}, metering.Query{}, "out of order"},
		{"backwards", lyingUsage{entries: []metering.Entry{e(2, 2), e(1, 1)}, total: 2, next: zero}, metering.Query{}, "out of order"},
		{"stuck", lyingUsage{total: 5, next: func(metering.Cursor) metering.Cursor { return metering.CursorOf(e(0, 1)) }}, metering.Query{}, "does not move"},
		{"repeats pages", lyingUsage{entries: []metering.Entry{e(1, 1)}, total: 5, next: func(metering.Cursor) metering.Cursor { return metering.CursorOf(e(9, 9)) }}, metering.Query{}, "out of order"},
		{"past the pin", lyingUsage{entries: []metering.Entry{e(1, 101)}, total: 1, next: zero}, metering.Query{}, "not one the query selects"},
		{"other key", lyingUsage{entries: []metering.Entry{e(1, 1)}, total: 1, next: zero}, metering.Query{KeyID: "k0"}, "not one the query selects"},
		{"more than counted", lyingUsage{entries: []metering.Entry{e(1, 1), e(2, 2)}, total: 1, next: zero}, metering.Query{}, "more entries"},
		{"fewer than counted", lyingUsage{entries: []metering.Entry{e(1, 1)}, total: 3, next: zero}, metering.Query{}, "summary counts 3"},
		{"no next, empty", lyingUsage{total: 1, next: same}, metering.Query{}, "summary counts 1"},
	} {
		_, _, err := writeUsage(context.Background(), io.Discard, c.src, usageJSON{}, c.q, true, false, false)
		if err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.says)
		}
	}
}
