"""Contour lines straight from contourpy, as one matplotlib collection.

``Axes.contour`` builds a ContourSet: level processing, colour mapping, per-level bookkeeping
and callbacks that a chart's isobars do not need, and which cost about as much per frame as
tracing the lines. The lines themselves come from the same contourpy algorithm either way;
here they are traced for all levels in one call and drawn as a single path collection (one
path per level, its pieces separated by MOVETO codes, like a ContourSet's), which
:func:`framecast.render.labels.place_labels` can cut under its labels.
"""

from __future__ import annotations

import numpy as np
from contourpy import LineType, contour_generator
from matplotlib.collections import PathCollection
from matplotlib.path import Path


class Isolines(PathCollection):
    """Contour lines of several levels: ``levels[i]``'s line is ``get_paths()[i]``."""

    levels: np.ndarray


def isolines(xs: np.ndarray, ys: np.ndarray, values: np.ndarray, levels: np.ndarray, *,
             color: str, linewidth: float, linestyle: str, transform, zorder: float) -> Isolines:
    """Lines of ``values`` (rows along ``ys``, columns along ``xs``; NaN = no data) at
    ``levels``, traced by contourpy's ``serial`` algorithm with corners masked."""
    gen = contour_generator(xs, ys, np.ma.masked_invalid(values), name="serial",
                            line_type=LineType.ChunkCombinedCode, corner_mask=True)
    paths = []
    for (points,), (codes,) in gen.multi_lines(levels):
        paths.append(Path(points, codes) if points is not None else Path(np.empty((0, 2))))
    coll = Isolines(paths, facecolors="none", edgecolors=color, linewidths=linewidth,
                    linestyles=linestyle, transform=transform, zorder=zorder)
    coll.levels = np.asarray(levels)
    return coll
