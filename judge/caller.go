package judge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/valyala/fastjson"
)

// Caller sends one judge request and returns the judge's reply: one line
// to a long-lived judge program (*hook.Exec), or one POST to a judge
// endpoint (*hook.HTTP). It bounds the time and the reply itself.
type Caller interface {
	Call(ctx context.Context, body []byte) ([]byte, error)
}

// Option configures a judge made by NewCaller.
type Option func(*callerConfig)

type callerConfig struct {
	name     string
	metrics  *Metrics
	logger   *slog.Logger
	maxReply int
}

// WithName names the judge in logs and metrics (default "caller").
func WithName(name string) Option { return func(c *callerConfig) { c.name = name } }

// WithMetrics counts the judge's calls.
func WithMetrics(m *Metrics) Option { return func(c *callerConfig) { c.metrics = m } }

// WithLogger logs the judge's failures.
func WithLogger(l *slog.Logger) Option { return func(c *callerConfig) { c.logger = l } }

// WithMaxReply bounds the reply read (default 64 KiB; at least 64).
func WithMaxReply(n int) Option {
	return func(c *callerConfig) { c.maxReply = max(n, 64) }
}

// Bounds of a judge's reply fields.
const (
	maxFieldsDepth = 8   // nesting of objects and arrays in "fields"
	maxFields      = 256 // members of "fields" at the top
)

// callerJudge speaks the judge protocol through a Caller.
type callerJudge struct {
	c        Caller
	maxReply int
	obs      observer
	close    sync.Once
	closeErr error
}

// NewCaller returns the judge that speaks the exec/http judge protocol
// through c. Each judgement sends one JSON object:
//
//	{"task": {"request": …, "expected": …, "meta": …}, "answer": …, "synapse": "…"}
//
// (expected and meta only when the task has them; the answer a JSON string
// for a text answer, the answer's JSON otherwise), and reads one back:
//
//	{"score": <number in [0,1]>, "fields": {…}}
//
// A reply that is not one JSON object, has a member other than score,
// fields and error, has an "error" member, or lacks a finite score in
// [0,1] is a failure. Fields are kept (at most 256 members, nested at most
// 8 deep). Close closes c if it has a Close method.
func NewCaller(c Caller, opts ...Option) Judge {
	cfg := callerConfig{name: "caller", maxReply: 64 << 10}
	for _, o := range opts {
		o(&cfg)
	}
	return &callerJudge{c: c, maxReply: cfg.maxReply, obs: newObserver(cfg.name, "caller", cfg.metrics, cfg.logger)}
}

func (j *callerJudge) Judge(ctx context.Context, in Input) (Result, error) {
	start := time.Now()
	res, err := j.judge(ctx, in)
	return res, j.obs.finish(ctx, start, err)
}

func (j *callerJudge) judge(ctx context.Context, in Input) (Result, error) {
	line, err := EncodeRequest(in)
	if err != nil {
		return Result{}, err
	}
	reply, err := j.c.Call(ctx, line)
	if err != nil {
		return Result{}, err
	}
	if len(reply) > j.maxReply {
		return Result{}, fail(ReasonTooLarge, "a reply of %d bytes is over %d", len(reply), j.maxReply)
	}
	return DecodeReply(reply)
}

// Close closes the Caller if it has a Close method; it is safe to call
// twice.
func (j *callerJudge) Close() error {
	j.close.Do(func() {
		if c, ok := j.c.(interface{ Close() error }); ok {
			j.closeErr = c.Close()
		}
	})
	return j.closeErr
}

// EncodeRequest is the judge protocol's request for in, on one line.
func EncodeRequest(in Input) ([]byte, error) {
	// json.Compact checks what it compacts as json.Valid does.
	b := bytes.NewBuffer(make([]byte, 0, 64+len(in.Request)+len(in.Expected)+len(in.Meta)+len(in.Answer)+len(in.Synapse)))
	b.WriteString(`{"task":{"request":`)
	if json.Compact(b, in.Request) != nil {
		return nil, fail(ReasonBadInput, "the request is not JSON")
	}
	for _, m := range []struct {
		name string
		v    json.RawMessage
	}{{"expected", in.Expected}, {"meta", in.Meta}} {
		if len(m.v) == 0 {
			continue
		}
		b.WriteString(`,"` + m.name + `":`)
		if json.Compact(b, m.v) != nil {
			return nil, fail(ReasonBadInput, "the task's %s is not JSON", m.name)
		}
	}
	b.WriteString(`},"answer":`)
	if in.AnswerIsText {
		if !utf8.Valid(in.Answer) {
			return nil, fail(ReasonBadInput, "the answer is not UTF-8 text")
		}
		s, _ := json.Marshal(string(in.Answer))
		b.Write(s)
	} else {
		if json.Compact(b, in.Answer) != nil {
			return nil, fail(ReasonBadInput, "the answer is not JSON")
		}
	}
	b.WriteString(`,"synapse":`)
	s, _ := json.Marshal(in.Synapse)
	b.Write(s)
	b.WriteByte('}')
	return b.Bytes(), nil
}

