"""The disk cache of static map layers: a map built from the cache renders the same pixels as
one cartopy draws afresh, later processes find the entry, and a damaged entry is redrawn."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from framecast.field import Field, Grid
from framecast.products import load_catalog
from framecast.render import frame as frame_mod
from framecast.render import static_cache
from framecast.render.frame import MapFrame

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
CATALOG = load_catalog()
GRID = Grid("regular", 29.5 + np.arange(165) * 0.25, -23.5 + np.arange(345) * 0.25)


def _fields() -> dict[str, Field]:
    lon, lat = np.meshgrid(GRID.lons, GRID.lats)
    wave = np.sin(np.radians(2 * lon)) * np.cos(np.radians(3 * lat))
    return {"t2m": Field("t2m", "K", (300 - 0.7 * np.abs(lat)).astype(np.float32), GRID, RUN,
                         0, RUN),
            "msl": Field("msl", "Pa", (101300 + 2500 * wave).astype(np.float32), GRID, RUN, 0,
                         RUN)}


def _render(prod, region) -> np.ndarray:
    frame_mod.forget_shared()  # as in a new worker process
    return MapFrame(prod, region).render(_fields(), model="icon-eu", run_time=RUN, step=0)


def test_cached_map_renders_the_pixels_cartopy_draws(tmp_path, monkeypatch):
    prod, region = CATALOG.product("t2m_mslp"), CATALOG.region("germany")
    monkeypatch.delenv(static_cache.ENV, raising=False)
    drawn = _render(prod, region)  # no cache: cartopy lays the map out

    monkeypatch.setenv(static_cache.ENV, str(tmp_path))
    first = _render(prod, region)  # miss: drawn, then stored
    entries = list(tmp_path.glob("*.npz"))
    # the layers, and the pixel positions at full and contour resolution; no temporary left
    assert len(entries) == 3 and not list(tmp_path.glob(".*.tmp"))

    def no_drawing(self):
        raise AssertionError("static layers drawn although the cache holds them")

    monkeypatch.setattr(MapFrame, "_draw_static", no_drawing)
    monkeypatch.setattr(frame_mod, "contains_xy", lambda *a: no_drawing(None))  # nor projecting
    cached = _render(prod, region)  # hit: no cartopy drawing at all
    np.testing.assert_array_equal(first, drawn)
    np.testing.assert_array_equal(cached, drawn)

    # another product size is another map: never served the cached one
    with pytest.raises(AssertionError, match="drawn although"):
        _render(replace(prod, size=(640, 480)), region)


def test_damaged_entry_is_redrawn_and_replaced(tmp_path, monkeypatch):
    prod, region = CATALOG.product("t2m_mslp"), CATALOG.region("europe")
    monkeypatch.setenv(static_cache.ENV, str(tmp_path))
    good = _render(prod, region)
    entries = sorted(tmp_path.glob("*.npz"))
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[:1000])  # truncated, as by a full disk
    np.testing.assert_array_equal(_render(prod, region), good)
    assert all(e.stat().st_size > 1000 for e in entries)  # rewritten whole


def test_key_is_stable_across_processes():
    """Task processes must find what an earlier process stored (no per-process hash salt)."""
    code = ("from pathlib import Path; from framecast.products import load_catalog; "
            "from framecast.render import static_cache, frame; c = load_catalog(); "
            "print(static_cache.cache_key(c.product('clouds'), c.region('europe'), "
            "Path(frame.__file__)))")
    keys = set()
    for seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True)
        keys.add(out.stdout.strip())
    here = static_cache.cache_key(CATALOG.product("clouds"), CATALOG.region("europe"),
                                  Path(frame_mod.__file__))
    assert keys == {here}


def test_key_ignores_what_a_process_did_with_the_spec_before():
    """A colormap that has drawn (its lookup table built lazily) keeps its key: a pickled spec
    changed then, so a process that had rendered named the same map differently."""
    from dataclasses import replace

    prod, region = CATALOG.product("precip_mslp"), CATALOG.region("germany")
    before = static_cache.cache_key(prod, region, Path(frame_mod.__file__))
    prod.layers[0].cmap(np.linspace(0, 1, 5))  # used, as by an earlier frame
    assert static_cache.cache_key(prod, region, Path(frame_mod.__file__)) == before
    # ... while anything the pixels depend on still changes it
    other = replace(prod, size=(prod.size[0] + 1, prod.size[1]))
    assert static_cache.cache_key(other, region, Path(frame_mod.__file__)) != before


def _icon_fields(division: int) -> dict[str, Field]:
    from framecast.icongrid import icosahedral_grid

    g = icosahedral_grid(division)
    grid = Grid("unstructured", g.clat, g.clon)
    wave = np.sin(np.radians(2 * g.clon)) * np.cos(np.radians(3 * g.clat))
    return {"t2m": Field("t2m", "K", (300 - 0.7 * np.abs(g.clat)).astype(np.float32), grid,
                         RUN, 0, RUN),
            "msl": Field("msl", "Pa", (101300 + 2500 * wave).astype(np.float32), grid, RUN, 0,
                         RUN)}


def test_unstructured_samplers_are_loaded_not_rebuilt(tmp_path, monkeypatch):
    """ICON's triangulated samplers (the bulk of a worker's set-up on R3B7) are stored once;
    a later worker renders the same pixels without triangulating, and neither another
    sampling method nor another grid is ever served those weights."""
    prod, region = CATALOG.product("t2m_mslp"), CATALOG.region("germany")
    fields = _icon_fields(24)
    monkeypatch.delenv(static_cache.ENV, raising=False)
    fresh = MapFrame(prod, region).render(fields, model="icon", run_time=RUN, step=0)

    monkeypatch.setenv(static_cache.ENV, str(tmp_path))
    frame_mod.forget_shared()  # each MapFrame below as if in a new worker process
    MapFrame(prod, region).render(fields, model="icon", run_time=RUN, step=0)
    assert len(list(tmp_path.glob("*.npz"))) == 5  # layers, 2 pixel grids, 2 samplers

    def no_building(*a, **k):
        raise AssertionError("sampler rebuilt although the cache holds it")

    monkeypatch.setattr(frame_mod, "build_sampler", no_building)
    frame_mod.forget_shared()
    cached = MapFrame(prod, region).render(fields, model="icon", run_time=RUN, step=0)
    np.testing.assert_array_equal(cached, fresh)

    monkeypatch.setattr(frame_mod, "SAMPLING", "nearest")
    frame_mod.forget_shared()
    with pytest.raises(AssertionError, match="rebuilt"):
        MapFrame(prod, region).render(fields, model="icon", run_time=RUN, step=0)
    monkeypatch.setattr(frame_mod, "SAMPLING", "linear")
    frame_mod.forget_shared()
    with pytest.raises(AssertionError, match="rebuilt"):
        MapFrame(prod, region).render(_icon_fields(25), model="icon", run_time=RUN, step=0)


def test_charts_of_one_process_share_map_points_and_samplers_but_only_on_the_same_map(
        monkeypatch):
    """Products on one map share its pixel positions and samplers; another map size or region
    never gets them; and a chart drawn after many others is the chart a fresh worker draws."""
    monkeypatch.delenv(static_cache.ENV, raising=False)
    region = CATALOG.region("germany")
    base = CATALOG.product("t2m_mslp")
    small = replace(base, size=(640, 480))
    fresh = {}
    for prod in (base, small):
        frame_mod.forget_shared()
        fresh[prod.size] = _render(prod, region)

    frame_mod.forget_shared()
    a, b = MapFrame(base, region), MapFrame(replace(base, name="t2m_mslp_copy"), region)
    c, d = MapFrame(small, region), MapFrame(base, CATALOG.region("europe"))
    for fr in (a, b, c, d):
        fr.render(_fields(), model="icon-eu", run_time=RUN, step=0)
    assert a.sampler(_fields()["t2m"], 1) is b.sampler(_fields()["t2m"], 1)
    assert a._grid_points(1)[2] is b._grid_points(1)[2]
    assert c.sampler(_fields()["t2m"], 1) is not a.sampler(_fields()["t2m"], 1)
    assert d.sampler(_fields()["t2m"], 1) is not a.sampler(_fields()["t2m"], 1)
    np.testing.assert_array_equal(
        MapFrame(base, region).render(_fields(), model="icon-eu", run_time=RUN, step=0),
        fresh[base.size])
    np.testing.assert_array_equal(
        MapFrame(small, region).render(_fields(), model="icon-eu", run_time=RUN, step=0),
        fresh[small.size])
