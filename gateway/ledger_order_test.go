package gateway

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
)

// wireLog keeps every byte the gateway wrote to its clients, by
// connection in the order accepted.
type wireLog struct {
	mu    sync.Mutex
	conns []*bytes.Buffer
}

// snapshot is what was written to each connection so far.
func (l *wireLog) snapshot() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]string, len(l.conns))
	for i, b := range l.conns {
		out[i] = b.String()
	}
	return out
}

type loggedListener struct {
	net.Listener
	log *wireLog
}

func (ln loggedListener) Accept() (net.Conn, error) {
	c, err := ln.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ln.log.mu.Lock()
	defer ln.log.mu.Unlock()
	b := &bytes.Buffer{}
	ln.log.conns = append(ln.log.conns, b)
	return loggedConn{Conn: c, mu: &ln.log.mu, b: b}, nil
}

type loggedConn struct {
	net.Conn
	mu *sync.Mutex
	b  *bytes.Buffer
}

func (c loggedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	c.b.Write(p[:n])
	c.mu.Unlock()
	return n, err
}

// onRecord runs a check when a usage entry is recorded, then records it.
type onRecord struct {
	next  Recorder
	check func(Usage)
}

func (r onRecord) Record(u Usage) error {
	r.check(u)
	return r.next.Record(u)
}

// A request's end reaches its client only after its usage is recorded: a
// stream's finishing events and [DONE] go out with the response's end, as
// a whole answer does. What the gateway had written to the connection
// when the entry was recorded is checked.
func TestStreamEndsAfterItsUsageIsRecorded(t *testing.T) {
	wire := &wireLog{}
	var mu sync.Mutex
	var atRecord [][]string // each connection's bytes, at each Record
	r := newRig(t, 1, DefaultTestConfig(), func(s *Server) {
		s.ln = loggedListener{Listener: s.ln, log: wire}
		s.deps.Recorder = onRecord{next: s.deps.Recorder, check: func(Usage) {
			mu.Lock()
			atRecord = append(atRecord, wire.snapshot())
			mu.Unlock()
		}}
	})
	stream := postRaw(t, r, "/v1/chat/completions", `{"model":"sn1/text.chat","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}`, testSecret)
	whole := postRaw(t, r, "/v1/chat/completions", `{"model":"sn1/text.chat","messages":[{"role":"user","content":"x"}]}`, testSecret)
	r.rec.waitRecords(t, 2)
	if stream.status != 200 || !strings.Contains(stream.text, "data: [DONE]") || !strings.Contains(stream.text, "lazy") {
		t.Fatalf("stream %d %q", stream.status, stream.text)
	}
	if whole.status != 200 || !strings.Contains(whole.text, "lazy") {
		t.Fatalf("answer %d %q", whole.status, whole.text)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(atRecord) != 2 {
		t.Fatalf("%d entries recorded", len(atRecord))
	}
	// The stream's end was not out (its text may have been).
	if s := atRecord[0][0]; strings.Contains(s, "[DONE]") || strings.Contains(s, `"finish_reason":"stop"`) || strings.Contains(s, `"usage"`) {
		t.Fatalf("written when the stream's usage was recorded:\n%s", s)
	}
	// Nothing of the whole answer was out.
	if w := atRecord[1]; len(w) != 2 || strings.Contains(w[1], "lazy") {
		t.Fatalf("written when the answer's usage was recorded: %q", w)
	}
}
