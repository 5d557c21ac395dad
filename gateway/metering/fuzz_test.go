package metering

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeEntry: a ledger entry read from disk never panics; refusals
// are ErrBadEntry; what decodes is valid and re-encodes to bytes that
// decode to the same encoding.
func FuzzDecodeEntry(f *testing.F) {
	for i := range 6 {
		b, err := EncodeEntry(usage(i))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{1})
	f.Add([]byte("\x01{\"time\":\"2026-01-01T00:00:00Z\",\"key_id\":\"k\",\"receipt\":\"AAEC\"}"))
	f.Add([]byte("\x01{\"time\":\"2026-01-01T00:00:00Z\",\"key_id\":\"k\"} {}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := DecodeEntry(b)
		if err != nil {
			if !errors.Is(err, ErrBadEntry) {
				t.Fatalf("refusal is not ErrBadEntry: %v", err)
			}
			return
		}
		if err := validateUsage(&u); err != nil {
			t.Fatalf("accepted an invalid entry: %v", err)
		}
		enc, err := EncodeEntry(u)
		if err != nil {
			t.Fatalf("accepted entry does not encode: %v", err)
		}
		u2, err := DecodeEntry(enc)
		if err != nil {
			t.Fatalf("re-encoded entry does not decode: %v", err)
		}
		if enc2, _ := EncodeEntry(u2); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip differs:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzDecodeKeyFile: a key file never panics the decoder; refusals are
// ErrBadKeyFile; what decodes has at most MaxKeys valid keys with unique
// IDs, and re-encodes to a file that decodes to the same encoding.
func FuzzDecodeKeyFile(f *testing.F) {
	f.Add([]byte(`{"version":1,"keys":[]}`))
	f.Add([]byte(`{"version":1,"keys":[{"id":"k1","name":"a","created":"2026-01-01T00:00:00Z","secret_sha256":"` +
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" + `","limits":{"rps":2.5,"burst":3,"daily_requests":9}}]}`))
	f.Add([]byte(`{"version":1,"keys":[{"id":"k1","name":"a","created":"2026-01-01T00:00:00Z","secret_sha256":"` +
		"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff" + `","limits":{},"revoked":true,"revoked_at":"2026-01-02T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":1,"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		keys, err := DecodeKeyFile(b)
		if err != nil {
			if !errors.Is(err, ErrBadKeyFile) {
				t.Fatalf("refusal is not ErrBadKeyFile: %v", err)
			}
			return
		}
		if len(keys) > MaxKeys {
			t.Fatalf("%d keys", len(keys))
		}
		ids := map[string]bool{}
		for _, k := range keys {
			if !validKeyID(k.ID) || validName(k.Name) != nil || k.Limits.Validate() != nil || ids[k.ID] {
				t.Fatalf("accepted an invalid key %+v", k)
			}
			ids[k.ID] = true
		}
		enc, err := EncodeKeyFile(keys)
		if err != nil {
			t.Fatal(err)
		}
		keys2, err := DecodeKeyFile(enc)
		if err != nil {
			t.Fatalf("re-encoded file does not decode: %v\n%s", err, enc)
		}
		if enc2, _ := EncodeKeyFile(keys2); !bytes.Equal(enc, enc2) {
			t.Fatalf("round trip differs:\n%s\n%s", enc, enc2)
		}
	})
}

// FuzzParseUsageQuery: an admin's GET /usage query string never panics;
// refusals are ErrBadUsageQuery; what parses has a valid key (or none)
// and encodes to a query that parses to the same.
func FuzzParseUsageQuery(f *testing.F) {
	for _, s := range []string{"", "entries=1", "key=k1&since=2026-12-06T10:00:00Z&until=2026-12-07T00:00:00.5%2B02:00&entries=0",
		"key=k0&key=k1", "since=9999-12-31T23:59:59Z", "limit=3", "key=%zz", "entries=1;key=k",
		"as_of=7&entries=1&cursor=8000000000000000000000000000000a", "cursor=0a&entries=1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		q, err := ParseUsageQuery(raw)
		if err != nil {
			if !errors.Is(err, ErrBadUsageQuery) {
				t.Fatalf("refusal is not ErrBadUsageQuery: %v", err)
			}
			return
		}
		if len(raw) > MaxUsageQuery || (q.KeyID != "" && !validKeyID(q.KeyID)) {
			t.Fatalf("accepted %q as %+v", raw, q)
		}
		enc := q.Encode()
		q2, err := ParseUsageQuery(enc)
		if err != nil {
			t.Fatalf("%q encodes to %q, which does not parse: %v", raw, enc, err)
		}
		if q2.KeyID != q.KeyID || !q2.From.Equal(q.From) || !q2.To.Equal(q.To) || q2.Entries != q.Entries || q2.AsOf != q.AsOf || q2.Cursor != q.Cursor {
			t.Fatalf("round trip of %q: %+v, then %+v", raw, q, q2)
		}
	})
}

// FuzzDecodeUsageAnswer: what the admin endpoint answers, as gateway
// usage reads it, never panics; refusals are ErrBadUsageAnswer; accepted
// entries are within a ledger entry's bounds (they encode as entries).
func FuzzDecodeUsageAnswer(f *testing.F) {
	f.Add([]byte(`{"ledger":"x","as_of":3,"summary":{"total":{"requests":1,"failures":1,"latency_p50":5},"keys":[],"miners":[]}}`))
	f.Add([]byte(`{"ledger":"x","as_of":3,"entries":[{"seq":1,"time":"2026-01-01T00:00:00Z","key_id":"k","receipt":"AAEC"},{"seq":2,"time":"2026-01-01T00:00:01Z","key_id":"k"}],"next":"80000000000000000000000000000003"}`))
	f.Add([]byte(`{"ledger":"x","summary":{}} {}`))
	f.Add([]byte(`{"ledger":"x","summary":{"total":{"requests":-1}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := DecodeUsageAnswer(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, ErrBadUsageAnswer) {
				t.Fatalf("refusal is not ErrBadUsageAnswer: %v", err)
			}
			return
		}
		for _, e := range a.Entries {
			if e.Seq == 0 {
				t.Fatal("accepted sequence 0")
			}
			if _, err := EncodeEntry(e.Usage); err != nil {
				t.Fatalf("accepted entry does not encode: %v", err)
			}
		}
		for i := 1; i < len(a.Entries); i++ {
			if p, c := CursorOf(a.Entries[i-1]), CursorOf(a.Entries[i]); bytes.Compare(p[:], c[:]) >= 0 || a.Entries[i].Seq > a.AsOf {
				t.Fatalf("accepted entries out of order or past as_of %d: %+v", a.AsOf, a.Entries)
			}
		}
		if a.Summary != nil && (a.Summary.Total.Requests < 0 || a.Summary.Total.Failures > a.Summary.Total.Requests) {
			t.Fatalf("accepted totals %+v", a.Summary.Total)
		}
	})
}
