package metering

import (
	"bytes"
	"errors"
	"fmt"
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

// getAnswer asks srv for q and decodes the answer.
func getAnswer(t *testing.T, srv *httptest.Server, q UsageQuery) UsageAnswer {
	t.Helper()
	code, body := getUsage(t, srv, "GET", testAdminToken, q.Encode())
	if code != 200 {
		t.Fatalf("%+v: %d %s", q, code, body)
	}
	a, err := DecodeUsageAnswer(strings.NewReader(body))
	if err != nil {
		t.Fatalf("%+v: %v\n%s", q, err, body)
	}
	return a
}

// listAll pages through q's entries (pinned at the first page's as_of),
// calling between after each page but the last.
func listAll(t *testing.T, srv *httptest.Server, q UsageQuery, between func(page int)) (entries []Entry, pages int) {
	t.Helper()
	q.Entries = true
	for {
		a := getAnswer(t, srv, q)
		if a.Summary != nil {
			t.Fatalf("a page with a summary: %+v", a)
		}
		if q.AsOf != 0 && a.AsOf != q.AsOf {
			t.Fatalf("page %d pinned at %d, asked %d", pages, a.AsOf, q.AsOf)
		}
		pages++
		entries = append(entries, a.Entries...)
		if a.Next.IsZero() {
			return entries, pages
		}
		if bytes.Compare(a.Next[:], q.Cursor[:]) <= 0 {
			t.Fatalf("page %d: next %s not after %s", pages, a.Next, q.Cursor)
		}
		q.AsOf, q.Cursor = a.AsOf, a.Next
		if between != nil {
			between(pages)
		}
	}
}

func TestUsageHandlerAnswersAsTheLedger(t *testing.T) {
	cfg := testUsageHandlerConfig()
	cfg.PageEntries = 3
	l, srv := usageServer(t, 20, cfg)
	for _, q := range []Query{
		{},
		{KeyID: "k1"},
		{From: t0.Add(3 * time.Minute), To: t0.Add(9 * time.Minute)},
		{KeyID: "k0", From: t0.Add(5 * time.Minute)},
		{KeyID: "nobody"},
	} {
		want, err := l.Entries(q)
		if err != nil {
			t.Fatal(err)
		}
		sum, err := l.Summarize(q)
		if err != nil {
			t.Fatal(err)
		}
		a := getAnswer(t, srv, UsageQuery{Query: q})
		if a.Summary == nil || !reflect.DeepEqual(*a.Summary, sum) || a.Ledger != "/x/usage.db" || a.AsOf != 20 || a.Entries != nil {
			t.Fatalf("%+v: summary answer %+v\nwant %+v (ledger %q)", q, a, sum, a.Ledger)
		}
		got, pages := listAll(t, srv, UsageQuery{Query: q}, nil)
		if len(got) != len(want) || (len(want) > 0 && !reflect.DeepEqual(got, want)) {
			t.Fatalf("%+v: entries\n%+v\nwant\n%+v", q, got, want)
		}
		if wantPages := max(1, (len(want)+2)/3); pages != wantPages {
			t.Fatalf("%+v: %d entries in %d pages, want %d", q, len(want), pages, wantPages)
		}
	}
}

// TestUsageHandlerPagesAPinnedListing pages a ledger bigger than a page
// while records are appended between pages, one of them timed before the
// page already read: the listing is the ledger as of its first page,
// every entry once, none of those appended after; the next listing has
// them, once each.
func TestUsageHandlerPagesAPinnedListing(t *testing.T) {
	cfg := testUsageHandlerConfig()
	cfg.PageEntries = 4
	l, srv := usageServer(t, 22, cfg)
	want, err := l.Entries(Query{})
	if err != nil {
		t.Fatal(err)
	}
	extra := 0
	got, pages := listAll(t, srv, UsageQuery{}, func(page int) {
		for _, i := range []int{100 + page, page} { // after every entry, and among those read
			u := usage(i)
			u.RequestID = fmt.Sprintf("late-%d-%d", page, i)
			if err := l.Record(u); err != nil {
				t.Fatal(err)
			}
			extra++
		}
	})
	if pages != 6 || !reflect.DeepEqual(got, want) {
		t.Fatalf("%d pages: %d entries, want the %d before the first page exactly:\n%+v", pages, len(got), len(want), got)
	}
	sum := getAnswer(t, srv, UsageQuery{Query: Query{AsOf: 22}})
	if sum.Summary.Total.Requests != 22 {
		t.Fatalf("pinned summary: %+v", sum.Summary.Total)
	}
	all, err := l.Entries(Query{})
	if err != nil {
		t.Fatal(err)
	}
	again, _ := listAll(t, srv, UsageQuery{}, nil)
	seen := map[uint64]bool{}
	for _, e := range again {
		if seen[e.Seq] {
			t.Fatalf("entry %d listed twice", e.Seq)
		}
		seen[e.Seq] = true
	}
	if len(again) != 22+extra || !reflect.DeepEqual(again, all) {
		t.Fatalf("second listing: %d entries, want %d", len(again), 22+extra)
	}
	// Pages bounded by bytes hold at least one entry each.
	cfg.PageEntries, cfg.MaxEntryBytes = 1000, 1
	_, srv1 := usageServer(t, 5, cfg)
	if got, pages := listAll(t, srv1, UsageQuery{}, nil); len(got) != 5 || pages != 5 {
		t.Fatalf("1-byte pages: %d entries in %d pages", len(got), pages)
	}
	cfg.MaxEntryBytes = 2000 // about 5 entries
	_, srv2 := usageServer(t, 20, cfg)
	if got, pages := listAll(t, srv2, UsageQuery{}, nil); len(got) != 20 || pages < 4 || pages > 6 {
		t.Fatalf("2000-byte pages: %d entries in %d pages", len(got), pages)
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
		{"GET", testAdminToken, "cursor=" + strings.Repeat("0a", 16), 400, "cursor without entries"},
		{"GET", testAdminToken, "entries=1&cursor=0a", 400, "cursor"},
		{"GET", testAdminToken, "entries=1&cursor=" + strings.Repeat("0", 32), 400, "cursor"},
		{"GET", testAdminToken, "as_of=0", 400, "as_of"},
		{"GET", testAdminToken, "as_of=-1", 400, "as_of"},
	} {
		code, body := getUsage(t, srv, c.method, c.token, c.query)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("%s %q with token %q: %d %s, want %d saying %q", c.method, c.query, c.token, code, body, c.code, c.says)
		}
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
		`{"ledger":"x","summary":{"total":{"requests":1}}}`, // entries summed at as_of 0
		`{"ledger":"x","as_of":5,"entries":[{"seq":0,"time":"2026-01-01T00:00:00Z","key_id":"k"}]}`,
		`{"ledger":"x","as_of":5,"entries":[{"seq":1,"time":"2026-01-01T00:00:00Z","key_id":"k k"}]}`,
		`{"ledger":"x","as_of":5,"entries":[{"seq":1,"time":"1999-01-01T00:00:00Z","key_id":"k"}]}`,
		`{"ledger":"x","as_of":5,"entries":[{"seq":6,"time":"2026-01-01T00:00:00Z","key_id":"k"}]}`,
		`{"ledger":"x","as_of":5,"entries":[{"seq":2,"time":"2026-01-01T00:00:01Z","key_id":"k"},{"seq":1,"time":"2026-01-01T00:00:00Z","key_id":"k"}]}`,
		`{"ledger":"x","as_of":5,"entries":[{"seq":1,"time":"2026-01-01T00:00:00Z","key_id":"k"},{"seq":1,"time":"2026-01-01T00:00:00Z","key_id":"k"}]}`,
		`{"ledger":"x","as_of":5,"entries":[{"seq":2,"time":"2026-01-01T00:00:01Z","key_id":"k"}],"next":"00000000000000000000000000000001"}`,
		`{"ledger":"x","as_of":5,"next":"zz"}`,
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
