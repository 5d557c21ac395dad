package main

import (
	"io"
	"os"

	"golang.org/x/term"
)

// env is everything a command reads from or writes to outside its flags, so
// tests can run the command tree in-process with buffers and a fake
// environment.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// getenv reads an environment variable.
	getenv func(string) string
	// userHome returns the user's home directory.
	userHome func() (string, error)
	// terminal is set when stdin is an interactive terminal; it reads a
	// line without echo.
	terminal func() ([]byte, error)
}

func newEnv() env {
	e := env{
		stdin:    os.Stdin,
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		getenv:   os.Getenv,
		userHome: os.UserHomeDir,
	}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		e.terminal = func() ([]byte, error) { return term.ReadPassword(fd) }
	}
	return e
}
