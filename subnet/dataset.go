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

// DatasetItem is one question of a dataset file (tasks.source: dataset)
// with the answer validators expect.
type DatasetItem struct {
	Prompt string `json:"prompt"`
	Answer string `json:"answer"`
}

// Dataset limits: a validator reads the whole file into memory.
const (
	MaxDatasetSize  = 64 << 20
	MaxDatasetItems = 1 << 20
	MaxPromptSize   = 16 << 10
	MaxAnswerSize   = 4 << 10
)

// DatasetError is a dataset rejected at a line, for a reason.
type DatasetError struct {
	Line   int // 0 when the file as a whole is wrong
	Reason string
}

func (e *DatasetError) Error() string {
	if e.Line == 0 {
		return "dataset: " + e.Reason
	}
	return fmt.Sprintf("dataset line %d: %s", e.Line, e.Reason)
}

// ParseDataset reads a dataset in JSON lines: one object per line with a
// non-empty "prompt" and "answer" (JSON strings, so UTF-8, at most MaxPromptSize and
// MaxAnswerSize bytes) and no other fields. Blank lines and lines starting
// with # are skipped. Every error is a *DatasetError naming the line.
func ParseDataset(r io.Reader) ([]DatasetItem, error) {
	sc := bufio.NewScanner(io.LimitReader(r, MaxDatasetSize+1))
	sc.Buffer(make([]byte, 0, 4<<10), 2*(MaxPromptSize+MaxAnswerSize))
	var items []DatasetItem
	read, line := 0, 0
	for sc.Scan() {
		line++
		raw := sc.Bytes()
		read += len(raw) + 1
		if read > MaxDatasetSize+1 {
			return nil, &DatasetError{Reason: fmt.Sprintf("larger than %d bytes", MaxDatasetSize)}
		}
		text := bytes.TrimSpace(raw)
		if len(text) == 0 || text[0] == '#' {
			continue
		}
		item, err := parseDatasetLine(text)
		if err != nil {
			return nil, &DatasetError{Line: line, Reason: err.Error()}
		}
		if len(items) == MaxDatasetItems {
			return nil, &DatasetError{Line: line, Reason: fmt.Sprintf("more than %d items", MaxDatasetItems)}
		}
		items = append(items, item)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &DatasetError{Line: line + 1, Reason: "line too long"}
		}
		return nil, &DatasetError{Reason: err.Error()}
	}
	if len(items) == 0 {
		return nil, &DatasetError{Reason: "no items"}
	}
	return items, nil
}

func parseDatasetLine(text []byte) (DatasetItem, error) {
	dec := json.NewDecoder(bytes.NewReader(text))
	dec.DisallowUnknownFields()
	var item DatasetItem
	if err := dec.Decode(&item); err != nil {
		return item, fmt.Errorf("not a JSON object with prompt and answer: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return item, errors.New("more than one JSON value")
	}
	switch {
	case strings.TrimSpace(item.Prompt) == "" || strings.TrimSpace(item.Answer) == "":
		return item, errors.New("prompt and answer must not be empty")
	case len(item.Prompt) > MaxPromptSize:
		return item, fmt.Errorf("prompt of %d bytes, at most %d", len(item.Prompt), MaxPromptSize)
	case len(item.Answer) > MaxAnswerSize:
		return item, fmt.Errorf("answer of %d bytes, at most %d", len(item.Answer), MaxAnswerSize)
	}
	return item, nil
}
