"""A disk cache of the static map layers, shared by every process on one data root.

Building a map's static part (Natural Earth features projected and drawn by cartopy, colorbar,
branding) takes 0.2-3 s per product/region, the first region in a process the longest. A CLI
worker pays it once per product/region; a task process (one Airflow task per chunk) would pay
it for every chunk. So the finished pixels (underlay and overlay RGBA, the map's pixel box and
projected limits) are stored once in ``$FRAMECAST_STATIC_CACHE/<key>.npz`` and later processes
load them in milliseconds.

The map's pixel-centre longitudes/latitudes (a projection of every pixel, 0.4-0.7 s per map)
are cached the same way under a key of the projection and the map box, and so are the
samplers of unstructured grids (ICON's triangulated cells: tens of seconds of geometry on the
2.9 million cells of R3B7, a few milliseconds to load), under a key of the grid's coordinates,
the target points and the sampling code.

The layers' key hashes everything the pixels depend on: the product and region specs (a canonical text of the frozen
dataclasses: size, dpi, fill layer, colorbar, site style), the logo file's size and mtime, the
Natural Earth folder, the matplotlib/cartopy versions and the source of the module that draws
them, so a changed spec or renderer never reads a stale map. Files are written to a temporary
name and renamed; an unreadable entry is ignored (and overwritten), never trusted.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from framecast.render.encode import write_atomic

ENV = "FRAMECAST_STATIC_CACHE"


@dataclass(frozen=True)
class StaticLayers:
    """The frozen static part of a map."""

    under: np.ndarray  # (h, w, 4) uint8: background, land/ocean, colorbar, branding
    over: np.ndarray  # (h, w, 4) uint8: coastlines, borders, lakes, outline (transparent)
    map_px: tuple[int, int, int, int]  # left, bottom, width, height (display px)
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    #: (n, 3) uint8: the underlay's most frequent colours, which an 8-bit palette keeps exact
    #: (a whole-image count: stored rather than counted again by every process)
    colors: np.ndarray


def cache_dir() -> Path | None:
    """The cache folder, or None when disk caching is off (``FRAMECAST_STATIC_CACHE`` unset)."""
    d = os.environ.get(ENV, "").strip()
    return Path(d) if d else None


def canonical(obj) -> str:
    """A text form of a spec that depends only on its values: dataclasses field by field,
    arrays by dtype, shape and bytes, colormaps by name, size and colours. A pickle would do
    for one process, but its bytes change with which sub-objects happen to be shared (caches
    of earlier calls), so two processes could name the same map differently."""
    import dataclasses

    import numpy as np
    from matplotlib.colors import Colormap

    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        fields = ",".join(f"{f.name}={canonical(getattr(obj, f.name))}"
                          for f in dataclasses.fields(obj))
        return f"{type(obj).__name__}({fields})"
    if isinstance(obj, np.ndarray):
        return f"array({obj.dtype},{obj.shape},{hashlib.sha256(obj.tobytes()).hexdigest()})"
    if isinstance(obj, Colormap):
        lut = np.asarray(obj(np.arange(obj.N)), dtype=np.float64)
        ends = [obj.get_under(), obj.get_over(), obj.get_bad()]
        return f"cmap({obj.name},{obj.N},{canonical(lut)},{ends})"
    if isinstance(obj, (list, tuple)):
        return f"{type(obj).__name__}[{','.join(canonical(x) for x in obj)}]"
    if isinstance(obj, dict):
        return "{" + ",".join(f"{canonical(k)}:{canonical(v)}"
                              for k, v in sorted(obj.items(), key=lambda kv: repr(kv[0]))) + "}"
    if isinstance(obj, (str, int, float, bool, type(None), Path)):
        return repr(obj)
    try:
        return f"{type(obj).__name__}({canonical(vars(obj))})"
    except TypeError:
        return repr(obj)


def cache_key(product, region, drawer_source: Path) -> str:
    """Hex digest naming the static layers of ``product`` on ``region``."""
    import cartopy
    import matplotlib

    from framecast.geo import data_dir

    h = hashlib.sha256()
    h.update(canonical((product, region)).encode())
    site = getattr(product, "site", None)
    logo = getattr(site, "logo", None) if site is not None else None
    if logo is not None and Path(logo).is_file():
        st = Path(logo).stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    h.update(f"{data_dir()}|{matplotlib.__version__}|{cartopy.__version__}".encode())
    h.update(drawer_source.read_bytes())
    return h.hexdigest()[:32]


def load_arrays(key: str, names: tuple[str, ...]) -> dict[str, np.ndarray] | None:
    """The arrays stored under ``key``, or None (cache off, missing or unreadable entry)."""
    d = cache_dir()
    if d is None:
        return None
    try:
        with np.load(d / f"{key}.npz", allow_pickle=False) as z:
            return {n: z[n] for n in names}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None  # absent or damaged (e.g. truncated by a full disk): rebuild


def store_arrays(key: str, **arrays: np.ndarray) -> None:
    """Write ``arrays`` under ``key`` atomically (no-op when the cache is off)."""
    d = cache_dir()
    if d is None:
        return
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    write_atomic(d / f"{key}.npz", buf.getvalue())


def load(key: str) -> StaticLayers | None:
    """The cached layers for ``key``, or None."""
    z = load_arrays(key, ("under", "over", "map_px", "xlim", "ylim", "colors"))
    if z is None:
        return None
    return StaticLayers(under=z["under"], over=z["over"],
                        map_px=tuple(int(v) for v in z["map_px"]),
                        xlim=tuple(float(v) for v in z["xlim"]),
                        ylim=tuple(float(v) for v in z["ylim"]), colors=z["colors"])


def store(key: str, layers: StaticLayers) -> None:
    """Write ``layers`` under ``key``."""
    store_arrays(key, under=layers.under, over=layers.over, map_px=np.array(layers.map_px),
                 xlim=np.array(layers.xlim), ylim=np.array(layers.ylim), colors=layers.colors)


def points_key(crs_wkt: str, map_px, xlim, ylim, factor: int) -> str:
    """Hex digest naming a map's pixel-centre longitudes/latitudes at one subsampling factor:
    they depend only on the projection and the map box, so products of one size share them."""
    import cartopy
    import pyproj

    h = hashlib.sha256(f"points|{crs_wkt}|{tuple(map_px)}|{tuple(map(float, xlim))}|"
                       f"{tuple(map(float, ylim))}|{factor}|{pyproj.__version__}|"
                       f"{cartopy.__version__}".encode())
    return h.hexdigest()[:32]


def sampler_key(grid_key: str, method: str, lon: np.ndarray, lat: np.ndarray,
                sampling_source: Path) -> str:
    """Hex digest naming a sampler: the source grid (its coordinates' digest), the method,
    the target points' exact bytes and the sampling module's source, so changed code or a
    different map never reads another sampler's weights."""
    h = hashlib.sha256(f"sampler|{grid_key}|{method}|{lon.size}|".encode())
    h.update(np.ascontiguousarray(lon, dtype=np.float64).tobytes())
    h.update(np.ascontiguousarray(lat, dtype=np.float64).tobytes())
    h.update(sampling_source.read_bytes())
    return h.hexdigest()[:32]
