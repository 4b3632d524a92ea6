"""Several metrics in one spec: one query pass over the table, one label raster, one video per
metric with its own style, each checked at cartopy-projected representative points."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from framecast.choropleth.pipeline import run_animation
from framecast.choropleth.raster import make_layout
from framecast.choropleth.spec import spec_from_dict
from framecast.errors import SourceError, SpecError

W, H = 800, 440
N = 12


def _doc(url, realdata, **over):
    d = {"name": "wb", "source": {"url": url, "table": "wb", "time_column": "t",
                                  "metrics": list(realdata.METRICS), "aggregate": "mean"},
         "interval": "year", "start": "1960-01-01", "end": f"{1960 + N - 1}-01-01",
         "size": [W, H], "style": {"title": "{time:%Y}", "legend_title": "shared"},
         "styles": {m: {"breaks": b, "cmap": c} for m, (b, c) in realdata.METRICS.items()},
         "render": {"crf": 12}}
    d.update(over)
    return d


@pytest.fixture(scope="module")
def url(tmp_path_factory, realdata):
    path = tmp_path_factory.mktemp("metrics") / "wb.sqlite"
    u = f"sqlite:///{path}"
    realdata.load(u, "wb", "timestamptz", "iso_a3")
    return u


@pytest.fixture
def queries():
    """Every SQL statement run in this process while the test runs."""
    seen: list[str] = []

    def hook(conn, cursor, statement, *args):
        seen.append(statement)

    event.listen(Engine, "before_cursor_execute", hook)
    yield seen
    event.remove(Engine, "before_cursor_execute", hook)


@pytest.mark.slow
def test_three_metrics_one_pass_three_correct_videos(url, tmp_path, realdata, oracles, decode,
                                                     nframes, queries):
    spec = spec_from_dict(_doc(url, realdata), "wb.yaml")
    summary = run_animation(spec, tmp_path / "out", workers=1)
    assert set(summary["outputs"]) == set(realdata.METRICS)
    # One pass: the frames of all three videos came from one aggregation query; prepare's
    # range check (fixed breaks: a plain scan) is also one query for all three metrics.
    frame_queries = [q for q in queries if "GROUP BY frame, code" in q and "ORDER BY" in q]
    assert len(frame_queries) == 1, len(frame_queries)
    range_queries = [q for q in queries if "MIN(x0)" in q]
    assert len(range_queries) == 1 and "MAX(x2)" in range_queries[0]
    assert len(queries) == 5, queries  # + columns, time range, distinct codes
    pixels = oracles.representative_pixels(
        realdata.country_geoms(oracles.natural_earth_records()), W, H,
        make_layout(W, H, spec.style_for("gdp")).map_rect)
    assert len(pixels) >= 35
    for metric, (breaks, cmap) in realdata.METRICS.items():
        video = Path(summary["outputs"][metric]["mp4"])
        assert video.name == f"wb_{metric}.mp4" and nframes(video) == N
        frames = decode(video, [0, 5, 11], W, H)
        for i, frame in frames.items():
            oracles.check_frame(frame, pixels, realdata.frame_values(metric, i), breaks, cmap,
                                f"{metric} frame {i}")
    assert [m["metric"] for m in summary["metrics"]] == list(realdata.METRICS)
    assert (tmp_path / "out" / "wb.summary.json").is_file()


def test_missing_metric_column_names_it(url, tmp_path, realdata):
    doc = _doc(url, realdata)
    doc["source"]["metrics"] = ["gdp", "gdpx"]
    doc["styles"] = {}
    with pytest.raises(SourceError, match=r"source.metrics: column\(s\) \['gdpx'\] not in wb "
                                          r".*its columns: \['code', 't', 'gdp', 'pop', "):
        run_animation(spec_from_dict(doc, "wb.yaml"), tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_styles_must_name_metrics(url, realdata):
    doc = _doc(url, realdata)
    doc["styles"]["gpd"] = {"cmap": "viridis"}
    with pytest.raises(SpecError, match=r"styles: key\(s\) \['gpd'\] name no metric; "
                                        r"metrics: \['gdp', 'pop', 'life'\]"):
        spec_from_dict(doc, "wb.yaml")


@pytest.mark.slow
def test_grid_layout_small_multiples_in_one_video(url, tmp_path, realdata, oracles, decode,
                                                  nframes):
    gw, gh = 1200, 800  # 2x2 cells of 600x400; the fourth cell stays background
    spec = spec_from_dict(_doc(url, realdata, layout="grid", size=[gw, gh]), "wb.yaml")
    assert spec.panel_size() == (600, 400)
    summary = run_animation(spec, tmp_path / "out", workers=1)
    video = Path(summary["outputs"]["mp4"])
    assert video.name == "wb.mp4" and nframes(video) == N
    frames = decode(video, [0, 7], gw, gh)
    geoms = realdata.country_geoms(oracles.natural_earth_records())
    for k, (metric, (breaks, cmap)) in enumerate(realdata.METRICS.items()):
        x0, y0 = spec.panel_origin(k)
        assert (x0, y0) == ((k % 2) * 600, (k // 2) * 400)
        pixels = oracles.representative_pixels(
            geoms, 600, 400, make_layout(600, 400, spec.style_for(metric)).map_rect)
        assert len(pixels) >= 25
        for i, frame in frames.items():
            oracles.check_frame(frame[y0:y0 + 400, x0:x0 + 600], pixels,
                                realdata.frame_values(metric, i), breaks, cmap,
                                f"{metric} panel frame {i}")
    empty = frames[0][420:780, 620:1180].reshape(-1, 3).astype(int)
    assert (abs(empty - 255) <= 3).all()  # the unused cell is the background
