"""Contour labels: placed along the lines in one pass, drawn from cached bitmaps.

matplotlib's ``clabel`` creates a Text artist per label and walks each line in Python to find a
flat spot; for a chart's twenty-odd isobar labels that costs about as much as contouring.
:func:`place_labels` puts one label at the middle (by length on screen) of every line piece
long enough to hold it, turned along the line and never upside down, and cuts the line under
the label, as ``clabel(inline=True)`` does, with a few array operations per piece.

matplotlib lays out and rasterises every text glyph by glyph on every draw, which for the
twenty-odd isobar labels of a chart costs more than drawing all the isobars. A label's picture
depends only on its text, angle, colour and font, and charts of one product repeat the same
few values at similar angles: each distinct (text, angle, colour, font) is
rendered once with matplotlib's own text renderer into a small RGBA bitmap and afterwards
blended in place like any image. Positions are rounded to whole pixels and angles to multiples
of 3 degrees (at most 1.5 degrees off the isobar's direction, invisible on a map label), so
successive frames, whose isobars turn slowly, mostly reuse bitmaps. The cache is bounded (LRU), so
memory stays flat however many frames a worker draws.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.font_manager import FontProperties
from matplotlib.path import Path

from framecast.render.textcache import Bitmap, BitmapCache, render_text

ANGLE_STEP = 3  # degrees: label angles are drawn to the nearest multiple


@dataclass(frozen=True)
class Label:
    """One contour label: text, centre in data coordinates, angle in degrees, colour."""

    text: str
    x: float
    y: float
    rotation: float
    color: str
    fontsize: float


def _interp(s: np.ndarray, pts: np.ndarray, at: float) -> np.ndarray:
    return np.array([np.interp(at, s, pts[:, 0]), np.interp(at, s, pts[:, 1])])


_WIDTHS: dict[tuple, float] = {}


def _text_width(renderer, text: str, prop: FontProperties) -> float:
    """Width of ``text`` on screen; a chart repeats the same few label values every frame."""
    key = (text, prop.get_size_in_points(), prop.get_family()[0], renderer.dpi)
    w = _WIDTHS.get(key)
    if w is None:
        if len(_WIDTHS) > 4096:
            _WIDTHS.clear()
        w = _WIDTHS[key] = renderer.get_text_width_height_descent(text, prop, ismath=False)[0]
    return w


def place_labels(ax, cs, fmt, fontsize: float, color: str, spacing: float = 2.0) -> list[Label]:
    """Label every long enough piece of ``cs``'s lines and cut the lines under the labels.

    ``cs`` is a matplotlib ContourSet on the plain axes ``ax`` (linear data -> pixel mapping,
    so positions interpolated on screen are the same in data coordinates); ``fmt`` formats a
    level. The ContourSet's paths are replaced by the cut ones.
    """
    renderer = ax.get_figure(root=True).canvas.get_renderer()
    prop = FontProperties(size=fontsize)
    trans = ax.transData
    x0, y0, x1, y1 = ax.bbox.extents
    paths = cs.get_paths()
    out: list[Label] = []
    for i, level in enumerate(cs.levels):
        path = paths[i]
        if len(path.vertices) < 2:
            continue
        text = fmt(level)
        width = _text_width(renderer, text, prop)
        gap = width / 2 + spacing
        verts = path.vertices
        codes = path.codes
        starts = (np.flatnonzero(codes == Path.MOVETO) if codes is not None
                  else np.array([0]))
        bounds = [*starts.tolist(), len(verts)]
        pieces: list[np.ndarray] = []
        changed = False
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            data = verts[a:b]
            if len(data) < 2:
                pieces.append(data)
                continue
            scr = trans.transform(data)
            s = np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(scr, axis=0).T))])
            length = s[-1]
            mid = length / 2
            cx, cy = _interp(s, scr, mid)
            inside = (x0 + gap <= cx <= x1 - gap) and (y0 + gap <= cy <= y1 - gap)
            if (np.ptp(scr, axis=0) <= 1.2 * width).all() or length < 2 * gap + 4 or not inside:
                pieces.append(data)
                continue
            (ax_, ay_), (bx_, by_) = _interp(s, scr, mid - width / 2), _interp(s, scr,
                                                                             mid + width / 2)
            angle = float(np.degrees(np.arctan2(by_ - ay_, bx_ - ax_)))
            if angle > 90:
                angle -= 180
            elif angle <= -90:
                angle += 180
            lo, hi = mid - gap, mid + gap
            before = s < lo
            after = s > hi
            if before.any():
                pieces.append(np.vstack([data[before], _interp(s, data, lo)]))
            if after.any():
                pieces.append(np.vstack([_interp(s, data, hi), data[after]]))
            lx, ly = _interp(s, data, mid)
            out.append(Label(text, float(lx), float(ly), angle, color, fontsize))
            changed = True
        if changed:
            pieces = [p for p in pieces if len(p) >= 2]
            if pieces:
                v = np.vstack(pieces)
                c = np.full(len(v), Path.LINETO, dtype=Path.code_type)
                c[np.cumsum([0] + [len(p) for p in pieces[:-1]])] = Path.MOVETO
                paths[i] = Path(v, c)
            else:
                paths[i] = Path(np.empty((0, 2)))
    cs.stale = True
    return out


#: Label bitmaps of every chart this process draws: products share isoline values and colours
#: (a render task draws dozens of products, a few frames each), so one cache serves them all.
_LABELS = BitmapCache()


def _angle(rotation: float) -> int:
    return int(round(rotation / ANGLE_STEP) * ANGLE_STEP) % 360


class CachedLabels(Artist):
    """Draws :class:`Label` records on an axes as cached bitmaps."""

    def __init__(self, zorder: float = 3) -> None:
        super().__init__()
        self.set_zorder(zorder)
        self.labels: list[Label] = []
        self._cache = _LABELS

    def add(self, labels: Sequence[Label]) -> None:
        self.labels.extend(labels)

    def clear(self) -> None:
        self.labels = []

    def bitmap(self, lab: Label, renderer) -> Bitmap:
        """The cached bitmap of ``lab`` (rendered on first use)."""
        angle = _angle(lab.rotation)
        return self._cache.get(
            (lab.text, angle, lab.color, lab.fontsize, renderer.dpi),
            lambda: render_text(self.get_figure(root=True), lab.text, rotation=angle,
                                color=lab.color, prop=FontProperties(size=lab.fontsize),
                                dpi=renderer.dpi, ha="center", va="center"))

    def extent(self, lab: Label, renderer) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) display pixels the label's bitmap covers (y up)."""
        bmp = self.bitmap(lab, renderer)
        x, y = self.axes.transData.transform((lab.x, lab.y))
        bx, by = int(round(x)) + bmp.dx, int(round(y)) + bmp.dy
        return bx, by, bx + bmp.rgba.shape[1], by + bmp.rgba.shape[0]

    def draw(self, renderer) -> None:
        if not self.get_visible() or not self.labels:
            return
        gc = renderer.new_gc()
        gc.set_clip_rectangle(self.axes.bbox)
        for lab in self.labels:
            bmp = self.bitmap(lab, renderer)
            bx, by, _, _ = self.extent(lab, renderer)
            renderer.draw_image(gc, bx, by, bmp.rgba)
        gc.restore()
