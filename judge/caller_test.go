package judge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// callerFunc is a Caller made of a function; it counts Close.
type callerFunc struct {
	call   func(ctx context.Context, body []byte) ([]byte, error)
	closed atomic.Int32
}

func (c *callerFunc) Call(ctx context.Context, body []byte) ([]byte, error) { return c.call(ctx, body) }
func (c *callerFunc) Close() error                                          { c.closed.Add(1); return nil }

func replying(reply string) *callerFunc {
	return &callerFunc{call: func(context.Context, []byte) ([]byte, error) { return []byte(reply), nil }}
}

var textInput = Input{Request: json.RawMessage(`{"text": "a long article"}`), Expected: json.RawMessage(`"short"`),
	Synapse: "summarize.v1", Answer: []byte("a \"short\"\nsummary"), AnswerIsText: true}

func TestEncodeRequest(t *testing.T) {
	line, err := EncodeRequest(textInput)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"task":{"request":{"text":"a long article"},"expected":"short"},"answer":"a \"short\"\nsummary","synapse":"summarize.v1"}`
	if string(line) != want {
		t.Fatalf("line\n%s\nwant\n%s", line, want)
	}
	in := Input{Request: json.RawMessage("{\n \"code\": \"x\"\n}"), Meta: json.RawMessage(`{"id": 7}`), Synapse: "code.v1",
		Answer: []byte("{\n\"files\": [1, 2]}")}
	line, err = EncodeRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	want = `{"task":{"request":{"code":"x"},"meta":{"id":7}},"answer":{"files":[1,2]},"synapse":"code.v1"}`
	if string(line) != want {
		t.Fatalf("line\n%s\nwant\n%s", line, want)
	}
	for name, bad := range map[string]Input{
		"request not JSON":  {Request: json.RawMessage(`{`), Answer: []byte("x"), AnswerIsText: true},
		"answer not JSON":   {Request: json.RawMessage(`{}`), Answer: []byte("not json")},
		"answer not UTF-8":  {Request: json.RawMessage(`{}`), Answer: []byte{0xff, 0xfe}, AnswerIsText: true},
		"expected not JSON": {Request: json.RawMessage(`{}`), Expected: json.RawMessage(`nope`), Answer: []byte("x"), AnswerIsText: true},
	} {
		if _, err := EncodeRequest(bad); reasonOf(err, "") != ReasonBadInput {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestCallerReplies(t *testing.T) {
	deep := `{"score":0.5,"fields":` + strings.Repeat(`{"a":`, 9) + "1" + strings.Repeat("}", 9) + "}"
	many := map[string]int{}
	for i := range maxFields + 1 {
		many[fmt.Sprint("k", i)] = i
	}
	manyJSON, _ := json.Marshal(map[string]any{"score": 0.5, "fields": many})
	cases := []struct {
		reply  string
		score  float64
		fields string // JSON of the fields, when it succeeds
		reason string // when it fails
	}{
		{reply: `{"score": 0.75, "fields": {"passed": 3, "failed": 1, "notes": ["ok"]}}`, score: 0.75, fields: `{"failed":1,"notes":["ok"],"passed":3}`},
		{reply: `{"score": 1}`, score: 1, fields: `null`},
		{reply: `{"score": 0, "fields": null}`, score: 0, fields: `null`},
		{reply: ` {"score": 5e-1} ` + "\n", score: 0.5, fields: `null`},
		{reply: `{"score": 1.5}`, reason: ReasonBadReply},
		{reply: `{"score": -0.1}`, reason: ReasonBadReply},
		{reply: `{"score": 1e999}`, reason: ReasonBadReply},
		{reply: `{"score": "0.5"}`, reason: ReasonBadReply},
		{reply: `{"score": null}`, reason: ReasonBadReply},
		{reply: `{"score": true}`, reason: ReasonBadReply},
		{reply: `{}`, reason: ReasonBadReply},
		{reply: ``, reason: ReasonBadReply},
		{reply: `garbage`, reason: ReasonBadReply},
		{reply: `null`, reason: ReasonBadReply},
		{reply: `[0.5]`, reason: ReasonBadReply},
		{reply: `0.5`, reason: ReasonBadReply},
		{reply: `{"score": 0.5} {"score": 0.6}`, reason: ReasonBadReply},
		{reply: `{"score": 0.5, "reason": "fine"}`, reason: ReasonBadReply},
		{reply: `{"score": 0.5, "fields": [1]}`, reason: ReasonBadReply},
		{reply: deep, reason: ReasonBadReply},
		{reply: string(manyJSON), reason: ReasonBadReply},
		{reply: `{"error": "cannot parse the answer"}`, reason: ReasonJudgeError},
		{reply: `{"score": 0.9, "error": "partial"}`, reason: ReasonJudgeError},
		{reply: `{"score": 0.5, "fields": {"pad": "` + strings.Repeat("x", 70<<10) + `"}}`, reason: ReasonTooLarge},
	}
	m := NewMetrics(nil)
	for i, c := range cases {
		c := c
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			name := fmt.Sprint("case", i)
			j := NewCaller(replying(c.reply), WithName(name), WithMetrics(m))
			defer j.Close()
			res, err := j.Judge(context.Background(), textInput)
			if c.reason != "" {
				var f *Failure
				if !errors.Is(err, ErrJudgeFailed) || !errors.As(err, &f) || f.Reason != c.reason || f.Judge != name {
					t.Fatalf("reply %.80q: %v (%#v), want a %s failure", c.reply, err, res, c.reason)
				}
				if got := testutil.ToFloat64(m.failures.WithLabelValues(name, c.reason)); got != 1 {
					t.Fatalf("failures counted %v", got)
				}
				return
			}
			if err != nil || res.Score != c.score {
				t.Fatalf("reply %q: %v %v", c.reply, res, err)
			}
			if b, _ := json.Marshal(res.Fields); string(b) != c.fields {
				t.Fatalf("fields %s, want %s", b, c.fields)
			}
			if got := testutil.ToFloat64(m.calls.WithLabelValues(name)); got != 1 {
				t.Fatalf("calls counted %v", got)
			}
		})
	}
}

func TestCallerFailures(t *testing.T) {
	m := NewMetrics(prometheus.NewRegistry())
	crashed := &callerFunc{call: func(context.Context, []byte) ([]byte, error) {
		return nil, errors.New("hook: judge exited: signal: killed")
	}}
	j := NewCaller(crashed, WithName("code"), WithMetrics(m))
	if _, err := j.Judge(context.Background(), textInput); !errors.Is(err, ErrJudgeFailed) || reasonOfFailure(err) != ReasonCall {
		t.Fatalf("crash: %v", err)
	}
	// A caller's own timeout is a timeout.
	slow := &callerFunc{call: func(ctx context.Context, _ []byte) ([]byte, error) {
		return nil, fmt.Errorf("hook: %w", context.DeadlineExceeded)
	}}
	if _, err := NewCaller(slow, WithName("code"), WithMetrics(m)).Judge(context.Background(), textInput); reasonOfFailure(err) != ReasonTimeout {
		t.Fatalf("timeout: %v", err)
	}
	// A caller that gives up is not the judge's failure.
	ctx, cancel := context.WithCancel(context.Background())
	waiting := &callerFunc{call: func(ctx context.Context, _ []byte) ([]byte, error) { cancel(); <-ctx.Done(); return nil, ctx.Err() }}
	if _, err := NewCaller(waiting, WithName("code"), WithMetrics(m)).Judge(ctx, textInput); errors.Is(err, ErrJudgeFailed) || !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled: %v", err)
	}
	// Bad input never reaches the judge.
	if _, err := j.Judge(context.Background(), Input{Request: json.RawMessage(`{}`), Answer: []byte("{")}); !errors.Is(err, ErrBadInput) {
		t.Fatalf("bad input: %v", err)
	}
	if got := testutil.ToFloat64(m.calls.WithLabelValues("code")); got != 4 {
		t.Fatalf("calls %v", got)
	}
	for reason, want := range map[string]float64{ReasonCall: 1, ReasonTimeout: 1, ReasonBadInput: 1} {
		if got := testutil.ToFloat64(m.failures.WithLabelValues("code", reason)); got != want {
			t.Errorf("%s failures %v, want %v", reason, got, want)
		}
	}
	// Close closes the caller, once.
	j.Close()
	j.Close()
	if crashed.closed.Load() != 1 {
		t.Fatalf("caller closed %d times", crashed.closed.Load())
	}
	// Two NewMetrics on one registry share the counters.
	reg := prometheus.NewRegistry()
	a, b := NewMetrics(reg), NewMetrics(reg)
	a.observe("x", 0)
	if testutil.ToFloat64(b.calls.WithLabelValues("x")) != 1 {
		t.Fatal("metrics not shared")
	}
}

func reasonOfFailure(err error) string {
	var f *Failure
	if errors.As(err, &f) {
		return f.Reason
	}
	return ""
}

// httpCaller posts to a judge endpoint, as hook.HTTP does.
type httpCaller struct {
	url    string
	client *http.Client
}

func (h httpCaller) Call(ctx context.Context, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("judge endpoint: %s", resp.Status)
	}
	return io.ReadAll(io.LimitReader(resp.Body, 1<<20))
}

func TestHTTPJudge(t *testing.T) {
	// The endpoint scores the share of the expected words in the answer.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Task struct {
				Request  map[string]any `json:"request"`
				Expected string         `json:"expected"`
			} `json:"task"`
			Answer  string `json:"answer"`
			Synapse string `json:"synapse"`
			UID     *int   `json:"uid"`
			Hotkey  *string
		}
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Synapse != "summarize.v1" || in.UID != nil || in.Hotkey != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if in.Answer == "crash" {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		if in.Answer == "garbage" {
			io.WriteString(w, "<html>oops</html>")
			return
		}
		words := strings.Fields(in.Task.Expected)
		hit := 0
		for _, wd := range words {
			if strings.Contains(in.Answer, wd) {
				hit++
			}
		}
		json.NewEncoder(w).Encode(map[string]any{"score": float64(hit) / float64(len(words)), "fields": map[string]any{"hits": hit}})
	}))
	defer srv.Close()
	client := &http.Client{}
	defer client.CloseIdleConnections()
	m := NewMetrics(nil)
	j := NewCaller(httpCaller{url: srv.URL, client: client}, WithName("words"), WithMetrics(m))
	defer j.Close()
	in := textInput
	in.Expected = json.RawMessage(`"cats sleep all day"`)
	in.Answer = []byte("cats sleep")
	res, err := j.Judge(context.Background(), in)
	if err != nil || math.Abs(res.Score-0.5) > 1e-12 || res.Fields["hits"] != float64(2) {
		t.Fatalf("judged %+v %v", res, err)
	}
	for answer, reason := range map[string]string{"crash": ReasonCall, "garbage": ReasonBadReply} {
		in.Answer = []byte(answer)
		if _, err := j.Judge(context.Background(), in); reasonOfFailure(err) != reason {
			t.Fatalf("%s: %v", answer, err)
		}
	}
	if testutil.ToFloat64(m.calls.WithLabelValues("words")) != 3 {
		t.Fatal("calls not counted")
	}
}

func FuzzDecodeReply(f *testing.F) {
	for _, s := range []string{`{"score": 0.5, "fields": {"a": [1, {"b": "c"}]}}`, `{"score": 1}`, `{"error": "x"}`, `{"score": 1e999}`,
		`{"score": 0.5, "fields": [[[[[[[[[[1]]]]]]]]]]}`, `{"score": "0.5"}`, `{"score": 0.5} 1`, `{"score": 0.5, "fields": {"s": "}}}}"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		res, err := DecodeReply(reply)
		if err != nil {
			if reasonOf(err, "") == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		if math.IsNaN(res.Score) || res.Score < 0 || res.Score > 1 || len(res.Fields) > maxFields {
			t.Fatalf("accepted %q as %+v", reply, res)
		}
		b, err := json.Marshal(res.Fields)
		if err != nil || checkDepth(b, maxFieldsDepth) != nil {
			t.Fatalf("fields %s: %v", b, err)
		}
	})
}

// FuzzDecodeReplyFast: whatever the fast path takes, encoding/json's
// decoder gives the same result.
func FuzzDecodeReplyFast(f *testing.F) {
	for _, s := range []string{`{"score": 0.5, "fields": {"a": [1, {"b": "c"}], "t": true, "n": null}}`, `{"score": 1}`, `{"score": 0, "fields": null}`,
		`{"score": 0.5, "score": 0.25}`, `{"score": 1e-400}`, `{"score": -0}`, `{"score": 0.5, "fields": {"a": 1e999}}`,
		`{"score": 0.5, "fields": {"a": [[[[[[[1]]]]]]]}}`, `{"score": 0.5, "fields": {"a": [[[[[[[[1]]]]]]]]}}`,
		`{"score": 0.5, "fields": {"s": "tab\there \"q\" \/"}, "fields": {"x": 2}}`, `{"score": 0.5, "fields": {"a": 1, "a": "b"}}`,
		"{\"score\": 1, \"fields\": {\"bad\": \"\xff\"}}", `{"score": 01}`, `{"score": 1.}`, `{"score": .5}`, `{"score":0.5}  `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, reply []byte) {
		fast, ok := decodeReplyFast(reply)
		if !ok {
			return
		}
		slow, err := decodeReply(reply)
		if err != nil {
			t.Fatalf("fast path took %q, encoding/json refuses it: %v", reply, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%q: fast %#v, encoding/json %#v", reply, fast, slow)
		}
	})
}

func FuzzEncodeRequest(f *testing.F) {
	f.Add([]byte(`{"text": "x"}`), []byte("an answer\nwith lines"), true)
	f.Add([]byte("{\n}"), []byte("{\"a\":\n[1, 2]}"), false)
	f.Add([]byte(`{}`), []byte{0xff, '\n'}, true)
	f.Fuzz(func(t *testing.T, request, answer []byte, isText bool) {
		line, err := EncodeRequest(Input{Request: request, Synapse: "s.v1", Answer: answer, AnswerIsText: isText})
		if err != nil {
			if reasonOf(err, "") != ReasonBadInput {
				t.Fatalf("refused without bad_input: %v", err)
			}
			return
		}
		if !json.Valid(line) || bytes.ContainsAny(line, "\r\n") {
			t.Fatalf("not one JSON line: %q", line)
		}
		var got struct {
			Task struct {
				Request json.RawMessage `json:"request"`
			} `json:"task"`
			Answer json.RawMessage `json:"answer"`
		}
		if err := json.Unmarshal(line, &got); err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		json.Compact(&want, request)
		if !bytes.Equal(got.Task.Request, want.Bytes()) {
			t.Fatalf("request %s, want %s", got.Task.Request, want.Bytes())
		}
		if isText {
			var s string
			if json.Unmarshal(got.Answer, &s) != nil || s != string(answer) {
				t.Fatalf("answer %s, want %q", got.Answer, answer)
			}
		}
	})
}
