"""Keeping freed memory for the length of a block (``gnnrec.malloc.freed_memory_kept``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy
import pytest

from gnnrec.malloc import freed_memory_kept

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings: Linux only")


def resident_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def test_freed_memory_stays_inside_the_block_and_is_returned_after_it():
    with freed_memory_kept():
        before = resident_mib()
        block = numpy.ones(64 * 2**20 // 8)  # 64 MiB, touched
        del block
        inside = resident_mib()
        assert inside >= before + 48  # kept for reuse, not handed back to the kernel
    assert resident_mib() <= inside - 48  # trimmed on exit
    block = numpy.ones(64 * 2**20 // 8)
    touched = resident_mib()
    del block
    assert resident_mib() <= touched - 48  # glibc's default behaviour again: large blocks are unmapped when freed
