package metering

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bounds of the usage endpoint.
const (
	// MaxUsageQuery is the longest query string GET /usage accepts.
	MaxUsageQuery = 1024
	// DefaultMaxAnswerEntries is how many bytes of entries (as JSON) one
	// page holds at most by default (and the most a UsageHandler is
	// configured with); the rest follow in further pages.
	DefaultMaxAnswerEntries = 32 << 20
	// DefaultPageEntries is how many entries one page holds at most by
	// default; MaxPageEntries the most a UsageHandler is configured with.
	DefaultPageEntries = 1000
	MaxPageEntries     = 100_000
	// MaxUsageAnswer is the most DecodeUsageAnswer reads: a page's bound
	// with room for the rest.
	MaxUsageAnswer = 64 << 20
	// minAdminToken is the shortest admin token a UsageHandler accepts.
	minAdminToken = 32
)

// Errors of the usage endpoint's codecs.
var (
	// ErrBadUsageQuery is the error of a GET /usage query that does not
	// parse.
	ErrBadUsageQuery = errors.New("metering: invalid usage query")
	// ErrBadUsageAnswer is the error of a GET /usage answer that does not
	// decode.
	ErrBadUsageAnswer = errors.New("metering: invalid usage answer")
)

// UsageQuery is what GET /usage asks: a Query, and whether to return a
// page of its entries (from Cursor) rather than their summary. Query.AsOf
// pins the listing (0: the ledger as it is now; the answer says which
// sequence that was, for the next pages to give).
type UsageQuery struct {
	Query
	Entries bool
	Cursor  Cursor
}

// ParseUsageQuery parses the query string of GET /usage:
// key=ID, since=T and until=T (RFC 3339 times; From ≤ time < To),
// as_of=SEQ (at least 1), entries=1 for a page of entries instead of the
// summary, and cursor=C (a page's next, with entries=1 only). Each at
// most once, nothing else, at most MaxUsageQuery bytes. Its errors wrap
// ErrBadUsageQuery.
func ParseUsageQuery(raw string) (UsageQuery, error) {
	var q UsageQuery
	if len(raw) > MaxUsageQuery {
		return q, fmt.Errorf("%w: %d bytes, more than %d", ErrBadUsageQuery, len(raw), MaxUsageQuery)
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return q, fmt.Errorf("%w: %v", ErrBadUsageQuery, err)
	}
	for name, vs := range vals {
		if len(vs) != 1 {
			return q, fmt.Errorf("%w: %q given %d times", ErrBadUsageQuery, name, len(vs))
		}
		v := vs[0]
		switch name {
		case "key":
			if !validKeyID(v) {
				return q, fmt.Errorf("%w: key %q: want 1 to %d of [A-Za-z0-9_-]", ErrBadUsageQuery, v, MaxKeyIDLen)
			}
			q.KeyID = v
		case "since", "until":
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return q, fmt.Errorf("%w: %s %q: want an RFC 3339 time", ErrBadUsageQuery, name, v)
			}
			if name == "since" {
				q.From = t
			} else {
				q.To = t
			}
		case "as_of":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil || n == 0 {
				return q, fmt.Errorf("%w: as_of %q: want a ledger sequence, at least 1", ErrBadUsageQuery, v)
			}
			q.AsOf = n
		case "cursor":
			c, err := ParseCursor(v)
			if err != nil || c.IsZero() {
				return q, fmt.Errorf("%w: %q: want a page's next cursor, %d hex digits", ErrBadUsageQuery, v, 2*len(c))
			}
			q.Cursor = c
		case "entries":
			switch v {
			case "0":
			case "1":
				q.Entries = true
			default:
				return q, fmt.Errorf("%w: entries %q: want 0 or 1", ErrBadUsageQuery, v)
			}
		default:
			return q, fmt.Errorf("%w: unknown parameter %q (want key, since, until, as_of, entries, cursor)", ErrBadUsageQuery, name)
		}
	}
	if !q.Cursor.IsZero() && !q.Entries {
		return q, fmt.Errorf("%w: cursor without entries=1", ErrBadUsageQuery)
	}
	return q, nil
}

