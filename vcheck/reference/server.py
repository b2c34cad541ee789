"""lme4 in processes of its own, working ahead of the audit: fits and deviance evaluations on request.

An audit spends most of its time in two places: lme4 fitting the case in R, and the implementation under
test fitting it in Python.  In one process these run one after the other; with lme4 in processes of its
own they overlap on the machine's cores.  The audit asks a server for lme4's fit of its next cases before
it runs the implementation on the current one, so by the time it compares a case, lme4's answer is
usually waiting.

    with ReferenceServer() as lme4:
        lme4.prefetch(key, formula, data, REML)        # returns at once; lme4 starts fitting
        fit = lme4.fit(key, REML)                      # vcheck.reference.lmer's LmerFit
        d = lme4.criterion(key, theta, REML)           # lme4's devfun at theta (vcheck.reference.devfun)

Every answer is what `vcheck.reference` gives in the calling process (the same R functions run in the
server), up to lme4's own variation between processes: Eigen's SIMD sums follow memory alignment, so two
R processes differ in the last bits, and on a flat optimum BOBYQA stops up to ~1e-5 apart in theta with
the same criterion (a tie for `compare`).  The records pickle across.  Requests are served first come,
first served.  An R error comes back as the same exception (`RError` with R's message).  If the process
dies (R crashing, the OOM killer), the request it was serving fails with `ReferenceServerDied` naming
the case, a new process is started, and every other request is sent to it again.  The server holds the
data of at most `KEEP` cases (`forget` drops one; a request for a case it has evicted makes the caller
send the data again).  One thread only: the caller's requests and their answers share one socket.

`shared(n)` gives the calling process's first n servers, started on first use and stopped at exit, so
many audits in one session pay for R's start-up (about 2 s of CPU each, mostly loading Matrix and lme4)
once.
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from vcheck.core.errors import RError, RNotAvailableError, VcheckError

if TYPE_CHECKING:
    from vcheck.core.record import LmerFit

#: cases whose data (and lme4 deviance functions) the server keeps
KEEP = 8
#: the server's environment: one BLAS thread (for R and numpy), so it and the caller share 2 cores fairly
SERVER_ENVIRON = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: seconds the server gets to exit when closed before it is terminated
EXIT_SECONDS = 5.0


class UnknownCaseError(VcheckError, KeyError):
    """A case key the server was not given (`prefetch` it first)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class ReferenceServerDied(VcheckError, RuntimeError):
    """The lme4 process died while serving a request (R crashed, or it was killed)."""


@dataclass
class _Request:
    rid: int
    key: str
    message: tuple[Any, ...]


