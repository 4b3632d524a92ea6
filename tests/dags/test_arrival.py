"""The local upstream replays a run as it arrives: each file appears at its step's offset."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.arrival import ArrivalTable, load_arrival, parse_table, release_schedule
from framecast.catalog import get_model, run_files
from framecast.errors import SpecError
from framecast.sampledata import generate_run
from framecast.upstream import UpstreamServer

RUN = datetime(2026, 11, 30, 0, tzinfo=UTC)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_shipped_tables_follow_the_real_pattern():
    """ICON-EU: step 0 two hours after the run, +120 one hour later; linear in between."""
    t = load_arrival("icon-eu")
    assert t.offset(0).total_seconds() == 2 * 3600
    assert t.offset(120).total_seconds() == 3 * 3600
    assert t.offset(None) == t.offset(0)  # time-invariant files come with the first step
    # halfway between the points (0, 2h) and (78, 2h45m): 2h22m30s
    assert t.offset(39).total_seconds() == 2 * 3600 + 22.5 * 60
    assert t.offset(500) == t.offset(120)
    g = load_arrival("gfs")
    assert g.offset(0).total_seconds() == 3.5 * 3600 and g.offset(384).total_seconds() == 5 * 3600
    for model in ("icon-eu", "icon", "gfs"):
        offsets = [load_arrival(model).offset(s) for s in get_model(model).steps]
        assert offsets == sorted(offsets), model


def test_bad_tables_are_refused_with_the_place():
    with pytest.raises(SpecError, match=r"x\[1\]: steps must increase"):
        parse_table("m", [[0, "2h"], [0, "3h"]], "x")
    with pytest.raises(SpecError, match=r"x\[0\]: expected a duration"):
        parse_table("m", [[0, "soon"]], "x")
    with pytest.raises(SpecError, match="no arrival table for model 'nope'"):
        load_arrival("nope")
    with pytest.raises(SpecError, match="speed-up must be positive"):
        release_schedule([], ArrivalTable("m", ((0, 0.0),)), start=0, speedup=0)


def test_gfs_index_files_appear_with_their_grib_file():
    files = run_files(get_model("gfs"), RUN, ["t2m", "msl"], steps=[0, 120])
    sched = release_schedule(files, load_arrival("gfs"), start=1000.0, speedup=60)
    for f in files:
        assert sched[f.url_path + ".idx"] == sched[f.url_path]
    # 45 min between step 0 and +120, at 60x: 45 s
    assert sched[files[-1].url_path] - sched[files[0].url_path] == pytest.approx(45.0)


def test_replayed_run_releases_each_step_at_its_offset(tmp_path: Path):
    """A real HTTP server, files below a base-URL prefix: step 0 at once, +40 later.

    Expected delay computed by hand from the table: (2h45m - 2h) * 40/78 = 1384.6 s, at a
    speed-up of 600: 2.31 s after step 0.
    """
    root = tmp_path / "up"
    generate_run("icon-eu", RUN, [0, 40], root / "weather/nwp/icon-eu/grib",
                 variables=["t2m"], bz2=True)
    with UpstreamServer(root) as up:
        t0 = time.time()
        sched = up.replay_run("icon-eu", "2026113000", speedup=600, start=t0)
        first = "weather/nwp/icon-eu/grib/00/t_2m/icon-eu_europe_regular-lat-lon_single-level_2026113000_000_T_2M.grib2.bz2"
        late = first.replace("_000_", "_040_")
        assert sched[late] - sched[first] == pytest.approx(45 * 60 * 40 / 78 / 600)
        assert _status(f"{up.url}/{first}") == 200
        assert _status(f"{up.url}/{late}") == 404
        while time.time() < sched[late] - 0.3:
            assert _status(f"{up.url}/{late}") == 404
            time.sleep(0.2)
        time.sleep(0.5)
        assert _status(f"{up.url}/{late}") == 200
