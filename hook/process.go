package hook

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// stdoutBuffer is the read buffer of a program's stdout: most answers fit
// in one read.
const stdoutBuffer = 64 << 10

// stderrGrace is how long a program's stderr is still read after it
// exited (a descendant that left its process group may hold it open).
const stderrGrace = time.Second

// procSpec is how to start a hook's processes.
type procSpec struct {
	argv   []string // sandboxArgv's
	dir    string
	env    []string
	log    *slog.Logger
	stderr *rateLimiter
	// onExit is called once the process has been reaped (and its stderr
	// read), before its exited channel closes.
	onExit func(p *proc)
	// readToEnd: the caller reads stdout to its end and then closes the
	// process's files (Run); otherwise the waiter closes them once the
	// process is reaped (a pool's process, whose unread output after it
	// died is of no use).
	readToEnd bool
}

// proc is one running program, the leader of its own process group.
type proc struct {
	pid    int
	cmd    *exec.Cmd
	stdin  *os.File // nil when Run feeds stdin from a buffer
	stdout *os.File
	out    *bufio.Reader
	wbuf   []byte
	log    *slog.Logger
	calls  int // calls it has been given (by the one call that holds it)

	// ended is set by the first to decide how the process ends: a call
	// that kills it (timeout, oversized answer, Close) or notices it
	// crashed, or the waiter when it died on its own.
	ended atomic.Bool

	mu     sync.Mutex
	reaped bool // its pid may belong to another process now

	exited chan struct{} // closed once reaped; status is set by then
	status string        // e.g. "exit status 1", "signal: killed"
	ok     bool          // exited with status 0
}

// start starts one process. stdin nil gives it a pipe (p.stdin) for
// requests; otherwise it reads stdin. The process runs in its own process
// group, receives SIGKILL if this process dies, and is watched by a
// goroutine (counted in wg) that kills its whole group when it exits,
// reaps it, and closes p's files.
func (s *procSpec) start(stdin io.Reader, wg *sync.WaitGroup) (p *proc, err error) {
	var toClose []*os.File
	defer func() {
		for _, f := range toClose {
			f.Close()
		}
	}()
	cmd := exec.Command(s.argv[0], s.argv[1:]...)
	cmd.Dir = s.dir
	cmd.Env = s.env
	if cmd.Env == nil {
		cmd.Env = []string{}
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = stderrGrace
	p = &proc{cmd: cmd, exited: make(chan struct{})}
	if stdin == nil {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		toClose = append(toClose, r)
		cmd.Stdin, p.stdin = r, w
	} else {
		cmd.Stdin = stdin
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		p.closeFiles()
		return nil, err
	}
	toClose = append(toClose, outW)
	cmd.Stdout, p.stdout = outW, outR
	errR, errW, err := os.Pipe()
	if err != nil {
		p.closeFiles()
		return nil, err
	}
	toClose = append(toClose, errW)
	cmd.Stderr = errW
	if err := cmd.Start(); err != nil {
		p.closeFiles()
		errR.Close()
		return nil, err
	}
	p.pid = cmd.Process.Pid
	p.out = bufio.NewReaderSize(p.stdout, stdoutBuffer)
	p.log = s.log.With("pid", p.pid)
	stderrDone := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(stderrDone)
		logStderr(errR, p.log, s.stderr)
	}()
	go func() {
		defer wg.Done()
		p.wait(errR, stderrDone, s.onExit, !s.readToEnd)
	}()
	return p, nil
}

// wait waits for the process to exit, kills what is left of its group,
// reaps it and, if closeFiles, closes its files.
func (p *proc) wait(stderr *os.File, stderrDone <-chan struct{}, onExit func(*proc), closeFiles bool) {
	var info unix.Siginfo
	for {
		// WNOWAIT: the pid stays a zombie, so it (and the group id) cannot
		// be reused before the group is killed below.
		err := unix.Waitid(unix.P_PID, p.pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	p.mu.Lock()
	syscall.Kill(-p.pid, syscall.SIGKILL)
	p.reaped = true
	p.mu.Unlock()
	err := p.cmd.Wait()
	p.ok = err == nil
	p.status = "exit status 0"
	if err != nil {
		p.status = err.Error()
	}
	stderr.SetReadDeadline(time.Now().Add(stderrGrace))
	<-stderrDone
	if onExit != nil {
		onExit(p)
	}
	close(p.exited)
	if closeFiles {
		p.closeFiles()
	}
}

// kill sends SIGKILL to the process's group (nothing once it is reaped).
func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.reaped {
		syscall.Kill(-p.pid, syscall.SIGKILL)
	}
}

// interrupt makes a blocked read or write of a call return at once.
func (p *proc) interrupt() {
	past := time.Unix(1, 0)
	p.stdout.SetReadDeadline(past)
	if p.stdin != nil {
		p.stdin.SetWriteDeadline(past)
	}
}

func (p *proc) hasExited() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func (p *proc) closeFiles() {
	if p.stdin != nil {
		p.stdin.Close()
	}
	if p.stdout != nil {
		p.stdout.Close()
	}
}

// resolveProgram finds a hook's program: a name with a "/" is a file
// (relative to dir), any other name is looked up in the PATH of env (or,
// without one there, of this process). It must be an executable regular
// file. The errors say what to fix; they wrap fs.ErrNotExist or
// fs.ErrPermission.
func resolveProgram(name, dir string, env []string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("empty program name: %w", fs.ErrNotExist)
	}
	if !strings.Contains(name, "/") {
		path := os.Getenv("PATH")
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				path = v
			}
		}
		for _, d := range filepath.SplitList(path) {
			if d == "" || !filepath.IsAbs(d) {
				continue
			}
			candidate := filepath.Join(d, name)
			if checkExecutable(candidate) == nil {
				return candidate, nil
			}
		}
		return "", fmt.Errorf("program %q is not in PATH (%s): %w", name, path, fs.ErrNotExist)
	}
	full := name
	if !filepath.IsAbs(full) {
		base := dir
		if base == "" {
			var err error
			if base, err = os.Getwd(); err != nil {
				return "", err
			}
		}
		full = filepath.Join(base, name)
	}
	if err := checkExecutable(full); err != nil {
		return "", fmt.Errorf("program %q: %w", name, err)
	}
	return full, nil
}

func checkExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s does not exist: %w", path, fs.ErrNotExist)
		}
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file (%v): %w", path, fi.Mode().Type(), fs.ErrPermission)
	}
	if err := unix.Access(path, unix.X_OK); err != nil {
		return fmt.Errorf("%s is not executable (mode %v): make it executable (chmod +x) or name its interpreter first, e.g. [python3, %s]: %w",
			path, fi.Mode().Perm(), filepath.Base(path), fs.ErrPermission)
	}
	return nil
}
