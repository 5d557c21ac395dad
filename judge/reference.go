package judge

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cybertensor/cybertensor/backend"
)

// Answerer answers a task as a miner would: the validator's own backend.
// The answer is in Input.Answer's form (text, or JSON).
type Answerer interface {
	Answer(ctx context.Context, synapse string, request []byte) ([]byte, error)
}

// Embedder turns texts into vectors, one per text, in order (text.embed).
type Embedder interface {
	Embed(ctx context.Context, texts []string) ([][]float32, error)
}

// Ways a reference judge compares.
const (
	CompareSimilarity = "similarity" // term Jaccard, as the reward's similarity()
	CompareEmbedding  = "embedding"  // cosine of the embeddings, below 0 taken as 0
)

// ReferenceConfig configures a judge that compares each answer with the
// validator's own answer to the same task.
type ReferenceConfig struct {
	// Name names the judge in logs and metrics (default "reference").
	Name string
	// Compare is CompareSimilarity or CompareEmbedding.
	Compare string
	// Answerer computes the reference answers (required).
	Answerer Answerer
	// Embedder embeds texts (required for CompareEmbedding).
	Embedder Embedder
	// Limits: Timeout bounds computing one reference (answer and
	// embedding) and embedding one answer; MaxOutput bounds a reference
	// answer (default 64 KiB); Concurrency bounds the references computed
	// at once.
	Limits Limits
	// CacheSize is how many tasks' references are kept (default 1024).
	CacheSize int
	// Metrics counts the judgements (nil: not counted).
	Metrics *Metrics
	// Logger gets failures (nil: discarded).
	Logger *slog.Logger
}

// Reference is the reference judge. A task's reference is computed once,
// by the first judgement that needs it, and shared by every answer to that
// task (also by judgements asking at the same time); a failed one is not
// kept, so the next judgement of the task tries again. The score is the
// comparison of the answer with the reference, in [0,1]; Result.Fields
// holds "similarity" or "cosine" (the raw cosine).
type Reference struct {
	cfg    ReferenceConfig
	obs    observer
	slots  chan struct{}
	ctx    context.Context // canceled by Close: references being computed stop
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	closed bool
	cache  map[[32]byte]*list.Element // of *reference
	order  *list.List                 // most recently used first
}

// reference is one task's reference, ready once done is closed.
type reference struct {
	key  [32]byte
	done chan struct{}
	text string
	vec  []float32
	err  error
}

// NewReference checks cfg and returns the judge.
func NewReference(cfg ReferenceConfig) (*Reference, error) {
	switch cfg.Compare {
	case CompareSimilarity:
	case CompareEmbedding:
		if cfg.Embedder == nil {
			return nil, errors.New("judge: reference: compare embedding needs an embedder")
		}
	default:
		return nil, fmt.Errorf("judge: reference: compare %q is neither %s nor %s", cfg.Compare, CompareSimilarity, CompareEmbedding)
	}
	if cfg.Answerer == nil {
		return nil, errors.New("judge: reference: no answerer")
	}
	if cfg.CacheSize < 0 {
		return nil, fmt.Errorf("judge: reference: negative cache size %d", cfg.CacheSize)
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = 1024
	}
	limits, err := cfg.Limits.orDefault()
	if err != nil {
		return nil, err
	}
	cfg.Limits = limits
	ctx, cancel := context.WithCancel(context.Background())
	return &Reference{cfg: cfg, obs: newObserver(cfg.Name, "reference", cfg.Metrics, cfg.Logger),
		slots: make(chan struct{}, cfg.Limits.Concurrency), ctx: ctx, cancel: cancel,
		cache: map[[32]byte]*list.Element{}, order: list.New()}, nil
}

var _ Judge = (*Reference)(nil)

// Judge compares in's answer with the task's reference.
func (r *Reference) Judge(ctx context.Context, in Input) (Result, error) {
	start := time.Now()
	res, err := r.judge(ctx, in)
	return res, r.obs.finish(ctx, start, err)
}

func (r *Reference) judge(ctx context.Context, in Input) (Result, error) {
	answer, err := answerText(in.Answer, in.AnswerIsText)
	if err != nil {
		return Result{}, fail(ReasonBadInput, "the answer: %v", err)
	}
	if !json.Valid(in.Request) {
		return Result{}, fail(ReasonBadInput, "the request is not JSON")
	}
	ref, err := r.reference(ctx, in)
	if err != nil {
		return Result{}, err
	}
	if r.cfg.Compare == CompareSimilarity {
		s := backend.TermOverlap(ref.text, answer)
		return Result{Score: s, Fields: map[string]any{"similarity": s}}, nil
	}
	ectx, cancel := context.WithTimeout(ctx, r.cfg.Limits.Timeout)
	defer cancel()
	vec, err := r.embed(ectx, answer)
	if err != nil {
		return Result{}, err
	}
	c, err := cosine(ref.vec, vec)
	if err != nil {
		return Result{}, fail(ReasonReference, "%v", err)
	}
	return Result{Score: max(c, 0), Fields: map[string]any{"cosine": c}}, nil
}

