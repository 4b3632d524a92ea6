"""Time columns of every SQL type give the same animation: a World-Bank-shaped yearly table
(1960-1989: negative and positive Unix times) stored as DATE, TIMESTAMPTZ (a -05:00 offset;
PostgreSQL's session zone is America/New_York), epoch seconds, epoch milliseconds (and float
milliseconds), in SQLite and PostgreSQL. All videos must decode to identical frames, and
those frames must show each country's class colour at its cartopy-projected representative
point.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from framecast.choropleth.pipeline import run_animation
from framecast.choropleth.raster import make_layout
from framecast.choropleth.source import (
    SourceSpec,
    SourceStats,
    inspect_source,
    make_engine,
    stream_metric_frames,
)
from framecast.choropleth.spec import spec_from_dict
from framecast.choropleth.timeline import Timeline, parse_interval
from framecast.errors import DataError

W, H = 800, 440
FRAMES = (0, 9, 10, 17, 29)  # 1960, 1969, 1970 (epoch 0), 1977, 1989


def _spec(url, table, realdata, **over):
    breaks, cmap = realdata.METRICS["gdp"]
    d = {"name": "gdp", "source": {"url": url, "table": table, "code_column": "code",
                                   "time_column": "t", "metric": "gdp", "aggregate": "mean"},
         "interval": "year", "start": "1960-01-01", "end": "1989-01-01", "size": [W, H],
         "style": {"breaks": breaks, "cmap": cmap, "title": "{time:%Y}"}}
    d.update(over)
    return spec_from_dict(d, "gdp.yaml")


@pytest.fixture(scope="module")
def tables(tmp_path_factory, pg_db, realdata):
    """(url, table, storage) for the four storages in both databases."""
    db = tmp_path_factory.mktemp("db") / "wb.sqlite"
    out = []
    for storage in realdata.TIME_STORAGES:
        for url in (f"sqlite:///{db}", pg_db):
            table = f"wb_{storage}_{uuid.uuid4().hex[:6]}"
            realdata.load(url, table, storage)
            out.append((url, table, storage))
    return out


def test_time_kinds_are_detected(tables):
    want = {"date": {"date", "iso_text"}, "timestamptz": {"timestamptz"},
            "epoch_s": {"epoch_s"}, "epoch_ms": {"epoch_ms"}, "epoch_ms_float": {"epoch_ms"}}
    for url, table, storage in tables:
        eng = make_engine(url)
        spec = inspect_source(eng, SourceSpec(url=url, table=table, time_column="t",
                                              metric="gdp"))
        eng.dispose()
        assert spec.time_kind in want[storage], (url, storage, spec.time_kind)


@pytest.mark.parametrize("aggregate", ["sum", "last"])
def test_fixed_interval_buckets_agree_with_numpy(tables, realdata, aggregate):
    """A 45-day interval across 1969/1970 (epoch 0): every storage, both databases, gives the
    per-frame sums (or latest values) numpy computes from the generated rows, for two metrics
    read in one pass."""
    tl = Timeline(datetime(1968, 11, 20), datetime(1971, 8, 1), parse_interval("45d"))
    rows = realdata.rows()
    codes = [r[0] for r in realdata.ROWS]
    want = np.full((2, len(tl), len(codes)), np.nan)
    for code, t, vals in sorted(rows, key=lambda r: r[1]):
        f = int((t.replace(tzinfo=None) - tl.start).total_seconds() // (45 * 86400))
        if 0 <= f < len(tl):
            j = codes.index(code)
            for k, metric in enumerate(("gdp", "pop")):
                old = 0.0 if aggregate == "last" or np.isnan(want[k, f, j]) else want[k, f, j]
                want[k, f, j] = old + vals[metric]
    from framecast.choropleth.codes import CodeMatcher
    from framecast.choropleth.geography import load_countries

    matcher = CodeMatcher(load_countries("110m"), "iso_a3")
    cols = [matcher.index_of(c) for c in codes]
    for url, table, storage in tables:
        spec = SourceSpec(url=url, table=table, time_column="t", metrics=("gdp", "pop"),
                          aggregate=aggregate)
        eng = make_engine(url)
        got = np.array([v[:, cols] for _, v in stream_metric_frames(
            eng, spec, tl, matcher, 0, len(tl), SourceStats())]).transpose(1, 0, 2)
        eng.dispose()
        np.testing.assert_array_equal(got, want, err_msg=f"{url} {storage} {aggregate}")


@pytest.mark.slow
def test_four_storages_two_databases_identical_frames(tables, tmp_path, realdata, oracles,
                                                       decode, nframes):
    videos = {}
    for url, table, storage in tables:
        spec = _spec(url, table, realdata)
        summary = run_animation(spec, tmp_path / f"{storage}_{url[:6]}", workers=1)
        assert summary["frames"] == 30
        videos[(url.split(":")[0], storage)] = Path(summary["outputs"]["mp4"])
    ref_key = next(iter(videos))
    ref = decode(videos[ref_key], list(range(30)), W, H)
    for key, video in videos.items():
        assert nframes(video) == 30
        got = decode(video, list(range(30)), W, H)
        for i in range(30):
            assert np.array_equal(got[i], ref[i]), (key, ref_key, i)
    # The shared frames are right: each country's class colour at its representative point.
    breaks, cmap = realdata.METRICS["gdp"]
    style = _spec("sqlite://", "x", realdata).style
    pixels = oracles.representative_pixels(
        realdata.country_geoms(oracles.natural_earth_records()), W, H,
        make_layout(W, H, style).map_rect)
    assert len(pixels) >= 35, sorted(pixels)
    checked = 0
    for i in FRAMES:
        checked += oracles.check_frame(ref[i], pixels, realdata.frame_values("gdp", i),
                                       breaks, cmap, f"frame {i}")
    assert checked >= 5 * 35


def test_text_column_declared_as_time_is_refused(tables, tmp_path, realdata):
    url, table, _ = tables[0]
    spec = _spec(url, table, realdata)
    bad = spec_from_dict({"name": "gdp", "source": {"url": url, "table": table,
                                                    "time_column": "label", "metric": "gdp"},
                          "start": "1960-01-01", "end": "1961-01-01"}, "gdp.yaml")
    with pytest.raises(DataError, match=r"time column 'label' holds text values such as "
                                        r"'row AFG'"):
        run_animation(bad, tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.mp4"))
    epoch = next((u, t) for u, t, s in tables if s == "date")
    with pytest.raises(DataError, match="time_unit 's' is for epoch number columns"):
        run_animation(spec_from_dict(
            {"name": "g", "source": {"url": epoch[0], "table": epoch[1], "time_column": "t",
                                     "metric": "gdp", "time_unit": "s"},
             "start": "1960-01-01", "end": "1961-01-01"}, "g.yaml"), tmp_path / "out2")
    assert spec.source.time_unit is None
