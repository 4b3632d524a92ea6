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


# ---------------------------------------------------------------- linear (triangulated) sampling
#
# Oracle: barycentric interpolation on triangles reproduces, exactly, any field that is linear
# in the plane it triangulates in, whichever triangles it picks. The sampler triangulates a
# region in the gnomonic projection around the region's centre, a global map in longitude/
# latitude between the polar circles and gnomonically around each pole. So these fields, with
# the centre fixed by symmetric targets, are reproduced to rounding:
#   gnomonic around c: g(p) = (a . p) / (c . p)   (linear in the gnomonic plane coordinates)
#   lon/lat band:      lat, lon (away from the seam), lon mod 360 (across the seam)
# A wrong weight, a swapped corner, a wrong simplex, a wrong projection or a target left to
# the nearest cell gives errors of the order of the field's change over a cell: far above the
# tolerance (the nearest-cell sampler is checked to miss by that much).

# the sampler's strategies for finding each target's triangle: matplotlib's trapezoid map
# (small triangulations), the walk from the nearest cell's star, and its fallback to the
# simplices with the nearest centroids (many targets, with the star cut to 3 triangles; on a
# region only: the stretched longitude/latitude triangles of a global map need more)
LOCATE = {"trapezoid": {}, "star": {"TRAPEZOID_MAX": 0, "BLOCK": 97},
          "centroids": {"TRAPEZOID_MAX": 0, "MAX_STAR": 3}}


@pytest.fixture(params=sorted(LOCATE))
def locate(request, monkeypatch):
    from framecast.render import sampling

    for name, value in LOCATE[request.param].items():
        monkeypatch.setattr(sampling, name, value)
    monkeypatch.setattr(sampling, "_LAST", {})
    return request.param


def _xyz(lon, lat):
    lo, la = np.radians(lon), np.radians(lat)
    return np.column_stack([np.cos(la) * np.cos(lo), np.cos(la) * np.sin(lo), np.sin(la)])


def _lonlat(xyz):
    xyz = xyz / np.linalg.norm(xyz, axis=1, keepdims=True)
    return np.degrees(np.arctan2(xyz[:, 1], xyz[:, 0])), np.degrees(np.arcsin(xyz[:, 2]))


def _plane(centre, u, v):
    """Unit vectors at gnomonic plane coordinates (u, v) around ``centre``."""
    e1 = np.cross([0.0, 0.0, 1.0], centre)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(centre, e1)
    return centre[None, :] + np.outer(u, e1) + np.outer(v, e2)


A = np.array([0.3, -1.2, 2.0])


def test_linear_sampling_of_a_region_is_exact_for_fields_linear_in_its_gnomonic_plane(locate):
    centre = _xyz(np.array([10.0]), np.array([50.0]))[0]
    rng = np.random.default_rng(11)
    # cells: a jittered lattice 0.02 apart (about 1.1 deg) reaching well beyond the targets
    cu, cv = np.meshgrid(np.arange(-0.14, 0.141, 0.02), np.arange(-0.14, 0.141, 0.02))
    cu = cu.ravel() + rng.uniform(-0.005, 0.005, cu.size)
    cv = cv.ravel() + rng.uniform(-0.005, 0.005, cv.size)
    cells = _plane(centre, cu, cv)
    clon, clat = _lonlat(cells)
    cells = _xyz(clon, clat)
    # targets: symmetric about the centre (so it is the region's centre), denser than cells,
    # plus two far outside every cell (they take the nearest cell)
    tu, tv = np.meshgrid(np.linspace(-0.07, 0.07, 29), np.linspace(-0.07, 0.07, 29))
    tu = np.append(tu.ravel(), [0.4, -0.4])
    tv = np.append(tv.ravel(), [0.0, 0.0])
    lon, lat = _lonlat(_plane(centre, tu, tv))
    grid = Grid("unstructured", clat, clon)
    values = ((cells @ A) / (cells @ centre)).astype(np.float32)
    targets = _xyz(lon, lat)
    want = (targets @ A) / (targets @ centre)

    s = build_sampler(grid, lon, lat)
    got = s.sample(values)
    inner = slice(0, -2)
    np.testing.assert_allclose(got[inner], want[inner], atol=2e-5)
    far = _great_circle_nearest(clon, clat, lon[-2:], lat[-2:])
    np.testing.assert_array_equal(got[-2:], values[far])
    nearest = build_sampler(grid, lon, lat, method="nearest").sample(values)
    assert np.abs(nearest[inner] - want[inner]).max() > 100 * 2e-5  # the check has teeth

    # every 2nd target again (a map's contour grid): the weights are reused, still exact;
    # a NaN target stays NaN
    sub_lon = np.append(lon[inner][::2], np.nan)
    sub_lat = np.append(lat[inner][::2], 0.0)
    sub = build_sampler(grid, sub_lon, sub_lat).sample(values)
    np.testing.assert_allclose(sub[:-1], want[inner][::2], atol=2e-5)
    assert np.isnan(sub[-1])
    # targets the previous sampler never had (shifted half a step): computed afresh
    moved = build_sampler(grid, lon[inner] + 0.01, lat[inner]).sample(values)
    t2 = _xyz(lon[inner] + 0.01, lat[inner])
    np.testing.assert_allclose(moved, (t2 @ A) / (t2 @ centre), atol=5e-4)