// compact is valid JSON on one line (a judge program reads lines).
func compact(raw json.RawMessage) json.RawMessage {
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

// DecodeReply reads a judge's reply strictly (see NewCaller). Every
// refusal is a failure error (wrapping ErrJudgeFailed once returned by a
// judge).
func DecodeReply(reply []byte) (Result, error) {
	if res, ok := decodeReplyFast(reply); ok {
		return res, nil
	}
	return decodeReply(reply)
}

// replyParsers parse judges' replies on the fast path.
var replyParsers fastjson.ParserPool

// decodeReplyFast decodes a well-formed reply several times faster than
// encoding/json (fastjson, no reflection), giving exactly what
// decodeReply gives; ok is false for anything it does not take (any
// refusal, an "error" member, a \u escape, whose decoding differs between
// the libraries at lone surrogates), which decodeReply then decides.
func decodeReplyFast(reply []byte) (_ Result, ok bool) {
	if bytes.Contains(reply, []byte(`\u`)) || !utf8.Valid(reply) || fastjson.ValidateBytes(reply) != nil {
		return Result{}, false
	}
	p := replyParsers.Get()
	defer replyParsers.Put(p)
	v, err := p.ParseBytes(reply)
	if err != nil || v.Type() != fastjson.TypeObject {
		return Result{}, false
	}
	o, _ := v.Object()
	var score, fields *fastjson.Value
	ok = true
	o.Visit(func(k []byte, e *fastjson.Value) {
		switch string(k) {
		case "score":
			score = e
		case "fields":
			fields = e
		default:
			ok = false
		}
	})
	if !ok || score == nil || score.Type() != fastjson.TypeNumber {
		return Result{}, false
	}
	var res Result
	if res.Score, err = strconv.ParseFloat(string(score.MarshalTo(nil)), 64); err != nil ||
		math.IsNaN(res.Score) || math.IsInf(res.Score, 0) || res.Score < 0 || res.Score > 1 {
		return Result{}, false
	}
	if fields == nil || fields.Type() == fastjson.TypeNull {
		return res, true
	}
	if fields.Type() != fastjson.TypeObject {
		return Result{}, false
	}
	f, ok := fastJSON(fields, 1)
	if !ok {
		return Result{}, false
	}
	res.Fields = f.(map[string]any)
	if len(res.Fields) > maxFields {
		return Result{}, false
	}
	return res, true
}

// fastJSON is v as encoding/json decodes it into an any (numbers
// float64); ok is false past maxFieldsDepth or for a number out of
// float64's range.
func fastJSON(v *fastjson.Value, depth int) (_ any, ok bool) {
	switch v.Type() {
	case fastjson.TypeObject:
		if depth > maxFieldsDepth {
			return nil, false
		}
		o, _ := v.Object()
		m := make(map[string]any, o.Len())
		ok = true
		o.Visit(func(k []byte, e *fastjson.Value) {
			if ok {
				m[string(k)], ok = fastJSON(e, depth+1)
			}
		})
		return m, ok
	case fastjson.TypeArray:
		if depth > maxFieldsDepth {
			return nil, false
		}
		items, _ := v.Array()
		out := make([]any, len(items))
		for i, e := range items {
			if out[i], ok = fastJSON(e, depth+1); !ok {
				return nil, false
			}
		}
		return out, true
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return string(b), true
	case fastjson.TypeNumber:
		f, err := strconv.ParseFloat(string(v.MarshalTo(nil)), 64)
		return f, err == nil
	case fastjson.TypeTrue:
		return true, true
	case fastjson.TypeFalse:
		return false, true
	}
	return nil, true
}

// decodeReply is DecodeReply with encoding/json, which decides every
// reply the fast path does not take.
func decodeReply(reply []byte) (Result, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(reply, &raw); err != nil {
		return Result{}, fail(ReasonBadReply, "not one JSON object: %v", err)
	}
	if raw == nil {
		return Result{}, fail(ReasonBadReply, "null, not an object")
	}
	for k := range raw {
		if k != "score" && k != "fields" && k != "error" {
			return Result{}, fail(ReasonBadReply, "unknown member %q (a judge's own values go under \"fields\")", truncate(k, 40))
		}
	}
	if e, ok := raw["error"]; ok {
		var msg string
		if json.Unmarshal(e, &msg) != nil {
			msg = string(e)
		}
		return Result{}, fail(ReasonJudgeError, "the judge said: %s", truncate(printable(msg), 300))
	}
	s, ok := raw["score"]
	if !ok {
		return Result{}, fail(ReasonBadReply, "no score")
	}
	var num json.Number
	if err := json.Unmarshal(s, &num); err != nil || bytes.HasPrefix(bytes.TrimSpace(s), []byte(`"`)) {
		return Result{}, fail(ReasonBadReply, "score %s is not a number", truncate(string(s), 40))
	}
	score, err := num.Float64()
	if err != nil || math.IsNaN(score) || math.IsInf(score, 0) || score < 0 || score > 1 {
		return Result{}, fail(ReasonBadReply, "score %s is not a finite number in [0,1]", truncate(num.String(), 40))
	}
	res := Result{Score: score}
	if f, ok := raw["fields"]; ok && !bytes.Equal(bytes.TrimSpace(f), []byte("null")) {
		if err := checkDepth(f, maxFieldsDepth); err != nil {
			return Result{}, fail(ReasonBadReply, "fields: %v", err)
		}
		if err := json.Unmarshal(f, &res.Fields); err != nil {
			return Result{}, fail(ReasonBadReply, "fields is not an object: %v", err)
		}
		if len(res.Fields) > maxFields {
			return Result{}, fail(ReasonBadReply, "fields has %d members, over %d", len(res.Fields), maxFields)
		}
	}
	return res, nil
}

// printable makes a judge's message printable on one line.
func printable(s string) string {
	var b bytes.Buffer
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			r = ' '
		}
		b.WriteRune(r)
	}
	return b.String()
}

// checkDepth refuses JSON nested deeper than limit (counted outside strings).
func checkDepth(b []byte, limit int) error {
	depth, inString, escaped := 0, false, false
	for _, c := range b {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return fmt.Errorf("nested more than %d deep", limit)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
