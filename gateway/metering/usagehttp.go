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
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bounds of the usage endpoint.
const (
	// MaxUsageQuery is the longest query string GET /usage accepts.
	MaxUsageQuery = 1024
	// DefaultMaxAnswerEntries is how many bytes of entries (as JSON) one
	// answer holds at most by default; past it the request is refused
	// (413) and should be narrowed by key or time.
	DefaultMaxAnswerEntries = 32 << 20
	// MaxUsageAnswer is the most DecodeUsageAnswer reads: the entries'
	// bound with room for the summary.
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

// UsageQuery is what GET /usage asks: a Query, and whether to return
// the entries as well as their summary.
type UsageQuery struct {
	Query
	Entries bool
}

// ParseUsageQuery parses the query string of GET /usage:
// key=ID, since=T and until=T (RFC 3339 times; From ≤ time < To), and
// entries=1 for the entries too. Each at most once, nothing else, at
// most MaxUsageQuery bytes. Its errors wrap ErrBadUsageQuery.
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
		case "entries":
			switch v {
			case "0":
			case "1":
				q.Entries = true
			default:
				return q, fmt.Errorf("%w: entries %q: want 0 or 1", ErrBadUsageQuery, v)
			}
		default:
			return q, fmt.Errorf("%w: unknown parameter %q (want key, since, until, entries)", ErrBadUsageQuery, name)
		}
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
	if q.Entries {
		v.Set("entries", "1")
	}
	return v.Encode()
}

// UsageAnswer is what GET /usage answers: the ledger it read, the summary
// of the entries the query selects and, if asked, the entries (in time
// order), exactly as Ledger.Scan and Summarizer give them.
type UsageAnswer struct {
	Ledger  string  `json:"ledger"`
	Summary Summary `json:"summary"`
	Entries []Entry `json:"entries,omitempty"`
}

// DecodeUsageAnswer reads a GET /usage answer strictly: at most
// MaxUsageAnswer bytes, known fields only, nothing after it, every entry
// within a ledger entry's bounds and every total non-negative. Its errors
// wrap ErrBadUsageAnswer.
func DecodeUsageAnswer(r io.Reader) (UsageAnswer, error) {
	var a UsageAnswer
	b, err := io.ReadAll(io.LimitReader(r, MaxUsageAnswer+1))
	if err != nil {
		return a, fmt.Errorf("%w: reading: %v", ErrBadUsageAnswer, err)
	}
	if len(b) > MaxUsageAnswer {
		return a, fmt.Errorf("%w: more than %d bytes", ErrBadUsageAnswer, MaxUsageAnswer)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&a); err != nil {
		return UsageAnswer{}, fmt.Errorf("%w: %v", ErrBadUsageAnswer, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return UsageAnswer{}, fmt.Errorf("%w: data after the answer", ErrBadUsageAnswer)
	}
	if err := a.validate(); err != nil {
		return UsageAnswer{}, fmt.Errorf("%w: %v", ErrBadUsageAnswer, err)
	}
	return a, nil
}

func (a *UsageAnswer) validate() error {
	for i := range a.Entries {
		e := &a.Entries[i]
		if e.Seq == 0 {
			return fmt.Errorf("entry %d: sequence 0", i)
		}
		e.Time = e.Time.UTC()
		if err := validateUsage(&e.Usage); err != nil {
			return fmt.Errorf("entry %d: %v", e.Seq, err)
		}
	}
	check := func(what string, t Totals) error {
		if t.Requests < 0 || t.Failures < 0 || t.Failures > t.Requests || t.PromptTokens < 0 || t.CompletionTokens < 0 ||
			t.RequestBytes < 0 || t.ResponseBytes < 0 || t.Receipts < 0 || t.Receipts > t.Requests || t.LatencyP50 < 0 || t.LatencyP95 < 0 {
			return fmt.Errorf("%s: impossible totals %+v", what, t)
		}
		return nil
	}
	if err := check("total", a.Summary.Total); err != nil {
		return err
	}
	for _, g := range append(append([]Group(nil), a.Summary.Keys...), a.Summary.Miners...) {
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
	return nil
}

// UsageHandlerConfig configures a UsageHandler.
type UsageHandlerConfig struct {
	// Token is the admin token a request must carry ("Authorization:
	// Bearer TOKEN"); at least 32 bytes.
	Token string
	// Ledger is the ledger's path, as answers name it.
	Ledger string
	// MaxEntryBytes bounds the entries of one answer (as JSON); a query
	// selecting more is refused with 413.
	MaxEntryBytes int
	Logger        *slog.Logger
}

// DefaultUsageHandlerConfig bounds answers to DefaultMaxAnswerEntries of
// entries. Token is left to the caller.
func DefaultUsageHandlerConfig() UsageHandlerConfig {
	return UsageHandlerConfig{MaxEntryBytes: DefaultMaxAnswerEntries, Logger: slog.Default()}
}

func (c *UsageHandlerConfig) validate() error {
	switch {
	case len(c.Token) < minAdminToken:
		return fmt.Errorf("metering: admin token of %d bytes, want at least %d", len(c.Token), minAdminToken)
	case c.MaxEntryBytes < 1 || c.MaxEntryBytes > DefaultMaxAnswerEntries:
		return fmt.Errorf("metering: MaxEntryBytes %d: want 1 to %d", c.MaxEntryBytes, DefaultMaxAnswerEntries)
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
	sum := NewSummarizer()
	var entries []json.RawMessage
	size, over := 0, false
	err = h.l.Scan(q.Query, func(e Entry) bool {
		sum.Add(e)
		if !q.Entries {
			return true
		}
		b, err := json.Marshal(e)
		if err != nil { // cannot happen for an entry that decoded
			over = true
			return false
		}
		size += len(b) + 1
		if size > h.cfg.MaxEntryBytes {
			over = true
			return false
		}
		entries = append(entries, b)
		return true
	})
	switch {
	case errors.Is(err, bolt.ErrDatabaseNotOpen):
		usageError(w, http.StatusServiceUnavailable, "the usage ledger is closed (the gateway is stopping)")
		return
	case err != nil:
		h.cfg.Logger.Warn("reading the usage ledger for the admin endpoint", "err", err)
		usageError(w, http.StatusInternalServerError, "reading the usage ledger: "+err.Error())
		return
	case over:
		usageError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("the entries selected are more than %d bytes: narrow the query by key or time, or ask without entries", h.cfg.MaxEntryBytes))
		return
	}
	answer := struct {
		Ledger  string            `json:"ledger"`
		Summary Summary           `json:"summary"`
		Entries []json.RawMessage `json:"entries,omitempty"`
	}{h.cfg.Ledger, sum.Summary(), entries}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if err := json.NewEncoder(w).Encode(answer); err != nil {
		h.cfg.Logger.Debug("writing a usage answer", "err", err)
	}
}
