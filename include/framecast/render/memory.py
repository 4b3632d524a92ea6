"""Keeping a long-lived render worker's memory flat.

matplotlib artists live in reference cycles, so a removed contour set (with its paths, labels
and data) is freed only by the cyclic garbage collector; left to its thresholds, several
frames' worth piles up between collections and the process grows. A full collection would
walk every object cartopy and matplotlib created, so after the static map is built those
objects are frozen (``gc.freeze``) and each frame's garbage is collected right away, at the cost
of that frame's own objects only.
"""

from __future__ import annotations

import gc


def freeze_static() -> None:
    """Exclude everything alive now (the static map, libraries) from future collections."""
    gc.collect()
    gc.freeze()


def collect_frame() -> None:
    """Free the previous frame's artists now instead of letting cycles pile up."""
    gc.collect()
