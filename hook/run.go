package hook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"
)

// maxRunLines bounds Run's maxLines.
const maxRunLines = 1 << 22

// Run runs a program to its end, as task sources do: it gets stdin on its
// stdin and prints lines on its stdout. Run returns the non-blank lines
// (without line ends, at most maxLines of them, at most
// cfg.Limits.MaxOutput bytes in all) once the program exited with status 0,
// or an error and no lines: ErrTimeout when it ran past cfg.Limits.Timeout,
// ErrTooLarge when it printed too much (it is killed at once), ErrCrashed
// when it exited with another status. The rlimits, environment, logging
// of stderr and metrics are those of an Exec; Concurrency and the backoff
// do not apply. Whatever the outcome, its whole process group is killed
// before Run returns.
func Run(ctx context.Context, cfg ExecConfig, stdin []byte, maxLines int) ([][]byte, error) {
	if maxLines <= 0 || maxLines > maxRunLines {
		return nil, fmt.Errorf("hook %s: max lines %d: want 1 to %d", cfg.Name, maxLines, maxRunLines)
	}
	argv, log, err := cfg.prepare(false)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	lines, err := run(ctx, cfg, argv, log, stdin, maxLines)
	cfg.Metrics.forHook(cfg.Name).observe(start, err)
	return lines, err
}

func run(ctx context.Context, cfg ExecConfig, argv []string, log *slog.Logger, stdin []byte, maxLines int) ([][]byte, error) {
	fail := func(kind error, detail string) error {
		return fmt.Errorf("hook %s: %w: %s", cfg.Name, kind, detail)
	}
	var wg sync.WaitGroup
	spec := procSpec{argv: argv, dir: cfg.Dir, env: cfg.Env, log: log,
		stderr: newRateLimiter(stderrRate, stderrBurst), readToEnd: true}
	p, err := spec.start(bytes.NewReader(stdin), &wg)
	if err != nil {
		return nil, fail(ErrCrashed, "starting the program: "+err.Error())
	}
	defer p.closeFiles()
	defer wg.Wait()
	defer p.kill()

	deadline := time.Now().Add(cfg.Limits.Timeout)
	callerDeadline := false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, callerDeadline = d, true
	}
	p.stdout.SetReadDeadline(deadline)
	stop := context.AfterFunc(ctx, p.interrupt)
	defer stop()
	timedOut := func() error {
		switch {
		case errors.Is(ctx.Err(), context.Canceled):
			return fmt.Errorf("hook %s: run abandoned: %w", cfg.Name, ctx.Err())
		case callerDeadline || ctx.Err() != nil:
			return fmt.Errorf("hook %s: %w: not done by the caller's deadline (%w)", cfg.Name, ErrTimeout, context.DeadlineExceeded)
		}
		log.Warn("hook program timed out; killed", "timeout", cfg.Limits.Timeout)
		return fail(ErrTimeout, fmt.Sprintf("not done within %v", cfg.Limits.Timeout))
	}

	var lines [][]byte
	budget := cfg.Limits.MaxOutput
	for {
		line, err := readLine(p.out, budget)
		if len(bytes.TrimSpace(line)) > 0 {
			if len(lines) == maxLines {
				return nil, fail(ErrTooLarge, fmt.Sprintf("more than %d lines", maxLines))
			}
			lines = append(lines, line)
		}
		budget -= len(line) + 1
		switch {
		case err == nil:
			if budget < 0 {
				return nil, fail(ErrTooLarge, fmt.Sprintf("more than %d bytes of output", cfg.Limits.MaxOutput))
			}
			continue
		case errors.Is(err, io.EOF):
		case errors.Is(err, errLineTooLong):
			return nil, fail(ErrTooLarge, fmt.Sprintf("more than %d bytes of output", cfg.Limits.MaxOutput))
		case errors.Is(err, os.ErrDeadlineExceeded):
			return nil, timedOut()
		default:
			return nil, fail(ErrCrashed, "reading its output: "+err.Error())
		}
		break
	}
	// Its output ended: wait for it to exit, within the same deadline.
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-p.exited:
	case <-timer.C:
		return nil, timedOut()
	case <-ctx.Done():
		return nil, timedOut()
	}
	if !p.ok {
		log.Warn("hook program failed", "status", p.status)
		return nil, fail(ErrCrashed, p.status)
	}
	return lines, nil
}
