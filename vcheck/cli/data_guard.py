"""A data file looked at before pandas reads it: refuse what is not a text table, or would not fit in memory.

    budget = the memory this process can still take: the least of the kernel's MemAvailable, the cgroup's
             memory.max - memory.current and the address-space limit (`ulimit -v`) less what is mapped
    ratio  = bytes of parsed columns per byte of text, measured on the first HEAD_BYTES of the input
    cost   = size of the input x max(ratio, 1) x PARSE_OVERHEAD

A regular file is refused when cost > budget before pandas allocates anything; a stream (stdin, a pipe,
a device such as /dev/zero) has no size, so it is read through a counter that stops it at
budget / (max(ratio, 1) x PARSE_OVERHEAD) bytes.  A NUL byte in the first HEAD_BYTES means binary data,
not a CSV table (text CSV never holds one).  Compressed files (.gz, .zip, ...) are left to pandas after
the size check: their text can only be seen by decompressing them.
"""

from __future__ import annotations

import io
import math
import os
import stat
from pathlib import Path
from typing import IO, Any

from vcheck.core.errors import DataError

#: bytes looked at before reading: for NUL bytes and the parsed-to-text ratio
HEAD_BYTES = 1 << 16
#: pandas' C tokenizer holds the text's tokens and the parsed columns at once, and the fit needs more
PARSE_OVERHEAD = 2.0
_COMPRESSED = (".gz", ".bz2", ".zip", ".xz", ".zst", ".tar")


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text(encoding="ascii").splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _cgroup_available() -> int | None:
    root = Path("/sys/fs/cgroup")
    try:
        limit = (root / "memory.max").read_text(encoding="ascii").strip()
        if limit == "max":
            return None
        used = int((root / "memory.current").read_text(encoding="ascii").strip())
        return max(int(limit) - used, 0)
    except (OSError, ValueError):
        return None


def _address_space_available() -> int | None:
    try:
        import resource  # POSIX only
    except ImportError:
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmSize:"):
                return max(soft - int(line.split()[1]) * 1024, 0)
    except (OSError, ValueError, IndexError):
        pass
    return int(soft)


def memory_available() -> int | None:
    """Bytes this process can still allocate (the least of the limits it can see); None when unknown."""
    known = [
        m for m in (_meminfo_available(), _cgroup_available(), _address_space_available()) if m is not None
    ]
    return min(known) if known else None


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def parsed_ratio(head: bytes) -> float:
    """Bytes of parsed columns per byte of text on the complete lines of `head` (1 when it cannot tell)."""
    import pandas as pd

    end = head.rfind(b"\n")
    if end <= 0:
        return 1.0
    try:
        sample = pd.read_csv(io.BytesIO(head[: end + 1]))
    except Exception:
        return 1.0
    used = float(sample.memory_usage(index=True, deep=True).sum())
    return max(used / (end + 1), 1.0)


class _Capped(io.RawIOBase):
    """`head` then the rest of `stream`, stopped with DataError past `cap` bytes."""

    def __init__(self, head: bytes, stream: IO[bytes], cap: float, what: str, budget: int) -> None:
        self.head, self.stream, self.cap, self.what, self.budget = head, stream, cap, what, budget
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if self.head:
            k = min(len(view), len(self.head))
            view[:k] = self.head[:k]
            self.head = self.head[k:]
        else:
            k = self.stream.readinto(view) or 0  # type: ignore[attr-defined]
        self.count += k
        if self.count > self.cap:
            raise DataError(
                f"{self.what} is too large for the memory available: more than {_gb(self.cap)} of text "
                f"read, {_gb(self.budget)} available"
            )
        return k


def _read_head(stream: IO[bytes]) -> bytes:
    chunks, size = [], 0
    while size < HEAD_BYTES:
        chunk = stream.read(HEAD_BYTES - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def guarded_source(path: str, stream: IO[bytes], what: str, budget: int | None = None) -> Any:
    """What pandas should read for `stream` (opened from `path`, "-" for stdin): a reader of its bytes that
    stops a stream too large for `budget` (default `memory_available()`), or the path itself for a
    compressed file.  Raises DataError for binary data or a regular file too large for memory."""
    budget = memory_available() if budget is None else budget
    try:
        info = os.fstat(stream.fileno())
        size = info.st_size if stat.S_ISREG(info.st_mode) else None
    except (OSError, AttributeError, io.UnsupportedOperation):
        size = None
    if path.lower().endswith(_COMPRESSED) and size is not None:
        if budget is not None and size * PARSE_OVERHEAD > budget:
            raise DataError(
                f"{what} is too large for the memory available: {_gb(size)} compressed, "
                f"{_gb(budget)} available"
            )
        return path
    if budget is not None and size is not None and size * PARSE_OVERHEAD > budget:
        raise DataError(
            f"{what} is too large for the memory available: {_gb(size)} of text, about "
            f"{_gb(size * PARSE_OVERHEAD)} once read, {_gb(budget)} available"
        )
    head = _read_head(stream)
    if b"\0" in head:
        raise DataError(
            f"{what} is not a CSV table: it holds binary data (a NUL byte in its first 64 KiB; a CSV is "
            "UTF-8 text)"
        )
    cost = parsed_ratio(head) * PARSE_OVERHEAD
    if budget is not None and size is not None and size * cost > budget:
        raise DataError(
            f"{what} is too large for the memory available: {_gb(size)} of text, about "
            f"{_gb(size * cost)} once read (measured on its first rows), {_gb(budget)} available"
        )
    cap = math.inf if budget is None else budget / cost
    return io.BufferedReader(_Capped(head, stream, cap, what, budget or 0), buffer_size=HEAD_BYTES)
