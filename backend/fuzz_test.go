package backend

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzReadSSE runs the streamed-answer parser on untrusted bytes: it never
// panics, stays within its bounds, and an error is one of its own kinds or
// the emit error.
func FuzzReadSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n"))
	f.Add([]byte(": ping\r\n\r\ndata:{\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\r\n\r\ndata: [DONE]"))
	f.Add([]byte("data: {\"choices\":[{\"delta\":{\"content\":\"c\"},\"finish_reason\":\"stop\"}]}\n"))
	f.Add([]byte("data: {\"error\":{\"message\":\"x\"}}\n\n"))
	f.Add([]byte("data: a\ndata: b\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		stop := errors.New("stop")
		var emitted int
		_, err := readSSE(strings.NewReader(string(data)), 256, 8, func(s string) error {
			emitted += len(s)
			if strings.Contains(s, "STOP") {
				return stop
			}
			return nil
		})
		if emitted > len(data) {
			t.Fatalf("emitted %d bytes from %d", emitted, len(data))
		}
		var se *sseError
		if err != nil && !errors.Is(err, stop) && !errors.As(err, &se) {
			t.Fatalf("error of another kind: %T %v", err, err)
		}
	})
}

// FuzzDecodeChatJSON runs the whole-answer parser on untrusted bytes.
func FuzzDecodeChatJSON(f *testing.F) {
	f.Add([]byte(`{"choices":[{"message":{"role":"assistant","content":"hi"}}],"usage":{"prompt_tokens":1,"completion_tokens":1}}`))
	f.Add([]byte(`{"choices":[{"message":{"content":null}}]}`))
	f.Add([]byte(`{"error":{"message":"no"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		text, _, err := decodeChatJSON(data)
		if err != nil && text != "" {
			t.Fatal("text with an error")
		}
		if err == nil && utf8.Valid(data) && !utf8.ValidString(text) {
			t.Fatalf("invalid UTF-8 out of valid JSON: %q", text)
		}
	})
}

// FuzzDecodeEmbeddings runs the embeddings parser on untrusted bytes: what
// it accepts has one vector per input, all of one length.
func FuzzDecodeEmbeddings(f *testing.F) {
	f.Add([]byte(`{"data":[{"index":1,"embedding":[3,4]},{"index":0,"embedding":[1,2]}],"usage":{"prompt_tokens":5}}`), 2, 0)
	f.Add([]byte(`{"data":[{"index":0,"embedding":[1]}]}`), 1, 1)
	f.Add([]byte(`{"data":[{"index":0,"embedding":[]}]}`), 1, 0)
	f.Fuzz(func(t *testing.T, data []byte, n, dims int) {
		if n < 0 || n > 64 || dims < 0 {
			return
		}
		vecs, _, err := decodeEmbeddings(data, n, dims)
		if err != nil {
			return
		}
		if len(vecs) != n {
			t.Fatalf("%d vectors for %d inputs", len(vecs), n)
		}
		for _, v := range vecs {
			if len(v) == 0 || len(v) != len(vecs[0]) || (dims > 0 && len(v) != dims) {
				t.Fatalf("vector of %d numbers (first %d, dims %d)", len(v), len(vecs[0]), dims)
			}
		}
	})
}

// FuzzFastDelta checks readSSE's fast path: every chunk fastDelta takes,
// encoding/json takes too and reads to the same text and finish, with no
// usage and no error; anything else is left to encoding/json.
func FuzzFastDelta(f *testing.F) {
	for _, s := range []string{
		`{"id":"x","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tok1 "},"finish_reason":null}]}`,
		`{"choices":[{"delta":{"role":"assistant","content":"a\n\"b\""},"finish_reason":"stop"},{"delta":{"content":"c"}}],"usage":null}`,
		`{"choices":[{"delta":{},"finish_reason":""}],"error":null}`,
		`{"Choices":[{"delta":{"content":"x"}}]}`,
		`{"choices":[{"delta":{"content":"x","CONTENT":"y"}}]}`,
		`{"choices":[],"choices":[{"delta":{"content":"x"}}]}`,
		`{"choices":[{"delta":{"content":null}}]}`,
		`{"choices":[{"delta":{"content":"\u00e9"}}]}`,
		`{"choices":[{"delta":{"content":"é"}}],"x":[1,2,{"y":01}]}`,
		`{"usage":{"prompt_tokens":1,"completion_tokens":2},"choices":[]}`,
		`{"choices":null}`,
		`[]`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, d string) {
		text, fin, ok := fastDelta(d)
		if !ok {
			return
		}
		var chunk sseChunk
		if err := json.Unmarshal([]byte(d), &chunk); err != nil {
			t.Fatalf("fastDelta took %q, encoding/json refuses it: %v", d, err)
		}
		var want strings.Builder
		wantFin := false
		for _, c := range chunk.Choices {
			want.WriteString(c.Delta.Content)
			wantFin = wantFin || c.FinishReason != nil && *c.FinishReason != ""
		}
		if text != want.String() || fin != wantFin || chunk.Usage != nil || chunk.Error != nil {
			t.Fatalf("%q: fast %q %v, encoding/json %q %v (usage %v, error %v)", d, text, fin, want.String(), wantFin, chunk.Usage, chunk.Error)
		}
	})
}

// The common chunk takes the fast path.
func TestFastDeltaTakesTheCommonChunk(t *testing.T) {
	text, fin, ok := fastDelta(`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"tok1 "},"logprobs":null,"finish_reason":null}],"usage":null}`)
	if !ok || text != "tok1 " || fin {
		t.Fatalf("%q %v %v", text, fin, ok)
	}
	if _, _, ok := fastDelta(`{"choices":[{"delta":{"Content":"x"}}]}`); ok {
		t.Fatal("a member matching a field but for case took the fast path")
	}
}
