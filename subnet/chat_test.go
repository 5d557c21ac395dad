package subnet

import (
	"errors"
	"strings"
	"testing"
)

func TestChatAndEmbedBodies(t *testing.T) {
	ok := []string{
		`{"messages":[{"role":"user","content":"hi"}]}`,
		`{"messages":[{"role":"system","content":""},{"role":"user","content":"hi"}],"max_tokens":16,"temperature":0,"top_p":1,"stop":["\n"],"seed":-3}`,
	}
	for _, b := range ok {
		r, err := DecodeChatRequest([]byte(b))
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		again, err := DecodeChatRequest(r.Encode())
		if err != nil || len(again.Messages) != len(r.Messages) {
			t.Fatalf("%s: round trip %v", b, err)
		}
	}
	for _, b := range []string{
		`{"messages":[]}`,
		`{"messages":[{"role":"robot","content":"hi"}]}`,
		`{"messages":[{"role":"user","content":"hi"}],"temperature":2.5}`,
		`{"messages":[{"role":"user","content":"hi"}],"top_p":-0.1}`,
		`{"messages":[{"role":"user","content":"hi"}],"max_tokens":1048577}`,
		`{"messages":[{"role":"user","content":"hi"}],"stop":["a","b","c","d","e"]}`,
		`{"messages":[{"role":"user","content":"hi"}],"stop":[""]}`,
		`{"messages":[{"role":"user","content":"hi"}],"model":"x"}`,
		`{"messages":[{"role":"user","content":"hi"}]} {}`,
		`[]`,
		`{"messages":[{"role":"user","content":"` + strings.Repeat("a", MaxChatBody) + `"}]}`,
	} {
		if _, err := DecodeChatRequest([]byte(b)); !errors.Is(err, ErrBadBody) {
			t.Errorf("%.80s: %v", b, err)
		}
	}
	req, err := DecodeEmbedRequest([]byte(`{"input":["a","b"],"dimensions":3}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeEmbedAnswer([]byte(`{"embeddings":[[1,2,3],[0,0.5,-1]]}`), req); err != nil {
		t.Fatal(err)
	}
	for _, b := range []string{`{"embeddings":[[1,2,3]]}`, `{"embeddings":[[1,2,3],[1,2]]}`, `{"embeddings":[[1,2],[1,2]]}`, `{"embeddings":[[],[]]}`} {
		if _, err := DecodeEmbedAnswer([]byte(b), req); !errors.Is(err, ErrBadBody) {
			t.Errorf("answer %s: %v", b, err)
		}
	}
	for _, b := range []string{`{"input":[]}`, `{"input":["a"],"dimensions":8193}`, `{"input":"a"}`} {
		if _, err := DecodeEmbedRequest([]byte(b)); !errors.Is(err, ErrBadBody) {
			t.Errorf("request %s: %v", b, err)
		}
	}
}

func FuzzChatRequest(f *testing.F) {
	f.Add([]byte(`{"messages":[{"role":"user","content":"hi"}],"max_tokens":16,"temperature":0.5,"stop":["x"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeChatRequest(b)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("not ErrBadBody: %v", err)
			}
			return
		}
		if _, err := DecodeChatRequest(r.Encode()); err != nil {
			t.Fatalf("accepted request does not re-encode: %v", err)
		}
	})
}

func FuzzEmbedBodies(f *testing.F) {
	f.Add([]byte(`{"input":["a","b"],"dimensions":2}`), []byte(`{"embeddings":[[1,2],[3,4]]}`))
	f.Fuzz(func(t *testing.T, reqBody, answer []byte) {
		req, err := DecodeEmbedRequest(reqBody)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("not ErrBadBody: %v", err)
			}
			return
		}
		a, err := DecodeEmbedAnswer(answer, req)
		if err != nil {
			if !errors.Is(err, ErrBadBody) {
				t.Fatalf("not ErrBadBody: %v", err)
			}
			return
		}
		if _, err := DecodeEmbedAnswer(a.Encode(), req); err != nil {
			t.Fatalf("accepted answer does not re-encode: %v", err)
		}
	})
}
