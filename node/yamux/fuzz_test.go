package yamux

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// scriptConn is a connection whose peer sent exactly in and then closed;
// what the session writes is dropped.
type scriptConn struct {
	r io.Reader
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return len(p), nil }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return nil }
func (c *scriptConn) RemoteAddr() net.Addr             { return nil }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

func frame(h header, body []byte) []byte {
	var b [headerSize]byte
	h.length = max(h.length, uint32(len(body)))
	h.encode(&b)
	return append(b[:], body...)
}

// FuzzSessionInput feeds a session arbitrary frames from a peer, with an
// application accepting and reading every stream: whatever arrives, the
// session must not panic, and it ends cleanly at the input's end.
func FuzzSessionInput(f *testing.F) {
	var seed []byte
	seed = append(seed, frame(header{typ: typeWindowUpdate, flags: flagSYN, stream: 1}, nil)...)
	seed = append(seed, frame(header{typ: typeData, stream: 1}, []byte("hello"))...)
	seed = append(seed, frame(header{typ: typeData, flags: flagFIN, stream: 1}, []byte("!"))...)
	seed = append(seed, frame(header{typ: typePing, flags: flagSYN, length: 9}, nil)...)
	f.Add(seed)
	f.Add(frame(header{typ: typeData, flags: flagSYN | flagRST, stream: 3}, []byte("x")))
	f.Add(frame(header{typ: typeData, flags: flagSYN, stream: 5, length: 300 << 10}, nil))
	f.Add(frame(header{typ: typeGoAway, length: 7}, nil))
	f.Add(frame(header{typ: typeWindowUpdate, flags: flagSYN, stream: 2}, nil))
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg := DefaultConfig()
		cfg.EnableKeepAlive = false
		s := newSession(&scriptConn{r: bytes.NewReader(in)}, false, &cfg, nil)
		done := make(chan struct{})
		go func() {
			defer close(done)
			buf := make([]byte, 7)
			for {
				st, err := s.AcceptStream()
				if err != nil {
					return
				}
				for {
					if _, err := st.Read(buf); err != nil {
						break
					}
				}
				st.Close()
			}
		}()
		<-s.readerDone
		s.Close()
		<-done
	})
}
