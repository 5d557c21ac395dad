package metering

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/internal/lockfile"
)

var t0 = time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)

func testLedgerConfig() LedgerConfig {
	cfg := DefaultLedgerConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	return cfg
}

func openLedger(t *testing.T, path string, cfg LedgerConfig) *Ledger {
	t.Helper()
	l, err := OpenLedger(path, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// usage makes the i-th test record: key k<i%2>, miner m<i%3>, every
// fifth one failed.
func usage(i int) gateway.Usage {
	u := gateway.Usage{
		Time: t0.Add(time.Duration(i) * time.Minute), KeyID: fmt.Sprintf("k%d", i%2), Model: "sn1/text.chat",
		Netuid: 1, Synapse: "text.chat", Miner: fmt.Sprintf("m%d", i%3), MinerPeer: fmt.Sprintf("p%d", i%3),
		RequestID: fmt.Sprintf("req-%d", i), Status: "OK", HTTPStatus: 200,
		PromptTokens: int64(10 + i), CompletionTokens: int64(100 + i), RequestBytes: int64(200 + i), ResponseBytes: int64(1000 + i),
		Latency: time.Duration(i+1) * time.Millisecond, FirstByte: time.Millisecond, Attempts: 1,
		Receipt: []byte{byte(i), 1, 2},
	}
	if i%5 == 4 {
		u.Status, u.HTTPStatus, u.Miner, u.MinerPeer, u.Receipt, u.CompletionTokens = "UNAVAILABLE", 503, "", "", nil, 0
	}
	return u
}

func TestLedgerAppendReadSummaryReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.db")
	reg := prometheus.NewRegistry()
	cfg := testLedgerConfig()
	cfg.Registerer = reg
	l := openLedger(t, path, cfg)
	const n = 20
	for i := range n {
		if err := l.Record(usage(i)); err != nil {
			t.Fatal(err)
		}
	}
	all, err := l.All()
	if err != nil || len(all) != n {
		t.Fatalf("%d entries, %v", len(all), err)
	}
	for i, e := range all {
		if e.Seq != uint64(i+1) || !reflect.DeepEqual(e.Usage, usage(i)) {
			t.Fatalf("entry %d: %+v\nwant %+v", i, e, usage(i))
		}
	}
	// By key and time range: key k1, minutes [5, 15): 5, 7, 9, 11, 13.
	got, err := l.Entries(Query{KeyID: "k1", From: t0.Add(5 * time.Minute), To: t0.Add(15 * time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range got {
		ids = append(ids, e.RequestID)
	}
	if strings.Join(ids, ",") != "req-5,req-7,req-9,req-11,req-13" {
		t.Fatalf("k1 in [5m, 15m): %v", ids)
	}
	if got, _ := l.Entries(Query{From: t0.Add(18 * time.Minute)}); len(got) != 2 {
		t.Fatalf("from 18m: %d entries", len(got))
	}
	if got, _ := l.Entries(Query{KeyID: "k"}); len(got) != 0 {
		t.Fatalf("a key ID's prefix selected %d entries", len(got))
	}
	// Summary against a direct count.
	s, err := l.Summarize(Query{})
	if err != nil {
		t.Fatal(err)
	}
	var want Totals
	for i := range n {
		u := usage(i)
		want.Requests++
		if i%5 == 4 {
			want.Failures++
		} else {
			want.Receipts++
		}
		want.PromptTokens += u.PromptTokens
		want.CompletionTokens += u.CompletionTokens
		want.RequestBytes += u.RequestBytes
		want.ResponseBytes += u.ResponseBytes
	}
	// Latencies 1..20 ms: nearest rank p50 = 10th, p95 = 19th.
	want.LatencyP50, want.LatencyP95 = 10*time.Millisecond, 19*time.Millisecond
	if s.Total != want {
		t.Fatalf("total %+v\nwant  %+v", s.Total, want)
	}
	if len(s.Keys) != 2 || s.Keys[0].ID != "k0" || s.Keys[0].Requests != 10 || s.Keys[1].Failures != 2 {
		t.Fatalf("keys %+v", s.Keys)
	}
	// Miners: "" (the 4 failures), m0, m1, m2.
	if len(s.Miners) != 4 || s.Miners[0].ID != "" || s.Miners[0].Requests != 4 || s.Miners[0].Failures != 4 {
		t.Fatalf("miners %+v", s.Miners)
	}
	// Prometheus saw the same.
	if v := testutil.ToFloat64(l.metrics.key.requests.WithLabelValues("k0")); v != 10 {
		t.Errorf("key requests %v", v)
	}
	if v := testutil.ToFloat64(l.metrics.miner.failures.WithLabelValues("none")); v != 4 {
		t.Errorf("no-miner failures %v", v)
	}
	var tokens float64
	for _, k := range []string{"k0", "k1"} {
		tokens += testutil.ToFloat64(l.metrics.key.tokens.WithLabelValues(k, "completion"))
	}
	if tokens != float64(want.CompletionTokens) {
		t.Errorf("completion tokens %v, want %d", tokens, want.CompletionTokens)
	}
	if c, err := testutil.GatherAndCount(reg, "cybertensor_gateway_miner_latency_seconds"); err != nil || c != 4 {
		t.Errorf("miner latency series %d %v", c, err)
	}
	// Reopen: everything is there, and appending continues the sequence.
	l.Close()
	if err := l.Record(usage(99)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Record after Close: %v", err)
	}
	unbatched := testLedgerConfig()
	unbatched.BatchDelay = 0 // each Record its own transaction
	l2 := openLedger(t, path, unbatched)
	if err := l2.Record(usage(n)); err != nil {
		t.Fatal(err)
	}
	all2, _ := l2.All()
	if len(all2) != n+1 || all2[n].Seq != n+1 || !reflect.DeepEqual(all2[:n], all) {
		t.Fatalf("after reopen: %d entries", len(all2))
	}
}

func TestLedgerRefusesBadRecordsAndDuplicates(t *testing.T) {
	l := openLedger(t, filepath.Join(t.TempDir(), "usage.db"), testLedgerConfig())
	for name, edit := range map[string]func(u *gateway.Usage){
		"no time":          func(u *gateway.Usage) { u.Time = time.Time{} },
		"no key":           func(u *gateway.Usage) { u.KeyID = "" },
		"key with NUL":     func(u *gateway.Usage) { u.KeyID = "k\x00" },
		"long model":       func(u *gateway.Usage) { u.Model = strings.Repeat("m", 300) },
		"bad utf-8":        func(u *gateway.Usage) { u.Miner = "\xff" },
		"negative tokens":  func(u *gateway.Usage) { u.PromptTokens = -1 },
		"negative latency": func(u *gateway.Usage) { u.Latency = -1 },
		"huge receipt":     func(u *gateway.Usage) { u.Receipt = make([]byte, MaxReceiptSize+1) },
		"http status":      func(u *gateway.Usage) { u.HTTPStatus = 1000 },
	} {
		u := usage(0)
		edit(&u)
		if err := l.Record(u); !errors.Is(err, ErrBadEntry) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The same finished request recorded twice (a retried Record) is one
	// entry; another record with the same request ID is another entry.
	if err := l.Record(usage(1)); err != nil {
		t.Fatal(err)
	}
	if err := l.Record(usage(1)); err != nil {
		t.Fatal(err)
	}
	other := usage(1)
	other.Latency++
	if err := l.Record(other); err != nil {
		t.Fatal(err)
	}
	all, _ := l.All()
	if len(all) != 2 || all[0].Seq != 1 || all[1].Seq != 2 || all[1].Latency != other.Latency {
		t.Fatalf("entries %+v", all)
	}
}

func TestLedgerConcurrentRecordsBatched(t *testing.T) {
	l := openLedger(t, filepath.Join(t.TempDir(), "usage.db"), testLedgerConfig())
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < 200; i += 8 {
				if err := l.Record(usage(i)); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	all, err := l.All()
	if err != nil || len(all) != 200 {
		t.Fatalf("%d entries, %v", len(all), err)
	}
	seen := map[string]bool{}
	for i, e := range all {
		if e.Seq != uint64(i+1) || seen[e.RequestID] {
			t.Fatalf("entry %d: seq %d, request %s", i, e.Seq, e.RequestID)
		}
		seen[e.RequestID] = true
	}
}

func TestLedgerOneProcessAtATime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "usage.db")
	l := openLedger(t, path, testLedgerConfig())
	l.Record(usage(0))
	cfg := testLedgerConfig()
	cfg.ReadOnly, cfg.OpenTimeout = true, 0
	_, err := OpenLedger(path, cfg)
	var inUse *lockfile.InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("second open: %v", err)
	}
	l.Close()
	ro := openLedger(t, path, cfg)
	if all, err := ro.All(); err != nil || len(all) != 1 {
		t.Fatalf("read-only: %d %v", len(all), err)
	}
	if err := ro.Record(usage(1)); err == nil {
		t.Fatal("read-only ledger recorded")
	}
}

func TestLedgerTodayRestoresTheLimiter(t *testing.T) {
	l := openLedger(t, filepath.Join(t.TempDir(), "usage.db"), testLedgerConfig())
	yesterday := usage(0)
	yesterday.Time = t0.Add(-11 * time.Hour)
	refused := usage(2)
	refused.HTTPStatus, refused.Status = 429, "UNAVAILABLE"
	for _, u := range []gateway.Usage{yesterday, usage(2), usage(4), refused} {
		if err := l.Record(u); err != nil {
			t.Fatal(err)
		}
	}
	got, err := l.Today(t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]DayCount{"k0": {Requests: 2, Tokens: usage(2).PromptTokens + usage(2).CompletionTokens + usage(4).PromptTokens}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("today %+v, want %+v", got, want)
	}
	lim := NewLimiter(limitTable{"k0": {DailyRequests: 3}})
	lim.Restore(got, t0.Add(time.Hour))
	if ok, _ := lim.Allow("k0", 1, t0.Add(time.Hour)); !ok {
		t.Fatal("third request refused")
	}
	if ok, _ := lim.Allow("k0", 1, t0.Add(time.Hour)); ok {
		t.Fatal("fourth request passed after a restart")
	}
}
