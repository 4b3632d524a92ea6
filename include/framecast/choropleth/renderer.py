"""Per-frame rendering at constant cost: palette lookup, border blend, changing text.

No matplotlib runs here. A frame is built in one reused 32-bit buffer (R, G, B, 0 per pixel,
which ffmpeg reads as ``rgb0``):

1. ``np.take`` of the packed palette through the label raster (every pixel, one pass);
2. a blend of the antialiased border pixels that lie over countries (a few percent of pixels);
3. title and caption drawn by PIL into small strips and composited over their band.

The palette is the only thing that depends on the data: countries' entries are set from the
colour scale, everything else (background, ocean, folded overlay colours) is fixed. So after
the first frame only the pixels of countries whose colour changed are rewritten (through a
per-country pixel index built once), plus the text bands: at Full HD a whole-frame pass costs
as much CPU as a sizeable share of the video encoder's, while from one step to the next
typically a tenth of the countries change class. Frames are identical to full redraws.
"""

from __future__ import annotations

import numpy as np

from framecast.choropleth.raster import FIRST_COUNTRY, LABEL_BG, LABEL_OCEAN, RenderAssets, pack_rgb
from framecast.choropleth.style import ColorScale, Style


class FrameRenderer:
    """Renders frames for one animation; holds one frame buffer, reused for every frame.

    The array returned by :meth:`render` is that buffer: consume it (write to the encoder,
    copy it) before rendering the next frame.
    """

    def __init__(self, assets: RenderAssets, scale: ColorScale, style: Style) -> None:
        from PIL import ImageFont

        self.assets = assets
        self.scale = scale
        self.h, self.w = assets.height, assets.width
        n_dyn = assets.n_dynamic
        self.palette = np.zeros(n_dyn + len(assets.fixed_colors), dtype=np.uint32)
        self.palette[LABEL_BG] = pack_rgb(np.array(style.background, dtype=np.uint8))
        self.palette[LABEL_OCEAN] = pack_rgb(np.array(style.ocean_color, dtype=np.uint8))
        self.palette[n_dyn:] = assets.fixed_colors
        # Scale colours packed, with the no-data colour appended last so index -1 selects it.
        self.class_colors = np.concatenate([
            pack_rgb(scale.colors), pack_rgb(np.array([style.nodata_color], dtype=np.uint8))])
        self.buf = np.zeros(self.h * self.w, dtype=np.uint32)
        self.buf8 = self.buf.view(np.uint8).reshape(-1, 4)
        self.frame = self.buf.view(np.uint8).reshape(self.h, self.w, 4)
        self.font = ImageFont.truetype(assets.font_path, assets.font_size)
        self.caption_font = ImageFont.truetype(assets.font_path,
                                               max(8, int(assets.font_size * 0.7)))
        self.band = np.array(assets.band_color, dtype=np.uint16)
        self.text_rgb = np.array(assets.text_color, dtype=np.uint16)
        # Pixels grouped by country (and border blends by the country under them), built once:
        # a changed country's pixels are order[starts[k]:starts[k + 1]].
        n = assets.n_countries
        edges = np.arange(FIRST_COUNTRY, FIRST_COUNTRY + n + 1)
        labels = assets.labels
        self._order = np.argsort(labels, kind="stable").astype(np.int32)
        self._starts = np.searchsorted(labels[self._order], edges)
        blend_labels = labels[assets.blend_idx]
        self._blend_order = np.argsort(blend_labels, kind="stable").astype(np.int32)
        self._blend_starts = np.searchsorted(blend_labels[self._blend_order], edges)
        # The text bands are whole rows: contiguous runs of the buffer and of blend_idx.
        self._bands = []
        for x0, y0, x1, y1 in (assets.title_box, assets.caption_box):
            if y1 > y0 and x1 > x0:
                lo, hi = y0 * self.w, y1 * self.w
                b0, b1 = np.searchsorted(assets.blend_idx, [lo, hi])
                self._bands.append((slice(lo, hi), slice(int(b0), int(b1))))
        self._drawn = False
        self.max_changed_fraction = 0.3  # above it one full pass is cheaper

    def set_values(self, values: np.ndarray) -> None:
        """Update countries' palette entries from a (n_countries,) float vector (NaN = no data)."""
        idx = self.scale.classify(values)
        n = self.assets.n_countries
        self.palette[FIRST_COUNTRY:FIRST_COUNTRY + n] = self.class_colors[idx]

    def render(self, values: np.ndarray, title: str = "", caption: str = "") -> np.ndarray:
        """One (h, w, 4) uint8 RGB0 frame for per-country ``values`` and the given texts."""
        a = self.assets
        n = a.n_countries
        before = self.palette[FIRST_COUNTRY:FIRST_COUNTRY + n].copy()
        self.set_values(values)
        changed = np.flatnonzero(before != self.palette[FIRST_COUNTRY:FIRST_COUNTRY + n])
        if not self._drawn or changed.size > self.max_changed_fraction * n:
            np.take(self.palette, a.labels, out=self.buf)
            self._blend(slice(None))
            self._drawn = True
        else:
            if changed.size:
                self._redraw_countries(changed)
            for pixels, blends in self._bands:
                np.take(self.palette, a.labels[pixels], out=self.buf[pixels])
                self._blend(blends)
        if title:
            self._text(title, a.title_box, self.font, center=True)
        if caption and a.caption_box[3] > a.caption_box[1]:
            self._text(caption, a.caption_box, self.caption_font, center=False)
        return self.frame

    def _redraw_countries(self, changed: np.ndarray) -> None:
        """Rewrite the pixels (and border blends) of the countries ``changed`` (0-based)."""
        starts, bstarts = self._starts, self._blend_starts
        pix = np.concatenate([self._order[starts[k]:starts[k + 1]] for k in changed])
        counts = starts[changed + 1] - starts[changed]
        self.buf[pix] = np.repeat(self.palette[FIRST_COUNTRY + changed], counts)
        sel = np.concatenate([self._blend_order[bstarts[k]:bstarts[k + 1]] for k in changed])
        if sel.size:
            self._blend(sel)

    def _blend(self, sel: slice | np.ndarray) -> None:
        """Blend the border overlay over the fill for the blend entries ``sel``."""
        a = self.assets
        idx = a.blend_idx[sel]
        if not idx.size:
            return
        px = self.buf8[idx, :3].astype(np.uint16)
        px *= a.blend_inv_alpha[sel]
        px += a.blend_premult[sel]
        px += 127
        px //= 255
        self.buf8[idx, :3] = px

    def _text(self, text: str, box: tuple[int, int, int, int], font: object,
              center: bool) -> None:
        """Draw text into a strip just large enough for it and blend it over the band colour."""
        from PIL import Image, ImageDraw

        x0, y0, x1, y1 = box
        bw, bh = x1 - x0, y1 - y0
        left, top, right, bottom = font.getbbox(text)  # type: ignore[attr-defined]
        tw = min(bw, right - left + 2)
        th = min(bh, bottom - top + 2)
        if tw <= 0 or th <= 0:
            return
        tx = x0 + ((bw - tw) // 2 if center else 8)
        ty = y0 + (bh - th) // 2
        img = Image.new("L", (tw, th), 0)
        ImageDraw.Draw(img).text((1 - left, 1 - top), text, fill=255, font=font)
        m = np.asarray(img, dtype=np.uint16)[..., None]
        rgb = (self.band * (255 - m) + self.text_rgb * m + 127) // 255
        self.frame[ty:ty + th, tx:tx + tw, :3] = rgb.astype(np.uint8)
