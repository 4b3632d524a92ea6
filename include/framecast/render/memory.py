"""Keeping a long-lived render worker's memory flat.

matplotlib artists live in reference cycles, so a removed contour set (with its paths, labels
and data) is freed only by the cyclic garbage collector; left to its thresholds, several
frames' worth piles up between collections and the process grows. A full collection would
walk every object cartopy and matplotlib created, so after the static map is built those
objects are frozen (``gc.freeze``) and the frames' garbage is collected every few frames, at
the cost of those frames' own objects only: memory stays bounded by a few frames' artists
whatever the run's length, without paying a collection on every frame.
"""

from __future__ import annotations

import gc


def freeze_static() -> None:
    """Exclude everything alive now (the static map, libraries) from future collections."""
    gc.collect()
    gc.freeze()


#: Frames drawn between two collections of their garbage.
FRAMES_PER_COLLECT = 4
_drawn = 0


def collect_frame() -> None:
    """Free the last few frames' artists now and then instead of letting cycles pile up."""
    global _drawn
    _drawn += 1
    if _drawn >= FRAMES_PER_COLLECT:
        _drawn = 0
        gc.collect()
