package backend

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// sseError is a streamed answer that breaks the rules, with its kind of
// failure (malformed or oversize).
type sseError struct {
	kind string
	msg  string
}

func (e *sseError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &sseError{kind: failMalformed, msg: fmt.Sprintf(format, args...)}
}

// readSSE reads a streamed chat completion (server-sent events, one JSON
// chunk per event, ending with "data: [DONE]") and passes its content
// deltas to emit: the deltas of the events already received together, as
// one string, once no more of the stream is waiting to be read (or 64 KiB
// of deltas are pending), so a fast upstream costs one write downstream
// per read rather than one per token, and a slow one still has each token
// passed on as it arrives. Lines are at most maxLine bytes and events at
// most maxChunks; the reader bounds the total. A stream may end without
// [DONE] only after a chunk carried a finish_reason. The usage is the last
// one a chunk carried. emit's error ends the read and is returned as is.
func readSSE(r io.Reader, maxLine, maxChunks int, emit func(string) error) (Usage, error) {
	br := newSSEReader(r, min(maxLine+2, 64<<10))
	defer br.release()
	var (
		usage    Usage
		data     strings.Builder
		pending  strings.Builder
		hasData  bool
		events   int
		finished bool
	)
	flush := func() error {
		if pending.Len() == 0 {
			return nil
		}
		s := pending.String()
		pending.Reset()
		return emit(s)
	}
	// dispatch handles one event's data; done reports [DONE].
	dispatch := func() (done bool, err error) {
		if !hasData {
			return false, nil
		}
		d := data.String()
		data.Reset()
		hasData = false
		if events++; events > maxChunks {
			return false, &sseError{kind: failOversize, msg: fmt.Sprintf("more than %d events", maxChunks)}
		}
		if strings.TrimSpace(d) == "[DONE]" {
			return true, nil
		}
		if text, fin, ok := fastDelta(d); ok {
			// The common chunk, read as encoding/json would read it.
			pending.WriteString(text)
			finished = finished || fin
		} else {
			var chunk sseChunk
			if err := json.Unmarshal([]byte(d), &chunk); err != nil {
				return false, malformed("malformed stream chunk: %v", err)
			}
			if chunk.Error != nil {
				return false, &sseError{kind: failStatus, msg: "server error in the stream: " + chunk.Error.Message}
			}
			if chunk.Usage != nil {
				usage = chunk.Usage.usage()
			}
			for _, c := range chunk.Choices {
				pending.WriteString(c.Delta.Content)
				if c.FinishReason != nil && *c.FinishReason != "" {
					finished = true
				}
			}
		}
		if pending.Len() >= maxPendingDeltas || br.Buffered() == 0 {
			return false, flush()
		}
		return false, nil
	}
	// end passes on what is pending, then returns err (an emit error
	// first: the caller's stream broke).
	end := func(err error) (Usage, error) {
		if ferr := flush(); ferr != nil {
			return usage, ferr
		}
		return usage, err
	}
	for {
		line, err := readSSELine(br.Reader, maxLine)
		if err != nil && err != io.EOF {
			return end(err)
		}
		if line == "" && err == nil {
			if done, err := dispatch(); err != nil || done {
				return end(err)
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "":
			// a comment (keep-alive), or the end of the stream
		default:
			// event, id, retry and unknown fields carry nothing we use
		}
		if err == io.EOF {
			break
		}
	}
	// The last event may lack its blank line.
	if done, err := dispatch(); err != nil || done {
		return end(err)
	}
	if !finished {
		return end(malformed("stream ended without [DONE] or a finish_reason"))
	}
	return end(nil)
}

// maxPendingDeltas bounds the deltas readSSE holds before passing them on.
const maxPendingDeltas = 64 << 10

// sseReaders keeps the 64 KiB line buffers of finished streams: a miner
// reads one stream per chat answer, and a fresh buffer each time was half
// of the bytes its streaming path allocated.
var sseReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// sseReader is a buffered reader of one stream, from sseReaders when the
// size is the pool's.
type sseReader struct {
	*bufio.Reader
	pooled bool
}

func newSSEReader(r io.Reader, size int) sseReader {
	if size != 64<<10 {
		return sseReader{Reader: bufio.NewReaderSize(r, size)}
	}
	br := sseReaders.Get().(*bufio.Reader)
	br.Reset(r)
	return sseReader{Reader: br, pooled: true}
}

// release gives a pooled buffer back, holding no reference to the stream.
func (r sseReader) release() {
	if r.pooled {
		r.Reset(nil)
		sseReaders.Put(r.Reader)
	}
}

// readSSELine reads one line without its "\n" or "\r\n": io.EOF with the
// last, unterminated line (possibly empty) at the end of the stream; an
// oversize error for a line over maxLine bytes.
func readSSELine(br *bufio.Reader, maxLine int) (string, error) {
	var long []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(long)+len(frag) > maxLine+2 || (err == nil && lineLen(long, frag) > maxLine) {
			return "", &sseError{kind: failOversize, msg: fmt.Sprintf("a stream line over %d bytes", maxLine)}
		}
		switch {
		case err == nil:
			line := string(append(long, frag...))
			return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, frag...)
		case err == io.EOF:
			line := string(append(long, frag...))
			if len(strings.TrimSuffix(line, "\r")) > maxLine {
				return "", &sseError{kind: failOversize, msg: fmt.Sprintf("a stream line over %d bytes", maxLine)}
			}
			return strings.TrimSuffix(line, "\r"), io.EOF
		default:
			return "", err
		}
	}
}

