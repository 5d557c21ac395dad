package subnet

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

const validV2 = `version: 2
name: summarize
synapses:
  - text.generate
  - name: summarize.v1
    request:
      type: object
      required: [text]
      properties:
        text: {type: string, maxLength: 20000}
        style: {type: string, enum: [short, long]}
    answer: text
    stream: true
    max_request_bytes: 32768
    prompt: "Summarize in one sentence:\n{{text}}"
tasks:
  source: exec
  synapse: summarize.v1
  command: [python3, tasks.py]
  limits: {timeout: 10s, cpu_seconds: 30, memory_mb: 512, max_output_bytes: 1048576, concurrency: 2}
judge:
  kind: llm
  url: http://127.0.0.1:8080/v1
  model: gpt-4o-mini
  prompt: "Rate 0-10 the summary {{answer}} of {{task.text}}"
  api_key_env: JUDGE_API_KEY
reward: 'judge.score * latency_score(latency_ms, timeout_ms)'
query: {every: 2, sample: 16, timeout: 20s}
alpha: 0.3
weights_every: 5
`

func TestParseV2(t *testing.T) {
	s, err := Parse([]byte(validV2))
	if err != nil {
		t.Fatal(err)
	}
	if s.Version != 2 || !reflect.DeepEqual(s.SynapseNames(), []string{"text.generate", "summarize.v1"}) {
		t.Fatalf("%+v", s)
	}
	syn := s.Synapse("summarize.v1")
	if syn == nil || syn.Builtin() || !syn.AnswerIsText() || !syn.Stream || syn.MaxRequestBytes != 32768 || syn.MaxAnswerBytes != DefaultMaxAnswerBytes {
		t.Fatalf("custom synapse %+v", syn)
	}
	if g := s.Synapse("text.generate"); g == nil || !g.Builtin() || !g.AnswerIsText() || g.MaxRequestBytes != 1<<20 {
		t.Fatalf("built-in synapse %+v", g)
	}
	if s.Synapse("text.chat") != nil {
		t.Fatal("a synapse the spec does not serve")
	}
	if s.Tasks.Limits.Timeout.Seconds() != 10 || s.Tasks.Limits.Concurrency != 2 || s.Judge.Kind != JudgeLLM {
		t.Fatalf("tasks %+v judge %+v", s.Tasks, s.Judge)
	}
	ms := s.EffectiveMechanisms()
	if len(ms) != 1 || ms[0].Name != MainMechanism || ms[0].Share != 1 || ms[0].Reward != s.Reward || ms[0].Judge != s.Judge {
		t.Fatalf("mechanisms %+v", ms)
	}
	if got := s.ReferencedFiles(); !reflect.DeepEqual(got, []string{"tasks.py"}) {
		t.Fatalf("referenced files %v", got)
	}
}

const validMechanisms = `version: 2
name: multi
synapses: [text.generate]
mechanisms:
  - name: quality
    share: 0.7
    tasks: {source: dataset, path: data/q.jsonl}
    judge: {kind: exec, command: [./judge.sh, --strict]}
    reward: 'judge.score'
  - name: speed
    share: 0.3
    tasks: {source: http, url: "https://tasks.example/tasks"}
    judge: {kind: reference, compare: embedding}
    reward: 'latency_score(latency_ms, timeout_ms)'
query: {every: 1, timeout: 1s}
alpha: 0.5
weights_every: 3
`

func TestParseMechanisms(t *testing.T) {
	s, err := Parse([]byte(validMechanisms))
	if err != nil {
		t.Fatal(err)
	}
	ms := s.EffectiveMechanisms()
	if len(ms) != 2 || ms[0].Name != "quality" || ms[1].Share != 0.3 || ms[1].Judge.Compare != CompareEmbedding {
		t.Fatalf("%+v", ms)
	}
	if got := s.ReferencedFiles(); !reflect.DeepEqual(got, []string{"data/q.jsonl", "judge.sh"}) {
		t.Fatalf("referenced files %v", got)
	}
}

