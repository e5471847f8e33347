"""Checker processes: symbolic comparisons that can be stopped at any moment.

sympy can run for minutes (or forever) on a hostile answer such as ``2^{2^{2^{2^{2^2}}}}``,
and a thread cannot be interrupted, so every comparison runs in a separate process that is
killed when its time is up. Processes are started with ``subprocess`` (not
``multiprocessing``), so a caller's ``__main__`` module is never re-imported and any thread
may call.

The pool keeps idle checkers alive between calls (math-verify's parser and a parse cache
stay warm) and ``SPARES`` more beyond those in use, started in the background, so the call
after a kill does not wait for a new process.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import json
import os
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

# Seconds a new checker may take to import math-verify before its start counts as failed.
STARTUP_LIMIT = 60.0
# Checkers started for one comparison before it counts as a grading failure: a checker
# killed from outside (the OOM killer) or dying on its input is replaced, a few times.
ATTEMPTS = 3
# Address space all checkers of a process may take together (each gets its share, at least
# MIN_CHECKER_MEMORY): a runaway expression fails its own comparison, never the machine. A
# checker needs about 70 MB (bench/grading.py measures it).
TOTAL_MEMORY_BYTES = 4 * 1024**3
MIN_CHECKER_MEMORY_BYTES = 512 * 1024**2
# Idle checkers kept ready beyond those in use. A checker killed on a timeout is replaced
# in the background; with two spares each replacement has two comparisons' time to start
# (about a second, more on a busy machine) before anyone needs it.
SPARES = 2

_SCRIPT = Path(__file__).with_name("sympy_check.py")
# The script runs by path with the working directory dropped from sys.path: importing the
# ``tts_eval`` package would pull in torch, and the working directory may hold anything.
_BOOT = (
    "import runpy, sys\n"
    "if sys.path and sys.path[0] == '':\n"
    "    del sys.path[0]\n"
    "sys.argv = sys.argv[1:]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')"
)


class CheckerStartError(RuntimeError):
    """A checker process reported that it cannot work: math-verify or sympy is missing or
    broken (every grade would be wrong, so this is the one grading error that is raised)."""


class Outcome(enum.Enum):
    EQUAL = "equal"
    DIFFERENT = "different"
    TIMED_OUT = "timed out"  # the comparison itself ran past its limit (the checker was killed)
    CHECKER_DIED = "checker died"  # every checker tried died (killed from outside, crashed)
    NO_CHECKER = "no checker"  # the pool was shut down while the call waited


class _CheckerGone(Exception):
    """The checker died before it was ready, before the request reached it or while it
    worked on it; another one may serve the request."""


class _Checker:
    """One checker process; used by one caller at a time (the pool sees to that)."""

    def __init__(self, memory_limit: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, str(_SCRIPT), str(memory_limit)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            # Keep a terminal's Ctrl-C for the parent; it kills checkers itself.
            start_new_session=os.name == "posix",
        )
        assert self.process.stdin is not None and self.process.stdout is not None  # both piped above
        self._stdin, self._stdout = self.process.stdin, self.process.stdout
        self._started = threading.Event()
        self._start_error: str | None = None  # what the script reported: a broken install
        self._died_early = False  # it exited or was killed before it was ready
        self._replies: queue.SimpleQueue[dict | None] = queue.SimpleQueue()
        threading.Thread(target=self._read_replies, name="grading-checker", daemon=True).start()

    @property
    def ready(self) -> bool:
        return self._started.is_set() and self._start_error is None

    def wait_ready(self, limit: float) -> None:
        """Return once ready; raise _CheckerGone when it died or did not start in time (a
        loaded machine, the OOM killer), CheckerStartError when it reported a broken install."""
        if not self._started.wait(limit) or self._died_early:
            raise _CheckerGone(f"the answer checker process did not start within {limit:.0f} s")
        if self._start_error is not None:
            raise CheckerStartError(
                f"the answer checker process failed to start: {self._start_error}; "
                "check that math-verify[antlr4_13_2] and sympy are installed"
            )

    def compare(self, gold: str, pred: str, limit: float) -> Outcome:
        request = json.dumps([gold, pred, limit]) + "\n"
        try:
            self._stdin.write(request.encode("ascii"))
            self._stdin.flush()
        except OSError as exc:
            raise _CheckerGone from exc
        try:
            reply = self._replies.get(timeout=limit)
        except queue.Empty:
            return Outcome.TIMED_OUT
        if reply is None:  # the process died on this input (killed, crashed)
            raise _CheckerGone("the answer checker process died during the comparison")
        return Outcome.EQUAL if reply.get("equal") is True else Outcome.DIFFERENT

    def kill(self) -> None:
        """Stop the process now; the reader thread reaps it (tearing down a process that
        grabbed gigabytes can take a while, and the caller should not wait for that)."""
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(OSError):
            self._stdin.close()

    def _read_replies(self) -> None:
        try:
            for line in self._stdout:
                try:
                    message = json.loads(line)
                except ValueError:
                    message = {"error": f"unreadable reply {line[:200]!r}"}
                if self._started.is_set():
                    self._replies.put(message)
                else:
                    if not message.get("ready"):
                        self._start_error = str(message.get("error", message))
                    self._started.set()
        except (OSError, ValueError):
            pass
        # End of output: the process has exited or been killed.
        self._stdout.close()
        self.process.wait()
        if not self._started.is_set():
            self._died_early = True
            self._started.set()
        self._replies.put(None)


class CheckerPool:
    """Checker processes shared by all threads of a process."""

    def __init__(self, max_checkers: int, memory_limit: int) -> None:
        self._max = max_checkers
        self.memory_limit = memory_limit  # bytes of address space per checker
        self._cond = threading.Condition()
        self._idle: list[_Checker] = []
        self._count = 0  # idle + busy
        self._closed = False

    def warm_up(self) -> None:
        """Start a checker now and wait until it is ready (the spares start after it)."""
        checker = self._acquire()
        if checker is None:
            return
        healthy = False
        try:
            checker.wait_ready(STARTUP_LIMIT)
            self._top_up()
            healthy = True
        except _CheckerGone:
            pass  # the next comparison starts another
        finally:
            self._release(checker, healthy)

    def compare(self, gold: str, pred: str, timeout: float) -> Outcome:
        """Compare two cleaned answers, giving the comparison ``timeout`` seconds.

        The clock starts when a checker takes the request: waiting for a new process to
        start (the first call in a process) or, with more concurrent callers than checkers,
        for a busy checker to finish does not count. A checker that dies (killed from
        outside, crashed) is replaced; after ATTEMPTS dead ones the outcome is CHECKER_DIED.
        Raises CheckerStartError only when a checker reports a broken install.
        """
        left = timeout  # the comparison's time, shared by the checkers that try it
        for _ in range(ATTEMPTS):
            checker = self._acquire()
            if checker is None:
                return Outcome.NO_CHECKER
            healthy = False
            try:
                checker.wait_ready(STARTUP_LIMIT)
                self._top_up()  # only now: the spares' start-up would slow this one's
                started = time.monotonic()
                try:
                    outcome = checker.compare(gold, pred, left)
                except _CheckerGone:
                    left -= time.monotonic() - started
                    if left <= 0:  # it died only after the comparison's time was spent
                        return Outcome.TIMED_OUT
                    raise
                healthy = outcome is not Outcome.TIMED_OUT
                return outcome
            except _CheckerGone:
                continue
            finally:
                self._release(checker, healthy)
        return Outcome.CHECKER_DIED

    def close(self) -> None:
        with self._cond:
            self._closed = True
            idle, self._idle = self._idle, []
            self._count -= len(idle)
            self._cond.notify_all()
        for checker in idle:
            checker.kill()

    def _acquire(self) -> _Checker | None:
        """A checker for one request (None once the pool is closed); prefers a ready one."""
        with self._cond:
            while True:
                if self._closed:
                    return None
                dead = [c for c in self._idle if c.process.poll() is not None]
                if dead:  # killed from outside while idle (e.g. by the OOM killer)
                    self._idle = [c for c in self._idle if c not in dead]
                    self._count -= len(dead)
                if self._idle:
                    ready = [i for i, c in enumerate(self._idle) if c.ready]
                    checker = self._idle.pop(ready[-1] if ready else -1)
                    break
                if self._count < self._max:
                    checker = self._start_locked()
                    break
                self._cond.wait()
            return checker

    def _top_up(self) -> None:
        with self._cond:
            self._top_up_locked()

    def _top_up_locked(self) -> None:
        while not self._closed and len(self._idle) < SPARES and self._count < self._max:
            self._idle.append(self._start_locked())

    def _release(self, checker: _Checker, healthy: bool) -> None:
        with self._cond:
            keep = healthy and not self._closed
            if keep:
                self._idle.append(checker)
            else:
                self._count -= 1
                self._top_up_locked()
            self._cond.notify()
        if not keep:
            checker.kill()

    def _start_locked(self) -> _Checker:
        checker = _Checker(self.memory_limit)
        self._count += 1
        return checker


_pool: CheckerPool | None = None
_pool_lock = threading.Lock()


def shared_pool() -> CheckerPool:
    """The process-wide checker pool, created on first use."""
    global _pool
    with _pool_lock:
        if _pool is None:
            checkers = max(4, os.cpu_count() or 1) + SPARES
            memory = max(MIN_CHECKER_MEMORY_BYTES, TOTAL_MEMORY_BYTES // checkers)
            _pool = CheckerPool(max_checkers=checkers, memory_limit=memory)
        return _pool


def shutdown() -> None:
    """Stop every idle checker process (they restart on the next comparison)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def _forget_pool_after_fork() -> None:
    # A forked child must not talk to its parent's checkers (or wait on locks another
    # thread held at fork time): it starts its own pool when it needs one.
    global _pool, _pool_lock
    _pool = None
    _pool_lock = threading.Lock()


atexit.register(shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)
