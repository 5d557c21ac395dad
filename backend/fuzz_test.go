package backend

import (
	"encoding/json"
	"errors"
	"fmt"
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
// usage and no error; anything else is left to encoding/json, with the
// pending deltas fastDelta appends to untouched.
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
		pending := append(make([]byte, 0, 24), "pending "...) // room to append in place
		out, fin, _, ok := fastDelta([]byte(d), pending)
		if !ok {
			if string(out) != "pending " {
				t.Fatalf("%q: refused, and the pending deltas became %q", d, out)
			}
			return
		}
		text, found := strings.CutPrefix(string(out), "pending ")
		if !found {
			t.Fatalf("%q: the pending deltas became %q", d, out)
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
	text, fin, _, ok := fastDelta([]byte(`{"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"tok1 "},"logprobs":null,"finish_reason":null}],"usage":null}`), []byte("tok0 "))
	if !ok || string(text) != "tok0 tok1 " || fin {
		t.Fatalf("%q %v %v", text, fin, ok)
	}
	if _, _, _, ok := fastDelta([]byte(`{"choices":[{"delta":{"Content":"x"}}]}`), nil); ok {
		t.Fatal("a member matching a field but for case took the fast path")
	}
}

// naiveSSE reads a stream the plain way, as readSSE's doc says it reads
// one, with no bounds: lines split at "\n" (a "\r" before it dropped),
// the last unterminated line a field line, "data" lines joined, a blank
// line ending an event, [DONE] the end, every chunk decoded by
// encoding/json. It returns the deltas read and whether the stream was
// good.
func naiveSSE(stream string) (string, bool) {
	var text strings.Builder
	var data []string
	finished := false
	// dispatch handles an event; done is [DONE] or a failure.
	dispatch := func() (done, ok bool) {
		if data == nil {
			return false, true
		}
		d := strings.Join(data, "\n")
		data = nil
		if strings.TrimSpace(d) == "[DONE]" {
			return true, true
		}
		var chunk sseChunk
		if err := json.Unmarshal([]byte(d), &chunk); err != nil || chunk.Error != nil {
			return true, false
		}
		for _, c := range chunk.Choices {
			text.WriteString(c.Delta.Content)
			finished = finished || c.FinishReason != nil && *c.FinishReason != ""
		}
		return false, true
	}
	lines := strings.Split(stream, "\n")
	for i, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" && i < len(lines)-1 {
			if done, ok := dispatch(); done {
				return text.String(), ok
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		if field == "data" {
			data = append(data, strings.TrimPrefix(value, " "))
		}
	}
	if done, ok := dispatch(); done {
		return text.String(), ok
	}
	return text.String(), finished
}

// FuzzReadSSEAgrees checks readSSE, with bounds no input here reaches,
// against naiveSSE: the same deltas, and an error exactly when the plain
// reading finds the stream bad.
func FuzzReadSSEAgrees(f *testing.F) {
	for _, s := range []string{
		"data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\ndata: [DONE]\n\n",
		": ping\r\n\r\nevent: x\r\ndata:{\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\r\n\r\ndata: {\"choices\":[],\"usage\":{\"prompt_tokens\":3}}\n\ndata: [DONE]",
		"data: {\"choices\":[{\"delta\":{\"content\":\"c\"},\"finish_reason\":\"stop\"}]}\n",
		"data: {\"choices\":\ndata: [{\"delta\":{\"content\":\"d\"}}]}\n\ndata:[DONE]\n\ndata: more",
		"data: {\"error\":{\"message\":\"x\"}}\n\n",
		"data\n\ndata: {\"choices\":[{\"delta\":{\"content\":\"\\u00e9\\r\"},\"finish_reason\":\"length\"}]}\r",
		"data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\ndata: {not json\n\n",
		// alike chunks (deltaTemplate), one with an escape, one finishing
		"data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"y\\\"\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"z\"},\"finish_reason\":null}]}\n\n" +
			"data: {\"id\":\"a\",\"choices\":[{\"delta\":{\"content\":\"z\"},\"finish_reason\":\"stop\"}]}\n\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, stream string) {
		var got strings.Builder
		_, err := readSSE(strings.NewReader(stream), 1<<20, 1<<20, func(s string) error { got.WriteString(s); return nil })
		want, ok := naiveSSE(stream)
		if got.String() != want || (err == nil) != ok {
			t.Fatalf("%q: readSSE %q, %v; plainly %q, good %v", stream, got.String(), err, want, ok)
		}
	})
}