// Every v2 field is checked, with the line it is on.
func TestInvalidV2Specs(t *testing.T) {
	for _, c := range []struct {
		name, base, edit, replace string
		line                      int
		reason                    string
	}{
		{"version 3", validV2, "version: 2", "version: 3", 1, "want 1 (or absent) or 2"},
		{"unknown synapse field", validV2, "    stream: true", "    stream: true\n    colour: red", 14, "field colour not found"},
		{"bad synapse name", validV2, "name: summarize.v1", "name: Summarize", 5, `"Summarize"`},
		{"built-in as object", validV2, "name: summarize.v1", "name: text.chat", 5, "is a built-in synapse"},
		{"unknown built-in", validV2, "  - text.generate", "  - text.dance", 4, `unknown synapse "text.dance"`},
		{"duplicate synapse", validV2, "  - text.generate", "  - text.generate\n  - text.generate", 5, "listed twice"},
		{"no request schema", validV2, "    request:\n      type: object\n      required: [text]\n      properties:\n        text: {type: string, maxLength: 20000}\n        style: {type: string, enum: [short, long]}\n", "", 5, "needs a request schema"},
		{"schema does not compile", validV2, "type: object\n      required", "type: 7\n      required", 6, "schema does not compile"},
		{"schema refers to a file", validV2, "type: object\n      required", "$ref: 'file:///etc/passwd'\n      required", 6, "may not refer to files"},
		{"bad answer kind", validV2, "answer: text", "answer: prose", 12, `"prose"`},
		{"streamed json answer", validV2, "answer: text", "answer: {type: object}", 13, "only text answers may be streamed"},
		{"request too large", validV2, "max_request_bytes: 32768", "max_request_bytes: 99999999", 14, "want 1 to 1044480"},
		{"unknown prompt variable", validV2, `{{text}}"`, `{{txt}}"`, 15, "{{txt}} is not a top-level property"},
		{"malformed prompt", validV2, `{{text}}"`, `{{text"`, 15, "is not a variable"},
		{"unknown source", validV2, "source: exec", "source: vibes", 17, `"vibes"`},
		{"exec without command", validV2, "  command: [python3, tasks.py]\n", "", 16, "needs a command"},
		{"command for http", validV2, "source: exec", "source: http", 19, "only exec task sources have a command"},
		{"http without url", validV2, "source: exec\n  synapse: summarize.v1\n  command: [python3, tasks.py]", "source: http\n  synapse: summarize.v1", 16, "needs a url"},
		{"ftp url", validV2, "source: exec\n  synapse: summarize.v1\n  command: [python3, tasks.py]", "source: http\n  synapse: summarize.v1\n  url: ftp://x/y", 19, "http or https URL"},
		{"script outside", validV2, "[python3, tasks.py]", "[python3, ../tasks.py]", 19, "inside the spec's directory"},
		{"dataset without path", validV2, "source: exec\n  synapse: summarize.v1\n  command: [python3, tasks.py]\n  limits: {timeout: 10s, cpu_seconds: 30, memory_mb: 512, max_output_bytes: 1048576, concurrency: 2}", "source: dataset\n  synapse: summarize.v1", 16, "needs a path or a cid"},
		{"dataset path outside", validV2, "source: exec\n  synapse: summarize.v1\n  command: [python3, tasks.py]\n  limits: {timeout: 10s, cpu_seconds: 30, memory_mb: 512, max_output_bytes: 1048576, concurrency: 2}", "source: dataset\n  synapse: summarize.v1\n  path: /etc/passwd", 19, "inside the spec's directory"},
		{"dataset bad cid", validV2, "source: exec\n  synapse: summarize.v1\n  command: [python3, tasks.py]\n  limits: {timeout: 10s, cpu_seconds: 30, memory_mb: 512, max_output_bytes: 1048576, concurrency: 2}", "source: dataset\n  synapse: summarize.v1\n  cid: nope", 19, "not a CID"},
		{"limits for a dataset", validV2, "source: exec\n  synapse: summarize.v1\n  command: [python3, tasks.py]", "source: dataset\n  synapse: summarize.v1\n  path: a.jsonl", 20, "only exec and http task sources have limits"},
		{"timeout too long", validV2, "timeout: 10s, cpu", "timeout: 11m, cpu", 20, "want 0 (the default) to 10m0s"},
		{"too much concurrency", validV2, "concurrency: 2}", "concurrency: 65}", 20, "want 0 (the default) to 64"},
		{"dataset tasks for storage", validMechanisms, "synapses: [text.generate]", "synapses: [storage.prove]", 7, "dataset tasks go to a custom synapse or text.generate"},
		{"task synapse not served", validV2, "synapse: summarize.v1", "synapse: text.chat", 18, "not one of the spec's synapses"},
		{"unknown judge kind", validV2, "kind: llm", "kind: oracle", 22, `"oracle"`},
		{"llm without model", validV2, "  model: gpt-4o-mini\n", "", 21, "needs a model"},
		{"llm with two prompts", validV2, "  api_key_env:", "  prompt_file: judge.txt\n  api_key_env:", 25, "exactly one of prompt and prompt_file"},
		{"judge template unknown", validV2, "{{task.text}}", "{{task.body}}", 25, `"body" is not a top-level property`},
		{"judge template variable", validV2, "{{answer}}", "{{miner}}", 25, "not a judge template variable"},
		{"command for llm", validV2, "kind: llm", "kind: llm\n  command: [x]", 23, "a llm judge has no command"},
		{"bad api key env", validV2, "api_key_env: JUDGE_API_KEY", "api_key_env: 'JUDGE KEY'", 26, "not an environment variable name"},
		{"reward reads judge without one", validV2, "judge:\n  kind: llm\n  url: http://127.0.0.1:8080/v1\n  model: gpt-4o-mini\n  prompt: \"Rate 0-10 the summary {{answer}} of {{task.text}}\"\n  api_key_env: JUDGE_API_KEY\n", "", 21, "there is no judge"},
		{"reward type", validV2, "'judge.score * latency_score(latency_ms, timeout_ms)'", "'task'", 27, "want double or bool"},
		{"file not referenced", validV2, "weights_every: 5", "weights_every: 5\nfiles:\n  other.py: bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku", 32, "does not refer to this file"},
		{"file bad cid", validV2, "weights_every: 5", "weights_every: 5\nfiles:\n  tasks.py: nope", 32, "not a CID"},
		{"mechanisms with top-level reward", validMechanisms, "query:", "reward: valid\nquery:", 15, "remove the top-level one"},
		{"shares do not sum", validMechanisms, "share: 0.3", "share: 0.2", 4, "shares sum to 0.9;"},
		{"zero share", validMechanisms, "share: 0.3", "share: 0", 11, "greater than 0"},
		{"mechanism name", validMechanisms, "name: speed", "name: Speed!", 10, `"Speed!"`},
		{"duplicate mechanism", validMechanisms, "name: speed", "name: quality", 10, "listed twice"},
		{"mechanism judge", validMechanisms, "compare: embedding", "compare: vibes", 13, `"vibes"`},
		{"mechanism reward", validMechanisms, "reward: 'judge.score'", "reward: 'judge.score +'", 9, "mechanisms[0].reward"},
	} {
		t.Run(c.name, func(t *testing.T) {
			text := strings.Replace(c.base, c.edit, c.replace, 1)
			if text == c.base {
				t.Fatal("edit did not apply")
			}
			_, err := Parse([]byte(text))
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("want a SpecError, got %v", err)
			}
			if se.Line != c.line {
				t.Errorf("line %d, want %d (%v)", se.Line, c.line, err)
			}
			if !strings.Contains(err.Error(), c.reason) {
				t.Errorf("%q lacks %q", err, c.reason)
			}
		})
	}
	many := "version: 2\nname: m\nsynapses: [text.generate]\nmechanisms:\n"
	for i := range MaxMechanisms + 1 {
		many += "  - {name: m" + string(rune('a'+i)) + ", share: 0.0588235294117647, tasks: {source: knowledge}, reward: valid}\n"
	}
	many += "query: {every: 1, timeout: 1s}\nalpha: 0.5\nweights_every: 3\n"
	if _, err := Parse([]byte(many)); err == nil || !strings.Contains(err.Error(), "at most 16") {
		t.Fatalf("17 mechanisms: %v", err)
	}
}

