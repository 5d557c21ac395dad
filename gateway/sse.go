package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// errClientGone is a write to a client that has left.
var errClientGone = errors.New("the client went away")

// sseWriter writes server-sent events: each event one "data: JSON" line
// and a blank line, flushed when its writer says so.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	buf     []byte
	// written counts the bytes sent.
	written int64
}

func newSSE(w http.ResponseWriter) *sseWriter {
	return &sseWriter{w: w, rc: http.NewResponseController(w)}
}

// start sends the headers: from here on the answer is committed.
func (s *sseWriter) start() {
	if s.started {
		return
	}
	s.started = true
	h := s.w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	s.w.WriteHeader(http.StatusOK)
}

// event sends v as one event, flushed if flush is set.
func (s *sseWriter) event(v any, flush bool) error {
	buf := bytes.NewBuffer(append(s.buf[:0], "data: "...))
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode ends with a newline
		return fmt.Errorf("encoding an event: %w", err)
	}
	buf.WriteByte('\n')
	s.buf = buf.Bytes()
	return s.write(s.buf, flush)
}

// done writes the terminating "data: [DONE]", unflushed: it goes out
// with the response's end.
func (s *sseWriter) done() error { return s.write([]byte("data: [DONE]\n\n"), false) }

// write sends b, and flushes it if flush is set (else it goes out with
// a later flush: one that is sure to come).
func (s *sseWriter) write(b []byte, flush bool) error {
	s.start()
	n, err := s.w.Write(b)
	s.written += int64(n)
	if err == nil && flush {
		err = s.rc.Flush()
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	return nil
}

// appendJSONString appends s (valid UTF-8) as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b = append(b, s[start:i]...)
		switch c {
		case '"', '\\':
			b = append(b, '\\', c)
		case '\n':
			b = append(b, '\\', 'n')
		case '\r':
			b = append(b, '\\', 'r')
		case '\t':
			b = append(b, '\\', 't')
		default:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	return append(append(b, s[start:]...), '"')
}
