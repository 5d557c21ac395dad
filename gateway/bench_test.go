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
	"syscall"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
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

// minerWrites counts the chunks the benchmarks' miners wrote (each a
// frame, flushed).
var minerWrites atomic.Int64

// upstreamHandler is a miner's text.chat handler in front of an
// upstream, as neuron serves text.chat: backend.OpenAI's answer, each
// write as the backend emits it (the streamed deltas already received
// together), the upstream's usage on the last frame. The benchmark asks
// max_tokens 1024 for a whole (non-streaming) answer.
func upstreamHandler(b testing.TB, base string) protocol.HandlerFunc {
	mk := func(noStream bool) *backend.OpenAI {
		o, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: base, Model: "m", NoStream: noStream})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(o.Close)
		return o
	}
	whole, streamed := mk(true), mk(false)
	return func(ctx context.Context, req *protocol.Request, w protocol.ResponseWriter) error {
		cr, err := subnet.DecodeChatRequest(req.Body)
		if err != nil {
			return protocol.Errorf(protocol.StatusBadRequest, "%v", err)
		}
		o := streamed
		if cr.MaxTokens == 1024 {
			o = whole
		}
		breq := backend.ChatRequest{MaxTokens: cr.MaxTokens, Messages: make([]backend.ChatMessage, len(cr.Messages))}
		for i, m := range cr.Messages {
			breq.Messages[i] = backend.ChatMessage{Role: m.Role, Content: m.Content}
		}
		u, err := o.Chat(ctx, breq, func(s string) error {
			minerWrites.Add(1)
			return w.Write([]byte(s))
		})
		if u != (backend.Usage{}) {
			protocol.SetUsage(w, u.PromptTokens, u.CompletionTokens)
		}
		return err
	}
}

// reverseProxy is the anchor: httputil.ReverseProxy in front of the
// upstream at base, flushing every write. It reads the client's request
// body whole before forwarding it, as the gateway does: the upstream
// answers as soon as it has decoded the JSON, and once the proxy flushes
// that answer's headers net/http may close a request body not yet read to
// its end, failing the forwarded request mid-answer ("unexpected EOF" at
// the client, one request in a few thousand).
func reverseProxy(base string, tr http.RoundTripper) http.Handler {
	u, _ := url.Parse(base)
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(u) }, FlushInterval: -1, Transport: tr}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		rp.ServeHTTP(w, r)
	})
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
	cfg := DefaultTestConfig()
	cfg.Routing.MaxInFlight = 256
	r := newRig(b, 1, cfg)
	r.miners[0].setHandler(upstreamHandler(b, up.URL))
	ps := httptest.NewServer(reverseProxy(up.URL, tr))
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

// cpuTime is the CPU time (user and system) the process has used: on a
// machine shared with other work, CPU per request is steadier than
// latency.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
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
			cpu := cpuTime()
			for b.Loop() {
				d, _, err := p.post(path.base, false)
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, d)
			}
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/float64(b.N), "cpu-µs/op")
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
			writes := minerWrites.Load()
			cpu := cpuTime()
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
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(tokens.Load()), "cpu-ns/token")
			if path.name == "gateway" {
				b.ReportMetric(float64(minerWrites.Load()-writes)/float64(b.N), "miner-writes/stream")
			}
		})
	}
}

