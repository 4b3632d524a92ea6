"""Grid sampling against independent interpolation: scipy's RegularGridInterpolator for
regular lat-lon grids (both row orders, 0..360 and -180..180 longitudes, global wrap) and a
brute-force great-circle nearest neighbour for unstructured grids.

A transposed, flipped, shifted or wrongly wrapped sampler gives other values at the checked
points, so each test here fails when such a defect is introduced by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import RegularGridInterpolator

from framecast.errors import RenderError
from framecast.field import Grid
from framecast.render.sampling import build_sampler


def _field(lats, lons):
    """An asymmetric smooth field (no symmetry a mirrored grid could hide behind)."""
    lon2, lat2 = np.meshgrid(lons, lats)
    return (0.37 * lon2 + 1.9 * lat2 + 0.004 * lon2 * lat2 + 3.0).astype(np.float32)


def _oracle(lats, lons, values, lon, lat):
    lats, lons = np.asarray(lats, float), np.asarray(lons, float)
    v = np.asarray(values, float)
    if lats[0] > lats[-1]:
        lats, v = lats[::-1], v[::-1]
    return RegularGridInterpolator((lats, lons), v)(np.column_stack([lat, lon]))


@pytest.mark.parametrize("north_first", [False, True])
def test_regular_grid_matches_scipy_bilinear(north_first):
    lats = np.arange(30.0, 60.01, 0.5)
    lons = np.arange(-10.0, 30.01, 0.25)
    if north_first:
        lats = lats[::-1]
    values = _field(lats, lons)
    rng = np.random.default_rng(7)
    lon = rng.uniform(-10, 30, 500)
    lat = rng.uniform(30, 60, 500)
    lon[:3], lat[:3] = [-10, 30, 12.25], [30, 60, 45.5]  # corners and an exact grid point
    s = build_sampler(Grid("regular", lats, lons), lon, lat)
    got = s.sample(values)
    assert got.dtype == np.float32 and got.shape == (500,)
    assert s.valid.all() and s.n_targets == 500
    np.testing.assert_allclose(got, _oracle(lats, lons, values, lon, lat), rtol=0, atol=2e-3)
    assert got[2] == pytest.approx(values[list(lats).index(45.5), list(lons).index(12.25)],
                                   abs=1e-3)


def test_points_outside_a_regional_grid_are_nan_and_inside_are_not():
    lats = np.arange(40.0, 50.01, 1.0)
    lons = np.arange(0.0, 20.01, 1.0)
    values = _field(lats, lons)
    lon = np.array([-0.5, 20.5, 10.0, 10.0, 0.0, 20.0, np.nan, 10.0])
    lat = np.array([45.0, 45.0, 39.5, 50.5, 40.0, 50.0, 45.0, np.nan])
    s = build_sampler(Grid("regular", lats, lons), lon, lat)
    got = s.sample(values)
    assert list(s.valid) == [False, False, False, False, True, True, False, False]
    assert np.isnan(got[[0, 1, 2, 3, 6, 7]]).all()
    assert got[4] == pytest.approx(values[0, 0]) and got[5] == pytest.approx(values[-1, -1])


def test_regional_grid_in_0_360_longitudes_takes_negative_target_longitudes():
    lats = np.arange(40.0, 50.01, 0.5)
    lons = np.arange(340.0, 380.01, 0.5)  # 20 W .. 20 E written as 340 .. 380
    values = _field(lats, lons)
    lon = np.array([-15.0, -0.25, 5.5, 19.0])
    lat = np.array([41.0, 45.25, 48.0, 49.5])
    got = build_sampler(Grid("regular", lats, lons), lon, lat).sample(values)
    want = _oracle(lats, lons, values, np.where(lon < 0, lon + 360, lon + 360), lat)
    np.testing.assert_allclose(got, want, atol=2e-3)


def test_regional_grid_in_minus180_longitudes_takes_0_360_target_longitudes():
    lats = np.arange(40.0, 50.01, 0.5)
    lons = np.arange(-20.0, 20.01, 0.5)
    values = _field(lats, lons)
    lon = np.array([345.0, 359.75, 5.5, 385.0])
    lat = np.array([41.0, 45.25, 48.0, 44.0])
    s = build_sampler(Grid("regular", lats, lons), lon, lat)
    got = s.sample(values)
    assert list(s.valid) == [True, True, True, False]
    want = _oracle(lats, lons, values, np.array([-15.0, -0.25, 5.5]), lat[:3])
    np.testing.assert_allclose(got[:3], want, atol=2e-3)


def test_global_grid_wraps_across_the_seam_and_covers_the_poles():
    lats = np.linspace(90, -90, 73)  # 2.5 degrees, north first
    lons = np.arange(0, 360, 2.5)
    lon2, lat2 = np.meshgrid(lons, lats)
    values = (np.cos(np.radians(lat2)) * np.sin(np.radians(lon2)) * 10 + lat2 / 9).astype(
        np.float32)
    grid = Grid("regular", lats, lons)
    assert grid.is_global
    lon = np.array([358.75, -1.25, 1.25, 181.0, -179.0, 90.0, 0.0, 720.5])
    lat = np.array([10.0, 10.0, -30.0, 0.0, 0.0, 90.0, -90.0, 5.0])
    s = build_sampler(grid, lon, lat)
    got = s.sample(values)
    assert s.valid.all()
    # The oracle on a grid with the first column repeated at 360 (explicit wrap).
    ext_lons = np.append(lons, 360.0)
    ext = np.concatenate([values, values[:, :1]], axis=1)
    want = _oracle(lats, ext_lons, ext, np.mod(lon, 360.0), lat)
    np.testing.assert_allclose(got, want, atol=2e-3)
    assert got[0] == pytest.approx(got[1], abs=1e-5)  # 358.75 and -1.25 are the same place
    assert got[3] == pytest.approx(got[4], abs=1e-5)


def test_nan_in_the_source_stays_nan_only_where_it_is_used():
    lats = np.arange(0.0, 5.01, 1.0)
    lons = np.arange(0.0, 5.01, 1.0)
    values = _field(lats, lons)
    values[2, 2] = np.nan
    got = build_sampler(Grid("regular", lats, lons), np.array([2.5, 4.5]),
                        np.array([2.5, 4.5])).sample(values)
    assert np.isnan(got[0]) and np.isfinite(got[1])


def test_too_small_or_unknown_grids_are_errors():
    with pytest.raises(RenderError, match=r"at least 2x2 points, got 1x3"):
        build_sampler(Grid("regular", np.array([1.0]), np.array([0.0, 1.0, 2.0])),
                      np.array([0.0]), np.array([1.0]))
    with pytest.raises(RenderError, match=r"at least 2x2 points, got 3x1"):
        build_sampler(Grid("regular", np.array([1.0, 2.0, 3.0]), np.array([0.0])),
                      np.array([0.0]), np.array([1.0]))
    odd = Grid("regular", np.array([1.0, 2.0]), np.array([0.0, 1.0]))
    object.__setattr__(odd, "kind", "gaussian")
    with pytest.raises(RenderError, match="unsupported grid kind 'gaussian'"):
        build_sampler(odd, np.array([0.0]), np.array([1.0]))


def _great_circle_nearest(clon, clat, lon, lat):
    """Index of the nearest cell centre by the haversine distance, brute force."""
    la1, lo1 = np.radians(lat)[:, None], np.radians(lon)[:, None]
    la2, lo2 = np.radians(clat)[None, :], np.radians(clon)[None, :]
    h = (np.sin((la2 - la1) / 2) ** 2
         + np.cos(la1) * np.cos(la2) * np.sin((lo2 - lo1) / 2) ** 2)
    return np.argmin(h, axis=1)


def test_unstructured_grid_takes_the_nearest_cell_on_the_sphere():
    rng = np.random.default_rng(3)
    clat = np.degrees(np.arcsin(rng.uniform(-1, 1, 3000)))
    clon = rng.uniform(-180, 180, 3000)
    values = (np.arange(3000) * 1.5).astype(np.float32)
    lon = np.append(rng.uniform(-180, 180, 400), [np.nan, 10.0])
    lat = np.append(np.degrees(np.arcsin(rng.uniform(-1, 1, 400))), [0.0, np.nan])
    s = build_sampler(Grid("unstructured", clat, clon), lon, lat, method="nearest")
    got = s.sample(values)
    assert list(s.valid[-2:]) == [False, False] and s.valid[:400].all()
    assert np.isnan(got[-2:]).all()
    want = values[_great_circle_nearest(clon, clat, lon[:400], lat[:400])]
    np.testing.assert_array_equal(got[:400], want)
