#!/usr/bin/env python3
"""Exec judge of the code example subnet: runs a miner's code against the
task's unit tests.

The validator starts this program once and keeps it running (spec.yaml,
judge.kind: exec). For each miner answer it writes one JSON line on our
standard input:

    {"task": {"request": {"task": ..., "signature": ...},
              "meta": {"tests": ["assert f(1) == 2", ...]}},
     "answer": {"code": "def f(x): ..."}, "synapse": "code.v1"}

and reads one JSON line back, in order:

    {"score": passed/total, "fields": {"passed": P, "total": T}}

or {"error": "..."} when the task itself is unusable (the validator then
drops the task from the round instead of scoring the miner 0). The
validator may send the next lines before we answer: we answer every line,
in order, and flush each answer.

Each answer runs in a fresh throwaway directory, in a separate Python
process (isolated mode, no site-packages, an empty environment) with
rlimits on CPU time, address space, file size and open files, a wall-clock
timeout after which its whole process group is killed, and its output
capped. The hook's own limits (spec.yaml, judge.limits) bound this judge;
these bound the code it runs.

A test counts as passed only if the runner prints it with a nonce the judge
hands it before the miner's code loads, so code that prints "passed" or
exits early at import earns nothing. This is not a sandbox against code
that sets out to forge results from inside the interpreter (patching
builtins, reading the runner's memory): a subnet paying for code against
determined adversaries runs the same protocol with the tests in a container
or VM.
"""
import json
import math
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile

# Bounds on the code under test.
CPU_SECONDS = 2
ADDRESS_SPACE = 512 << 20   # bytes
FILE_SIZE = 1 << 20         # bytes: also bounds the captured output
OPEN_FILES = 64
WALL_SECONDS = 5.0
EXTRA_PROCESSES = 16        # beyond what our user runs already (not for root)

# Bounds on a task.
MAX_TESTS = 100
MAX_TEST_BYTES = 10_000
MAX_CODE_BYTES = 100_000

# The runner: reads the nonce, loads the solution, runs each test in the
# solution's namespace and prints "<nonce> <i>" for each that passes.
RUNNER = r"""
import json, sys
nonce = sys.stdin.readline().strip()
tests = json.loads(sys.stdin.readline())
sys.stdin.close()
out = sys.stdout
ns = {"__name__": "solution"}
try:
    with open("solution.py", encoding="utf-8") as f:
        src = f.read()
    exec(compile(src, "solution.py", "exec"), ns)
except BaseException:
    raise SystemExit(0)
for i, test in enumerate(tests):
    try:
        exec(compile(test, "test_%d" % i, "exec"), dict(ns))
    except BaseException:
        continue
    out.write("%s %d\n" % (nonce, i))
    out.flush()
"""


def user_threads():
    """How many threads our real user runs (what RLIMIT_NPROC counts), or
    None if /proc cannot tell."""
    uid, n = os.getuid(), 0
    try:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                st = os.stat("/proc/" + pid)
                if st.st_uid != uid:
                    continue
                with open("/proc/%s/status" % pid) as f:
                    for line in f:
                        if line.startswith("Threads:"):
                            n += int(line.split()[1])
                            break
            except (OSError, ValueError):
                continue
    except OSError:
        return None
    return n


def limit_child(nproc):
    """Runs in the child before exec: its rlimits."""
    if nproc is not None:
        # Root is not bound by RLIMIT_NPROC: there the wall-clock timeout
        # and the process-group kill bound a fork bomb.
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
    resource.setrlimit(resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS))
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE, FILE_SIZE))
    resource.setrlimit(resource.RLIMIT_NOFILE, (OPEN_FILES, OPEN_FILES))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def kill_group(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def run_tests(code, tests):
    """Runs code against tests in a throwaway directory; returns how many passed."""
    nonce = secrets.token_hex(16)
    nproc = None
    if os.getuid() != 0:
        running = user_threads()
        if running is not None:
            nproc = running + EXTRA_PROCESSES
    work = tempfile.mkdtemp(prefix="code-judge-")
    try:
        with open(os.path.join(work, "solution.py"), "w", encoding="utf-8") as f:
            f.write(code)
        out_path = os.path.join(work, ".out")
        with open(out_path, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", RUNNER],
                cwd=work,
                env={"PATH": "/usr/bin:/bin", "HOME": work, "LANG": "C.UTF-8"},
                stdin=subprocess.PIPE, stdout=out, stderr=subprocess.DEVNULL,
                preexec_fn=lambda: limit_child(nproc), start_new_session=True, close_fds=True)
            try:
                proc.communicate((nonce + "\n" + json.dumps(tests) + "\n").encode(), timeout=WALL_SECONDS)
            except subprocess.TimeoutExpired:
                pass
            finally:
                # The code's children, if it made any, go with it.
                kill_group(proc.pid)
                proc.wait()
        passed = set()
        with open(out_path, "rb") as f:
            for line in f.read(FILE_SIZE).splitlines():
                parts = line.split(b" ")
                if len(parts) == 2 and parts[0] == nonce.encode() and parts[1].isdigit():
                    i = int(parts[1])
                    if i < len(tests):
                        passed.add(i)
        return len(passed)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def judge(msg):
    """One answer's verdict (a dict to print)."""
    if not isinstance(msg, dict):
        return {"error": "want a JSON object"}
    task = msg.get("task")
    meta = task.get("meta") if isinstance(task, dict) else None
    tests = meta.get("tests") if isinstance(meta, dict) else None
    if (not isinstance(tests, list) or not tests or len(tests) > MAX_TESTS
            or not all(isinstance(t, str) and len(t) <= MAX_TEST_BYTES for t in tests)):
        return {"error": "task.meta.tests: want 1 to %d test strings" % MAX_TESTS}
    answer = msg.get("answer")
    code = answer.get("code") if isinstance(answer, dict) else None
    total = len(tests)
    if not isinstance(code, str) or not code.strip() or len(code.encode()) > MAX_CODE_BYTES:
        # The validator checks answers against code.v1's schema before
        # they reach us; this is the miner's fault if it ever gets here.
        return {"score": 0.0, "fields": {"passed": 0, "total": total, "reason": "no code"}}
    passed = run_tests(code, tests)
    score = passed / total
    if not math.isfinite(score):
        score = 0.0
    return {"score": score, "fields": {"passed": passed, "total": total}}


def main():
    for line in sys.stdin:
        try:
            msg = json.loads(line)
        except ValueError as e:
            verdict = {"error": "not JSON: %s" % e}
        else:
            try:
                verdict = judge(msg)
            except Exception as e:  # a bug here must not kill the judge
                verdict = {"error": "judge: %s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps(verdict) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
