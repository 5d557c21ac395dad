package subnet

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// TaskLine is one task of a v2 task source — a dataset file's line, a task
// program's output line, an entry of a task endpoint's reply:
//
//	{"request": <valid for the synapse's request schema>, "expected": <any, optional>, "meta": <any, optional>}
//
// A v1 dataset line {"prompt": …, "answer": …} reads as request
// {"prompt": …} with the answer expected.
type TaskLine struct {
	Request  json.RawMessage `json:"request"`
	Expected json.RawMessage `json:"expected,omitempty"`
	Meta     json.RawMessage `json:"meta,omitempty"`
}

// Task line limits.
const (
	// MaxTaskLine bounds one task line.
	MaxTaskLine = 8 << 20
	// MaxTaskLines bounds the tasks of one source read.
	MaxTaskLines = 1 << 20
	// MaxTaskLinesBytes bounds all task lines read at once.
	MaxTaskLinesBytes = 64 << 20
)

// ParseTaskLines reads at most max task lines (max ≤ 0 or above
// MaxTaskLines: MaxTaskLines) from r: JSON lines, or one JSON array of task
// objects. Blank lines and lines starting with # are skipped; at most
// MaxTaskLinesBytes are read. Every error is a *DatasetError naming the
// line (for an array, the entry's index).
func ParseTaskLines(r io.Reader, max int) ([]TaskLine, error) {
	if max <= 0 || max > MaxTaskLines {
		max = MaxTaskLines
	}
	br := bufio.NewReaderSize(io.LimitReader(r, MaxTaskLinesBytes+1), 64<<10)
	// A JSON array: the whole reply is one value.
	if first, err := firstNonSpace(br); err == nil && first == '[' {
		return parseTaskArray(br, max)
	}
	var out []TaskLine
	read, line := 0, 0
	for {
		raw, err := readLine(br, MaxTaskLine)
		if errors.Is(err, errLineTooLong) {
			return nil, &DatasetError{Line: line + 1, Reason: fmt.Sprintf("line longer than %d bytes", MaxTaskLine)}
		}
		if len(raw) > 0 || err == nil {
			line++
			read += len(raw)
			if read > MaxTaskLinesBytes {
				return nil, &DatasetError{Reason: fmt.Sprintf("more than %d bytes", MaxTaskLinesBytes)}
			}
			text := bytes.TrimSpace(raw)
			if len(text) > 0 && text[0] != '#' {
				if len(out) == max {
					return nil, &DatasetError{Line: line, Reason: fmt.Sprintf("more than %d tasks", max)}
				}
				tl, perr := parseTaskLine(text)
				if perr != nil {
					return nil, &DatasetError{Line: line, Reason: perr.Error()}
				}
				out = append(out, tl)
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, &DatasetError{Reason: err.Error()}
		}
	}
	if len(out) == 0 {
		return nil, &DatasetError{Reason: "no tasks"}
	}
	return out, nil
}

var errLineTooLong = errors.New("line too long")

// readLine reads one line (without its newline) of at most max bytes.
func readLine(br *bufio.Reader, max int) ([]byte, error) {
	var buf []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > max+1 {
			return buf, errLineTooLong
		}
		buf = append(buf, chunk...)
		switch {
		case err == nil:
			return buf[:len(buf)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		default:
			return buf, err
		}
	}
}

func firstNonSpace(br *bufio.Reader) (byte, error) {
	for {
		b, err := br.ReadByte()
		if err != nil {
			return 0, err
		}
		if b != ' ' && b != '\t' && b != '\n' && b != '\r' {
			return b, br.UnreadByte()
		}
	}
}

func parseTaskArray(r io.Reader, max int) ([]TaskLine, error) {
	dec := json.NewDecoder(r)
	if _, err := dec.Token(); err != nil { // [
		return nil, &DatasetError{Reason: err.Error()}
	}
	var out []TaskLine
	for i := 0; dec.More(); i++ {
		if len(out) == max {
			return nil, &DatasetError{Reason: fmt.Sprintf("entry %d: more than %d tasks", i, max)}
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, &DatasetError{Reason: fmt.Sprintf("entry %d: %v", i, err)}
		}
		tl, err := parseTaskLine(raw)
		if err != nil {
			return nil, &DatasetError{Reason: fmt.Sprintf("entry %d: %v", i, err)}
		}
		out = append(out, tl)
	}
	if _, err := dec.Token(); err != nil { // ]
		return nil, &DatasetError{Reason: err.Error()}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &DatasetError{Reason: "data after the JSON array"}
	}
	if len(out) == 0 {
		return nil, &DatasetError{Reason: "no tasks"}
	}
	return out, nil
}

func parseTaskLine(text []byte) (TaskLine, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(text, &fields); err != nil {
		return TaskLine{}, fmt.Errorf("not a JSON object: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if _, v1 := fields["prompt"]; v1 && fields["request"] == nil {
		item, err := parseDatasetLine(text)
		if err != nil {
			return TaskLine{}, err
		}
		req, _ := json.Marshal(map[string]string{"prompt": item.Prompt})
		exp, _ := json.Marshal(item.Answer)
		return TaskLine{Request: req, Expected: exp}, nil
	}
	var tl TaskLine
	for k, v := range fields {
		switch k {
		case "request":
			tl.Request = v
		case "expected":
			tl.Expected = v
		case "meta":
			tl.Meta = v
		default:
			return TaskLine{}, fmt.Errorf("unknown field %q (want request, expected, meta)", k)
		}
	}
	if len(tl.Request) == 0 || string(tl.Request) == "null" {
		return TaskLine{}, errors.New(`needs a "request"`)
	}
	if string(tl.Expected) == "null" {
		tl.Expected = nil
	}
	return tl, nil
}

// TaskFromLine makes the task of a task line for syn, checking the request
// against the synapse (ValidateRequest; a *SchemaError naming the path).
func (syn *Synapse) TaskFromLine(l TaskLine) (Task, error) {
	if err := syn.ValidateRequest(l.Request); err != nil {
		return Task{}, fmt.Errorf("task for %s: request %w", syn.Name, err)
	}
	var req map[string]any
	if err := json.Unmarshal(l.Request, &req); err != nil {
		return Task{}, fmt.Errorf("task for %s: the request is not a JSON object", syn.Name)
	}
	var body bytes.Buffer
	if err := json.Compact(&body, l.Request); err != nil {
		return Task{}, fmt.Errorf("task for %s: request: %w", syn.Name, err)
	}
	t := Task{Synapse: syn.Name, Body: body.Bytes(), Request: req, Meta: l.Meta}
	if len(l.Expected) > 0 {
		var exp bytes.Buffer
		if err := json.Compact(&exp, l.Expected); err != nil {
			return Task{}, fmt.Errorf("task for %s: expected: %w", syn.Name, err)
		}
		t.ExpectedJSON = exp.Bytes()
		t.Expected = jsonText(t.ExpectedJSON)
	}
	return t, nil
}
