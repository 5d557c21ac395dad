package hook

import (
	"bufio"
	"bytes"
	"errors"
)

// errLineTooLong: a line longer than the reader's bound.
var errLineTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes (not counting its "\n" or
// a "\r" before it) from r and returns a copy of it without its line end.
// A longer line is errLineTooLong, with the reader left somewhere inside
// it. At the end of the input, a last line without "\n" is returned with
// the reader's error (io.EOF); a clean end is (nil, io.EOF). Any other
// error of the reader (a deadline) is returned as is.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			full := frag
			if line != nil {
				full = append(line, frag...)
			}
			n := len(full) - 1
			if n > 0 && full[n-1] == '\r' {
				n--
			}
			if n > max {
				return nil, errLineTooLong
			}
			if line == nil {
				return bytes.Clone(full[:n]), nil
			}
			return full[:n], nil
		case errors.Is(err, bufio.ErrBufferFull):
			// frag may end in the "\r" of a "\r\n" split over two reads;
			// it counts against max until the "\n" shows it is a line end.
			if len(line)+len(frag) > max+1 {
				return nil, errLineTooLong
			}
			line = append(line, frag...)
		default:
			if len(line)+len(frag) > max {
				return nil, errLineTooLong
			}
			if len(line)+len(frag) == 0 {
				return nil, err
			}
			return append(line, frag...), err
		}
	}
}

// readLogLine reads one line for a log: at most r's buffer size bytes of
// it (truncated reports that the rest was skipped), without its line end.
// It returns the reader's error at the end of the input (with the last
// line, if it had no "\n").
func readLogLine(r *bufio.Reader) (line []byte, truncated bool, err error) {
	frag, err := r.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		line = bytes.Clone(frag)
		for errors.Is(err, bufio.ErrBufferFull) {
			_, err = r.ReadSlice('\n')
		}
		return line, true, err
	}
	line = bytes.TrimSuffix(bytes.TrimSuffix(frag, []byte("\n")), []byte("\r"))
	return bytes.Clone(line), false, err
}
