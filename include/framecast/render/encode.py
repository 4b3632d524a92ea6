"""PNG encoding and atomic file writes.

Frames are written under a temporary name in the target directory and renamed into place, so
a crash, a kill or a full disk never leaves a half-written PNG where a publisher could pick it
up, and a re-render replaces a frame in one step.
"""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image


def encode_png(rgba: np.ndarray, *, compress_level: int = 3) -> bytes:
    """Encode an (h, w, 4) uint8 frame as an RGB PNG.

    The alpha channel is dropped (frames are opaque) which saves a quarter of the bytes to
    compress; zlib level 3 is several times faster than the default 6 for a few percent more
    bytes on chart-like images.
    """
    img = Image.fromarray(np.ascontiguousarray(rgba[..., :3]), mode="RGB")
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
