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
// and a blank line, flushed as it is written.
type sseWriter struct {
	w       http.ResponseWriter
	rc      *http.ResponseController
	started bool
	buf     bytes.Buffer
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

// event sends v as one event.
func (s *sseWriter) event(v any) error {
	s.buf.Reset()
	s.buf.WriteString("data: ")
	enc := json.NewEncoder(&s.buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil { // Encode ends with a newline
		return fmt.Errorf("encoding an event: %w", err)
	}
	s.buf.WriteByte('\n')
	return s.send(s.buf.Bytes())
}

// done sends the terminating "data: [DONE]".
func (s *sseWriter) done() error { return s.send([]byte("data: [DONE]\n\n")) }

func (s *sseWriter) send(b []byte) error {
	s.start()
	n, err := s.w.Write(b)
	s.written += int64(n)
	if err == nil {
		err = s.rc.Flush()
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	return nil
}