// A v1 spec may not use v2's fields.
func TestV1RefusesV2Fields(t *testing.T) {
	for _, c := range []struct {
		name, edit, replace string
		line                int
	}{
		{"custom synapse", "[text.generate]", "\n  - name: x.v1\n    request: {type: object}\n    answer: text", 3},
		{"judge", "weights_every: 3", "weights_every: 3\njudge: {kind: reference, compare: similarity}", 11},
		{"mechanisms", "weights_every: 3", "weights_every: 3\nmechanisms: []", 11},
		{"files", "weights_every: 3", "weights_every: 3\nfiles: {a: b}", 11},
		{"exec source", "source: knowledge", "source: exec", 4},
		{"task cid", "source: knowledge", "source: knowledge\n  cid: bafy", 5},
		{"task command", "source: knowledge", "source: knowledge\n  command: [x]", 5},
		{"task url", "source: knowledge", "source: knowledge\n  url: http://x", 5},
		{"task limits", "source: knowledge", "source: knowledge\n  limits: {timeout: 1s}", 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse([]byte(strings.Replace(valid, c.edit, c.replace, 1)))
			var se *SpecError
			if !errors.As(err, &se) || se.Line != c.line || !strings.Contains(err.Error(), "needs version: 2") {
				t.Fatalf("got %v, want line %d and needs version: 2", err, c.line)
			}
		})
	}
	// v1 reward expressions see v1's environment only.
	if _, err := Parse([]byte(strings.Replace(valid, "'exact(answer, expected)'", "'mechanism == \"main\"'", 1))); err == nil || !strings.Contains(err.Error(), "undeclared reference") {
		t.Fatalf("v1 reward read a v2 variable: %v", err)
	}
}

