"""Output folders that are safe to write: one writer at a time, and never over a user's own files.

    with claim(out_dir, kind="audit", force=args.force):   # OutputBusyError / OutputNotOursError
        ... write the report ...

- **A lock per folder.**  `claim` creates `out_dir/.vcheck.lock` atomically (O_CREAT | O_EXCL) holding
  the owner's pid, host, command and start time, and removes it on the way out.  A second writer is
  refused (`OutputBusyError`, the CLI's exit 2) with the owner named.  A lock whose process is gone
  (same host, `os.kill(pid, 0)` says no such process; or a lock file that cannot be read) is stale: it
  is taken over, and said so in the log.  A lock from another host is never judged stale (its pid
  means nothing here): remove it by hand if that audit is gone.
- **vcheck's folders only.**  A folder that exists and holds files is written to only when vcheck
  wrote it before: it has the marker `.vcheck-output` (written by `claim`), or looks like a vcheck
  report of that kind from before the marker (an audit's findings.json or checkpoint.jsonl; the
  reference reports' index.md and example pages).  Anything else is refused (`OutputNotOursError`)
  unless `force`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from vcheck.core.errors import VcheckError

log = logging.getLogger(__name__)

#: the lock file inside a folder being written
LOCK = ".vcheck.lock"
#: the marker file saying vcheck wrote this folder (and what: "audit" or "reference")
MARKER = ".vcheck-output"
#: per kind, a file a vcheck report had before the marker existed, and text that file starts with
KNOWN = {
    "audit": (("findings.json", "{"), ("checkpoint.jsonl", '{"vcheck_checkpoint"')),
    "reference": (("index.md", "# vcheck reference reports"),),
}
#: files that never make a folder someone's (editor and OS droppings)
IGNORED = {".DS_Store", "Thumbs.db", ".gitkeep", ".gitignore"}


class OutputError(VcheckError):
    """An output folder vcheck must not write to."""


class OutputBusyError(OutputError):
    """Another running vcheck holds the output folder."""


class OutputNotOursError(OutputError):
    """The output folder holds files vcheck did not write (pass --force to write there anyway)."""


def _owner_text(info: dict[str, Any]) -> str:
    started = info.get("started")
    when = (
        time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(started))
        if isinstance(started, int | float)
        else "?"
    )
    return (
        f"pid {info.get('pid', '?')} on {info.get('host', '?')}, `{info.get('command', '?')}`, since {when}"
    )


def read_lock(out_dir: Path) -> dict[str, Any] | None:
    """The lock's owner (pid, host, command, started), {} for an unreadable lock, None when unlocked."""
    path = Path(out_dir) / LOCK
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError:
        return {}
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this machine."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    except OSError:
        return False
    return True


def is_stale(info: dict[str, Any]) -> bool:
    """A lock whose owner is gone: unreadable, or on this host with no such process."""
    if not info:
        return True
    if info.get("host") != socket.gethostname():
        return False
    pid = info.get("pid")
    return not isinstance(pid, int) or not pid_alive(pid)


def foreign_files(out_dir: Path, kind: str) -> list[str]:
    """Files in an existing folder that make it not vcheck's (empty when vcheck may write there)."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    present = sorted(p.name for p in out_dir.iterdir() if p.name not in IGNORED and p.name != LOCK)
    if not present or MARKER in present:
        return []
    if any(_starts_with(out_dir / name, head) for name, head in KNOWN.get(kind, ())):
        return []
    return present


def _starts_with(path: Path, head: str) -> bool:
    """Whether the file exists and its text starts with `head` (a report vcheck wrote before markers)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(len(head)) == head
    except (OSError, UnicodeDecodeError):
        return False


def check_writable(out_dir: Path, kind: str, force: bool = False) -> None:
    """Refuse a file where the folder should be, and a folder of someone else's files unless `force`."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputNotOursError(f"--out {out_dir} is a file, not a folder")
    foreign = foreign_files(out_dir, kind)
    if foreign and not force:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise OutputNotOursError(
            f"--out {out_dir} is not empty and not a vcheck {kind} output (it holds {shown}); choose "
            "another folder, or pass --force to write there anyway (vcheck's files would overwrite any "
            "of the same name)"
        )


def _lock_body(kind: str) -> str:
    return json.dumps(
        {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "kind": kind,
            "command": " ".join(["vcheck", *sys.argv[1:]]) if sys.argv else "vcheck",
            "started": time.time(),
        }
    )


def acquire(out_dir: Path, kind: str) -> Path:
    """Create the lock file (atomically), taking over a stale one; OutputBusyError when it is held."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LOCK
    for _ in range(3):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            info = read_lock(out_dir)
            if info is None:  # released meanwhile: try again
                continue
            if not is_stale(info):
                raise OutputBusyError(
                    f"--out {out_dir} is in use by another running vcheck ({_owner_text(info)}); wait for "
                    f"it to finish or choose another folder (if that process is gone, remove {path})"
                ) from None
            log.warning("taking over a stale lock in %s (%s is gone)", out_dir, _owner_text(info))
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_lock_body(kind))
        return path
    raise OutputBusyError(f"--out {out_dir}: cannot take its lock {path} (other processes keep taking it)")


def release(lock: Path) -> None:
    """Remove the lock if it is still ours."""
    info = read_lock(lock.parent)
    if info is not None and info.get("pid") == os.getpid() and info.get("host") == socket.gethostname():
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()


@contextlib.contextmanager
def claim(out_dir: Path, kind: str, force: bool = False) -> Iterator[Path]:
    """Hold `out_dir` for one writer: refuse someone else's folder (unless `force`) and a busy one,
    lock it, mark it as vcheck's, and unlock it at the end (even on an error or Ctrl-C)."""
    out_dir = Path(out_dir)
    check_writable(out_dir, kind, force)
    lock = acquire(out_dir, kind)
    try:
        marker = out_dir / MARKER
        if not marker.exists():
            marker.write_text(json.dumps({"vcheck": kind}) + "\n", encoding="utf-8")
        log.debug("writing into %s (held by %s)", out_dir, lock)
        yield out_dir
    finally:
        release(lock)
