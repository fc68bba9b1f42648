"""Keep the memory of freed tensors for reuse (glibc's malloc), for long training runs on large tensors."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys
from collections.abc import Iterator

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# glibc's defaults (malloc/malloc.c: DEFAULT_TRIM_THRESHOLD, DEFAULT_MMAP_MAX), restored after a scoped use
_DEFAULT_TRIM_THRESHOLD = 128 * 1024
_DEFAULT_MMAP_MAX = 65536
_applied = False


def keep_freed_memory() -> bool:
    """Have glibc's malloc serve large blocks from its heap and keep freed memory there; True when it applied.

    By default glibc maps every block above 32 MiB fresh from the kernel and unmaps it when freed, so a
    training step that allocates tensors of hundreds of MB page-faults every 4 KiB page of them again, each
    step: on ML-25M-sized graphs that made steps several times slower on a busy 2-core machine. With
    ``mallopt(M_MMAP_MAX, 0)`` and a 2 GiB ``M_TRIM_THRESHOLD`` freed blocks are reused without faults; the
    cost is that the resident set no longer shrinks below its peak while the process lives (peak RSS, the
    figure that matters for fitting in memory, is unchanged). A no-op (False) off Linux or without glibc.
    """
    global _applied
    if _applied:
        return True
    libc = _glibc()
    if libc is None:
        return False
    _applied = bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied


@contextlib.contextmanager
def freed_memory_kept() -> Iterator[None]:
    """:func:`keep_freed_memory` for the duration of a block only, for work that allocates the same buffers
    again and again (e.g. one fit).

    On exit glibc's default limits come back and the heap is trimmed, so the process's resident set shrinks
    again and later per-cell peak-memory readings do not inherit the block's memory. Inside a process where
    :func:`keep_freed_memory` already applied for good, this changes nothing.
    """
    libc = None if _applied else _glibc()
    if libc is None:
        yield
        return
    libc.mallopt(_M_MMAP_MAX, 0)
    libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1)
    try:
        yield
    finally:
        if not _applied:  # the block itself may have asked to keep freed memory for good
            libc.mallopt(_M_MMAP_MAX, _DEFAULT_MMAP_MAX)
            libc.mallopt(_M_TRIM_THRESHOLD, _DEFAULT_TRIM_THRESHOLD)
            libc.malloc_trim(0)


def _glibc() -> ctypes.CDLL | None:
    """The C library when it is glibc on Linux (with ``mallopt`` and ``malloc_trim``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt, libc.malloc_trim  # noqa: B018  (musl and others lack one or both)
    except (OSError, AttributeError):
        return None
    return libc