func TestValidateRequestAnswer(t *testing.T) {
	s, err := Parse([]byte(strings.Replace(validV2, "answer: text\n    stream: true", "answer:\n      type: object\n      required: [summary]\n      properties: {summary: {type: string}, tags: {type: array, items: {type: string}}}\n    stream: false", 1)))
	if err != nil {
		t.Fatal(err)
	}
	syn := s.Synapse("summarize.v1")
	for _, c := range []struct {
		body, path, reason string
	}{
		{`{"text": "a long article"}`, "", ""},
		{`{"text": "x", "style": "short"}`, "", ""},
		{`{"text": 7}`, "/text", "want string"},
		{`{"style": "short"}`, "", "missing property 'text'"},
		{`{"text": "x", "style": "medium"}`, "/style", "value must be one of"},
		{`[1]`, "", "want object"},
		{`{"text": "x"} {}`, "", "not JSON"},
		{`nope`, "", "not JSON"},
		{`{"text": "` + strings.Repeat("a", 20001) + `"}`, "/text", "maxLength"},
		{`{"text": "` + strings.Repeat("a", 40000) + `"}`, "", "at most 32768"},
	} {
		err := syn.ValidateRequest([]byte(c.body))
		if c.reason == "" {
			if err != nil {
				t.Errorf("%.40s: %v", c.body, err)
			}
			continue
		}
		var se *SchemaError
		if !errors.As(err, &se) || se.Path != c.path || !strings.Contains(se.Reason, c.reason) {
			t.Errorf("%.40s: %#v, want path %q reason %q", c.body, err, c.path, c.reason)
		}
	}
	for _, c := range []struct {
		body, path, reason string
	}{
		{`{"summary": "short", "tags": ["a"]}`, "", ""},
		{`{"summary": "short", "tags": ["a", 2]}`, "/tags/1", "want string"},
		{`{}`, "", "missing property"},
		{`a summary`, "", "not JSON"},
	} {
		err := syn.ValidateAnswer([]byte(c.body))
		if c.reason == "" {
			if err != nil {
				t.Errorf("answer %s: %v", c.body, err)
			}
			continue
		}
		var se *SchemaError
		if !errors.As(err, &se) || se.Path != c.path || !strings.Contains(se.Reason, c.reason) {
			t.Errorf("answer %s: %#v, want path %q reason %q", c.body, err, c.path, c.reason)
		}
	}
	text := s.Synapse("text.generate")
	if err := text.ValidateAnswer([]byte{0xff}); err == nil {
		t.Error("a text answer that is not UTF-8 passed")
	}
	if err := text.ValidateAnswer([]byte("fine")); err != nil {
		t.Error(err)
	}
	if err := text.ValidateRequest([]byte(`{"prompt": ""}`)); err == nil {
		t.Error("an empty text.generate prompt passed")
	}
	chat := BuiltinSynapse(SynapseChat)
	if err := chat.ValidateRequest([]byte(`{"messages": []}`)); err == nil || !strings.Contains(err.Error(), "0 messages") {
		t.Errorf("empty chat: %v", err)
	}
}

