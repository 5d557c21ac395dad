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
// chunk per event, ending with "data: [DONE]") and passes its content
// deltas to emit: the deltas of the events already received together, as
// one string, once no more of the stream is waiting to be read (or 64 KiB
// of deltas are pending), so a fast upstream costs one write downstream
// per read rather than one per token, and a slow one still has each token
// passed on as it arrives. Lines are at most maxLine bytes and events at
// most maxChunks; the reader bounds the total. A stream may end without
// [DONE] only after a chunk carried a finish_reason. The usage is the last
// one a chunk carried. emit's error ends the read and is returned as is.
func readSSE(r io.Reader, maxLine, maxChunks int, emit func(string) error) (Usage, error) {
	br := bufio.NewReaderSize(r, min(maxLine+2, 64<<10))
	var (
		usage    Usage
		data     strings.Builder
		pending  strings.Builder
		hasData  bool
		events   int
		finished bool
	)
	flush := func() error {
		if pending.Len() == 0 {
			return nil
		}
		s := pending.String()
		pending.Reset()
		return emit(s)
	}
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
			pending.WriteString(c.Delta.Content)
			if c.FinishReason != nil && *c.FinishReason != "" {
				finished = true
			}
		}
		if pending.Len() >= maxPendingDeltas || br.Buffered() == 0 {
			return false, flush()
		}
		return false, nil
	}
	// end passes on what is pending, then returns err (an emit error
	// first: the caller's stream broke).
	end := func(err error) (Usage, error) {
		if ferr := flush(); ferr != nil {
			return usage, ferr
		}
		return usage, err
	}
	for {
		line, err := readSSELine(br, maxLine)
		if err != nil && err != io.EOF {
			return end(err)
		}
		if line == "" && err == nil {
			if done, err := dispatch(); err != nil || done {
				return end(err)
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
			// a comment (keep-alive), or the end of the stream
		default:
			// event, id, retry and unknown fields carry nothing we use
		}
		if err == io.EOF {
			break
		}
	}
	// The last event may lack its blank line.
	if done, err := dispatch(); err != nil || done {
		return end(err)
	}
	if !finished {
		return end(malformed("stream ended without [DONE] or a finish_reason"))
	}
	return end(nil)
}

// maxPendingDeltas bounds the deltas readSSE holds before passing them on.
const maxPendingDeltas = 64 << 10

// readSSELine reads one line without its "\n" or "\r\n": io.EOF with the
// last, unterminated line (possibly empty) at the end of the stream; an
// oversize error for a line over maxLine bytes.
func readSSELine(br *bufio.Reader, maxLine int) (string, error) {
	var long []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(long)+len(frag) > maxLine+2 || (err == nil && len(strings.TrimSuffix(strings.TrimSuffix(string(long)+string(frag), "\n"), "\r")) > maxLine) {
			return "", &sseError{kind: failOversize, msg: fmt.Sprintf("a stream line over %d bytes", maxLine)}
		}
		switch {
		case err == nil:
			line := string(append(long, frag...))
			return strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r"), nil
		case errors.Is(err, bufio.ErrBufferFull):
			long = append(long, frag...)
		case err == io.EOF:
			line := string(append(long, frag...))
			if len(strings.TrimSuffix(line, "\r")) > maxLine {
				return "", &sseError{kind: failOversize, msg: fmt.Sprintf("a stream line over %d bytes", maxLine)}
			}
			return strings.TrimSuffix(line, "\r"), io.EOF
		default:
			return "", err
		}
	}
}
