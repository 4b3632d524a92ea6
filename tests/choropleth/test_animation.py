"""End to end: a COVID-shaped per-country daily table (200 countries x 1,000 days) in SQLite and
PostgreSQL animates correctly. Sampled frames of the MP4 are decoded and known countries'
interior pixels must show the colour of the class their (independently computed) value falls in.
"""

from __future__ import annotations

import uuid
from datetime import date
from pathlib import Path

import matplotlib
import numpy as np
import pytest
import services
from sqlalchemy import create_engine

from framecast.choropleth.pipeline import finish, prepare, render_segment, run_animation
from framecast.choropleth.raster import make_layout
from framecast.choropleth.sample import country_codes, load_table, series
from framecast.choropleth.spec import spec_from_dict
from framecast.errors import DataError, RenderError, SourceError

DAYS = 1000
DAY0 = date(2020, 1, 1)
CHECK = ("USA", "BRA", "RUS", "CAN", "AUS", "CHN", "IND", "KAZ", "FRA", "NOR", "DZA", "ARG")
BREAKS = [10, 50, 100, 250, 500]
W, H = 640, 360


@pytest.fixture(scope="module")
def codes():
    return country_codes(200)


@pytest.fixture(scope="module")
def sqlite_url(tmp_path_factory, codes):
    path = tmp_path_factory.mktemp("db") / "covid.sqlite"
    path.touch()
    url = f"sqlite:///{path}"
    load_table(url, "covid_daily", codes, DAYS, warts=True)
    return url


@pytest.fixture(scope="module")
def pg_table(codes):
    """(URL, table) of the daily table in a uniquely named PostgreSQL database."""
    with services.temp_database("fc_covid", "psycopg2") as url:
        table = f"fc_covid_{uuid.uuid4().hex[:10]}"
        load_table(url, table, codes, DAYS)
        yield url, table
        create_engine(url).dispose()


def _spec(url, table, **over):
    d = {"name": "covid", "source": {"url": url, "table": table, "code_column": "code",
                                     "time_column": "date", "metric": "value",
                                     "aggregate": "mean"},
         "interval": "week", "start": "2020-01-06", "end": "2022-09-26", "size": [W, H],
         "style": {"breaks": BREAKS, "cmap": "YlOrRd", "title": "Week of {time:%d %b %Y}",
                   "caption": "{count} countries"}}
    d.update(over)
    return spec_from_dict(d, "test.yaml")


@pytest.fixture(scope="module")
def interior_pixels():
    """A pixel deep inside each checked country, computed without the renderer: the pole of
    inaccessibility of the country's largest part in Natural Earth (shapely), projected to
    Robinson with pyproj and placed in the layout's equal-aspect map box (tests/oracles.py).
    A country drawn in the wrong place (a wrong projection, a shifted or flipped raster, a
    wrong code-to-country join) shows the wrong colour there."""
    from oracles import country_points, global_map_pixel, metres_to_pixels

    from framecast.choropleth.style import style_from_dict

    style = style_from_dict({"breaks": BREAKS, "caption": "x"})
    rect = make_layout(W, H, style).map_rect
    out = {}
    for code, p in country_points(CHECK).items():
        # away from borders, where H.264 chroma subsampling blends neighbours
        assert metres_to_pixels(p.clearance, rect, W, H) >= 3, code
        out[code] = global_map_pixel(p, rect, W, H)
    return out


def _palette(cmap: str, n: int) -> np.ndarray:
    rgba = matplotlib.colormaps[cmap](np.linspace(0, 1, n))
    return np.round(rgba[:, :3] * 255)


def _check_frames(video: Path, decode, expected: dict[int, dict[str, float]], pixels,
                  cmap: str) -> None:
    pal = np.vstack([_palette(cmap, len(BREAKS) + 1), [200, 200, 200]])
    frames = decode(video, list(expected), W, H)
    for i, per_code in expected.items():
        for code, value in per_code.items():
            y, x = pixels[code]
            got = np.median(frames[i][y - 1:y + 2, x - 1:x + 2].reshape(-1, 3), axis=0)
            want = sum(value >= b for b in BREAKS)
            nearest = int(np.argmin(np.abs(pal - got).sum(axis=1)))
            assert nearest == want, (i, code, value, got, pal[want])
            assert np.abs(got - pal[want]).max() <= 24, (i, code, got, pal[want])


@pytest.mark.slow
def test_sqlite_weekly_mean_parallel_segments(sqlite_url, codes, tmp_path, decode, nframes,
                                              interior_pixels):
    spec = _spec(sqlite_url, "covid_daily", render={"min_chunk_frames": 10})
    summary = run_animation(spec, tmp_path / "out", workers=2, chunks=3)
    video = Path(summary["outputs"]["mp4"])
    assert summary["frames"] == 143 and summary["segments"] == 3
    assert nframes(video) == 143
    start = (date(2020, 1, 6) - DAY0).days
    expected = {}
    for i in (3, 20, 47, 70, 100, 142):
        d0 = start + 7 * i
        expected[i] = {code: float(np.mean(series(code, DAYS)[d0:min(d0 + 7, DAYS)]))
                       for code in CHECK}
    _check_frames(video, decode, expected, interior_pixels, "YlOrRd")
    src = summary["source"]
    assert src["null_values"] == 11 and src["non_numeric"] == 12
    assert {"OWID_WRL", "OWID_EUR", "XXA"} <= set(src["unknown_codes"])
    assert any("OWID_WRL" in w for w in src["warnings"])
    assert not list((tmp_path / "out").glob(".*"))  # work dir and temp files cleaned up


