package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/subnet"
)

// The benchmarks compare client → gateway → miner → upstream with
// client → httputil.ReverseProxy → the same upstream (and, for time to
// first token, client → upstream), in the same run: BENCHMARKS.md.

// benchTokens is how many tokens a streamed answer has.
const benchTokens = 64

// answer1KiB is a 1 KiB answer of 171 words.
var answer1KiB = strings.Repeat("lorem ", 1024/6) + "abcd"

// upstream is a fake OpenAI-compatible model server: a non-streaming
// chat completion answers answer1KiB, a streaming one benchTokens
// tokens, each event flushed.
func upstream() *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"id": "x", "object": "chat.completion", "model": "m",
				"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": answer1KiB}, "finish_reason": "stop"}}})
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		for i := range benchTokens {
			fmt.Fprintf(w, "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n", i)
			fl.Flush()
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
}

// upstreamHandler is a miner's text.chat handler in front of an
// upstream: the streamed deltas are written as they arrive.
func upstreamHandler(base string, hc *http.Client) protocol.HandlerFunc {
	return func(ctx context.Context, req *protocol.Request, w protocol.ResponseWriter) error {
		cr, err := subnet.DecodeChatRequest(req.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		stream := cr.MaxTokens != 1024 // the benchmark asks max_tokens 1024 for the whole answer
		body, _ := json.Marshal(map[string]any{"model": "m", "messages": cr.Messages, "stream": stream})
		hr, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/chat/completions", bytes.NewReader(body))
		resp, err := hc.Do(hr)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if !stream {
			var out struct {
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Choices) == 0 {
				return fmt.Errorf("upstream answer: %v", err)
			}
			return w.Write([]byte(out.Choices[0].Message.Content))
		}
		// Deltas that have already arrived go out as one chunk, as
		// httputil.ReverseProxy writes what one read returns.
		br := bufio.NewReader(resp.Body)
		var out []byte
		for {
			raw, err := br.ReadSlice('\n')
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			line, ok := bytes.CutPrefix(bytes.TrimSpace(raw), []byte("data: "))
			if ok && !bytes.Equal(line, []byte("[DONE]")) {
				var ev struct {
					Choices []struct {
						Delta struct{ Content string } `json:"delta"`
					} `json:"choices"`
				}
				if err := json.Unmarshal(line, &ev); err != nil || len(ev.Choices) == 0 {
					return fmt.Errorf("upstream event: %v", err)
				}
				out = append(out, ev.Choices[0].Delta.Content...)
			}
			if len(out) > 0 && br.Buffered() == 0 {
				if err := w.Write(out); err != nil {
					return err
				}
				out = out[:0]
			}
		}
		if len(out) > 0 {
			return w.Write(out)
		}
		return nil
	}
}

// benchPaths are the targets one benchmark run compares.
type benchPaths struct {
	gateway, proxy, direct string
	client                 *http.Client
}

func newBenchPaths(b *testing.B) benchPaths {
	up := upstream()
	b.Cleanup(up.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	cfg := DefaultTestConfig()
	cfg.Routing.MaxInFlight = 256
	r := newRig(b, 1, cfg)
	r.miners[0].setHandler(upstreamHandler(up.URL, hc))
	u, _ := url.Parse(up.URL)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, FlushInterval: -1, Transport: tr}
	ps := httptest.NewServer(rp)
	b.Cleanup(ps.Close)
	ctr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	b.Cleanup(ctr.CloseIdleConnections)
	return benchPaths{gateway: r.url, proxy: ps.URL, direct: up.URL, client: &http.Client{Transport: ctr}}
}

// post sends one chat completion to base and reads the answer; for a
// stream it returns the time to the first content event and the content
// events read.
func (p benchPaths) post(base string, stream bool) (ttft time.Duration, tokens int, err error) {
	body := `{"model":"sn1/text.chat","max_tokens":1024,"messages":[{"role":"user","content":"write a page"}]}`
	if stream {
		body = `{"model":"sn1/text.chat","stream":true,"messages":[{"role":"user","content":"write"}]}`
	}
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testSecret)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return 0, 0, fmt.Errorf("%d: %s", resp.StatusCode, b)
	}
	if !stream {
		b, err := io.ReadAll(resp.Body)
		if err == nil && !bytes.Contains(b, []byte(answer1KiB)) {
			err = fmt.Errorf("answer %.100s", b)
		}
		return time.Since(start), 1, err
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if n := bytes.Count(sc.Bytes(), []byte("tok")); n > 0 {
			if tokens == 0 {
				ttft = time.Since(start)
			}
			tokens += n
		}
	}
	if err := sc.Err(); err != nil {
		return 0, 0, err
	}
	if tokens != benchTokens {
		return 0, 0, fmt.Errorf("%d tokens, want %d", tokens, benchTokens)
	}
	return ttft, tokens, nil
}

func p50(ds []time.Duration) time.Duration {
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkLatency1KiB: p50 of a non-streaming 1 KiB answer.
func BenchmarkLatency1KiB(b *testing.B) {
	p := newBenchPaths(b)
	for _, path := range []struct{ name, base string }{{"gateway", p.gateway}, {"proxy", p.proxy}} {
		b.Run(path.name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				d, _, err := p.post(path.base, false)
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, d)
			}
			b.ReportMetric(float64(p50(ds).Microseconds()), "p50-µs")
		})
	}
}

// BenchmarkFirstToken: p50 time to the first token of a streamed answer.
func BenchmarkFirstToken(b *testing.B) {
	p := newBenchPaths(b)
	for _, path := range []struct{ name, base string }{{"gateway", p.gateway}, {"proxy", p.proxy}, {"direct", p.direct}} {
		b.Run(path.name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				d, _, err := p.post(path.base, true)
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, d)
			}
			b.ReportMetric(float64(p50(ds).Microseconds()), "p50-µs")
		})
	}
}

// BenchmarkStream64: 64 clients streaming at once; tokens per second.
func BenchmarkStream64(b *testing.B) {
	p := newBenchPaths(b)
	for _, path := range []struct{ name, base string }{{"gateway", p.gateway}, {"proxy", p.proxy}} {
		b.Run(path.name, func(b *testing.B) {
			var next, tokens atomic.Int64
			var failed atomic.Value
			start := time.Now()
			var wg sync.WaitGroup
			for range 64 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						_, n, err := p.post(path.base, true)
						if err != nil {
							failed.Store(err)
							return
						}
						tokens.Add(int64(n))
					}
				}()
			}
			wg.Wait()
			if err := failed.Load(); err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(float64(tokens.Load())/time.Since(start).Seconds(), "tokens/s")
		})
	}
}