// lineLen is the length of the line long followed by frag, without its
// ending "\n" and a "\r" before it (frag holds the end of the line).
func lineLen(long, frag []byte) int {
	n := len(long) + len(frag)
	last := func(i int) byte { // the byte i from the end
		if i < len(frag) {
			return frag[len(frag)-1-i]
		}
		return long[len(long)-1-(i-len(frag))]
	}
	if n > 0 && last(0) == '\n' {
		n--
		if n > 0 && last(1) == '\r' {
			n--
		}
	}
	return n
}

// sseChunk is a streamed chat completion chunk, as readSSE reads it.
type sseChunk struct {
	Choices []struct {
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
	Usage *apiUsage `json:"usage"`
	Error *apiError `json:"error"`
}

// chunkParsers parse streamed chunks on fastDelta's path.
var chunkParsers fastjson.ParserPool

// fastDelta reads the common streamed chunk — an object whose choices
// each have a delta with a string content (or none) and a string or null
// finish_reason, with usage and error absent or null — with fastjson, a
// few times faster than encoding/json on a miner's hottest path (one
// chunk per token). It returns the choices' contents joined and whether a
// choice finished, exactly what decoding into sseChunk gives, and ok
// false for anything else, which encoding/json then decides: JSON
// fastjson.Validate refuses, control characters (fastjson takes them raw
// in strings), invalid UTF-8 or \u escapes (their replacement rules differ), non-ASCII member
// names and any name that matches a field of sseChunk other than exactly
// (encoding/json matches names without regard to case), a repeated
// member that matters, any value of another type, usage or an error.
// FuzzFastDelta checks the agreement.
func fastDelta(d string) (text string, finished bool, ok bool) {
	if strings.Contains(d, `\u`) || !utf8.ValidString(d) || hasControl(d) || fastjson.Validate(d) != nil {
		return "", false, false
	}
	p := chunkParsers.Get()
	defer chunkParsers.Put(p)
	v, err := p.Parse(d)
	if err != nil {
		return "", false, false
	}
	top, err := v.Object()
	if err != nil {
		return "", false, false
	}
	var choices *fastjson.Value
	good := members(top, []string{"choices", "usage", "error"}, func(name string, v *fastjson.Value) bool {
		switch name {
		case "choices":
			choices = v
			return v.Type() == fastjson.TypeArray
		default: // usage, error: only null
			return v.Type() == fastjson.TypeNull
		}
	})
	if !good {
		return "", false, false
	}
	if choices == nil {
		return "", false, true
	}
	var b strings.Builder
	for _, c := range choices.GetArray() {
		obj, err := c.Object()
		if err != nil {
			return "", false, false
		}
		good := members(obj, []string{"delta", "finish_reason"}, func(name string, v *fastjson.Value) bool {
			if name == "finish_reason" {
				switch v.Type() {
				case fastjson.TypeNull:
					return true
				case fastjson.TypeString:
					finished = finished || len(v.GetStringBytes()) > 0
					return true
				}
				return false
			}
			delta, err := v.Object()
			if err != nil {
				return false
			}
			return members(delta, []string{"content"}, func(_ string, v *fastjson.Value) bool {
				if v.Type() != fastjson.TypeString {
					return false
				}
				b.Write(v.GetStringBytes())
				return true
			})
		})
		if !good {
			return "", false, false
		}
	}
	return b.String(), finished, true
}

// members visits o's members named exactly one of names, each at most
// once, and reports false if visit does, if one of names comes twice, or
// if any other member's name is not ASCII or matches one of names but for
// case (encoding/json would take it for that field).
func members(o *fastjson.Object, names []string, visit func(name string, v *fastjson.Value) bool) bool {
	ok := true
	var seen uint8
	o.Visit(func(k []byte, v *fastjson.Value) {
		if !ok {
			return
		}
		for i, n := range names {
			if string(k) == n {
				if seen&(1<<i) != 0 {
					ok = false
					return
				}
				seen |= 1 << i
				ok = visit(n, v)
				return
			}
			if strings.EqualFold(string(k), n) {
				ok = false
				return
			}
		}
		for _, c := range k {
			if c >= utf8.RuneSelf {
				ok = false
				return
			}
		}
	})
	return ok
}

// hasControl reports whether d has a byte below 0x20.
func hasControl(d string) bool {
	for i := 0; i < len(d); i++ {
		if d[i] < 0x20 {
			return true
		}
	}
	return false
}