// FuzzDeltaTemplate checks deltaTemplate: a chunk that matches the
// template learned from another is one fastDelta takes, to the same
// content and finish.
func FuzzDeltaTemplate(f *testing.F) {
	common := `{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"%s"},"logprobs":null,"finish_reason":%s}]}`
	for _, p := range [][2]string{
		{fmt.Sprintf(common, "tok1 ", "null"), fmt.Sprintf(common, "tok2 ", "null")},
		{fmt.Sprintf(common, "a", `"stop"`), fmt.Sprintf(common, "", `"stop"`)},
		{fmt.Sprintf(common, "a", "null"), fmt.Sprintf(common, `b\"`, "null")},
		{fmt.Sprintf(common, "a", "null"), fmt.Sprintf(common, `b"},"x":{"y":"`, "null")},
		{`{"choices":[{"delta":{"content":"a"},"logprobs":{"content":"a"}}]}`, `{"choices":[{"delta":{"content":"a"},"logprobs":{"content":"b"}}]}`},
		{`{"choices":[{"delta":{}, "logprobs":{"content":""}}]}`, `{"choices":[{"delta":{}, "logprobs":{"content":"z"}}]}`},
		{`{"\"content":"v","choices":[{"delta":{"content":"v"}}]}`, `{"\"content":"w","choices":[{"delta":{"content":"v"}}]}`},
		{`{"choices":[{"delta":{"content":"é"}}]}`, "{\"choices\":[{\"delta\":{\"content\":\"\xff\"}}]}"},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, learnt, next string) {
		text, fin, contents, ok := fastDelta([]byte(learnt), nil)
		if !ok {
			return
		}
		var tm deltaTemplate
		tm.learn([]byte(learnt), text, fin, contents)
		content, mfin, mok := tm.match([]byte(next))
		if !mok {
			return
		}
		want, wfin, _, wok := fastDelta([]byte(next), nil)
		if !wok || string(content) != string(want) || mfin != wfin {
			t.Fatalf("learnt %q; %q matched as %q %v, fastDelta %q %v %v", learnt, next, content, mfin, want, wfin, wok)
		}
	})
}