func TestRenderPrompt(t *testing.T) {
	s, err := Parse([]byte(strings.Replace(validV2, `{{text}}"`, `{{ text }} ({{style}})"`, 1)))
	if err != nil {
		t.Fatal(err)
	}
	syn := s.Synapse("summarize.v1")
	for body, want := range map[string]string{
		`{"text": "the sky is blue", "style": "short"}`: "Summarize in one sentence:\nthe sky is blue (short)",
		`{"text": "x"}`:                       "Summarize in one sentence:\nx ()",
		`{"text": {"a": [1, 2]}, "style": 3}`: "Summarize in one sentence:\n{\"a\":[1,2]} (3)",
	} {
		got, err := syn.RenderPrompt([]byte(body))
		if err != nil || got != want {
			t.Errorf("%s: %q %v, want %q", body, got, err, want)
		}
	}
	if _, err := syn.RenderPrompt([]byte(`[1]`)); err == nil {
		t.Error("a request that is not an object rendered")
	}
	if got, _ := BuiltinSynapse("text.generate").RenderPrompt([]byte(`{"prompt": "hi"}`)); got != "hi" {
		t.Errorf("text.generate prompt %q", got)
	}
}

func TestTemplateVariables(t *testing.T) {
	for _, c := range []struct {
		tmpl string
		want []string
		err  string
	}{
		{"plain", nil, ""},
		{"{{a}} and {{ task.b }} and {{a}}", []string{"a", "task.b"}, ""},
		{`{"score": 7}`, nil, ""},
		{"{{a", nil, "is not a variable"},
		{"{{a b}}", nil, "is not a variable"},
		{"{{}}", nil, "is not a variable"},
		{"{{a.b.c}}", nil, "is not a variable"},
	} {
		got, err := TemplateVariables(c.tmpl)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: %v, want %q", c.tmpl, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%q: %v %v, want %v", c.tmpl, got, err, c.want)
		}
	}
}

func TestBuiltinSynapses(t *testing.T) {
	if !reflect.DeepEqual(Synapses, []string{"text.generate", "text.chat", "text.embed", "knowledge.get", "storage.prove", "compute.run"}) {
		t.Fatalf("built-in names %v", Synapses)
	}
	for _, b := range BuiltinSynapses {
		s := BuiltinSynapse(b.Name)
		if !s.Builtin() || s.MaxRequestBytes <= 0 || s.MaxAnswerBytes <= 0 {
			t.Errorf("%s: %+v", b.Name, s)
		}
		if err := s.ValidateRequest(make([]byte, s.MaxRequestBytes+1)); err == nil || !strings.Contains(err.Error(), "at most") {
			t.Errorf("%s: oversize request: %v", b.Name, err)
		}
	}
	if BuiltinSynapse("nope") != nil {
		t.Fatal("unknown built-in")
	}
}

func TestFields(t *testing.T) {
	s, err := Parse([]byte(validV2))
	if err != nil {
		t.Fatal(err)
	}
	f, err := s.Fields()
	if err != nil {
		t.Fatal(err)
	}
	syns := f["synapses"].([]any)
	custom := syns[1].(map[string]any)
	if f["version"] != 2 || syns[0] != "text.generate" || custom["name"] != "summarize.v1" || custom["max_answer_bytes"] != DefaultMaxAnswerBytes ||
		f["tasks"].(map[string]any)["limits"].(map[string]any)["timeout"] != "10s" || f["judge"].(map[string]any)["kind"] != "llm" {
		t.Fatalf("%#v", f)
	}
	if _, err := json.Marshal(f); err != nil {
		t.Fatal(err)
	}
}
