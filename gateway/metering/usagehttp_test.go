package metering

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

const testAdminToken = "cta-0123456789abcdef0123456789abcdef0123"

// usageServer serves a ledger holding usage(0..n-1) on a loopback HTTP
// server.
func usageServer(t *testing.T, n int, cfg UsageHandlerConfig) (*Ledger, *httptest.Server) {
	t.Helper()
	l := openLedger(t, filepath.Join(t.TempDir(), "usage.db"), testLedgerConfig())
	for i := range n {
		if err := l.Record(usage(i)); err != nil {
			t.Fatal(err)
		}
	}
	h, err := NewUsageHandler(l, cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return l, srv
}

func testUsageHandlerConfig() UsageHandlerConfig {
	cfg := DefaultUsageHandlerConfig()
	cfg.Token, cfg.Ledger, cfg.Logger = testAdminToken, "/x/usage.db", slog.New(slog.DiscardHandler)
	return cfg
}

// getUsage asks srv with the token and returns the status and body.
func getUsage(t *testing.T, srv *httptest.Server, method, token, query string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+"/usage?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestUsageHandlerAnswersAsTheLedger(t *testing.T) {
	l, srv := usageServer(t, 20, testUsageHandlerConfig())
	for _, q := range []UsageQuery{
		{Entries: true},
		{Query: Query{KeyID: "k1"}, Entries: true},
		{Query: Query{From: t0.Add(3 * time.Minute), To: t0.Add(9 * time.Minute)}, Entries: true},
		{Query: Query{KeyID: "k0", From: t0.Add(5 * time.Minute)}},
		{Query: Query{KeyID: "nobody"}, Entries: true},
	} {
		code, body := getUsage(t, srv, "GET", testAdminToken, q.Encode())
		if code != 200 {
			t.Fatalf("%+v: %d %s", q, code, body)
		}
		a, err := DecodeUsageAnswer(strings.NewReader(body))
		if err != nil {
			t.Fatalf("%+v: %v\n%s", q, err, body)
		}
		want, err := l.Entries(q.Query)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Summarize(q.Query)
		if err != nil {
			t.Fatal(err)
		}
		if !q.Entries {
			want = nil
		}
		if len(a.Entries) != len(want) || (len(want) > 0 && !reflect.DeepEqual(a.Entries, want)) {
			t.Fatalf("%+v: entries\n%+v\nwant\n%+v", q, a.Entries, want)
		}
		if !reflect.DeepEqual(a.Summary, sum) || a.Ledger != "/x/usage.db" {
			t.Fatalf("%+v: summary %+v\nwant %+v (ledger %q)", q, a.Summary, sum, a.Ledger)
		}
	}
}

func TestUsageHandlerRefuses(t *testing.T) {
	cfg := testUsageHandlerConfig()
	cfg.MaxEntryBytes = 2000 // about 5 entries
	l, srv := usageServer(t, 20, cfg)
	for _, c := range []struct {
		method, token, query string
		code                 int
		says                 string
	}{
		{"GET", "", "", 401, "admin token"},
		{"GET", testAdminToken + "x", "", 401, "admin token"},
		{"GET", testAdminToken[:len(testAdminToken)-1], "entries=1", 401, "admin token"},
		{"POST", "", "", 401, "admin token"}, // unauthenticated learns nothing, not even the method
		{"POST", testAdminToken, "", 405, "GET only"},
		{"GET", testAdminToken, "key=a%20b", 400, "key"},
		{"GET", testAdminToken, "since=yesterday", 400, "RFC 3339"},
		{"GET", testAdminToken, "key=k0&key=k1", 400, "2 times"},
		{"GET", testAdminToken, "limit=5", 400, "unknown parameter"},
		{"GET", testAdminToken, "entries=yes", 400, "0 or 1"},
		{"GET", testAdminToken, "key=%zz", 400, "invalid usage query"},
		{"GET", testAdminToken, "key=" + strings.Repeat("k", MaxUsageQuery), 400, "more than 1024"},
		{"GET", testAdminToken, "entries=1", 413, "narrow the query"},
	} {
		code, body := getUsage(t, srv, c.method, c.token, c.query)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("%s %q with token %q: %d %s, want %d saying %q", c.method, c.query, c.token, code, body, c.code, c.says)
		}
	}
	// Few enough entries pass under the same bound; the summary alone
	// always does.
	if code, body := getUsage(t, srv, "GET", testAdminToken, "entries=1&until="+t0.Add(3*time.Minute).Format(time.RFC3339)); code != 200 {
		t.Fatalf("3 entries: %d %s", code, body)
	}
	if code, body := getUsage(t, srv, "GET", testAdminToken, ""); code != 200 || !strings.Contains(body, `"requests":20`) {
		t.Fatalf("summary: %d %s", code, body)
	}
	// A closed ledger (a gateway stopping) is 503.
	l.Close()
	if code, body := getUsage(t, srv, "GET", testAdminToken, ""); code != 503 {
		t.Fatalf("closed ledger: %d %s", code, body)
	}
	// A short token is refused at construction.
	cfg.Token = "short"
	if _, err := NewUsageHandler(l, cfg); err == nil {
		t.Fatal("a 5-byte admin token accepted")
	}
}

func TestDecodeUsageAnswerRefuses(t *testing.T) {
	for _, s := range []string{
		``,
		`{"ledger":"x","summary":{},"extra":1}`,
		`{"ledger":"x","summary":{}} {}`,
		`{"ledger":"x","summary":{"total":{"requests":-1}}}`,
		`{"ledger":"x","summary":{"total":{"requests":1,"failures":2}}}`,
		`{"ledger":"x","summary":{},"entries":[{"seq":0,"time":"2026-01-01T00:00:00Z","key_id":"k"}]}`,
		`{"ledger":"x","summary":{},"entries":[{"seq":1,"time":"2026-01-01T00:00:00Z","key_id":"k k"}]}`,
		`{"ledger":"x","summary":{},"entries":[{"seq":1,"time":"1999-01-01T00:00:00Z","key_id":"k"}]}`,
	} {
		if _, err := DecodeUsageAnswer(strings.NewReader(s)); !errors.Is(err, ErrBadUsageAnswer) {
			t.Errorf("%s: %v", s, err)
		}
	}
	big := `{"ledger":"` + strings.Repeat("x", MaxUsageAnswer) + `","summary":{}}`
	if _, err := DecodeUsageAnswer(strings.NewReader(big)); !errors.Is(err, ErrBadUsageAnswer) || !strings.Contains(err.Error(), "more than") {
		t.Fatalf("oversized answer: %v", err)
	}
}
