package judge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

// A prompt template is text with variables in double braces:
//
//	{{answer}}       the miner's answer (its text, or its compact JSON)
//	{{expected}}     the task's expected value (a JSON string's text, other
//	                 JSON compact; empty if the task has none)
//	{{task.FIELD}}   the request's top-level member FIELD (a JSON string's
//	                 text, other JSON compact; empty if absent)
//
// Spaces inside the braces are allowed ({{ answer }}). Anything else in
// double braces, or a "{{" never closed, is refused when the judge is made.
// Values are inserted verbatim in one pass: an answer holding "{{expected}}"
// stays that text.
type template struct {
	parts []part
}

// part is literal text or a variable.
type part struct {
	text  string // literal text, when kind is ""
	kind  string // "", "answer", "expected" or "task"
	field string // the request member, for "task"
}

var fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// parseTemplate checks src. When fields is not nil, {{task.X}} must name
// one of them (the request schema's top-level properties).
func parseTemplate(src string, fields []string) (*template, error) {
	if strings.TrimSpace(src) == "" {
		return nil, fmt.Errorf("judge: the prompt template is empty")
	}
	var t template
	rest := src
	for {
		i := strings.Index(rest, "{{")
		if i < 0 {
			t.parts = append(t.parts, part{text: rest})
			break
		}
		t.parts = append(t.parts, part{text: rest[:i]})
		j := strings.Index(rest[i+2:], "}}")
		if j < 0 {
			return nil, fmt.Errorf("judge: prompt template: %q is never closed with }}", truncate(rest[i:], 30))
		}
		name := strings.TrimSpace(rest[i+2 : i+2+j])
		p, err := variable(name, fields)
		if err != nil {
			return nil, fmt.Errorf("judge: prompt template: {{%s}}: %w", truncate(name, 40), err)
		}
		t.parts = append(t.parts, p)
		rest = rest[i+2+j+2:]
	}
	return &t, nil
}

func variable(name string, fields []string) (part, error) {
	switch name {
	case "answer", "expected":
		return part{kind: name}, nil
	}
	field, ok := strings.CutPrefix(name, "task.")
	if !ok {
		return part{}, fmt.Errorf("unknown variable (want answer, expected or task.FIELD)")
	}
	if !fieldName.MatchString(field) {
		return part{}, fmt.Errorf("%q is not a request field name", field)
	}
	if fields != nil {
		known := false
		for _, f := range fields {
			known = known || f == field
		}
		if !known {
			return part{}, fmt.Errorf("the request has no field %q (it has %s)", field, strings.Join(fields, ", "))
		}
	}
	return part{kind: "task", field: field}, nil
}

// render fills the template for in.
func (t *template) render(in Input) (string, error) {
	var request map[string]json.RawMessage
	var b strings.Builder
	for _, p := range t.parts {
		switch p.kind {
		case "":
			b.WriteString(p.text)
		case "answer":
			if in.AnswerIsText {
				b.Write(in.Answer)
			} else {
				s, err := jsonText(in.Answer)
				if err != nil {
					return "", fail(ReasonBadInput, "the answer: %v", err)
				}
				b.WriteString(s)
			}
		case "expected":
			if len(in.Expected) > 0 {
				s, err := jsonText(in.Expected)
				if err != nil {
					return "", fail(ReasonBadInput, "the expected value: %v", err)
				}
				b.WriteString(s)
			}
		case "task":
			if request == nil {
				if err := json.Unmarshal(in.Request, &request); err != nil {
					return "", fail(ReasonBadInput, "the request is not a JSON object: %v", err)
				}
			}
			if v, ok := request[p.field]; ok {
				s, err := jsonText(v)
				if err != nil {
					return "", fail(ReasonBadInput, "the request's %q: %v", p.field, err)
				}
				b.WriteString(s)
			}
		}
	}
	return b.String(), nil
}

// jsonText is a JSON string's text, or other JSON compacted.
func jsonText(raw json.RawMessage) (string, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s, nil
	}
	var b bytes.Buffer
	if err := json.Compact(&b, raw); err != nil {
		return "", err
	}
	return b.String(), nil
}
