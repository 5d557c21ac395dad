package subnet

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseTaskLines(t *testing.T) {
	for _, c := range []struct {
		name, in string
		max      int
		n        int
		line     int
		reason   string
	}{
		{"lines", "{\"request\": {\"text\": \"a\"}, \"expected\": \"b\", \"meta\": {\"id\": 1}}\n\n# comment\n{\"request\": {\"text\": \"c\"}}", 0, 2, 0, ""},
		{"array", ` [{"request": {"text": "a"}}, {"request": {"text": "b"}, "expected": null}]`, 0, 2, 0, ""},
		{"v1 dataset line", `{"prompt": "why", "answer": "because"}`, 0, 1, 0, ""},
		{"crlf", "{\"request\": {\"text\": \"a\"}}\r\n", 0, 1, 0, ""},
		{"unknown field", "{\"request\": {}}\n{\"request\": {}, \"answer\": 1}", 0, 0, 2, `unknown field "answer"`},
		{"no request", `{"expected": 1}`, 0, 0, 1, `needs a "request"`},
		{"null request", `{"request": null}`, 0, 0, 1, `needs a "request"`},
		{"not json", "{\"request\": {}}\n{nope", 0, 0, 2, "not a JSON object"},
		{"too many", "{\"request\": {}}\n{\"request\": {}}\n{\"request\": {}}", 2, 0, 3, "more than 2 tasks"},
		{"array too many", `[{"request": {}}, {"request": {}}, {"request": {}}]`, 2, 0, 0, "entry 2: more than 2 tasks"},
		{"array bad entry", `[{"request": {}}, {"x": 1}]`, 0, 0, 0, "entry 1"},
		{"array trailing", `[{"request": {}}] {}`, 0, 0, 0, "after the JSON array"},
		{"empty", "\n# nothing\n", 0, 0, 0, "no tasks"},
		{"empty array", "[]", 0, 0, 0, "no tasks"},
		{"line too long", `{"request": {"t": "` + strings.Repeat("a", MaxTaskLine) + `"}}`, 0, 0, 1, "longer than"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTaskLines(strings.NewReader(c.in), c.max)
			if c.reason == "" {
				if err != nil || len(got) != c.n {
					t.Fatalf("%d tasks, %v; want %d", len(got), err, c.n)
				}
				return
			}
			var de *DatasetError
			if !errors.As(err, &de) || de.Line != c.line || !strings.Contains(err.Error(), c.reason) {
				t.Fatalf("%v; want line %d and %q", err, c.line, c.reason)
			}
		})
	}
	got, _ := ParseTaskLines(strings.NewReader(`{"prompt": "why", "answer": "because"}`), 0)
	if string(got[0].Request) != `{"prompt":"why"}` || string(got[0].Expected) != `"because"` {
		t.Fatalf("v1 line read as %s %s", got[0].Request, got[0].Expected)
	}
}

func TestTaskFromLine(t *testing.T) {
	s, err := Parse([]byte(validV2))
	if err != nil {
		t.Fatal(err)
	}
	syn := s.Synapse("summarize.v1")
	task, err := syn.TaskFromLine(TaskLine{Request: []byte(`{ "text": "the article" }`), Expected: []byte(`{"summary": "short"}`), Meta: []byte(`{"id": 3}`)})
	if err != nil {
		t.Fatal(err)
	}
	if task.Synapse != "summarize.v1" || string(task.Body) != `{"text":"the article"}` || !reflect.DeepEqual(task.Request, map[string]any{"text": "the article"}) ||
		string(task.ExpectedJSON) != `{"summary":"short"}` || task.Expected != `{"summary":"short"}` || string(task.Meta) != `{"id": 3}` {
		t.Fatalf("%+v", task)
	}
	resp := task.Response("ok", []byte(`{"summary": "short"}`), time.Second, 2*time.Second)
	if !reflect.DeepEqual(resp.Task, map[string]any{"text": "the article"}) || !reflect.DeepEqual(resp.ExpectedJSON, map[string]any{"summary": "short"}) {
		t.Fatalf("response %+v", resp)
	}
	rw, _ := NewRewardV2(`answer_json.summary == expected_json.summary && task.text == "the article"`)
	if got, err := rw.Score(resp); got != 1 || err != nil {
		t.Fatalf("v2 reward on the task's response: %v %v", got, err)
	}
	task, err = syn.TaskFromLine(TaskLine{Request: []byte(`{"text": "a"}`), Expected: []byte(`"the summary"`)})
	if err != nil || task.Expected != "the summary" || string(task.ExpectedJSON) != `"the summary"` {
		t.Fatalf("string expected: %+v %v", task, err)
	}
	_, err = syn.TaskFromLine(TaskLine{Request: []byte(`{"text": 1}`)})
	var se *SchemaError
	if !errors.As(err, &se) || se.Path != "/text" {
		t.Fatalf("bad request: %v", err)
	}
	text := BuiltinSynapse("text.generate")
	if task, err := text.TaskFromLine(TaskLine{Request: []byte(`{"prompt": "why"}`), Expected: []byte(`"because"`)}); err != nil || task.Expected != "because" || task.Request["prompt"] != "why" {
		t.Fatalf("text.generate task %+v %v", task, err)
	}
	if _, err := text.TaskFromLine(TaskLine{Request: []byte(`{"question": "why"}`)}); err == nil {
		t.Fatal("a text.generate task without a prompt")
	}
}
