package backend

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
)

// benchStream is a streamed chat completion of 64 tokens as an
// OpenAI-compatible server sends it (and gateway's benchmarks' fake
// upstream does): one event a token, then the finish and [DONE].
func benchStream() []byte {
	var b bytes.Buffer
	for i := range 64 {
		fmt.Fprintf(&b, "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"logprobs\":null,\"finish_reason\":null}]}\n\n", i)
	}
	b.WriteString("data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1733600000,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n")
	b.WriteString("data: [DONE]\n\n")
	return b.Bytes()
}

// BenchmarkReadSSE reads a 64-token stream held in memory: readSSE (the
// miner's backend), against a naive reader in the same run (bufio.Scanner
// lines, encoding/json for every event). ns/event is per token.
func BenchmarkReadSSE(b *testing.B) {
	stream := benchStream()
	want := strings.Repeat("", 0)
	for i := range 64 {
		want += fmt.Sprintf("tok%d ", i)
	}
	b.Run("readSSE", func(b *testing.B) {
		b.ReportAllocs()
		var got strings.Builder
		for b.Loop() {
			got.Reset()
			if _, err := readSSE(bytes.NewReader(stream), 1<<20, 1<<20, func(s string) error { got.WriteString(s); return nil }); err != nil {
				b.Fatal(err)
			}
		}
		if got.String() != want {
			b.Fatalf("read %q", got.String())
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/65, "ns/event")
	})
	b.Run("naive", func(b *testing.B) {
		b.ReportAllocs()
		var got strings.Builder
		for b.Loop() {
			got.Reset()
			sc := bufio.NewScanner(bytes.NewReader(stream))
			for sc.Scan() {
				d, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok || d == "[DONE]" {
					continue
				}
				var c sseChunk
				if err := json.Unmarshal([]byte(d), &c); err != nil {
					b.Fatal(err)
				}
				for _, ch := range c.Choices {
					got.WriteString(ch.Delta.Content)
				}
			}
		}
		if got.String() != want {
			b.Fatalf("read %q", got.String())
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/65, "ns/event")
	})
}

// BenchmarkDecodeChatJSON reads a whole chat completion of 1 KiB of text
// (the gateway benchmarks' answer): decodeChatJSON, against
// encoding/json alone (readChatJSON) in the same run.
func BenchmarkDecodeChatJSON(b *testing.B) {
	answer := strings.Repeat("lorem ", 1024/6) + "abcd"
	body := fmt.Appendf(nil, `{"id":"x","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":%q},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":171,"total_tokens":183}}`+"\n", answer)
	for _, c := range []struct {
		name string
		read func([]byte) (string, Usage, error)
	}{{"decodeChatJSON", decodeChatJSON}, {"encoding-json", readChatJSON}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if text, u, err := c.read(body); err != nil || text != answer || u.CompletionTokens != 171 {
					b.Fatalf("%q %+v %v", text, u, err)
				}
			}
		})
	}
}
