"""Text drawn from cached bitmaps: contour labels and the per-frame title.

matplotlib lays out and rasterises every glyph of every Text artist on every draw. On a chart
frame that is the isobar labels and the title, and together they cost more than drawing all
the isobars. The picture of a piece of text depends only on its string, angle, colour and
font, and successive frames repeat the same pieces (the same isobar values at similar angles,
the same title words with only the valid time changing), so each distinct piece is rendered
once with matplotlib's own text renderer into a small RGBA bitmap and afterwards blended in
place like any image. The cache is bounded (LRU), so memory stays flat however many frames a
worker draws.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from matplotlib.artist import Artist
from matplotlib.font_manager import FontProperties
from matplotlib.text import Text
from matplotlib.transforms import IdentityTransform

MAX_ENTRIES = 4096


@dataclass(frozen=True)
class Bitmap:
    """An RGBA bitmap (bottom row first, Agg's order) and its offset from the text's anchor."""

    rgba: np.ndarray
    dx: int  # offset of the bitmap's bottom-left corner from the anchor, display pixels
    dy: int


def render_text(fig, text: str, *, rotation: float, color: str, prop: FontProperties,
                dpi: float, ha: str, va: str) -> Bitmap:
    """``text`` rendered alone by matplotlib's Agg text renderer, cropped to its ink."""
    from matplotlib.backends.backend_agg import RendererAgg

    size_px = prop.get_size_in_points() * dpi / 72
    side = int(size_px * (len(text) + 4)) * 2 + 8
    c = side // 2
    scratch = RendererAgg(side, side, dpi)
    t = Text(c, c, text, rotation=rotation, color=color, fontproperties=prop, ha=ha, va=va,
             transform=IdentityTransform(), parse_math=False)
    t.set_figure(fig)
    t.draw(scratch)
    img = np.asarray(scratch.buffer_rgba())
    alpha = img[..., 3] > 0
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    if rows.size == 0:
        return Bitmap(np.zeros((1, 1, 4), np.uint8), 0, 0)
    r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    crop = np.ascontiguousarray(img[r0:r1, c0:c1][::-1])
    return Bitmap(crop, int(c0) - c, (side - int(r1)) - c)


class BitmapCache:
    """An LRU of :class:`Bitmap` keyed by whatever determines the picture."""

    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._cache: OrderedDict[tuple, Bitmap] = OrderedDict()
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._cache)

    def get(self, key: tuple, make) -> Bitmap:
        """The bitmap for ``key``; ``make()`` renders it on first use."""
        bmp = self._cache.get(key)
        if bmp is None:
            bmp = self._cache[key] = make()
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return bmp


#: Title words and widths of every chart this process draws, keyed by everything that shapes
#: the picture: a render task draws dozens of products whose titles share most words (model,
#: run, valid time), a few frames each, so a cache per chart would render them all again.
_TITLE_WORDS = BitmapCache()
_TITLE_WIDTHS: dict[tuple, float] = {}


class CachedTitle(Artist):
    """A figure's centred, top-aligned title, drawn word by word from cached bitmaps.

    The title changes every frame, but only in a few words (valid time, step). Lines are laid
    out by matplotlib itself (a hidden Text with the same properties: its line positions,
    without rasterising its glyphs), and every word is rendered once per worker and then
    blitted, so a frame's title costs a layout and a few image copies instead of rasterising
    a hundred glyphs.
    """

    def __init__(self, fig, cx: float, top: float, *, prop: FontProperties,
                 color: str = "black", linespacing: float = 1.35, zorder: float = 5) -> None:
        super().__init__()
        self.set_zorder(zorder)
        self._prop, self._color = prop, color
        # Positioned like fig.text(ha="center", va="top") at (cx, top) display pixels.
        self._layout = Text(cx, top, "", ha="center", va="top", fontproperties=prop,
                            linespacing=linespacing, transform=IdentityTransform(),
                            parse_math=False)
        self._layout.set_figure(fig)
        self._cache, self._widths = _TITLE_WORDS, _TITLE_WIDTHS

    def set_text(self, text: str) -> None:
        self._layout.set_text(text)
        self.stale = True

    def get_text(self) -> str:
        return self._layout.get_text()

    def _width(self, text: str, renderer) -> float:
        key = (text, self._prop, renderer.dpi)
        w = self._widths.get(key)
        if w is None:
            if len(self._widths) > MAX_ENTRIES:
                self._widths.clear()
            w = self._widths[key] = renderer.get_text_width_height_descent(
                text, self._prop, ismath=False)[0]
        return w

    def _word(self, word: str, renderer) -> Bitmap:
        key = (word, self._color, self._prop, renderer.dpi)
        return self._cache.get(key, lambda: render_text(
            self.get_figure(root=True), word, rotation=0, color=self._color, prop=self._prop,
            dpi=renderer.dpi, ha="left", va="baseline"))

    def draw(self, renderer) -> None:
        if not self.get_visible() or not self.get_text():
            return
        _, lines, _ = self._layout._get_layout(renderer)
        posx, posy = self._layout.get_unitless_position()
        space = self._width("x x", renderer) - self._width("xx", renderer)
        gc = renderer.new_gc()
        for line, _, (lx, ly) in lines:
            x, y = posx + lx, posy + ly  # left end of the line's baseline
            for word in line.split(" "):
                if word:
                    bmp = self._word(word, renderer)
                    renderer.draw_image(gc, int(round(x)) + bmp.dx, int(round(y)) + bmp.dy,
                                        bmp.rgba)
                x += self._width(word, renderer) + space if word else space
        gc.restore()
        self.stale = False