// Encode is the query string ParseUsageQuery parses back to q.
func (q UsageQuery) Encode() string {
	v := url.Values{}
	if q.KeyID != "" {
		v.Set("key", q.KeyID)
	}
	if !q.From.IsZero() {
		v.Set("since", q.From.Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		v.Set("until", q.To.Format(time.RFC3339Nano))
	}
	if q.AsOf != 0 {
		v.Set("as_of", strconv.FormatUint(q.AsOf, 10))
	}
	if q.Entries {
		v.Set("entries", "1")
	}
	if !q.Cursor.IsZero() {
		v.Set("cursor", q.Cursor.String())
	}
	return v.Encode()
}

// UsageAnswer is what GET /usage answers: the ledger it read, AsOf (the
// ledger sequence the answer is pinned to: the query's, or the last one
// when it was read) and either the summary of the entries the query
// selects, or (entries=1) one page of them in time order with the cursor
// of the next page (Next; zero after the last page), exactly as Summarize
// and ScanFrom give them.
type UsageAnswer struct {
	Ledger  string
	AsOf    uint64
	Summary *Summary
	Entries []Entry
	Next    Cursor
}

// usageAnswerJSON is a UsageAnswer on the wire.
type usageAnswerJSON struct {
	Ledger  string            `json:"ledger"`
	AsOf    uint64            `json:"as_of"`
	Summary *Summary          `json:"summary,omitempty"`
	Entries []json.RawMessage `json:"entries,omitempty"`
	Next    string            `json:"next,omitempty"`
}

// DecodeUsageAnswer reads a GET /usage answer strictly: at most
// MaxUsageAnswer bytes, known fields only, nothing after it, every entry
// within a ledger entry's bounds and pinned (sequence at most AsOf),
// entries in strictly increasing (time, sequence) order and before Next,
// and every total non-negative. Its errors wrap ErrBadUsageAnswer.
func DecodeUsageAnswer(r io.Reader) (UsageAnswer, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxUsageAnswer+1))
	if err != nil {
		return UsageAnswer{}, fmt.Errorf("%w: reading: %v", ErrBadUsageAnswer, err)
	}
	if len(b) > MaxUsageAnswer {
		return UsageAnswer{}, fmt.Errorf("%w: more than %d bytes", ErrBadUsageAnswer, MaxUsageAnswer)
	}
	var w struct {
		Ledger  string   `json:"ledger"`
		AsOf    uint64   `json:"as_of"`
		Summary *Summary `json:"summary"`
		Entries []Entry  `json:"entries"`
		Next    string   `json:"next"`
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return UsageAnswer{}, fmt.Errorf("%w: %v", ErrBadUsageAnswer, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return UsageAnswer{}, fmt.Errorf("%w: data after the answer", ErrBadUsageAnswer)
	}
	a := UsageAnswer{Ledger: w.Ledger, AsOf: w.AsOf, Summary: w.Summary, Entries: w.Entries}
	if a.Next, err = ParseCursor(w.Next); err != nil {
		return UsageAnswer{}, fmt.Errorf("%w: next: %v", ErrBadUsageAnswer, err)
	}
	if err := a.validate(); err != nil {
		return UsageAnswer{}, fmt.Errorf("%w: %v", ErrBadUsageAnswer, err)
	}
	return a, nil
}

func (a *UsageAnswer) validate() error {
	var last Cursor
	for i := range a.Entries {
		e := &a.Entries[i]
		if e.Seq == 0 || e.Seq > a.AsOf {
			return fmt.Errorf("entry %d: sequence %d, want 1 to as_of %d", i, e.Seq, a.AsOf)
		}
		e.Time = e.Time.UTC()
		if err := validateUsage(&e.Usage); err != nil {
			return fmt.Errorf("entry %d: %v", e.Seq, err)
		}
		c := CursorOf(*e)
		if bytes.Compare(c[:], last[:]) <= 0 {
			return fmt.Errorf("entry %d: out of time order", e.Seq)
		}
		last = c
	}
	if !a.Next.IsZero() && bytes.Compare(a.Next[:], last[:]) <= 0 {
		return errors.New("next cursor before the page's last entry")
	}
	if a.Summary == nil {
		return nil
	}
	check := func(what string, t Totals) error {
		if t.Requests < 0 || t.Failures < 0 || t.Failures > t.Requests || t.PromptTokens < 0 || t.CompletionTokens < 0 ||
			t.RequestBytes < 0 || t.ResponseBytes < 0 || t.Receipts < 0 || t.Receipts > t.Requests || t.LatencyP50 < 0 || t.LatencyP95 < 0 {
			return fmt.Errorf("%s: impossible totals %+v", what, t)
		}
		return nil
	}
	if a.Summary.Total.Requests > 0 && a.AsOf == 0 {
		return errors.New("a summary of entries at as_of 0")
	}
	if err := check("total", a.Summary.Total); err != nil {
		return err
	}
	for _, g := range slices.Concat(a.Summary.Keys, a.Summary.Miners, a.Summary.Subnets) {
		if err := check("group "+g.ID, g.Totals); err != nil {
			return err
		}
	}
	if a.Summary.Keys == nil {
		a.Summary.Keys = []Group{}
	}
	if a.Summary.Miners == nil {
		a.Summary.Miners = []Group{}
	}
	if a.Summary.Subnets == nil {
		a.Summary.Subnets = []Group{}
	}
	return nil
}