class ReferenceServer:
    """lme4 (`vcheck.reference`) served by a process of its own; see the module docstring.

    `seconds` is the CPU time lme4's process spent on this server's answers (R's included; with
    prefetching most of it overlaps the caller's work, and CPU time stays the work done when processes
    share the cores); `waited` is the wall time the caller spent waiting for answers.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._ready = False
        self._rids = itertools.count()
        self._pending: OrderedDict[int, _Request] = OrderedDict()  # sent, not answered, in order
        self._answers: dict[int, tuple[str, Any, float]] = {}  # rid -> (status, value, seconds)
        self._fits: dict[tuple[str, bool, Any], int] = {}  # (key, REML, extras) -> rid
        self._data: OrderedDict[str, tuple[str, pd.DataFrame]] = OrderedDict()  # key -> (formula, data)
        self._shipped: set[str] = set()  # keys whose data the current process holds
        self.seconds = 0.0
        self.waited = 0.0
        self.startup_seconds = 0.0  # from start to R and lme4 ready, measured here
        self.startup_waited = 0.0  # of that, the time a caller spent waiting for it
        self._wait_started: float | None = None
        self.restarts = 0
        self._started = 0.0
        self._seconds_by_key: dict[str, float] = {}
        self._failed = ""  # why R could not start in the server ("" while it can)

    # --- life cycle --------------------------------------------------------------------------------------
    def start(self) -> ReferenceServer:
        """Start the process (it starts R and loads lme4 while the caller goes on).

        A fresh interpreter (`python -m vcheck.reference.server`), not a multiprocessing child: spawn
        would re-import the caller's main script (a user's script without a __main__ guard would run
        again), and fork is unsafe once R runs in the caller.  It talks over a socket pair, in its own
        process group, so a Ctrl-C in the terminal reaches only the caller, which stops it."""
        if self._process is not None and self._process.poll() is None:
            return self
        parent, child = socket.socketpair()
        env = {**os.environ, **SERVER_ENVIRON}
        t = time.perf_counter()
        try:
            process = subprocess.Popen(
                [sys.executable, "-m", "vcheck.reference.server", str(child.fileno())],
                pass_fds=(child.fileno(),),
                env=env,
                stdin=subprocess.DEVNULL,
                process_group=0,
            )
        finally:
            child.close()
        self._process, self._conn, self._ready = process, Connection(parent.detach()), False
        self._started = t
        self._shipped = set()
        return self

    def close(self) -> None:
        """Stop the process (politely, then by force)."""
        process, conn = self._process, self._conn
        self._process, self._conn = None, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.send(None)
            conn.close()
        if process is not None:
            try:
                process.wait(EXIT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(EXIT_SECONDS)
        self._pending.clear()
        self._fits.clear()

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def seconds_of(self, key: str) -> float:
        """lme4's CPU time so far on the case under `key` (measured in the server)."""
        return self._seconds_by_key.get(key, 0.0)

    # --- requests ----------------------------------------------------------------------------------------
    def prefetch(self, key: str, formula: str, data: pd.DataFrame, REML: bool, extras: Any = "modes") -> None:
        """Ask for lme4's fit of (formula, data, REML) under `key`, without waiting for it."""
        self._remember(key, formula, data)
        self._fit_rid(key, REML, extras)

    def fit(self, key: str, REML: bool, extras: Any = "modes") -> LmerFit:
        """lme4's fit of the case registered under `key` (`prefetch` registers it) with this REML flag:
        `vcheck.reference.lmer`'s record, built here from the values the server sends."""
        from vcheck import reference

        value = self._wait(self._fit_rid(key, REML, extras))
        formula, data = self._data[key]
        return reference.fit_from_dict(value, source="lme4", formula=formula, index=data.index)

    def criterion(self, key: str, theta: np.ndarray, REML: bool) -> float:
        """lme4's criterion at theta (its devfun, made once per case and REML flag in the server)."""
        theta = np.array(theta, dtype=float).ravel()
        return float(self._wait(self._send(key, ("criterion", key, bool(REML), theta))))

    def forget(self, key: str) -> float:
        """Drop the caller's copy of a case's data and its answers (the server evicts on its own);
        lme4's time on that case so far."""
        self._data.pop(key, None)
        if key in self._shipped and self._conn is not None:
            self._shipped.discard(key)
            with contextlib.suppress(BrokenPipeError, EOFError, OSError):
                self._conn.send(("drop", key))
        for k in [k for k in self._fits if k[0] == key]:
            rid = self._fits.pop(k)
            self._answers.pop(rid, None)
        return self._seconds_by_key.pop(key, 0.0)

    # --- plumbing ----------------------------------------------------------------------------------------
    def _remember(self, key: str, formula: str, data: pd.DataFrame) -> None:
        if key in self._data:
            self._data.move_to_end(key)
        else:
            self._data[key] = (formula, data)

    def _fit_rid(self, key: str, REML: bool, extras: Any) -> int:
        k = (key, bool(REML), extras)
        if k not in self._fits:
            self._fits[k] = self._send(key, ("fit", key, bool(REML), extras))
        return self._fits[k]

    def _send(self, key: str, message: tuple[Any, ...]) -> int:
        if key not in self._data:
            raise UnknownCaseError(f"no case registered under {key!r}: prefetch it first")
        rid = next(self._rids)
        if self._failed:
            self._answers[rid] = ("error", RNotAvailableError(self._failed), 0.0)
            return rid
        request = _Request(rid, key, message)
        self._pending[rid] = request
        self._transmit(request)
        return rid

    def _transmit(self, request: _Request) -> None:
        if self._process is None:
            self.start()
        assert self._conn is not None
        try:
            if request.key not in self._shipped:
                formula, data = self._data[request.key]
                self._conn.send(("data", request.key, formula, data))
                self._shipped.add(request.key)
            self._conn.send((request.message[0], request.rid, *request.message[1:]))
        except (BrokenPipeError, EOFError, OSError):
            pass  # the process is gone: _wait finds out and sends the request again

    def _wait(self, rid: int) -> Any:
        t = time.perf_counter()
        self._wait_started = t
        try:
            while rid not in self._answers:
                self._receive_one()
        finally:
            self._wait_started = None
            self.waited += time.perf_counter() - t
        status, value, _ = self._answers[rid]
        if rid not in self._fits.values():
            del self._answers[rid]  # fits stay cached (until forget); other answers are used once
        if status == "error":
            raise value
        return value

    def _receive_one(self) -> None:
        assert self._conn is not None
        try:
            message = self._conn.recv()
        except (EOFError, OSError):
            self._died()
            return
        if message[0] == "failed":  # R cannot start there: every request fails with that reason
            self._fail(str(message[1]))
            return
        if message[0] == "ready":
            now = time.perf_counter()
            self._ready = True
            self.startup_seconds = now - self._started
            if self._wait_started is not None:
                self.startup_waited += now - max(self._wait_started, self._started)
            return
        status, rid, value, seconds = message
        if status == "unknown":  # the server had evicted the case's data: send it again, then the request
            request = self._pending.get(rid)
            if request is not None and request.key in self._data:
                self._shipped.discard(request.key)
                self._pending.move_to_end(rid)
                self._transmit(request)
            else:
                self._pending.pop(rid, None)
            return
        self.seconds += seconds
        request = self._pending.pop(rid, None)
        if request is None or request.key not in self._data:
            return  # the answer to a case already forgotten (a prefetch nobody waited for)
        self._seconds_by_key[request.key] = self._seconds_by_key.get(request.key, 0.0) + seconds
        self._answers[rid] = (status, value, seconds)

    def _fail(self, reason: str) -> None:
        """R cannot run in the server: every pending and later request fails with `reason`."""
        self._failed = reason
        for rid in self._pending:
            self._answers[rid] = ("error", RNotAvailableError(reason), 0.0)
        self._pending.clear()

    def _died(self) -> None:
        """The process is gone: the request it was serving fails, the others go to a new process."""
        process = self._process
        code = None
        if process is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(1.0)
            code = process.poll()
        self._process, self._conn = None, None
        if not self._ready:  # it never started: another process would not either
            self._fail(f"lme4's process exited while starting R ({exit_text(code)})")
            return
        if self._pending:
            rid, request = next(iter(self._pending.items()))
            del self._pending[rid]
            formula = self._data.get(request.key, ("?", None))[0]
            self._answers[rid] = (
                "error",
                ReferenceServerDied(
                    f"lme4's process died ({exit_text(code)}) while serving {request.message[0]} "
                    f"for {formula}"
                ),
                0.0,
            )
        self.restarts += 1
        self.start()
        for rid, request in list(self._pending.items()):
            if request.key in self._data:
                self._transmit(request)
            else:
                del self._pending[rid]


