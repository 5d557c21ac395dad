package backend

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
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
//
// A miner reads one event per token, so the event's line, its data and
// the pending deltas live in buffers kept from stream to stream
// (sseStates), and the common chunk is read without allocating.
func readSSE(r io.Reader, maxLine, maxChunks int, emit func(string) error) (Usage, error) {
	st := newSSEState(r, min(maxLine+2, 64<<10))
	defer st.release()
	var (
		usage    Usage
		hasData  bool
		events   int
		finished bool
	)
	flush := func() error {
		if len(st.pending) == 0 {
			return nil
		}
		s := string(st.pending)
		st.pending = st.pending[:0]
		return emit(s)
	}
	// dispatch handles one event's data; done reports [DONE].
	dispatch := func() (done bool, err error) {
		if !hasData {
			return false, nil
		}
		d := st.data
		st.data = st.data[:0]
		hasData = false
		if events++; events > maxChunks {
			return false, &sseError{kind: failOversize, msg: fmt.Sprintf("more than %d events", maxChunks)}
		}
		if bytes.Equal(bytes.TrimSpace(d), doneData) {
			return true, nil
		}
		if content, fin, ok := st.template.match(d); ok {
			// The last chunk again but for its content.
			st.pending = append(st.pending, content...)
			finished = finished || fin
		} else if out, fin, contents, ok := fastDelta(d, st.pending); ok {
			// The common chunk, read as encoding/json would read it.
			st.template.learn(d, out[len(st.pending):], fin, contents)
			st.pending = out
			finished = finished || fin
		} else {
			var chunk sseChunk
			if err := json.Unmarshal(d, &chunk); err != nil {
				return false, malformed("malformed stream chunk: %v", err)
			}
			if chunk.Error != nil {
				return false, &sseError{kind: failStatus, msg: "server error in the stream: " + chunk.Error.Message}
			}
			if chunk.Usage != nil {
				usage = chunk.Usage.usage()
			}
			for _, c := range chunk.Choices {
				st.pending = append(st.pending, c.Delta.Content...)
				if c.FinishReason != nil && *c.FinishReason != "" {
					finished = true
				}
			}
		}
		if len(st.pending) >= maxPendingDeltas || st.br.Buffered() == 0 {
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
		line, err := st.readLine(maxLine)
		if err != nil && err != io.EOF {
			return end(err)
		}
		if len(line) == 0 && err == nil {
			if done, err := dispatch(); err != nil || done {
				return end(err)
			}
			continue
		}
		field, value := line, []byte(nil)
		if i := bytes.IndexByte(line, ':'); i >= 0 {
			field, value = line[:i], line[i+1:]
			if len(value) > 0 && value[0] == ' ' {
				value = value[1:]
			}
		}
		switch string(field) {
		case "data":
			if hasData {
				st.data = append(st.data, '\n')
			}
			st.data = append(st.data, value...)
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

// doneData is the data of the event that ends a stream.
var doneData = []byte("[DONE]")

// maxPendingDeltas bounds the deltas readSSE holds before passing them on.
const maxPendingDeltas = 64 << 10

// sseStates keeps the buffers of finished streams: a 64 KiB line reader,
// the current event's data, the deltas pending and a long line's bytes. A
// miner reads one stream per chat answer; a fresh reader each time was half
// of the bytes its streaming path allocated, and a string per line, event
// and delta most of the rest.
var sseStates = sync.Pool{New: func() any { return &sseState{br: bufio.NewReaderSize(nil, 64<<10)} }}

// maxKeptScratch is the most capacity a pooled state's slices keep.
const maxKeptScratch = 64 << 10

// sseState is one stream's reader and scratch buffers.
type sseState struct {
	br                  *bufio.Reader
	data, pending, long []byte
	template            deltaTemplate
	pooled              bool
}

// newSSEState reads r with a buffer of size bytes, from sseStates when the
// size is the pool's.
func newSSEState(r io.Reader, size int) *sseState {
	if size != 64<<10 {
		return &sseState{br: bufio.NewReaderSize(r, size)}
	}
	st := sseStates.Get().(*sseState)
	st.br.Reset(r)
	st.pooled = true
	return st
}

// release gives a pooled state back, holding no reference to the stream
// and no slice grown past maxKeptScratch.
func (st *sseState) release() {
	if !st.pooled {
		return
	}
	st.br.Reset(nil)
	st.template.ok = false
	for _, b := range []*[]byte{&st.data, &st.pending, &st.long, &st.template.prefix, &st.template.suffix} {
		if cap(*b) > maxKeptScratch {
			*b = nil
		}
		*b = (*b)[:0]
	}
	sseStates.Put(st)
}

// readLine reads one line without its "\n" or "\r\n": io.EOF with the
// last, unterminated line (possibly empty) at the end of the stream; an
// oversize error for a line over maxLine bytes. The line is valid until
// the next read.
func (st *sseState) readLine(maxLine int) ([]byte, error) {
	st.long = st.long[:0]
	for {
		frag, err := st.br.ReadSlice('\n')
		if len(st.long)+len(frag) > maxLine+2 { // past any line ending
			return nil, lineOversize(maxLine)
		}
		line := frag
		if len(st.long) > 0 || errors.Is(err, bufio.ErrBufferFull) {
			// A line longer than the buffer, gathered whole.
			st.long = append(st.long, frag...)
			line = st.long
		}
		switch {
		case err == nil:
			line = bytes.TrimSuffix(bytes.TrimSuffix(line, newline), carriageReturn)
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF:
			line = bytes.TrimSuffix(line, carriageReturn)
		default:
			return nil, err
		}
		if len(line) > maxLine {
			return nil, lineOversize(maxLine)
		}
		return line, err
	}
}

func lineOversize(maxLine int) error {
	return &sseError{kind: failOversize, msg: fmt.Sprintf("a stream line over %d bytes", maxLine)}
}

var newline, carriageReturn = []byte("\n"), []byte("\r")

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
// chunk per token). It appends the choices' contents to out and reports
// whether a choice finished, exactly what decoding into sseChunk gives,
// and how many content members it read (deltaTemplate learns only from a
// chunk with one); and ok false (out as it was) for anything else, which
// encoding/json then decides: what plainObject refuses, non-ASCII member
// names and any name that matches a field of sseChunk other than exactly
// (encoding/json matches names without regard to case), a repeated member
// that matters, any value of another type, usage or an error.
// FuzzFastDelta checks the agreement.
func fastDelta(d, out []byte) (_ []byte, finished bool, contents int, ok bool) {
	p := chunkParsers.Get()
	defer chunkParsers.Put(p)
	top, ok := plainObject(p, d)
	if !ok {
		return out, false, 0, false
	}
	var choices *fastjson.Value
	good := members(top, topMembers, func(name string, v *fastjson.Value) bool {
		switch name {
		case "choices":
			choices = v
			return v.Type() == fastjson.TypeArray
		default: // usage, error: only null
			return v.Type() == fastjson.TypeNull
		}
	})
	if !good {
		return out, false, 0, false
	}
	if choices == nil {
		return out, false, 0, true
	}
	text := out
	for _, c := range choices.GetArray() {
		obj, err := c.Object()
		if err != nil {
			return out, false, 0, false
		}
		good := members(obj, choiceMembers, func(name string, v *fastjson.Value) bool {
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
			return members(delta, deltaMembers, func(_ string, v *fastjson.Value) bool {
				if v.Type() != fastjson.TypeString {
					return false
				}
				text = append(text, v.GetStringBytes()...)
				contents++
				return true
			})
		})
		if !good {
			return out, false, 0, false
		}
	}
	return text, finished, contents, true
}

// fastChatJSON reads the common whole chat completion with fastjson, as
// fastDelta reads a streamed chunk: an object whose choices are objects
// (or null) with a message object (or null) whose content is a string (or
// null), the first choice's content a string, usage absent, null or an
// object whose prompt_tokens and completion_tokens are absent, null or
// integers that fit in 32 bits, and error absent or null. It returns what
// decodeChatJSON's encoding/json reading gives, and ok false for anything
// else, which encoding/json then decides (the rules of fastDelta: what
// plainObject refuses, non-ASCII member names, a member matching a field
// but for case, a repeated member that matters). FuzzFastChatJSON checks
// the agreement.
func fastChatJSON(b []byte) (text string, u Usage, ok bool) {
	p := chunkParsers.Get()
	defer chunkParsers.Put(p)
	top, ok := plainObject(p, b)
	if !ok {
		return "", Usage{}, false
	}
	var choices, usage *fastjson.Value
	if !members(top, topMembers, func(name string, v *fastjson.Value) bool {
		switch name {
		case "choices":
			choices = v
			return v.Type() == fastjson.TypeArray
		case "usage":
			usage = v
			return v.Type() == fastjson.TypeObject || v.Type() == fastjson.TypeNull
		default: // error: only null
			return v.Type() == fastjson.TypeNull
		}
	}) || choices == nil {
		return "", Usage{}, false
	}
	var first *string
	for i, c := range choices.GetArray() {
		if c.Type() == fastjson.TypeNull {
			continue
		}
		obj, err := c.Object()
		if err != nil {
			return "", Usage{}, false
		}
		if !members(obj, messageMembers, func(_ string, m *fastjson.Value) bool {
			if m.Type() == fastjson.TypeNull {
				return true
			}
			msg, err := m.Object()
			if err != nil {
				return false
			}
			return members(msg, deltaMembers, func(_ string, content *fastjson.Value) bool {
				switch content.Type() {
				case fastjson.TypeNull:
					return true
				case fastjson.TypeString:
					if i == 0 {
						s := string(content.GetStringBytes())
						first = &s
					}
					return true
				}
				return false
			})
		}) {
			return "", Usage{}, false
		}
	}
	if first == nil {
		return "", Usage{}, false // encoding/json says what is missing
	}
	if usage != nil && usage.Type() == fastjson.TypeObject {
		o, _ := usage.Object()
		if !members(o, usageMembers, func(name string, n *fastjson.Value) bool {
			if n.Type() == fastjson.TypeNull {
				return true
			}
			x, ok := uint32Number(n)
			if name == "prompt_tokens" {
				u.PromptTokens = x
			} else {
				u.CompletionTokens = x
			}
			return ok
		}) {
			return "", Usage{}, false
		}
	}
	return *first, u, true
}

// The members fastChatJSON reads besides fastDelta's.
var (
	messageMembers = []string{"message"}
	usageMembers   = []string{"prompt_tokens", "completion_tokens"}
)

// uint32Number is n as encoding/json reads a JSON number into a uint32:
// digits only, at most 4294967295.
func uint32Number(n *fastjson.Value) (uint32, bool) {
	if n.Type() != fastjson.TypeNumber {
		return 0, false
	}
	raw := n.MarshalTo(nil)
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	x, err := strconv.ParseUint(string(raw), 10, 32)
	return uint32(x), err == nil
}

// deltaTemplate is the last chunk fastDelta read, cut around its content
// string, when a stream's chunks are all alike but for their contents (an
// OpenAI-compatible server repeats the id, creation time, model and the
// rest in every chunk): a chunk that is the template with another content
// string in place of the old is read as fastDelta would read it, with a
// comparison and a scan instead of a parse.
//
// It learns only from a chunk whose delta had exactly one content member,
// whose text holds exactly one `"content"` and that followed by `:"`
// (then that is the delta's member: in valid JSON an unescaped quote
// before content and a colon after it make a member name, and an escaped
// one would be a second occurrence beside the delta's own), and whose
// string there has no escape (its bytes are its text). It matches a chunk
// with the same bytes before and after that string and, between them,
// bytes with no quote, backslash or control character that are valid
// UTF-8: a string whose text is those bytes, in a chunk of the same
// structure, so fastDelta would read that text and the same finish
// (FuzzDeltaTemplate checks it).
type deltaTemplate struct {
	prefix, suffix []byte
	finished       bool
	ok             bool
}

// contentKey is the delta member deltaTemplate cuts the chunk at.
var contentKey = []byte(`"content":"`)

// learn takes d, a chunk fastDelta read to text with finish fin and
// contents content members, as the template if it can be one.
func (t *deltaTemplate) learn(d, text []byte, fin bool, contents int) {
	t.ok = false
	key := bytes.Index(d, contentKey[:9]) // "content"
	if contents != 1 || key < 0 || bytes.LastIndex(d, contentKey[:9]) != key || !bytes.HasPrefix(d[key:], contentKey) {
		return
	}
	start := key + len(contentKey)
	n := bytes.IndexByte(d[start:], '"')
	if n < 0 || bytes.IndexByte(d[start:start+n], '\\') >= 0 || !bytes.Equal(d[start:start+n], text) {
		return
	}
	t.prefix = append(t.prefix[:0], d[:start]...)
	t.suffix = append(t.suffix[:0], d[start+n:]...)
	t.finished, t.ok = fin, true
}

// match returns d's content if d is the template with another content
// string.
func (t *deltaTemplate) match(d []byte) (content []byte, finished bool, ok bool) {
	if !t.ok || len(d) < len(t.prefix)+len(t.suffix) || !bytes.HasPrefix(d, t.prefix) || !bytes.HasSuffix(d, t.suffix) {
		return nil, false, false
	}
	content = d[len(t.prefix) : len(d)-len(t.suffix)]
	for _, c := range content {
		if c < 0x20 || c == '"' || c == '\\' {
			return nil, false, false
		}
	}
	if !utf8.Valid(content) {
		return nil, false, false
	}
	return content, t.finished, true
}

// The members fastDelta reads, by object.
var (
	topMembers    = []string{"choices", "usage", "error"}
	choiceMembers = []string{"delta", "finish_reason"}
	deltaMembers  = []string{"content"}
)

// plainObject parses b with p when it is valid JSON (fastjson.Validate),
// an object, and plainJSON; its values are p's until p parses again.
func plainObject(p *fastjson.Parser, b []byte) (*fastjson.Object, bool) {
	if !plainJSON(b) || fastjson.ValidateBytes(b) != nil {
		return nil, false
	}
	v, err := p.ParseBytes(b)
	if err != nil {
		return nil, false
	}
	o, err := v.Object()
	return o, err == nil
}

// plainJSON reports whether d's strings hold no control character and no
// \u escape, and d is valid UTF-8 with no control character outside its
// strings but JSON's whitespace: what plainObject leaves to encoding/json
// otherwise (fastjson takes control characters raw in strings, and
// replaces bad escapes and bytes by other rules).
func plainJSON(d []byte) bool {
	inString := false
	for i := 0; i < len(d); i++ {
		switch c := d[i]; {
		case c >= utf8.RuneSelf:
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size <= 1 {
				return false
			}
			i += size - 1
		case inString && c == '\\':
			if i+1 < len(d) && d[i+1] == 'u' {
				return false
			}
			i++ // the escaped byte
		case c == '"':
			inString = !inString
		case c < 0x20:
			if inString || (c != '\n' && c != '\r' && c != '\t') {
				return false
			}
		}
	}
	return true
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