// BenchmarkLatency1KiBParts splits the 1 KiB answer's p50 by replacing
// parts of the path, all in one run: the whole path with and without
// receipts; a miner that answers the 1 KiB at once (no upstream call),
// with and without receipts; the query protocol alone (a client on its
// own host asking that instant miner); the upstream alone (client →
// upstream, the miner's own call); and the reverse proxy.
func BenchmarkLatency1KiBParts(b *testing.B) {
	up := upstream()
	b.Cleanup(up.Close)
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	instant := func(ctx context.Context, req *protocol.Request, w protocol.ResponseWriter) error {
		return w.Write([]byte(answer1KiB))
	}
	rigs := map[string]*rig{}
	for _, v := range []struct {
		name    string
		receipt bool
		h       protocol.HandlerFunc
	}{{"upstream+receipt", true, upstreamHandler(b, up.URL)}, {"upstream", false, upstreamHandler(b, up.URL)},
		{"instant+receipt", true, instant}, {"instant", false, instant}} {
		cfg := DefaultTestConfig()
		cfg.Routing.MaxInFlight = 256
		cfg.ReceiptAsked = v.receipt
		r := newRig(b, 1, cfg)
		r.miners[0].setHandler(v.h)
		rigs[v.name] = r
	}
	ps := httptest.NewServer(reverseProxy(up.URL, tr))
	b.Cleanup(ps.Close)
	ctr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	b.Cleanup(ctr.CloseIdleConnections)
	p := benchPaths{client: &http.Client{Transport: ctr}}

	// The query protocol alone: a client host asks the instant miner.
	gk := testKey(2000)
	gh, err := node.New(context.Background(), node.DefaultTestConfig(gk))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { gh.Close() })
	qc, err := protocol.NewClient(gh, protocol.DefaultClientConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { qc.Close() })
	m := rigs["instant"].meta.miners[1][0]
	gh.Peerstore().AddAddrs(m.Peer, m.Addrs, time.Hour)
	chatBody := (&subnet.ChatRequest{Messages: []subnet.ChatMessage{{Role: "user", Content: "write a page"}}, MaxTokens: 1024}).Encode()
	protoQuery := func(receipt bool) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			start := time.Now()
			res := qc.Stream(context.Background(), m.Peer, &pb.Request{Netuid: 1, Synapse: subnet.SynapseChat, Body: chatBody, WantReceipt: receipt, TimeoutMs: 10_000}, nil)
			if res.Err != nil || res.Status != protocol.StatusOK || len(res.Body) != len(answer1KiB) {
				return 0, fmt.Errorf("query: %v %v", res.Status, res.Err)
			}
			return time.Since(start), nil
		}
	}
	post := func(base string) func() (time.Duration, error) {
		return func() (time.Duration, error) {
			d, _, err := p.post(base, false)
			return d, err
		}
	}
	alone := upstreamHandler(b, up.URL)
	upstreamAlone := func() (time.Duration, error) {
		body, _ := json.Marshal(map[string]any{"model": "m", "messages": []any{map[string]string{"role": "user", "content": "write a page"}}, "stream": false})
		start := time.Now()
		resp, err := hc.Post(up.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return time.Since(start), err
	}
	for _, part := range []struct {
		name string
		fn   func() (time.Duration, error)
	}{
		{"gateway+upstream+receipt", post(rigs["upstream+receipt"].url)},
		{"gateway+upstream", post(rigs["upstream"].url)},
		{"gateway+instant+receipt", post(rigs["instant+receipt"].url)},
		{"gateway+instant", post(rigs["instant"].url)},
		{"protocol+receipt", protoQuery(true)},
		{"protocol", protoQuery(false)},
		{"upstream-alone", upstreamAlone},
		{"handler-alone", func() (time.Duration, error) {
			start := time.Now()
			err := alone(context.Background(), &protocol.Request{Body: chatBody}, discardWriter{})
			return time.Since(start), err
		}},
		{"receipt-signature", func() (time.Duration, error) {
			start := time.Now()
			gk.Sign([]byte(answer1KiB[:150]))
			return time.Since(start), nil
		}},
		{"proxy", post(ps.URL)},
	} {
		b.Run(part.name, func(b *testing.B) {
			var ds []time.Duration
			for b.Loop() {
				d, err := part.fn()
				if err != nil {
					b.Fatal(err)
				}
				ds = append(ds, d)
			}
			b.ReportMetric(float64(p50(ds).Microseconds()), "p50-µs")
		})
	}
}

// discardWriter takes a handler's answer and drops it.
type discardWriter struct{}

func (discardWriter) Write([]byte) error { return nil }