// answerText is an answer as the text compared: a text answer's text, a
// JSON answer compacted.
func answerText(b []byte, isText bool) (string, error) {
	if isText {
		if !utf8.Valid(b) {
			return "", errors.New("not UTF-8 text")
		}
		return string(b), nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	return buf.String(), nil
}

// reference returns the task's reference, computing it if no judgement
// has yet.
func (r *Reference) reference(ctx context.Context, in Input) (*reference, error) {
	key := taskKey(in.Synapse, in.Request)
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil, fail(ReasonReference, "the judge is closed")
	}
	var ref *reference
	if e, ok := r.cache[key]; ok {
		r.order.MoveToFront(e)
		ref = e.Value.(*reference)
	} else {
		ref = &reference{key: key, done: make(chan struct{})}
		r.cache[key] = r.order.PushFront(ref)
		for r.order.Len() > r.cfg.CacheSize {
			old := r.order.Back()
			r.order.Remove(old)
			delete(r.cache, old.Value.(*reference).key)
		}
		r.wg.Add(1)
		go r.compute(ref, in.Synapse, append([]byte(nil), in.Request...), in.AnswerIsText)
	}
	r.mu.Unlock()
	select {
	case <-ref.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if ref.err != nil {
		return nil, ref.err
	}
	return ref, nil
}

// taskKey identifies a task by its synapse and request.
func taskKey(synapse string, request []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(synapse))
	h.Write([]byte{0})
	h.Write(compact(request))
	var k [32]byte
	h.Sum(k[:0])
	return k
}

// compute fills ref, bound to the judge's life rather than to the
// judgement that asked first (others wait for it too).
func (r *Reference) compute(ref *reference, synapse string, request []byte, isText bool) {
	defer r.wg.Done()
	defer close(ref.done)
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Limits.Timeout)
	defer cancel()
	ref.err = r.fill(ctx, ref, synapse, request, isText)
	if ref.err != nil {
		r.mu.Lock()
		if e, ok := r.cache[ref.key]; ok && e.Value == ref {
			r.order.Remove(e)
			delete(r.cache, ref.key)
		}
		r.mu.Unlock()
	}
}

func (r *Reference) fill(ctx context.Context, ref *reference, synapse string, request []byte, isText bool) error {
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-ctx.Done():
		return fail(ReasonReference, "waiting to compute the reference: %v", ctx.Err())
	}
	answer, err := r.cfg.Answerer.Answer(ctx, synapse, request)
	if err != nil {
		return fail(ReasonReference, "the reference answer: %v", err)
	}
	if len(answer) > r.cfg.Limits.MaxOutput {
		return fail(ReasonReference, "a reference answer of %d bytes is over %d", len(answer), r.cfg.Limits.MaxOutput)
	}
	if ref.text, err = answerText(answer, isText); err != nil {
		return fail(ReasonReference, "the reference answer: %v", err)
	}
	if r.cfg.Compare == CompareEmbedding {
		if ref.vec, err = r.embed(ctx, ref.text); err != nil {
			return err
		}
	}
	return nil
}

// embed embeds one text.
func (r *Reference) embed(ctx context.Context, text string) ([]float32, error) {
	vecs, err := r.cfg.Embedder.Embed(ctx, []string{text})
	if err != nil {
		return nil, fail(ReasonReference, "embedding: %v", err)
	}
	if len(vecs) != 1 {
		return nil, fail(ReasonReference, "embedding: %d vectors for one text", len(vecs))
	}
	return vecs[0], nil
}

// Close stops the references being computed and waits for them; it is
// safe to call twice.
func (r *Reference) Close() error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	r.cancel()
	r.wg.Wait()
	return nil
}

// cosine is the cosine of two vectors of one length, neither zero.
func cosine(a, b []float32) (float64, error) {
	if len(a) != len(b) || len(a) == 0 {
		return 0, fmt.Errorf("embeddings of lengths %d and %d", len(a), len(b))
	}
	var dot, na, nb float64
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		dot += x * y
		na += x * x
		nb += y * y
	}
	c := dot / math.Sqrt(na*nb)
	if na == 0 || nb == 0 || math.IsNaN(c) || math.IsInf(c, 0) {
		return 0, errors.New("an embedding that is zero or not finite")
	}
	return max(-1, min(1, c)), nil
}
