"""The supervisor program: runs one tool, records how it ended, and leaves nothing behind.

Run as `python -I -S supervise.py istari-supervisor STATUS_DIR CWD ARGV...` in a new session
(supervisor.py builds that command; standard library only, since `-I -S` loads no site). It

1. becomes a *child subreaper* (prctl PR_SET_CHILD_SUBREAPER): every process the tool starts,
   even one that double-forks and calls `setsid` to leave the tool's session, is re-parented
   to this program when its parent dies, instead of to init. The job's processes can no longer
   escape it;
2. handles every signal that would end or stop it and can be caught (SIGHUP, SIGINT,
   SIGTERM, SIGQUIT, SIGUSR1, ...: a handler, not an ignore, so the tool gets the default
   actions), so a signal sent to the group reaches the tool and the supervisor lives on to
   record how it ended;
3. writes its pid to `STATUS_DIR/pid`, changes into CWD (126 recorded when it cannot), starts
   the tool (127 when it is not found, 126 when it cannot be run; a file without a `#!` line
   runs under /bin/sh, as a shell would run it), and reaps whatever ends;
4. once the tool has ended, SIGKILLs every process that is left (they are all its children
   by then, or become so as their parents die) until none is, and only then writes the
   tool's exit status to `STATUS_DIR/exit` (128 + N for a tool killed by signal N, as a
   shell reports it) and exits with it.

It depends on nothing from the agent (no pipes, stdin from /dev/null, output to the job's
log), so a tool outlives an agent that is killed or upgraded, and is still cleaned up after.
"""

from __future__ import annotations

# The C module, not `signal`: that would import enum, and pathlib or contextlib would bring
# more; each costs milliseconds on every job's start, so this program uses os and open().
import _signal as signal  # type: ignore[import-not-found]
import ctypes
import errno
import os
import sys

PR_SET_CHILD_SUBREAPER = 36
NOT_FOUND, CANNOT_RUN, SIGNALLED = 127, 126, 128
# Signals the tool starts with at their default action (Python ignores SIGPIPE and SIGXFSZ,
# and an ignored signal stays ignored across exec; a handled one is reset by exec anyway).
_DEFAULTS = (signal.SIGPIPE, signal.SIGXFSZ)
# Signals the supervisor must survive: all but those it cannot catch, SIGCHLD (it waits), and
# those the kernel sends for a fault of its own (a handler would return into the fault).
_UNCAUGHT = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD, signal.SIGCONT, signal.SIGWINCH,
             signal.SIGURG, signal.SIGSEGV, signal.SIGBUS, signal.SIGFPE, signal.SIGILL,
             signal.SIGTRAP, signal.SIGSYS, signal.SIGABRT}  # fmt: skip


def main(argv: list[str]) -> int:
    for sig in signal.valid_signals() - _UNCAUGHT:
        try:
            signal.signal(sig, _noted)
        except (OSError, ValueError):  # reserved by the C library (some real-time signals)
            continue
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:  # pre-3.4 kernels only
        _say(f"cannot become a subreaper: {os.strerror(ctypes.get_errno())}")
    status_dir, cwd, tool = argv[1], argv[2], argv[3:]
    _write(os.path.join(status_dir, "pid"), os.getpid())
    try:
        os.chdir(cwd)
    except OSError as e:
        _say(f"cannot change into {cwd}: {e.strerror}")
        return _record(status_dir, CANNOT_RUN)
    try:
        pid = _spawn(tool)
    except OSError as e:
        _say(f"{tool[0]}: {e.strerror}")
        return _record(status_dir, NOT_FOUND if e.errno == errno.ENOENT else CANNOT_RUN)
    code = _reap_until_ended(pid)
    _kill_leftovers()
    return _record(status_dir, code)


def _spawn(tool: list[str]) -> int:
    """Start the tool as the shell did: found on PATH, a script without `#!` run by /bin/sh."""
    try:
        return os.posix_spawnp(tool[0], tool, os.environ, setsigdef=_DEFAULTS)
    except OSError as e:
        if e.errno != errno.ENOEXEC:
            raise
    import shutil

    path = tool[0] if os.sep in tool[0] else shutil.which(tool[0]) or tool[0]
    return os.posix_spawn("/bin/sh", ["/bin/sh", path, *tool[1:]], os.environ, setsigdef=_DEFAULTS)


def _noted(signum: int, frame: object) -> None:
    """Stop signals are for the tool; the supervisor stays to record and clean up."""


def _reap_until_ended(tool: int) -> int:
    """Reap children (orphans re-parented here too) until the tool ends; its shell status."""
    while True:
        pid, status = os.waitpid(-1, 0)  # retried after a signal handler runs (PEP 475)
        if pid == tool:
            code = os.waitstatus_to_exitcode(status)
            return SIGNALLED - code if code < 0 else code


def _kill_leftovers() -> None:
    """SIGKILL and reap every remaining descendant, until this process has no child left.

    Each round kills every child at once, then reaps all that have ended; the children of
    those are ours now, and the next round kills them. A round that finds none still
    running waits for one to end (a child is only ever reaped once it is dead).
    """
    while True:
        for child in _children():
            try:
                os.kill(child, signal.SIGKILL)
            except ProcessLookupError:
                continue
        try:
            pid, _ = os.waitpid(-1, 0)  # at least one: they were all just killed
            while pid:
                pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return


def _children() -> list[int]:
    """This process's children, from /proc (the kernel's list where it keeps one)."""
    me = os.getpid()
    try:
        return [int(p) for p in _read(f"/proc/{me}/task/{me}/children").split()]
    except OSError:  # a kernel without CONFIG_PROC_CHILDREN: scan every process's parent
        found = []
        for name in os.listdir("/proc"):
            if name.isdigit():
                try:
                    stat = _read(f"/proc/{name}/stat")
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == me:
                    found.append(int(name))
        return found


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def _record(status_dir: str, code: int) -> int:
    _write(os.path.join(status_dir, "exit"), code)
    return code


def _write(path: str, value: int) -> None:
    with open(path, "w") as f:
        f.write(f"{value}\n")


def _say(message: str) -> None:
    print(f"istari-supervisor: {message}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
