"""Keep freed tensor memory in the process instead of handing it back to the OS.

A CPU tensor of more than 128 KB is, by glibc's default, its own `mmap`:
freed, its pages go back to the OS, and the next tensor of that size faults
every page in again (about half a microsecond per 4 KB page). A vectorized
step or evaluation allocates and frees tensors of megabytes many times a
second: the disk net's evaluation over 50 replicas spent more time faulting
pages than computing (a tanh through the sigmoid on 50 x 500 x 25 floats:
2.0 ms with the default, 0.17 ms without the faults; docs/performance.md).
PyTorch's CPU tuning guide gives the same advice (a caching allocator).

`keep_freed_memory()` raises glibc's thresholds (`mallopt`): allocations up
to MMAP_THRESHOLD come from the heap, and the heap is trimmed only when more
than TRIM_THRESHOLD is free at its top. Freed memory then stays mapped for
the next tensor; the peak (what the memory guard budgets) does not change.
Elsewhere than glibc it does nothing. It changes no number, only page faults.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 32 * 1024**2  # glibc's own ceiling for its dynamic threshold
TRIM_THRESHOLD = 512 * 1024**2

_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Set the thresholds once per process; whether they are set (False off glibc)."""
    global _applied
    if _applied is None:
        _applied = False
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                mallopt = libc.mallopt
            except (OSError, AttributeError):  # another C library (musl has no mallopt)
                return False
            _applied = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _applied