# --- the server process --------------------------------------------------------------------------------
def _serve(conn: Connection) -> None:
    """The server: start R, then answer requests in order until told to stop (None) or orphaned.

    A reader thread takes every message off the socket as it arrives (R stays on this, the main, thread):
    without it, the caller blocked sending the next cases' data while this process blocks sending a
    large answer that the caller is not reading yet would wait for each other forever."""
    warnings.simplefilter("ignore")
    from vcheck import reference
    from vcheck.reference import rbridge

    try:
        rbridge.session()
    except Exception as exc:  # no R, no lme4, no rpy2: every request would fail the same way
        conn.send(("failed", f"{type(exc).__name__}: {exc}"))
        return
    with contextlib.suppress(Exception):
        reference.versions()
    conn.send(("ready", os.getpid()))
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
    threading.Thread(target=_read_into, args=(conn, inbox), daemon=True, name="vcheck-lme4-reader").start()
    cases: OrderedDict[str, tuple[str, pd.DataFrame]] = OrderedDict()
    devfuns: dict[tuple[str, bool], Callable[[np.ndarray], float]] = {}
    while True:
        message = inbox.get()
        if message is None:  # told to stop, or the caller is gone
            return
        op = message[0]
        if op in ("data", "drop"):
            key = message[1]
            cases.pop(key, None)
            for REML in (True, False):
                devfuns.pop((key, REML), None)
            if op == "data":
                cases[key] = (message[2], message[3])
                while len(cases) > KEEP:
                    old, _ = cases.popitem(last=False)
                    for REML in (True, False):
                        devfuns.pop((old, REML), None)
            continue
        rid, key = message[1], message[2]
        if key not in cases:  # evicted (more than KEEP cases in flight): the caller sends it again
            if not _reply(conn, ("unknown", rid, None, 0.0)):
                return
            continue
        t = time.process_time()
        try:
            formula, data = cases[key]
            if op == "fit":
                REML, extras = message[3], message[4]
                value: Any = reference.lmer_value(formula, data, REML, extras=extras)
            elif op == "criterion":
                REML, theta = message[3], message[4]
                if (key, REML) not in devfuns:
                    devfuns[(key, REML)] = reference.devfun(formula, data, REML)
                value = float(devfuns[(key, REML)](theta))
            else:
                raise ValueError(f"unknown request {op!r}")
            reply: tuple[Any, ...] = ("ok", rid, value, time.process_time() - t)
        except Exception as exc:
            reply = ("error", rid, exc, time.process_time() - t)
        if not _reply(conn, reply):
            return


