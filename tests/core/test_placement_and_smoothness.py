"""Features land where cartopy projects them, on every grid kind; ICON fields are smooth.

Placement: a warm spot at 48N 11E or a low at 55N 20W, written to GRIB (regular lat-lon in
both scanning directions, GFS's 0..360 grid) or set on ICON's icosahedral cells, is rendered
through the whole pipeline; the centroid of its marked pixels must be within a few pixels of
the point's position computed by cartopy on its own figure.

Smoothness: an isobar drawn from ICON cells must turn as gently as the same isobar drawn
from a regular grid (mean turning angle along the contour), which nearest-cell sampling
fails by a wide margin (so the test can tell the two apart).
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest
from siblings import load_sibling

from framecast.field import Field, Grid
from framecast.icongrid import icosahedral_grid
from framecast.render.sampling import build_sampler

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)


def _sibling(name: str):
    """A helper module beside this file (see tests/siblings.py)."""
    return load_sibling(__file__, name)


gc = _sibling("gribcases")
placement = _sibling("placement")


@pytest.mark.parametrize("north_first", [True, False], ids=["scan0", "scan64"])
@pytest.mark.parametrize("region", ["europe", "germany"])
def test_regular_grid_placement(tmp_path, north_first, region):
    lats = np.arange(29.5, 70.51, 0.0625 * 4)
    lons = np.arange(-23.5, 62.51, 0.0625 * 4)
    lo, la = np.meshgrid(lons, lats)
    path = tmp_path / "t.grib2"
    path.write_bytes(gc.regular(gc.warm_spot(la, lo, radius=1.0), lats, lons, run=RUN,
                                north_first=north_first))
    assert placement.hot_pixel_offset(path, "t2m", region, 11.0, 48.0) <= 2.5


def test_gfs_grid_placement_of_a_low_west_of_the_date_line_seam(tmp_path):
    """GFS longitudes run 0..359.75: a low at 20W is at 340E in the file."""
    lats = np.arange(-90.0, 90.01, 0.25)
    lons = np.arange(0.0, 359.76, 0.25)
    lo, la = np.meshgrid(lons, lats)
    d2 = (la - 55.0) ** 2 + ((((lo + 180) % 360) - 180 + 20.0) * np.cos(np.radians(55))) ** 2
    msl = 101300.0 - 3000.0 * np.exp(-d2 / (2 * 3.0 ** 2))
    path = tmp_path / "gfs.t00z.pgrb2.0p25.f000"
    path.write_bytes(gc.regular(msl, lats, lons, run=RUN, centre="kwbc", short_name="prmsl",
                                type_of_level="meanSea"))
    for region in ("europe", "global"):
        assert placement.hot_pixel_offset(path, "msl", region, -20.0, 55.0, cold=True) <= 2.5


def _icon_field(division: int, fn, name: str = "t2m") -> Field:
    g = icosahedral_grid(division)
    grid = Grid("unstructured", g.clat, g.clon)
    return Field(name, "K", fn(g.clat, g.clon).astype(np.float32), grid, RUN, 0, RUN, {})


@pytest.mark.parametrize("region, lon, lat, tol", [
    ("germany", 11.0, 48.0, 5.0),  # ~80 pixels per cell: the triangulation's asymmetry shows
    ("europe", 11.0, 48.0, 2.5), ("global", -20.0, 55.0, 2.5)])
def test_icosahedral_grid_placement(region, lon, lat, tol):
    # Centred on the cell nearest the point: the interpolated peak is then at the point, not
    # up to half a cell (here ~40 km, 40 pixels on the germany map) away from it.
    g = icosahedral_grid(96)
    near = np.argmin((g.clat - lat) ** 2 + ((g.clon - lon) * np.cos(np.radians(lat))) ** 2)
    lat, lon = float(g.clat[near]), float(g.clon[near])
    f = _icon_field(96, lambda la, lo: gc.warm_spot(la, lo, lat, lon, radius=2.5))
    assert placement.hot_pixel_offset(f, "t2m", region, lon, lat) <= tol


# ------------------------------------------------------------------------- interpolation


def _smooth(lat, lon):
    la, lo = np.radians(lat), np.radians(lon)
    x, y, z = np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)
    return np.sin(3 * x + 2 * y) + z ** 2


@pytest.mark.parametrize("box", [(5, 16, 47, 55), (-180, 180, -90, 90)], ids=["zoom", "global"])
def test_linear_sampling_is_far_closer_to_the_field_than_nearest(box):
    g = icosahedral_grid(48)
    grid = Grid("unstructured", g.clat, g.clon)
    vals = _smooth(g.clat, g.clon).astype(np.float32)
    lon, lat = np.meshgrid(np.linspace(box[0], box[1], 400), np.linspace(box[2], box[3], 200))
    truth = _smooth(lat.ravel(), lon.ravel())
    err = {}
    for method in ("nearest", "linear"):
        s = build_sampler(grid, lon.ravel(), lat.ravel(), method)
        out = s.sample(vals)
        assert np.isfinite(out).all()
        err[method] = float(np.sqrt(np.mean((out - truth) ** 2)))
    assert err["linear"] < err["nearest"] / 5, err


def _turning(segments: list[np.ndarray]) -> float:
    """Mean absolute turning angle (degrees) per vertex along contour lines."""
    turns = []
    for seg in segments:
        d = np.diff(seg, axis=0)
        d = d[np.hypot(d[:, 0], d[:, 1]) > 1e-9]
        if len(d) < 3:
            continue
        ang = np.arctan2(d[:, 1], d[:, 0])
        turns.append(np.abs(np.angle(np.exp(1j * np.diff(ang)))))
    return float(np.degrees(np.concatenate(turns).mean()))


def test_isobars_from_icon_cells_are_as_smooth_as_from_a_regular_grid():
    """Germany at about 1 km per pixel: ICON R2B6-like cells (~40 km) would show saw-teeth."""
    import contourpy

    def msl(lat, lon):  # a low over the North Sea, in hPa
        d2 = (lat - 55.0) ** 2 + ((lon - 5.0) * np.cos(np.radians(55))) ** 2
        return 1015.0 - 25.0 * np.exp(-d2 / (2 * 6.0 ** 2))

    lon, lat = np.meshgrid(np.linspace(5, 16, 880), np.linspace(46.8, 55.4, 690))
    g = icosahedral_grid(160)
    icon = Grid("unstructured", g.clat, g.clon)
    icon_vals = msl(g.clat, g.clon).astype(np.float32)
    rlats, rlons = np.arange(40, 62.01, 0.0625), np.arange(-5, 25.01, 0.0625)
    regular = Grid("regular", rlats, rlons)
    rvals = msl(*np.meshgrid(rlats, rlons, indexing="ij")).astype(np.float32)
    levels = [1000, 1002, 1004, 1006, 1008]
    turning = {}
    for label, grid, vals, method in (("regular", regular, rvals, "linear"),
                                      ("icon_linear", icon, icon_vals, "linear"),
                                      ("icon_nearest", icon, icon_vals, "nearest")):
        s = build_sampler(grid, lon.ravel(), lat.ravel(), method)
        z = s.sample(vals).reshape(lon.shape)
        gen = contourpy.contour_generator(np.arange(lon.shape[1]), np.arange(lon.shape[0]), z)
        segs = [line for lv in levels for line in gen.lines(lv)]
        turning[label] = _turning(segs)
    assert turning["icon_linear"] <= 1.5 * turning["regular"] + 0.5, turning
    assert turning["icon_nearest"] >= 3 * turning["icon_linear"], turning
