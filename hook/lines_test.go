package hook

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// naiveLines splits data as readLine should: lines without "\n" (and
// without a "\r" before it), the last one without "\n" if any.
func naiveLines(data []byte) [][]byte {
	var out [][]byte
	for len(data) > 0 {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			out = append(out, data)
			break
		}
		line := data[:i]
		line = bytes.TrimSuffix(line, []byte("\r"))
		out = append(out, line)
		data = data[i+1:]
	}
	return out
}

// checkReadLine reads data with readLine through a reader of buffer size
// bufSize and compares with naiveLines: the same lines until the first
// longer than max, which must be errLineTooLong.
func checkReadLine(t *testing.T, data []byte, max, bufSize int) {
	t.Helper()
	r := bufio.NewReaderSize(bytes.NewReader(data), bufSize)
	for i, want := range naiveLines(data) {
		got, err := readLine(r, max)
		if len(want) > max {
			if !errors.Is(err, errLineTooLong) {
				t.Fatalf("line %d (%d bytes, max %d): %q %v; want errLineTooLong", i, len(want), max, got, err)
			}
			return
		}
		if err != nil && !errors.Is(err, io.EOF) {
			t.Fatalf("line %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("line %d: %q, want %q", i, got, want)
		}
		if len(got) > max {
			t.Fatalf("line %d: %d bytes, over %d", i, len(got), max)
		}
	}
	if got, err := readLine(r, max); !errors.Is(err, io.EOF) || got != nil {
		t.Fatalf("after the last line: %q %v", got, err)
	}
}

func TestReadLine(t *testing.T) {
	cases := []struct {
		data string
		max  int
	}{
		{"", 10},
		{"a\nb\n", 10},
		{"a\r\nb", 10},
		{"0123456789\n", 10},
		{"0123456789\r\n", 10},
		{"01234567890\n", 10},
		{"0123456789", 10},
		{"01234567890", 10},
		{"\n\n\n", 0},
		{strings.Repeat("x", 100) + "\n" + "y\n", 100},
		{strings.Repeat("x", 100) + "\r\n", 100},
		{strings.Repeat("x", 101) + "\n", 100},
		{"\r\r\n", 1},
	}
	for _, c := range cases {
		for _, size := range []int{16, 17, 4096} {
			checkReadLine(t, []byte(c.data), c.max, size)
		}
	}
}

func TestReadLogLine(t *testing.T) {
	r := bufio.NewReaderSize(strings.NewReader("short\r\n"+strings.Repeat("z", 40)+"\nnext\nlast"), 16)
	want := []struct {
		line      string
		truncated bool
	}{{"short", false}, {strings.Repeat("z", 16), true}, {"next", false}, {"last", false}}
	for _, w := range want {
		line, truncated, err := readLogLine(r)
		if string(line) != w.line || truncated != w.truncated {
			t.Fatalf("%q %v %v; want %q %v", line, truncated, err, w.line, w.truncated)
		}
	}
	if _, _, err := readLogLine(r); !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
}

func TestRateLimiter(t *testing.T) {
	l := newRateLimiter(10, 3)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.allow(now); !ok {
			t.Fatalf("burst event %d refused", i)
		}
	}
	for range 5 {
		if ok, _ := l.allow(now); ok {
			t.Fatal("an event past the burst allowed")
		}
	}
	ok, dropped := l.allow(now.Add(100 * time.Millisecond))
	if !ok || dropped != 5 {
		t.Fatalf("after 100 ms at 10/s: %v, %d dropped; want allowed, 5", ok, dropped)
	}
	l.allow(now.Add(100 * time.Millisecond))
	if d := l.flush(); d != 1 {
		t.Fatalf("flush %d, want 1", d)
	}
}

// FuzzReadLine: whatever a program prints, readLine returns exactly its
// lines (line ends removed), never one longer than its bound.
func FuzzReadLine(f *testing.F) {
	f.Add([]byte("{\"score\":1}\n{\"score\":0}\r\n"), 16, 16)
	f.Add([]byte(strings.Repeat("x", 40)+"\n"), 20, 16)
	f.Add([]byte("\r\r\r\n\n"), 1, 17)
	f.Fuzz(func(t *testing.T, data []byte, max, bufSize int) {
		if max < 0 || max > 1<<16 || bufSize < 16 || bufSize > 1<<16 {
			return
		}
		checkReadLine(t, data, max, bufSize)
	})
}
