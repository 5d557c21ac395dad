package hook

import (
	"fmt"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// Limits bound one hook. Zero means unlimited for CPUSeconds and
// MemoryBytes; Timeout, MaxOutput and Concurrency must be positive.
type Limits struct {
	// Timeout bounds one call (for Run: the whole run), from the moment
	// the call has a process (or connection slot) to its answer. The
	// first call on a new process gets twice as long, since it also waits
	// for the program to start (a program that takes longer to start than
	// that never serves).
	Timeout time.Duration
	// CPUSeconds is RLIMIT_CPU of each process: the CPU time it may use
	// over its whole life (a long-lived program that reaches it is killed
	// and restarted like any crash).
	CPUSeconds uint64
	// MemoryBytes is RLIMIT_AS of each process: its address space.
	// Runtimes that reserve large address ranges up front need much more
	// than they use: a minimal Go program reserves about 1.2 GiB (so the
	// default 1 GiB fails Go programs now and then; give them 4 GiB), the
	// JVM and V8 more. Python and shell programs reserve little.
	MemoryBytes uint64
	// MaxOutput bounds one answer line (Exec), one reply body (HTTP) or
	// the whole output (Run), in bytes.
	MaxOutput int
	// Concurrency is how many calls run at once: processes in an Exec's
	// pool, requests in flight for an HTTP hook. Run ignores it.
	Concurrency int
	// Pipeline is how many calls an Exec's process has in flight at once:
	// their request lines are written as they come and the answers,
	// which a program gives in order, matched to them first in, first
	// out. 0 or 1: one call at a time. At most 64. A timeout or a bad
	// answer replaces the process and fails every call in flight on it.
	// HTTP hooks and Run ignore it.
	Pipeline int
}

// pipeline is Pipeline with 0 read as 1.
func (l Limits) pipeline() int { return max(1, l.Pipeline) }

// DefaultLimits: 10 s per call, 60 CPU seconds and 1 GiB of address space
// per process, 1 MiB per answer, 4 calls (processes) at once, 8 calls in
// flight per process.
func DefaultLimits() Limits {
	return Limits{
		Timeout:     10 * time.Second,
		CPUSeconds:  60,
		MemoryBytes: 1 << 30,
		MaxOutput:   1 << 20,
		Concurrency: 4,
		Pipeline:    8,
	}
}

// Upper bounds of the limits a configuration may ask for.
const (
	maxMaxOutput   = 256 << 20
	maxConcurrency = 256
	maxPipeline    = 64
)

func (l Limits) validate() error {
	switch {
	case l.Timeout <= 0:
		return fmt.Errorf("limits: timeout %v: want a positive duration", l.Timeout)
	case l.MaxOutput <= 0 || l.MaxOutput > maxMaxOutput:
		return fmt.Errorf("limits: max output %d bytes: want 1 to %d", l.MaxOutput, maxMaxOutput)
	case l.Concurrency <= 0 || l.Concurrency > maxConcurrency:
		return fmt.Errorf("limits: concurrency %d: want 1 to %d", l.Concurrency, maxConcurrency)
	case l.Pipeline < 0 || l.Pipeline > maxPipeline:
		return fmt.Errorf("limits: pipeline %d: want 0 to %d (0 or 1: one call at a time per process)", l.Pipeline, maxPipeline)
	case l.MemoryBytes != 0 && l.MemoryBytes < 1<<20:
		return fmt.Errorf("limits: memory %d bytes: want at least 1 MiB (or 0 for no limit)", l.MemoryBytes)
	}
	return nil
}

// prlimitPath is util-linux's prlimit(1) when it is installed, else "" (and
// the sandbox falls back on /bin/sh's ulimit). A variable so tests can
// exercise the fallback.
var prlimitPath, _ = exec.LookPath("prlimit")

// shPath is the POSIX shell of the fallback.
var shPath = "/bin/sh"

// sandboxArgv returns the argv that runs program with args under the
// limits: the program itself when there are none, else prlimit(1) or
// /bin/sh with the limits and then the program. Both set the limits on
// themselves and exec the program, so it runs in the same process (the pid
// the hook holds is the program's) with the limits in force from its first
// instruction, and its argv is passed through untouched (never parsed by
// a shell). Requests above the current hard limit are lowered to it (an
// unprivileged process cannot raise a hard limit). Core dumps are turned
// off.
func sandboxArgv(l Limits, program string, args []string) []string {
	cpu := clampLimit(syscall.RLIMIT_CPU, l.CPUSeconds)
	as := clampLimit(syscall.RLIMIT_AS, l.MemoryBytes)
	if cpu == 0 && as == 0 {
		return append([]string{program}, args...)
	}
	var argv []string
	if prlimitPath != "" {
		argv = []string{prlimitPath, "--core=0"}
		if cpu != 0 {
			// Soft limit: SIGXCPU (which kills a program that does not
			// handle it); one second later, SIGKILL.
			argv = append(argv, fmt.Sprintf("--cpu=%d:%d", cpu, cpu+1))
		}
		if as != 0 {
			argv = append(argv, "--as="+strconv.FormatUint(as, 10))
		}
		argv = append(argv, "--")
	} else {
		script := "ulimit -c 0"
		if cpu != 0 {
			script += " && ulimit -t " + strconv.FormatUint(cpu, 10)
		}
		if as != 0 {
			// ulimit -v counts KiB; round down so the limit is never looser.
			script += " && ulimit -v " + strconv.FormatUint(as/1024, 10)
		}
		script += ` && exec "$0" "$@"`
		argv = []string{shPath, "-c", script}
	}
	return append(append(argv, program), args...)
}

// clampLimit returns want lowered to this process's hard limit for
// resource (0 stays 0: no limit).
func clampLimit(resource int, want uint64) uint64 {
	if want == 0 {
		return 0
	}
	var cur syscall.Rlimit
	if err := syscall.Getrlimit(resource, &cur); err == nil && cur.Max != ^uint64(0) && want > cur.Max {
		return cur.Max
	}
	return want
}
