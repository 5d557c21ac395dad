package subnet

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func FuzzParseV2(f *testing.F) {
	f.Add([]byte(validV2))
	f.Add([]byte(validMechanisms))
	f.Add([]byte(lockSpec))
	f.Add([]byte("version: 2\nname: x\nsynapses:\n  - {name: a, request: {$ref: '#/$defs/x'}, answer: text}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("not a SpecError: %v", err)
			}
			return
		}
		for _, m := range s.EffectiveMechanisms() {
			if _, err := s.CompileReward(m.Reward); err != nil {
				t.Fatalf("accepted a spec with a bad reward: %v", err)
			}
		}
		for _, name := range s.SynapseNames() {
			syn := s.Synapse(name)
			if syn == nil || syn.maxRequest() <= 0 || syn.maxAnswer() <= 0 {
				t.Fatalf("synapse %q: %+v", name, syn)
			}
			if !syn.Builtin() && syn.requestSchema == nil {
				t.Fatalf("custom synapse %q accepted without its schema", name)
			}
			syn.ValidateRequest([]byte(`{}`)) // must not panic
		}
		for _, path := range s.ReferencedFiles() {
			if strings.HasPrefix(path, "/") || strings.HasPrefix(path, "..") {
				t.Fatalf("referenced file outside the spec's directory: %q", path)
			}
		}
		if _, err := s.Fields(); err != nil {
			t.Fatalf("an accepted spec does not encode: %v", err)
		}
	})
}

func FuzzParseTaskLines(f *testing.F) {
	f.Add([]byte("{\"request\": {\"text\": \"a\"}, \"expected\": \"b\"}\n# c\n{\"request\": {\"text\": \"c\"}, \"meta\": [1]}"))
	f.Add([]byte(`[{"request": {"text": "a"}}]`))
	f.Add([]byte(`{"prompt": "p", "answer": "a"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		lines, err := ParseTaskLines(bytes.NewReader(b), 100)
		if err != nil {
			var de *DatasetError
			if !errors.As(err, &de) {
				t.Fatalf("not a DatasetError: %v", err)
			}
			return
		}
		if len(lines) == 0 || len(lines) > 100 {
			t.Fatalf("%d lines", len(lines))
		}
		for _, l := range lines {
			if len(l.Request) == 0 || string(l.Request) == "null" {
				t.Fatalf("a line without a request: %+v", l)
			}
		}
	})
}

func FuzzValidateBodies(f *testing.F) {
	s, err := Parse([]byte(strings.Replace(validV2, "answer: text\n    stream: true", "answer: {type: object, required: [summary], properties: {summary: {type: string}}}", 1)))
	if err != nil {
		f.Fatal(err)
	}
	syn := s.Synapse("summarize.v1")
	f.Add([]byte(`{"text": "a", "style": "short"}`))
	f.Add([]byte(`{"summary": "x"}`))
	f.Add([]byte(`[[[[[[1]]]]]]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, err := range []error{syn.ValidateRequest(b), syn.ValidateAnswer(b)} {
			var se *SchemaError
			if err != nil && !errors.As(err, &se) {
				t.Fatalf("not a SchemaError: %v", err)
			}
		}
		if syn.ValidateRequest(b) == nil {
			if _, err := syn.TaskFromLine(TaskLine{Request: b}); err != nil {
				t.Fatalf("a valid request makes no task: %v", err)
			}
		}
	})
}
