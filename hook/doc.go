// Package hook runs the programs and endpoints a subnet's spec names —
// task sources and judges on validators, the exec backend on miners —
// sandboxed and supervised, so that a hook that hangs, crashes, floods its
// output or answers garbage costs one failed call, never the caller.
//
// # Programs
//
// Exec is a long-lived program speaking JSON lines: one JSON value on one
// line in on its stdin, one JSON value on one line out on its stdout, in
// order. The program must print exactly one line per request on stdout
// (flushing it; anything else goes to stderr): an extra line would be
// taken as the next request's answer.
//
//	e, err := hook.StartExec(hook.DefaultExecConfig("summarize/judge", "python3", "judge.py"))
//	…
//	defer e.Close()
//	reply, err := e.Call(ctx, []byte(`{"task": …, "answer": "…"}`))
//
// StartExec refuses a program that does not exist or is not executable at
// once (the error wraps fs.ErrNotExist or fs.ErrPermission). Processes
// start when calls need them, up to Limits.Concurrency, each with up to
// Limits.Pipeline calls in flight (default 8; 1: one at a time): request
// lines are written as they come, those that come during a write together
// in the next, and answers are matched to calls first in, first out, so a
// fast program reads and answers several requests per wake-up. A call
// goes behind the calls in flight on a busy process only while that
// process will likely answer them all sooner than an idle process answers
// one (by the hook's measured answer times); otherwise to an idle process,
// a new one, or the least busy. Each call is bounded by Limits.Timeout
// from when it is queued (and the caller's context); a process that does
// not answer in time, or whose caller gives up, is killed and replaced,
// since it cannot be trusted to stay in step. So is one whose answer line
// is longer than Limits.MaxOutput (ErrTooLarge) or not one JSON value
// (ErrBadOutput), and one that prints a line nobody asked for. When a
// process is replaced or crashes, every call in flight on it fails at
// once: the call that broke it with its own error, the others with
// ErrCrashed naming what happened. A process that stops reading its input
// holds up only its own calls. A
// process that exits or closes its output is a crash (ErrCrashed): it is
// started again after MinBackoff, doubling with each further crash
// without a good answer in between up to MaxBackoff, and calls during the
// wait fail at once with ErrCrashed rather than hang. Run runs a program to
// its end instead (task sources that print task lines), with the same
// limits and its output capped in bytes and lines.
//
// Every process is the leader of its own process group, and the whole
// group is killed when the process ends, when its call is abandoned and on
// Close, so a hook leaves no orphans behind (a descendant that calls
// setsid(2) escapes this; sandboxing beyond rlimits — namespaces, seccomp
// — is not this package's). It also receives SIGKILL if the calling
// process dies. Its environment is only what ExecConfig.Env says
// (DefaultExecConfig: BaseEnv, a few harmless variables), so the caller's
// API keys do not leak into it. Its stderr goes to the logger line by
// line under the hook's name (lines cut at 2 KiB, at most 20 lines a
// second after a burst of 100; the number dropped is logged).
//
// # Resource limits
//
// Limits.CPUSeconds and Limits.MemoryBytes are RLIMIT_CPU and RLIMIT_AS,
// set in the child before it runs its program. Go's os/exec has no
// rlimit field, and setting them on the child after it started leaves a
// window in which it runs unbounded, so the program is started through a
// small launcher that sets them on itself and then execs the program in
// the same process: prlimit(1) from util-linux (present on every common
// Linux distribution) when it is installed, else /bin/sh with `ulimit -t
// N -v KiB; exec "$0" "$@"`. Either way the argv reaches the program
// untouched (no shell parses it), the pid the hook holds is the program's,
// and the limits are in force from its first instruction. Re-executing
// this binary to set the limits was rejected: it needs a hook in every
// main package that may start a hook (including test binaries). CPU time
// is the process's over its life: a program past its soft limit gets
// SIGXCPU (fatal unless it handles it) and, a second later, SIGKILL; a
// long-lived one is then restarted like any crash. Address space limits
// make allocations fail (a Go or Python program then exits with an
// out-of-memory error); runtimes that reserve much address space up front
// need a generous limit or 0 (none): a minimal Go program has 1.2 GiB of
// address space (VmSize) before it allocates anything, the JVM and V8
// more. Limits above the
// caller's own hard limits are lowered to them. Core dumps are off.
//
// # Endpoints
//
// HTTP is an endpoint hook: Call POSTs a JSON body and expects one JSON
// value back, Get fetches a task list. Each request is bounded by
// Limits.Timeout, its reply by Limits.MaxOutput bytes (after content
// decoding), the requests in flight by Limits.Concurrency; a status other
// than 2xx is ErrStatus, a connection failure ErrUnreachable. Redirects are
// not followed.
//
// # Errors and metrics
//
// Every hook failure wraps ErrFailed (and one of ErrTimeout, ErrCrashed,
// ErrTooLarge, ErrBadOutput, ErrClosed, ErrStatus, ErrUnreachable) and
// names the hook; a caller's context that ends first gives the context's
// error (a passed deadline also wraps ErrTimeout). Metrics, shared by all
// hooks of a process, counts cybertensor_hook_calls_total{hook},
// cybertensor_hook_failures_total{hook,reason} and
// cybertensor_hook_call_seconds{hook}.
package hook
