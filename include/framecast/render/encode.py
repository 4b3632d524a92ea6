"""PNG encoding (24-bit or 8-bit palette) and atomic file writes.

Frames are written under a temporary name in the target directory and renamed into place, so
a crash, a kill or a full disk never leaves a half-written PNG where a publisher could pick it
up, and a re-render replaces a frame in one step.

Charts hold a few thousand colours at most (the fill's colour table, land, sea, and the
anti-aliased edges of lines and text), so an 8-bit palette PNG is about a third of the 24-bit
size and encodes faster. The palette is fixed per product and worker (:class:`PngPalette`):
the colour table's exact colours plus the static layers' colours are kept as they are, the
remaining entries come from the first frame's other colours. Mapping a frame to it is then a
lookup, not a per-frame quantisation, and every frame of a product uses the same colours.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from framecast.errors import RenderError

PALETTE_SIZE = 256


def _packed(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) uint8 -> (...,) uint32 0x00RRGGBB, one number per colour."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _unpacked(packed: np.ndarray) -> np.ndarray:
    packed = np.asarray(packed, dtype=np.uint32)
    return np.stack([(packed >> 16) & 255, (packed >> 8) & 255, packed & 255],
                    axis=-1).astype(np.uint8)


class PngPalette:
    """A fixed palette of at most 256 colours that frames are mapped to before encoding."""

    def __init__(self, colors: np.ndarray) -> None:
        colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
        if not 1 <= len(colors) <= PALETTE_SIZE:
            raise RenderError(f"a PNG palette holds 1..{PALETTE_SIZE} colours, got {len(colors)}")
        self.colors = colors
        # Pad with the last colour: Pillow maps to a full 256-entry palette.
        full = np.concatenate([colors, np.repeat(colors[-1:], PALETTE_SIZE - len(colors), 0)])
        self._image = Image.new("P", (1, 1))
        self._image.putpalette(full.ravel().tobytes())

    @classmethod
    def build(cls, fixed: np.ndarray, sample: np.ndarray) -> PngPalette:
        """``fixed`` colours exactly, the rest of the 256 entries from ``sample``'s other colours.

        ``fixed`` (n, 3) are the colours that must come out unchanged (a fill's colour table,
        land, sea, background); ``sample`` is a representative frame, (h, w, 3|4) uint8.
        """
        fixed_p = np.unique(_packed(np.asarray(fixed, dtype=np.uint8).reshape(-1, 3)))
        limit = PALETTE_SIZE - 32  # keep room for the anti-aliased edges
        if fixed_p.size > limit:
            # More classes than a palette can hold exactly (hundreds of levels): keep an even
            # spread of them; the nearest-colour mapping covers the others.
            fixed_p = fixed_p[np.linspace(0, fixed_p.size - 1, limit).round().astype(int)]
        # Every pixel: a quarter of them (every second pixel of every second row) missed
        # colours of global fills with more classes than the palette holds exactly, which then
        # came out 6 off on the GFS global chart (tests/dags/test_dag_runs.py).
        px = _packed(np.ascontiguousarray(sample[..., :3]).reshape(-1, 3))
        rest = px[~np.isin(px, fixed_p)]
        extra = np.zeros(0, dtype=np.uint32)
        room = PALETTE_SIZE - fixed_p.size
        if rest.size:
            uniq = np.unique(rest)
            if uniq.size <= room:
                extra = uniq
            else:
                strip = Image.fromarray(_unpacked(rest)[None, :, :], mode="RGB")
                q = strip.quantize(room, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
                pal = np.asarray(q.getpalette()[:room * 3], np.uint8).reshape(-1, 3)
                extra = np.setdiff1d(np.unique(_packed(pal)), fixed_p)
        return cls(_unpacked(np.concatenate([fixed_p, extra])))

    def quantize(self, rgba: np.ndarray) -> Image.Image:
        """The frame as a "P" image on this palette (nearest colour, no dithering)."""
        img = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")
        return img.quantize(palette=self._image, dither=Image.Dither.NONE)


def encode_png(rgba: np.ndarray, *, compress_level: int = 3,
               palette: PngPalette | None = None) -> bytes:
    """Encode an (h, w, 4) uint8 frame as an RGB PNG, or an 8-bit PNG on ``palette``.

    The alpha channel is dropped (frames are opaque) which saves a quarter of the bytes to
    compress; zlib level 3 is several times faster than the default 6 for a few percent more
    bytes on chart-like images.
    """
    if palette is None:
        img = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")
    else:
        img = palette.quantize(rgba)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=compress_level)
    return buf.getvalue()


def write_atomic(path: Path, data: bytes) -> int:
    """Write ``data`` to ``path`` via a temporary file and a rename; returns the size."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(data)
