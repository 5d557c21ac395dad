package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
)

// passwordSource reads a password from, in order: --password-file, the
// CYBERTENSOR_PASSWORD environment variable, or a prompt on the terminal
// (without echo). A password is never printed or logged.
type passwordSource struct {
	env  env
	file string
}

// maxPasswordFileSize bounds what is read from --password-file.
const maxPasswordFileSize = 64 << 10

// read returns the password. When confirm is set and the password comes
// from the terminal, it is asked twice.
func (p passwordSource) read(prompt string, confirm bool) ([]byte, error) {
	if p.file != "" {
		st, err := os.Stat(p.file)
		if err != nil {
			return nil, usageError(fmt.Errorf("--password-file: %w", err))
		}
		if st.Size() > maxPasswordFileSize {
			return nil, usageError(fmt.Errorf("--password-file %s: %d bytes is not a password file", p.file, st.Size()))
		}
		b, err := os.ReadFile(p.file)
		if err != nil {
			return nil, usageError(fmt.Errorf("--password-file: %w", err))
		}
		// The password is the first line, without its line ending.
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[:i]
		}
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(b) == 0 {
			return nil, usageError(fmt.Errorf("--password-file %s: the first line is empty", p.file))
		}
		return b, nil
	}
	if v := p.env.getenv(envPassword); v != "" {
		return []byte(v), nil
	}
	if p.env.terminal == nil {
		return nil, usageError(errors.New("a password is needed: use --password-file, set " + envPassword + ", or run in a terminal"))
	}
	fmt.Fprintf(p.env.stderr, "%s: ", prompt)
	pw, err := p.env.terminal()
	fmt.Fprintln(p.env.stderr)
	if err != nil {
		return nil, fmt.Errorf("reading password: %w", err)
	}
	if len(pw) == 0 {
		return nil, usageError(errors.New("empty password"))
	}
	if confirm {
		fmt.Fprintf(p.env.stderr, "%s (again): ", prompt)
		again, err := p.env.terminal()
		fmt.Fprintln(p.env.stderr)
		if err != nil {
			return nil, fmt.Errorf("reading password: %w", err)
		}
		if !bytes.Equal(pw, again) {
			return nil, usageError(errors.New("the passwords do not match"))
		}
	}
	return pw, nil
}