@pytest.mark.parametrize("locate", ["trapezoid", "star"], indirect=True)
def test_linear_sampling_of_the_globe_is_exact_in_its_lonlat_band_and_polar_caps(locate):
    rng = np.random.default_rng(5)
    n = 4000
    clat = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    clon = rng.uniform(-180, 180, n)
    cells = _xyz(clon, clat)
    lon2, lat2 = np.meshgrid(np.linspace(-179.5, 179.5, 120), np.linspace(-89.5, 89.5, 60))
    lon, lat = np.append(lon2.ravel(), np.nan), np.append(lat2.ravel(), 0.0)
    s = build_sampler(Grid("unstructured", clat, clon), lon, lat)
    assert list(s.valid) == [True] * lon2.size + [False]
    lon, lat = lon[:-1], lat[:-1]
    targets = _xyz(lon, lat)

    def check(values, want, where, atol):
        got = s.sample(np.asarray(values, np.float32))[:-1]
        np.testing.assert_allclose(got[where], want[where], atol=atol)

    band = np.abs(lat) <= 60
    check(clat, lat, band, 1e-4)
    check(clon, lon, band & (np.abs(lon) < 165), 1e-3)
    check(clon % 360, lon % 360, band & (np.abs(lon) > 175), 1e-3)  # across the date line
    with np.errstate(divide="ignore"):
        north, south = (cells @ A) / cells[:, 2], (cells @ A) / -cells[:, 2]
    check(north, (targets @ A) / targets[:, 2], lat > 60, 1e-4)
    check(south, (targets @ A) / -targets[:, 2], lat < -60, 1e-4)
    # the nearest cell misses by far more than the tolerance
    near = build_sampler(Grid("unstructured", clat, clon), lon, lat, method="nearest")
    assert np.abs(near.sample(clat.astype(np.float32))[band] - lat[band]).max() > 1.0


@pytest.mark.parametrize("locate", ["trapezoid", "star"], indirect=True)
def test_linear_sampling_of_no_target_one_target_and_targets_all_round_the_globe(locate):
    rng = np.random.default_rng(8)
    clat = np.degrees(np.arcsin(rng.uniform(-1, 1, 3000)))
    clon = rng.uniform(-180, 180, 3000)
    grid = Grid("unstructured", clat, clon)
    values = clat.astype(np.float32)
    # only NaN targets: nothing to sample, an all-NaN result of the right length
    none = build_sampler(grid, np.array([np.nan, np.nan, 5.0]), np.array([1.0, np.nan, np.nan]))
    assert none.grid_key == grid.key and not none.valid.any()
    assert np.isnan(none.sample(values)).all() and none.sample(values).shape == (3,)
    # one target (sparser than the cells): the nearest cell, as on a global map's pixel
    one = build_sampler(grid, np.array([12.3]), np.array([-20.7]))
    assert one.grid_key == grid.key
    near = _great_circle_nearest(clon, clat, np.array([12.3]), np.array([-20.7]))
    np.testing.assert_array_equal(one.sample(values), values[near])
    # targets in antipodal pairs, denser than the cells (a global map's pixels): their mean
    # direction is zero, so there is no region centre; still exact in the band, at the date
    # line and the other longitude-sector edges too (each sector overlaps its neighbours by
    # three cell spacings of this coarse grid)
    lon = rng.uniform(-180, 180, 3500)
    lat = np.degrees(np.arcsin(rng.uniform(-0.8, 0.8, 3500)))
    lon, lat = np.concatenate([lon, (lon + 360.0) % 360.0 - 180.0]), np.concatenate([lat, -lat])
    both = build_sampler(grid, lon, lat)
    assert both.grid_key == grid.key
    np.testing.assert_allclose(both.sample(values), lat, atol=1e-4)


def test_a_subset_of_the_last_targets_reuses_its_triangulation(monkeypatch):
    """A map's contour grid (every 2nd pixel of its fill grid) costs no second triangulation;
    other targets, or another grid, get their own."""
    from framecast.render import sampling

    calls = []
    real = sampling._triangulated
    monkeypatch.setattr(sampling, "_LAST", {})
    monkeypatch.setattr(sampling, "_triangulated",
                        lambda grid, lon, lat: calls.append(grid.key) or real(grid, lon, lat))
    rng = np.random.default_rng(2)
    clat, clon = rng.uniform(40, 60, 800), rng.uniform(0, 20, 800)
    grid = Grid("unstructured", clat, clon)
    lon, lat = np.meshgrid(np.linspace(5, 15, 40), np.linspace(45, 55, 30))
    lon, lat = lon.ravel(), lat.ravel()
    full = build_sampler(grid, lon, lat)
    sub = build_sampler(grid, np.append(lon[::2], [np.nan, 7.0]),
                        np.append(lat[::2], [50.0, np.nan]))
    assert calls == [grid.key]
    assert list(sub.valid[-2:]) == [False, False] and sub.valid[:-2].all()
    np.testing.assert_array_equal(sub.sample(clat)[:-2], full.sample(clat)[::2])
    build_sampler(grid, lon + 0.01, lat)
    other = Grid("unstructured", clat + 0.001, clon)
    build_sampler(other, lon, lat)
    assert calls == [grid.key, grid.key, other.key]