// The template takes the common stream's later chunks, and refuses to
// learn from a chunk where "content" is not only the delta's.
func TestDeltaTemplate(t *testing.T) {
	chunk := func(id, content, finish string) []byte {
		return fmt.Appendf(nil, `{"id":%q,"object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":%q},"logprobs":null,"finish_reason":%s}]}`, id, content, finish)
	}
	learn := func(d []byte) *deltaTemplate {
		text, fin, contents, ok := fastDelta(d, nil)
		if !ok {
			t.Fatalf("fastDelta refused %s", d)
		}
		var tm deltaTemplate
		tm.learn(d, text, fin, contents)
		return &tm
	}
	tm := learn(chunk("c1", "tok1 ", "null"))
	for _, c := range []struct {
		chunk []byte
		want  string
		fin   bool
		ok    bool
	}{
		{chunk("c1", "tok2 ", "null"), "tok2 ", false, true},
		{chunk("c1", "", "null"), "", false, true},
		{chunk("c1", "é ✓", "null"), "é ✓", false, true},
		{chunk("c2", "tok2 ", "null"), "", false, false},       // another id
		{chunk("c1", "tok2 ", `"stop"`), "", false, false},     // another finish
		{chunk("c1", `say "hi"`, "null"), "", false, false},    // an escape
		{chunk("c1", "line\nbreak", "null"), "", false, false}, // a backslash
	} {
		got, fin, ok := tm.match(c.chunk)
		if ok != c.ok || string(got) != c.want || fin != c.fin {
			t.Errorf("%s: %q %v %v, want %q %v %v", c.chunk, got, fin, ok, c.want, c.fin, c.ok)
		}
	}
	if tm := learn(chunk("c1", "x", `"stop"`)); !tm.ok || !tm.finished {
		t.Errorf("a finishing chunk: learnt %v, finished %v", tm.ok, tm.finished)
	}
	for _, d := range []string{
		`{"choices":[{"delta":{"content":"a"},"logprobs":{"content":"a"}}]}`, // two "content"
		`{"choices":[{"delta":{}, "logprobs":{"content":""}}]}`,              // not the delta's
		`{"choices":[{"delta":{"content": "a"}}]}`,                           // a space
		`{"choices":[{"delta":{"content":"a\"b"}}]}`,                         // an escape
		`{"choices":[{"delta":{"content":"a"}},{"delta":{"content":"b"}}]}`,  // two choices with content
		`{"\"content":"v","choices":[{"delta":{"content":"v"}}]}`,            // an escaped quote before content
	} {
		if tm := learn([]byte(d)); tm.ok {
			t.Errorf("learnt from %s", d)
		}
	}
}

// FuzzFastChatJSON checks decodeChatJSON's fast path: every answer
// fastChatJSON takes, encoding/json takes too and reads to the same text
// and usage.
func FuzzFastChatJSON(f *testing.F) {
	for _, s := range []string{
		`{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi é"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}` + "\n",
		"{\n  \"choices\": [\n    {\"message\": {\"content\": \"a\\nb\"}}\n  ],\n  \"usage\": null\n}",
		`{"choices":[{"message":{"content":"x"}},null,{"message":null},{"message":{"content":null}}],"error":null}`,
		`{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":4294967296}}`,
		`{"choices":[{"message":{"content":"x"}}],"usage":{"prompt_tokens":1.0}}`,
		`{"choices":[{"Message":{"content":"x"}}]}`,
		`{"choices":[{"message":{"content":"x","content":"y"}}]}`,
		`{"choices":[null,{"message":{"content":"x"}}]}`,
		`{"choices":[{"message":{"content":"x\ty"}}]}`,
		"{\"choices\":[{\"message\":{\"content\":\"x\ty\"}}]}",
		`{"choices":[{"message":{"content":"\u00e9"}}]}`,
		`{"choices":[{"message":{"content":5}}]}`,
		`{"error":{"message":"no"},"choices":[]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		text, u, ok := fastChatJSON(b)
		if !ok {
			return
		}
		want, wu, err := readChatJSON(b)
		if err != nil || text != want || u != wu {
			t.Fatalf("%q: fast %q %+v; encoding/json %q %+v %v", b, text, u, want, wu, err)
		}
	})
}

// The common whole answer takes the fast path, pretty-printed or not.
func TestFastChatJSONTakesTheCommonAnswer(t *testing.T) {
	for _, b := range []string{
		`{"id":"x","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"logprobs":null,"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4,"completion_tokens_details":{"reasoning_tokens":0}}}` + "\n",
		"{\n  \"choices\": [\n    {\n      \"message\": {\"role\": \"assistant\", \"content\": \"hello\"}\n    }\n  ],\n  \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 1}\n}\n",
	} {
		text, u, ok := fastChatJSON([]byte(b))
		if !ok || text != "hello" || u != (Usage{PromptTokens: 3, CompletionTokens: 1}) {
			t.Errorf("%s: %q %+v %v", b, text, u, ok)
		}
	}
}
