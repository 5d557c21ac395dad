package judge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/backend"
	"github.com/cybertensor/cybertensor/backend/openaitest"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// answerer is the validator's backend: it answers "the cat sat on the
// mat" to every request, counting calls per request.
type answerer struct {
	mu     sync.Mutex
	calls  map[string]int
	answer func(ctx context.Context, request string) ([]byte, error)
}

func (a *answerer) Answer(ctx context.Context, synapse string, request []byte) ([]byte, error) {
	a.mu.Lock()
	if a.calls == nil {
		a.calls = map[string]int{}
	}
	a.calls[string(request)]++
	a.mu.Unlock()
	if a.answer != nil {
		return a.answer(ctx, string(request))
	}
	return []byte("the cat sat on the mat"), nil
}

func (a *answerer) count(request string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[request]
}

func task(i int, answer string) Input {
	return Input{Request: json.RawMessage(fmt.Sprintf(`{"prompt": "task %d"}`, i)), Synapse: "text.generate", Answer: []byte(answer), AnswerIsText: true}
}

func TestReferenceSimilarity(t *testing.T) {
	a := &answerer{}
	m := NewMetrics(nil)
	j, err := NewReference(ReferenceConfig{Name: "ref", Compare: CompareSimilarity, Answerer: a, Metrics: m})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	for _, c := range []struct {
		answer string
		want   float64
	}{
		{"A cat sat on a mat.", 1},  // the same terms: cat, sat, mat
		{"the dog sat", 1.0 / 4},    // sat of cat, sat, mat, dog
		{"nothing alike here", 0.0}, // no shared term
	} {
		res, err := j.Judge(context.Background(), task(1, c.answer))
		if err != nil || math.Abs(res.Score-c.want) > 1e-12 || res.Fields["similarity"] != res.Score {
			t.Fatalf("%q: %+v %v", c.answer, res, err)
		}
	}
	// One reference for the three answers; the same request spelled
	// differently is the same task.
	in := task(1, "cat")
	in.Request = json.RawMessage(`{ "prompt" : "task 1" }`)
	if _, err := j.Judge(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if n := a.count(`{"prompt": "task 1"}`); n != 1 {
		t.Fatalf("reference computed %d times", n)
	}
	// A JSON answer is compared as its compact text.
	res, err := j.Judge(context.Background(), Input{Request: json.RawMessage(`{"prompt": "task 1"}`), Synapse: "text.generate", Answer: []byte(`{"cat": "mat"}`)})
	if err != nil || math.Abs(res.Score-2.0/3) > 1e-12 {
		t.Fatalf("json answer: %+v %v", res, err)
	}
	// Bad input.
	if _, err := j.Judge(context.Background(), Input{Request: json.RawMessage(`{}`), Answer: []byte{0xff}, AnswerIsText: true}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("bad answer: %v", err)
	}
	if testutil.ToFloat64(m.calls.WithLabelValues("ref")) != 6 || testutil.ToFloat64(m.failures.WithLabelValues("ref", ReasonBadInput)) != 1 {
		t.Fatal("not counted")
	}
}

func TestReferenceSharedAndBounded(t *testing.T) {
	release := make(chan struct{})
	a := &answerer{answer: func(ctx context.Context, request string) ([]byte, error) {
		select {
		case <-release:
			return []byte("the cat sat on the mat"), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}}
	j, err := NewReference(ReferenceConfig{Compare: CompareSimilarity, Answerer: a, CacheSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// Eight miners' answers to one task at once: one reference.
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := j.Judge(context.Background(), task(1, "cat mat")); err == nil && math.Abs(res.Score-2.0/3) < 1e-12 {
				ok.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(20 * time.Second)
	for a.count(`{"prompt": "task 1"}`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no reference asked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	wg.Wait()
	if ok.Load() != 8 || a.count(`{"prompt": "task 1"}`) != 1 {
		t.Fatalf("%d judged, reference computed %d times", ok.Load(), a.count(`{"prompt": "task 1"}`))
	}
	// The cache keeps two tasks: after tasks 2 and 3, task 1's reference
	// is computed again.
	for _, i := range []int{2, 3, 1} {
		if _, err := j.Judge(context.Background(), task(i, "x")); err != nil {
			t.Fatal(err)
		}
	}
	if n := a.count(`{"prompt": "task 1"}`); n != 2 {
		t.Fatalf("task 1's reference computed %d times", n)
	}
	if len(j.cache) != 2 || j.order.Len() != 2 {
		t.Fatalf("cache holds %d (%d)", len(j.cache), j.order.Len())
	}
}

func TestReferenceFailures(t *testing.T) {
	fails := atomic.Bool{}
	fails.Store(true)
	a := &answerer{answer: func(ctx context.Context, request string) ([]byte, error) {
		if fails.Load() {
			return nil, errors.New("backend: upstream model server failed")
		}
		return []byte("the cat sat on the mat"), nil
	}}
	m := NewMetrics(nil)
	j, err := NewReference(ReferenceConfig{Name: "ref", Compare: CompareSimilarity, Answerer: a, Metrics: m, Limits: Limits{MaxOutput: 100}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Judge(context.Background(), task(1, "cat")); !errors.Is(err, ErrJudgeFailed) || reasonOfFailure(err) != ReasonReference {
		t.Fatalf("%v", err)
	}
	// A failed reference is not kept: the next judgement tries again.
	fails.Store(false)
	if res, err := j.Judge(context.Background(), task(1, "cat")); err != nil || math.Abs(res.Score-1.0/3) > 1e-12 {
		t.Fatalf("%+v %v", res, err)
	}
	if n := a.count(`{"prompt": "task 1"}`); n != 2 {
		t.Fatalf("asked %d times", n)
	}
	// An oversized reference fails.
	a.answer = func(context.Context, string) ([]byte, error) { return make([]byte, 101), nil }
	if _, err := j.Judge(context.Background(), task(2, "cat")); reasonOfFailure(err) != ReasonReference {
		t.Fatalf("oversized: %v", err)
	}
	// Close stops a reference being computed; later judgements fail.
	a.answer = func(ctx context.Context, _ string) ([]byte, error) { <-ctx.Done(); return nil, ctx.Err() }
	done := make(chan error, 1)
	go func() { _, err := j.Judge(context.Background(), task(3, "cat")); done <- err }()
	deadline := time.Now().Add(20 * time.Second)
	for a.count(`{"prompt": "task 3"}`) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no reference asked")
		}
		time.Sleep(5 * time.Millisecond)
	}
	j.Close()
	if err := <-done; reasonOfFailure(err) != ReasonReference {
		t.Fatalf("closed mid-way: %v", err)
	}
	if _, err := j.Judge(context.Background(), task(4, "cat")); reasonOfFailure(err) != ReasonReference {
		t.Fatalf("after Close: %v", err)
	}
	j.Close()
	if testutil.ToFloat64(m.failures.WithLabelValues("ref", ReasonReference)) != 4 {
		t.Fatalf("failures %v", testutil.ToFloat64(m.failures.WithLabelValues("ref", ReasonReference)))
	}
}

// openAIEmbedder embeds with the OpenAI backend, as the validator's
// text.embed backend does.
type openAIEmbedder struct{ o *backend.OpenAI }

func (e openAIEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	vecs, _, err := e.o.Embed(ctx, texts, 0)
	out := make([][]float32, len(vecs))
	for i, v := range vecs {
		out[i] = make([]float32, len(v))
		for k, x := range v {
			out[i][k] = float32(x)
		}
	}
	return out, err
}

type embedFunc func(ctx context.Context, texts []string) ([][]float32, error)

func (f embedFunc) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	return f(ctx, texts)
}

func TestReferenceEmbedding(t *testing.T) {
	up := openaitest.New(openaitest.Config{Dimensions: 16})
	defer up.Close()
	o, err := backend.NewOpenAI(backend.OpenAIConfig{BaseURL: up.URL, Model: "embed"})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	a := &answerer{}
	j, err := NewReference(ReferenceConfig{Compare: CompareEmbedding, Answerer: a, Embedder: openAIEmbedder{o}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	res, err := j.Judge(context.Background(), task(1, "the cat sat on the mat"))
	if err != nil || math.Abs(res.Score-1) > 1e-6 {
		t.Fatalf("same text: %+v %v", res, err)
	}
	other := "a completely different answer"
	ref, ans := openaitest.Embedding("the cat sat on the mat", 16), openaitest.Embedding(other, 16)
	var dot float64
	for i := range ref {
		dot += float64(float32(ref[i])) * float64(float32(ans[i]))
	}
	res, err = j.Judge(context.Background(), task(1, other))
	if err != nil || math.Abs(res.Fields["cosine"].(float64)-dot) > 1e-5 || res.Score != max(0, res.Fields["cosine"].(float64)) {
		t.Fatalf("other text: %+v %v (cosine %v)", res, err, dot)
	}
	// The reference's embedding is kept too: two embeddings of answers and
	// one of the reference.
	if n := up.Requests("/v1/embeddings"); n != 3 {
		t.Fatalf("%d embedding requests", n)
	}
	// Bad embeddings fail.
	for name, e := range map[string]embedFunc{
		"wrong count": func(context.Context, []string) ([][]float32, error) { return nil, nil },
		"zero":        func(_ context.Context, t []string) ([][]float32, error) { return [][]float32{{0, 0}}, nil },
		"lengths": func(_ context.Context, t []string) ([][]float32, error) {
			return [][]float32{make([]float32, 1+len(t[0])%2+len(t[0]))}, nil
		},
		"failing": func(context.Context, []string) ([][]float32, error) { return nil, errors.New("down") },
	} {
		j, err := NewReference(ReferenceConfig{Compare: CompareEmbedding, Answerer: a, Embedder: e})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := j.Judge(context.Background(), task(1, "xy")); reasonOfFailure(err) != ReasonReference {
			t.Errorf("%s: %v", name, err)
		}
		j.Close()
	}
}

func TestReferenceConfigRefused(t *testing.T) {
	for name, cfg := range map[string]ReferenceConfig{
		"no answerer":    {Compare: CompareSimilarity},
		"bad compare":    {Compare: "bleu", Answerer: &answerer{}},
		"no embedder":    {Compare: CompareEmbedding, Answerer: &answerer{}},
		"negative cache": {Compare: CompareSimilarity, Answerer: &answerer{}, CacheSize: -1},
	} {
		if j, err := NewReference(cfg); err == nil {
			j.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