def _read_into(conn: Connection, inbox: queue.SimpleQueue[Any]) -> None:
    """The server's reader thread: messages into `inbox`, then None when the caller stops or is gone."""
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            message = None
        inbox.put(message)
        if message is None:
            return


def _reply(conn: Connection, reply: tuple[Any, ...]) -> bool:
    """Send an answer; False when the caller is gone."""
    try:
        conn.send(reply)
    except (BrokenPipeError, EOFError, OSError):
        return False
    except Exception as exc:  # an answer that does not pickle: say so instead of hanging the caller
        try:
            conn.send(("error", reply[1], RError(f"cannot send lme4's answer back: {exc}"), 0.0))
        except (BrokenPipeError, EOFError, OSError):
            return False
    return True


# --- servers shared by the audits of one process --------------------------------------------------------
_SHARED: list[ReferenceServer] = []


def exit_text(code: int | None) -> str:
    """How a child process ended, in words: its exit code, or the signal that killed it."""
    if code is None:
        return "exit status unknown"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


def shared(n: int = 1) -> list[ReferenceServer]:
    """This process's first `n` servers, started on first use and stopped when the process exits."""
    if not _SHARED:
        atexit.register(_close_shared)
    while len(_SHARED) < n:
        _SHARED.append(ReferenceServer())
    return [server.start() for server in _SHARED[:n]]


def _close_shared() -> None:
    while _SHARED:
        _SHARED.pop().close()


@contextlib.contextmanager
def serving() -> Iterator[ReferenceServer]:
    """A private server for the duration of a block."""
    server = ReferenceServer().start()
    try:
        yield server
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m vcheck.reference.server FD`: serve on the socket FD (started by `ReferenceServer`)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print("usage: python -m vcheck.reference.server FD (started by ReferenceServer)", file=sys.stderr)
        return 2
    _serve(Connection(int(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
