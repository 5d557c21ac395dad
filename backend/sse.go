package backend

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// sseError is a streamed answer that breaks the rules, with its kind of
// failure (malformed or oversize).
type sseError struct {
	kind string
	msg  string
}

func (e *sseError) Error() string { return e.msg }

func malformed(format string, args ...any) error {
	return &sseError{kind: failMalformed, msg: fmt.Sprintf(format, args...)}
}

// readSSE reads a streamed chat completion (server-sent events, one JSON
// chunk per event, ending with "data: [DONE]") and passes each content
// delta to emit. Lines are at most maxLine bytes and events at most
// maxChunks; the reader bounds the total. A stream may end without
// [DONE] only after a chunk carried a finish_reason. The usage is the last
// one a chunk carried. emit's error ends the read and is returned as is.
func readSSE(r io.Reader, maxLine, maxChunks int, emit func(string) error) (Usage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, min(maxLine, 64<<10)), maxLine)
	var (
		usage    Usage
		data     strings.Builder
		hasData  bool
		events   int
		finished bool
	)
	// dispatch handles one event's data; done reports [DONE].
	dispatch := func() (done bool, err error) {
		if !hasData {
			return false, nil
		}
		d := data.String()
		data.Reset()
		hasData = false
		if events++; events > maxChunks {
			return false, &sseError{kind: failOversize, msg: fmt.Sprintf("more than %d events", maxChunks)}
		}
		if strings.TrimSpace(d) == "[DONE]" {
			return true, nil
		}
		var chunk struct {
			Choices []struct {
				Delta struct {
					Content string `json:"content"`
				} `json:"delta"`
				FinishReason *string `json:"finish_reason"`
			} `json:"choices"`
			Usage *apiUsage `json:"usage"`
			Error *apiError `json:"error"`
		}
		if err := json.Unmarshal([]byte(d), &chunk); err != nil {
			return false, malformed("malformed stream chunk: %v", err)
		}
		if chunk.Error != nil {
			return false, &sseError{kind: failStatus, msg: "server error in the stream: " + chunk.Error.Message}
		}
		if chunk.Usage != nil {
			usage = chunk.Usage.usage()
		}
		for _, c := range chunk.Choices {
			if c.Delta.Content != "" {
				if err := emit(c.Delta.Content); err != nil {
					return false, err
				}
			}
			if c.FinishReason != nil && *c.FinishReason != "" {
				finished = true
			}
		}
		return false, nil
	}
	for sc.Scan() {
		line := strings.TrimSuffix(sc.Text(), "\r")
		if line == "" {
			if done, err := dispatch(); err != nil || done {
				return usage, err
			}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "data":
			if hasData {
				data.WriteByte('\n')
			}
			data.WriteString(value)
			hasData = true
		case "":
			// a comment (keep-alive)
		default:
			// event, id, retry and unknown fields carry nothing we use
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return usage, &sseError{kind: failOversize, msg: fmt.Sprintf("a stream line over %d bytes", maxLine)}
		}
		return usage, err
	}
	// The last event may lack its blank line.
	if done, err := dispatch(); err != nil || done {
		return usage, err
	}
	if !finished {
		return usage, malformed("stream ended without [DONE] or a finish_reason")
	}
	return usage, nil
}
