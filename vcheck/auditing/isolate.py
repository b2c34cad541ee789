"""Run an implementation where it can be stopped: in a forked child process, with a time limit.

`call(fn, args, timeout)` hands the call to fn's own forked child process (`Isolated`, started on the
first call and kept), which calls `fn(*args)` with Python's warnings recorded and sends back (pickled,
through a pipe) its answer and warnings, or the exception it raised.  The parent waits at most `timeout`
seconds: a child still running then is killed (`Timeout`); a child that dies without an answer (a
segfault, an abort in compiled code, os._exit) is `Died`; an exception in the child is
re-raised in the parent as `Raised` (NotImplementedError stays NotImplementedError, so a model that
cannot be expressed is still a model finding).  Nothing the implementation does can hang or kill the
audit.  Without os.fork (Windows) or with timeout None, `fn` runs in this process.
"""

from __future__ import annotations

import contextlib
import faulthandler
import multiprocessing
import os
import signal
import warnings
from collections.abc import Callable
from typing import Any

#: set in the child to the pid of the process that forked it (the audit's process or sweep worker)
PARENT_ENV = "VCHECK_ISOLATE_PARENT"


class Timeout(Exception):
    """The implementation did not answer within the time limit (its process was killed)."""


class Died(Exception):
    """The implementation's process ended without an answer (a crash, an abort, an exit)."""


class Raised(Exception):
    """The implementation raised: `type_name` and `message` of its exception."""

    def __init__(self, type_name: str, message: str) -> None:
        super().__init__(f"{type_name}: {message}")
        self.type_name, self.message = type_name, message


class Isolated:
    """`fn` served by a child process of its own (forked on the first call, so it inherits what this
    process has loaded, and kept between calls, so an implementation's own start-up, e.g. R loading
    glmmTMB, is paid once).  A call that takes longer than `timeout` kills the child (`Timeout`); the
    next call starts a fresh one."""

    def __init__(self, fn: Callable[..., Any], timeout: float) -> None:
        self.fn, self.timeout = fn, float(timeout)
        self._pid: int | None = None
        self._conn: Any = None

    def _start(self) -> None:
        # os.fork, not multiprocessing.Process: sweep workers are daemonic processes, which
        # multiprocessing does not let have children
        parent, child = multiprocessing.Pipe()
        pid = os.fork()
        if pid == 0:
            parent.close()
            faulthandler.disable()  # a crash of the implementation is reported by the parent, once
            os.environ[PARENT_ENV] = str(os.getppid())  # the process the audit runs in (a sweep worker)
            code = 0
            try:
                _serve(child, self.fn)
            except BaseException:
                code = 70
            os._exit(code)
        child.close()
        self._pid, self._conn = pid, parent

    def _alive(self) -> bool:
        if self._pid is None:
            return False
        try:
            done, _ = os.waitpid(self._pid, os.WNOHANG)
        except ChildProcessError:
            return False
        return done == 0

    def close(self) -> int | None:
        """Stop the child (a new one starts on the next call); its exit code when known."""
        code = None
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        if self._pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(self._pid, 0)
                code = os.waitstatus_to_exitcode(status)
        self._pid = self._conn = None
        return code

    def _died(self) -> Died:
        """The child ended without an answer: how (its signal or exit status)."""
        code = None
        if self._pid is not None:
            with contextlib.suppress(ChildProcessError):
                _, status = os.waitpid(self._pid, 0)
                code = os.waitstatus_to_exitcode(status)
            self._pid = None
        self.close()
        how = (
            f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit status {code}"
        )
        return Died(f"its process died without an answer ({how})")

    def __call__(self, *args: Any) -> tuple[Any, list[str]]:
        if not self._alive():
            self.close()
            self._start()
        try:
            self._conn.send(args)
            ready = self._conn.poll(self.timeout)
            if not ready:
                self.close()
                raise Timeout(f"no answer within {self.timeout:g} s (its process was stopped)")
            payload = self._conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError, OSError):
            raise self._died() from None
        if payload[0] == "ok":
            return payload[1], payload[2]
        if payload[0] == "not implemented":
            raise NotImplementedError(payload[1])
        raise Raised(payload[1], payload[2])


def _serve(conn: Any, fn: Callable[..., Any]) -> None:
    """The child: answer calls until the pipe closes."""
    while True:
        try:
            args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            payload: tuple[Any, ...] = ("ok", *_here(fn, args))
        except NotImplementedError as exc:
            payload = ("not implemented", str(exc))
        except BaseException as exc:
            payload = ("raised", type(exc).__name__, " ".join(str(exc).split()))
        try:
            conn.send(payload)
        except Exception as exc:  # an answer that cannot leave the process
            conn.send(("raised", type(exc).__name__, f"its answer cannot be sent back: {exc}"))


#: processes kept for implementations called recently (an implementation, and one bound to a case's
#: lmer arguments, which is a new callable per such case)
KEEP = 2
_CACHE: dict[tuple[int, float], Isolated] = {}


def call(fn: Callable[..., Any], args: tuple[Any, ...], timeout: float | None) -> tuple[Any, list[str]]:
    """(fn(*args), the warnings it issued): in `fn`'s own child process stopped after `timeout` seconds
    (one child per fn and timeout, kept between calls), or here when timeout is None or there is no
    fork."""
    if timeout is None or not hasattr(os, "fork"):
        return _here(fn, args)
    key = (id(fn), float(timeout))
    runner = _CACHE.get(key)
    if runner is not None and runner.fn is not fn:  # a new callable that reuses a dead one's id
        _CACHE.pop(key).close()
        runner = None
    if runner is None:
        while len(_CACHE) >= KEEP:  # the least recently used implementation's process stops
            _CACHE.pop(next(iter(_CACHE))).close()
        runner = Isolated(fn, timeout)
    _CACHE.pop(key, None)
    _CACHE[key] = runner  # most recently used last
    return runner(*args)


def _here(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fn(*args)
    return out, list(dict.fromkeys(str(w.message) for w in caught))