@pytest.mark.slow
def test_postgres_daily_last_subset(pg_table, tmp_path, decode, nframes, interior_pixels):
    pg_url, pg_table = pg_table
    spec = _spec(pg_url, pg_table, interval="day", start="2020-03-01", end="2020-06-08",
                 source={"url": pg_url, "table": pg_table, "code_column": "code",
                         "time_column": "date", "metric": "value", "aggregate": "last",
                         "chunk_rows": 500},
                 style={"breaks": BREAKS, "cmap": "viridis", "caption": "{count}"}, outputs={"mp4": True,
                                                                      "gif": {"width": 320}})
    summary = run_animation(spec, tmp_path / "out", workers=1)
    video = Path(summary["outputs"]["mp4"])
    assert nframes(video) == 100
    gif = Path(summary["outputs"]["gif"])
    start = (date(2020, 3, 1) - DAY0).days
    expected = {i: {code: float(series(code, DAYS)[start + i]) for code in CHECK}
                for i in (0, 33, 66, 99)}
    _check_frames(video, decode, expected, interior_pixels, "viridis")
    # The GIF (320 px wide): every frame there, same colours at the same (scaled) places.
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 100 and im.size == (320, 180)
        pal = np.vstack([_palette("viridis", len(BREAKS) + 1), [200, 200, 200]])
        for i, per_code in expected.items():
            im.seek(i)
            rgb = np.asarray(im.convert("RGB"))
            for code, value in per_code.items():
                y, x = interior_pixels[code]
                got = np.median(rgb[y // 2 - 1:y // 2 + 2, x // 2 - 1:x // 2 + 2].reshape(-1, 3),
                                axis=0)
                want = sum(value >= b for b in BREAKS)
                assert int(np.argmin(np.abs(pal - got).sum(axis=1))) == want, (i, code, got)
    assert summary["source"]["unknown_codes"]  # NE 110m lacks small countries: reported
    assert summary["source"]["null_values"] == 0


def test_failed_segment_publishes_nothing(sqlite_url, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "covid.mp4").write_bytes(b"last good video")
    spec = _spec(sqlite_url, "covid_daily", start="2020-03-02", end="2020-06-01",
                 render={"chunks": 2, "min_chunk_frames": 1})
    plan = prepare(spec, tmp_path / "work")
    assert len(plan.chunks) == 2
    render_segment(spec, plan, 0)
    gone = spec.with_url("postgresql+psycopg2://postgres@127.0.0.1:1/test")
    with pytest.raises(SourceError, match="cannot connect"):
        render_segment(gone, plan, 1)
    segs = sorted(p.name for p in (tmp_path / "work" / "segments").iterdir())
    assert segs == ["seg_00000.json", "seg_00000.mp4"]
    with pytest.raises(RenderError, match="missing"):
        finish(spec, plan, out)
    assert (out / "covid.mp4").read_bytes() == b"last good video"
    assert sorted(p.name for p in out.iterdir()) == ["covid.mp4"]


def test_range_without_data_is_a_clear_error(sqlite_url, tmp_path):
    spec = _spec(sqlite_url, "covid_daily", start="2030-01-07", end="2030-03-04")
    with pytest.raises(DataError, match="no numeric 'value' values in covid_daily"):
        run_animation(spec, tmp_path / "out")
    assert not any(p.suffix == ".mp4" for p in (tmp_path / "out").rglob("*"))


@pytest.mark.parametrize(("interval", "start", "end", "freq"), [
    ("week", "2020-01-06", "2022-09-26", "7D"),
    ("day", "2020-03-01", "2020-06-08", "D"),
    ("month", "2020-01-01", "2022-09-26", "MS"),
    ("6h", "2020-02-27", "2020-03-02", "6h"),
])
def test_spec_timeline_frames_match_a_calendar(interval, start, end, freq):
    """The spec's frames start where pandas' calendar says (leap day, month lengths, the
    inclusive end): frame count, every frame's start and the end of the last frame. An
    off-by-one in the count or a month step of 30 days fails here."""
    import pandas as pd

    tl = _spec("sqlite://", "t", interval=interval, start=start, end=end).timeline
    want = list(pd.date_range(start, end, freq=freq).to_pydatetime())
    assert len(tl) == len(want)
    assert [tl.time(i) for i in range(len(tl))] == want
    nxt = pd.date_range(want[-1], periods=2, freq=freq)[1].to_pydatetime()
    assert tl.time(len(tl)) == nxt