// UsageHandlerConfig configures a UsageHandler.
type UsageHandlerConfig struct {
	// Token is the admin token a request must carry ("Authorization:
	// Bearer TOKEN"); at least 32 bytes.
	Token string
	// Ledger is the ledger's path, as answers name it.
	Ledger string
	// PageEntries bounds the entries of one page.
	PageEntries int
	// MaxEntryBytes bounds the entries of one page (as JSON): a page ends
	// before the entry that would pass it (and holds at least one).
	MaxEntryBytes int
	Logger        *slog.Logger
}

// DefaultUsageHandlerConfig pages entries by DefaultPageEntries and at
// most 8 MiB. Token is left to the caller.
func DefaultUsageHandlerConfig() UsageHandlerConfig {
	return UsageHandlerConfig{PageEntries: DefaultPageEntries, MaxEntryBytes: 8 << 20, Logger: slog.Default()}
}

func (c *UsageHandlerConfig) validate() error {
	switch {
	case len(c.Token) < minAdminToken:
		return fmt.Errorf("metering: admin token of %d bytes, want at least %d", len(c.Token), minAdminToken)
	case c.MaxEntryBytes < 1 || c.MaxEntryBytes > DefaultMaxAnswerEntries:
		return fmt.Errorf("metering: MaxEntryBytes %d: want 1 to %d", c.MaxEntryBytes, DefaultMaxAnswerEntries)
	case c.PageEntries < 1 || c.PageEntries > MaxPageEntries:
		return fmt.Errorf("metering: PageEntries %d: want 1 to %d", c.PageEntries, MaxPageEntries)
	case c.Logger == nil:
		return errors.New("metering: UsageHandlerConfig needs a Logger")
	}
	return nil
}

// UsageHandler serves the reads of a ledger another part of the process
// writes, so an operator sees usage while the gateway runs (whose ledger
// no other process can open): GET with a UsageQuery's query string,
// answered with a UsageAnswer. Every request must carry the admin token;
// one without it gets 401 and learns nothing else.
type UsageHandler struct {
	cfg       UsageHandlerConfig
	l         *Ledger
	tokenHash [sha256.Size]byte
}

// NewUsageHandler serves l's reads.
func NewUsageHandler(l *Ledger, cfg UsageHandlerConfig) (*UsageHandler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &UsageHandler{cfg: cfg, l: l, tokenHash: sha256.Sum256([]byte(cfg.Token))}, nil
}

// authorized compares the request's bearer token with the admin token in
// constant time (of their hashes, so the length leaks nothing either).
func (h *UsageHandler) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], h.tokenHash[:]) == 1
}

// usageError writes {"error": msg} with status.
func usageError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Error string `json:"error"`
	}{msg})
}

func (h *UsageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !h.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="cybertensor gateway admin"`)
		usageError(w, http.StatusUnauthorized, "missing or wrong admin token")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		usageError(w, http.StatusMethodNotAllowed, "GET only")
		return
	}
	q, err := ParseUsageQuery(r.URL.RawQuery)
	if err != nil {
		usageError(w, http.StatusBadRequest, err.Error())
		return
	}
	if q.AsOf == 0 {
		if q.AsOf, err = h.l.LastSeq(); err != nil {
			h.fail(w, err)
			return
		}
	}
	answer := usageAnswerJSON{Ledger: h.cfg.Ledger, AsOf: q.AsOf}
	if !q.Entries {
		var sum Summary
		if q.AsOf != 0 { // an empty ledger sums to nothing
			if sum, err = h.l.Summarize(q.Query); err != nil {
				h.fail(w, err)
				return
			}
		} else {
			sum = NewSummarizer().Summary()
		}
		answer.Summary = &sum
	} else if q.AsOf != 0 {
		size := 0
		var merr error
		next, err := h.l.ScanFrom(q.Query, q.Cursor, func(e Entry) bool {
			if len(answer.Entries) == h.cfg.PageEntries {
				return false
			}
			b, err := json.Marshal(e)
			if err != nil { // cannot happen for an entry that decoded
				merr = fmt.Errorf("encoding entry %d: %w", e.Seq, err)
				return false
			}
			if size += len(b) + 1; size > h.cfg.MaxEntryBytes && len(answer.Entries) > 0 {
				return false
			}
			answer.Entries = append(answer.Entries, b)
			return true
		})
		if err == nil {
			err = merr
		}
		if err != nil {
			h.fail(w, err)
			return
		}
		answer.Next = next.String()
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(answer); err != nil {
		h.cfg.Logger.Debug("writing a usage answer", "err", err)
	}
}

// fail answers a ledger read that failed.
func (h *UsageHandler) fail(w http.ResponseWriter, err error) {
	if errors.Is(err, bolt.ErrDatabaseNotOpen) {
		usageError(w, http.StatusServiceUnavailable, "the usage ledger is closed (the gateway is stopping)")
		return
	}
	h.cfg.Logger.Warn("reading the usage ledger for the admin endpoint", "err", err)
	usageError(w, http.StatusInternalServerError, "reading the usage ledger: "+err.Error())
}
