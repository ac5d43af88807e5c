"""Keep freed CPU memory in the process, so that each batch's large tensors reuse the last batch's pages.

glibc serves an allocation above its mmap threshold with a fresh mapping and unmaps it when it is freed. The
threshold rises with the blocks freed, but never above 32 MiB, and a layer's (T, batch, neurons) float tensor
is larger than that at T = 1000 or batch 128 on the paper's network (300 x 128 x 500 x 4 bytes = 77 MB). Each
such tensor then costs a page fault and a zeroed page per 4 KiB on every batch. `keep_freed_memory` turns off
mmap for allocations and lets the heap keep up to ``KEEP_BYTES`` of freed memory, so the pages stay mapped and
are reused. The price: the process keeps its peak memory instead of handing it back between batches.

Measured on 2 cores, paper network (one process per setting, `rouser bench`'s training step): batch 32, T = 300:
595 -> 642 samples/s, peak RSS 620 -> 667 MB; batch 128: 292 -> 629 samples/s, 866 -> 1,093 MB; T = 1000:
107 -> 325 samples/s, 726 -> 1,307 MB. `rouser train`, `rouser reproduce` and the bench's speed processes call it;
the dashboard server does not (it hands memory back when sessions close). ``ROUSER_KEEP_FREED_MEMORY=0`` turns
it off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["KEEP_BYTES", "hand_back_freed_memory", "keep_freed_memory"]

KEEP_BYTES = 1 << 30  # freed memory at the top of the heap beyond this is handed back to the system
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_MMAP_MAX = -1, -3, -4  # mallopt parameters (malloc.h)
_done = False


def _mallopt(*settings: tuple[int, int]) -> bool:
    """Apply glibc mallopt settings; whether all took effect (False under another C library)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return all([bool(libc.mallopt(param, value)) for param, value in settings])
    except (OSError, AttributeError):
        return False


def keep_freed_memory() -> bool:
    """Set glibc's allocator to keep freed memory (see the module docstring); once per process.

    Returns whether it took effect: False under another C library, where this changes nothing."""
    global _done
    if _done:
        return True
    if os.environ.get("ROUSER_KEEP_FREED_MEMORY") == "0":
        return False
    _done = _mallopt((_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, KEEP_BYTES))
    return _done


def hand_back_freed_memory() -> bool:
    """The opposite, for measuring memory (`rouser bench`): serve every allocation above 1 MiB by mmap, so freed
    tensors leave the RSS at once and peak RSS counts the tensors alive, not the allocator's caching."""
    return _mallopt((_M_MMAP_THRESHOLD, 1 << 20))
