"""Cached text and direct isolines draw what matplotlib's own Text and contour draw.

The oracle is matplotlib itself, drawn the ordinary way on a second figure: a title whose
words were shifted, spaced or aligned differently, or isolines traced at other levels or
with rows and columns swapped, would not match.
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from framecast.render.isolines import isolines
from framecast.render.textcache import CachedTitle

TITLE = ("2 m temperature (°C) and mean sea level pressure (hPa)\n"
         "icon-eu run 2026-11-23 00 UTC  +003 h  valid Mon 23 Nov 2026 03 UTC")


def _darkness(fig: Figure) -> np.ndarray:
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    return 255.0 - np.asarray(fig.canvas.buffer_rgba())[..., 0]


def test_cached_title_sits_where_matplotlib_puts_the_same_text():
    w, h = 700, 90
    plain = Figure(figsize=(w / 100, h / 100), dpi=100)
    plain.text(0.5, 1 - 4 / h, TITLE, ha="center", va="top", fontsize=9, linespacing=1.35)
    cached = Figure(figsize=(w / 100, h / 100), dpi=100)
    title = cached.add_artist(CachedTitle(cached, w / 2, h - 4, prop=FontProperties(size=9),
                                          linespacing=1.35))
    title.set_text(TITLE)
    a, b = _darkness(plain), _darkness(cached)
    ra, ca = np.nonzero(a > 127)
    rb, cb = np.nonzero(b > 127)
    # same rows exactly (baselines, line pitch), same horizontal extent within a pixel
    assert (ra.min(), ra.max()) == (rb.min(), rb.max())
    assert abs(ca.min() - cb.min()) <= 1 and abs(ca.max() - cb.max()) <= 1
    # the same glyphs: ink per line and per column band agrees within a few percent (words
    # sit at whole pixels, matplotlib's glyphs at fractions, so single rows may differ)
    gap = int(np.flatnonzero(a[ra.min():ra.max()].max(axis=1) == 0)[0]) + ra.min()
    for rows in (slice(0, gap), slice(gap, h)):
        na, nb = a[rows].sum(), b[rows].sum()
        assert abs(na - nb) <= 0.05 * na, (na, nb)
        bands_a = a[rows].sum(axis=0).reshape(14, 50).sum(axis=1)
        bands_b = b[rows].sum(axis=0).reshape(14, 50).sum(axis=1)
        assert np.abs(bands_a - bands_b).sum() <= 0.05 * na, (bands_a, bands_b)
    # and a changed word changes the picture (nothing stale from the cache)
    title.set_text(TITLE.replace("03 UTC", "06 UTC"))
    assert (_darkness(cached) != b).any()


def test_isolines_are_the_lines_matplotlib_contour_traces():
    ys, xs = np.linspace(0, 300, 61), np.linspace(0, 400, 81)
    gx, gy = np.meshgrid(xs, ys)
    vals = 1000 + 20 * np.sin(gx / 70) * np.cos(gy / 50) + gx / 40
    vals[20:25, 30:40] = np.nan  # a hole: masked like a masked array
    levels = np.arange(984, 1024, 4.0)
    fig = Figure()
    ax = fig.add_subplot()
    ref = ax.contour(xs, ys, np.ma.masked_invalid(vals), levels=levels, algorithm="serial")
    ours = isolines(xs, ys, vals, levels, color="k", linewidth=1, linestyle="solid",
                    transform=ax.transData, zorder=2)
    assert np.array_equal(ours.levels, ref.levels)
    for mine, theirs in zip(ours.get_paths(), ref.get_paths(), strict=True):
        assert mine.vertices.shape == theirs.vertices.shape
        np.testing.assert_allclose(mine.vertices, theirs.vertices)
        assert np.array_equal(mine.codes, theirs.codes)
