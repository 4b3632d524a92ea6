"""Contour labels drawn from a cache of pre-rendered bitmaps.

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

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.text import Text
from matplotlib.transforms import IdentityTransform

MAX_ENTRIES = 4096
ANGLE_STEP = 3  # degrees: label angles are drawn to the nearest multiple


def _angle(rotation: float) -> int:
    return int(round(rotation / ANGLE_STEP) * ANGLE_STEP) % 360


@dataclass(frozen=True)
class _Bitmap:
    rgba: np.ndarray  # bottom row first (Agg's order)
    dx: int  # offset of the bitmap's bottom-left corner from the anchor, display pixels
    dy: int


class CachedLabels(Artist):
    """Draws the given Text artists (hidden themselves) as cached bitmaps."""

    def __init__(self, zorder: float = 3) -> None:
        super().__init__()
        self.set_zorder(zorder)
        self._texts: list[Text] = []
        self._cache: OrderedDict[tuple, _Bitmap] = OrderedDict()

    def add_texts(self, texts: Sequence[Text]) -> None:
        """Take over drawing ``texts``: they are hidden and drawn by this artist instead."""
        for t in texts:
            t.set_visible(False)
        self._texts.extend(texts)

    def clear_texts(self) -> None:
        self._texts = []

    def _key(self, t: Text) -> tuple:
        fp = t.get_fontproperties()
        return (t.get_text(), _angle(t.get_rotation()), t.get_horizontalalignment(),
                t.get_verticalalignment(), t.get_rotation_mode(), tuple(t.get_color())
                if not isinstance(t.get_color(), str) else t.get_color(), hash(fp))

    def _render(self, t: Text, renderer) -> _Bitmap:
        from matplotlib.backends.backend_agg import RendererAgg

        size_px = t.get_fontproperties().get_size_in_points() * renderer.dpi / 72
        side = int(size_px * (len(t.get_text()) + 4)) * 2 + 8
        c = side // 2
        scratch = RendererAgg(side, side, renderer.dpi)
        tt = Text(c, c, t.get_text())
        tt.update_from(t)
        tt.set_rotation(_angle(t.get_rotation()))
        tt.set_rotation_mode(t.get_rotation_mode())
        tt.set_transform(IdentityTransform())
        tt.set_clip_box(None)
        tt.set_clip_on(False)
        tt.set_visible(True)
        tt.set_figure(t.get_figure(root=True))
        tt.draw(scratch)
        img = np.asarray(scratch.buffer_rgba())
        alpha = img[..., 3] > 0
        rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
        if rows.size == 0:
            return _Bitmap(np.zeros((1, 1, 4), np.uint8), 0, 0)
        r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        crop = np.ascontiguousarray(img[r0:r1, c0:c1][::-1])
        return _Bitmap(crop, int(c0) - c, (side - int(r1)) - c)

    def draw(self, renderer) -> None:
        if not self.get_visible() or not self._texts:
            return
        gc = renderer.new_gc()
        for t in self._texts:
            key = self._key(t)
            bmp = self._cache.get(key)
            if bmp is None:
                bmp = self._cache[key] = self._render(t, renderer)
                if len(self._cache) > MAX_ENTRIES:
                    self._cache.popitem(last=False)
            else:
                self._cache.move_to_end(key)
            x, y = t.get_transform().transform(t.get_unitless_position())
            gc.set_clip_rectangle(t.get_clip_box())
            renderer.draw_image(gc, int(round(x)) + bmp.dx, int(round(y)) + bmp.dy, bmp.rgba)
        gc.restore()
