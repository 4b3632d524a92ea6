"""Keeping a long-lived render worker's memory flat.

Two effects make a process that renders frame after frame grow although nothing is kept:

- glibc's malloc raises its mmap threshold after the first large ``free`` (up to 32 MB), so
  later multi-megabyte field arrays come from the heap and fragment it; fixing the threshold
  at 128 KiB keeps every field array in its own mapping, returned to the OS when freed.
- matplotlib artists live in reference cycles, so a removed contour set is freed only by the
  cyclic garbage collector, whose full passes would walk every object cartopy and matplotlib
  created. After the static map is built those objects are frozen (``gc.freeze``), and each
  frame's garbage is collected right away at the cost of the frame's own objects only.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_tuned = False


def tune_allocator(threshold: int = 128 * 1024) -> bool:
    """Fix glibc's mmap/trim thresholds (no-op elsewhere); True when applied."""
    global _tuned
    if _tuned:
        return True
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(mallopt(_M_TRIM_THRESHOLD,
                                                                      threshold))
    _tuned = ok
    return ok


def freeze_static() -> None:
    """Exclude everything alive now (the static map, libraries) from future collections."""
    gc.collect()
    gc.freeze()


def collect_frame() -> None:
    """Free the previous frame's artists now instead of letting cycles pile up."""
    gc.collect()
