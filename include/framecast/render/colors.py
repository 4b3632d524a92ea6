"""Colour tables for raster fills: the same colours contourf and the colorbar would use.

A filled layer's levels, colormap and ``extend`` define classes; the table maps a class number to
RGBA so that a frame's fill is one vectorised classification and one gather.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.colors import BoundaryNorm, Colormap

from framecast.products import FilledLayer


def norm_for(layer: FilledLayer) -> BoundaryNorm:
    return BoundaryNorm(layer.levels, layer.cmap.N, extend=layer.extend)


@dataclass
class ColorTable:
    """Classify values into level bins and look up their colours.

    Index ``0`` is below the first level, ``len(levels)`` at or above the last, ``i`` in between
    is ``levels[i-1] <= v < levels[i]``; the final entry (``len(levels) + 1``) is "no data".
    """

    levels: np.ndarray
    lut: np.ndarray  # (len(levels) + 2, 4) uint8
    uniform_step: float | None

    @classmethod
    def for_layer(cls, layer: FilledLayer) -> ColorTable:
        lv = np.asarray(layer.levels, dtype=np.float64)
        cmap: Colormap = layer.cmap
        norm = norm_for(layer)
        n = lv.size
        lut = np.zeros((n + 2, 4), dtype=np.uint8)
        mids = (lv[:-1] + lv[1:]) / 2
        lut[1:n] = np.round(cmap(norm(mids)) * 255).astype(np.uint8)
        if layer.extend in ("min", "both"):
            lut[0] = np.round(np.array(cmap(norm(lv[0] - 1.0))) * 255).astype(np.uint8)
        if layer.extend in ("max", "both"):
            lut[n] = np.round(np.array(cmap(norm(lv[-1] + 1.0))) * 255).astype(np.uint8)
        if layer.alpha < 1.0:
            lut[:, 3] = (lut[:, 3].astype(np.float32) * layer.alpha).astype(np.uint8)
        steps = np.diff(lv)
        uniform = float(steps[0]) if np.allclose(steps, steps[0], rtol=1e-6) else None
        return cls(lv, lut, uniform)

    def classify(self, values: np.ndarray, min_value: float | None = None) -> np.ndarray:
        """Class index per value (uint8 up to 254 levels), NaN and below ``min_value`` -> no data."""
        n = self.levels.size
        v = np.asarray(values, dtype=np.float32)
        dtype = np.uint8 if n + 1 <= 255 else np.uint16
        if self.uniform_step is not None:
            k = v - self.levels[0]  # float64, as searchsorted would compare
            k /= self.uniform_step
            np.floor(k, out=k)
            k += 1
            np.clip(k, 0, n, out=k)
            k[np.isnan(k)] = n + 1
            cls = k.astype(dtype)
        else:
            cls = np.searchsorted(self.levels, v, side="right").astype(dtype)
            cls[np.isnan(v)] = n + 1
        if min_value is not None:
            cls[v < min_value] = n + 1
        return cls

    def colorize(self, values: np.ndarray, min_value: float | None = None) -> np.ndarray:
        """RGBA uint8 colours for ``values`` (any shape + a trailing 4).

        The table is gathered as one 32-bit word per pixel: a quarter of the index work of
        indexing an (n, 4) array row by row.
        """
        cls = self.classify(values, min_value)
        packed = np.ascontiguousarray(self.lut).view(np.uint32).ravel()
        return packed.take(cls).view(np.uint8).reshape(*cls.shape, 4)
