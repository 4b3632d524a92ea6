"""Natural Earth join (incl. its -99 quirks), colour scales, timelines and spec validation."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from framecast.choropleth.geography import load_countries
from framecast.choropleth.spec import spec_from_dict
from framecast.choropleth.style import resolve_scale, style_from_dict
from framecast.choropleth.timeline import Timeline, parse_interval, split_frames
from framecast.errors import SpecError


@pytest.mark.parametrize("scale", ["110m", "50m"])
def test_quirky_codes_join(scale):
    c = load_countries(scale)
    names = {code: c.names[c.index_of(code)] for code in
             ("FRA", "FR", "NOR", "NO", "KOS", "XK", "USA", "us", " de ", "CHN")}
    assert names["FRA"] == names["FR"] == "France"
    assert names["NOR"] == names["NO"] == "Norway"
    assert names["KOS"] == names["XK"] == "Kosovo"
    assert names["USA"] == names["us"] == "United States of America"
    assert names[" de "] == "Germany"
    assert c.index_of("OWID_WRL") is None and c.index_of("-99") is None


def test_match_reports_unknown_codes():
    known, unknown = load_countries("110m").match(["DEU", "ZZZ", "FRA", "OWID_WRL"])
    assert set(known) == {"DEU", "FRA"}
    assert unknown == ["OWID_WRL", "ZZZ"]


def test_binned_scale_classifies_with_breaks():
    st = style_from_dict({"breaks": [10, 100], "cmap": "viridis"})
    sc = resolve_scale(st, 0, 500)
    assert st.classes == 3 and len(sc.colors) == 3
    idx = sc.classify(np.array([0, 9.99, 10, 99, 100, 1e9, np.nan]))
    assert idx.tolist() == [0, 0, 1, 1, 2, 2, -1]
    assert sc.class_labels("{:.0f}") == ["< 10", "10 – 100", "≥ 100"]


def test_equal_interval_and_continuous_ranges():
    sc = resolve_scale(style_from_dict({"classes": 4}), 0.0, 100.0)
    assert sc.breaks == (25.0, 50.0, 75.0)
    cont = resolve_scale(style_from_dict({"kind": "continuous", "vmax": 10}), -5.0, 99.0)
    assert cont.vmin == -5.0 and cont.vmax == 10
    assert cont.classify(np.array([-5, 10, 50])).tolist() == [0, 255, 255]
    with pytest.raises(SpecError, match="positive"):
        resolve_scale(style_from_dict({"scheme": "log", "classes": 3}), -5.0, -1.0)


@pytest.mark.parametrize("bad, match", [
    ({"cmap": "NoSuchMap"}, "colormap"),
    ({"classes": 1}, "classes"),
    ({"breaks": [3, 1]}, "increasing"),
    ({"title": "{tme:%Y}"}, "style.title"),
    ({"nodata_color": "notacolour"}, "nodata_color"),
    ({"colour": "red"}, "unknown key"),
])
def test_style_errors_name_the_key(bad, match):
    with pytest.raises(SpecError, match=match):
        style_from_dict(bad)


def test_timeline_intervals():
    tl = Timeline(datetime(2020, 1, 1), datetime(2020, 1, 10), parse_interval("day"))
    assert len(tl) == 10 and tl.time(9) == datetime(2020, 1, 10)
    m = Timeline(datetime(2020, 11, 1), datetime(2021, 2, 15), parse_interval("month"))
    assert len(m) == 4 and m.time(3) == datetime(2021, 2, 1)
    assert parse_interval("6h").seconds == 21600 and parse_interval("1y").months == 12
    with pytest.raises(SpecError, match="empty date range"):
        Timeline(datetime(2020, 2, 1), datetime(2020, 1, 1), parse_interval("day"))
    with pytest.raises(SpecError, match="interval"):
        parse_interval("fortnightly")


def test_split_frames_covers_everything_in_order():
    chunks = split_frames(1003, 4)
    assert chunks[0][0] == 0 and chunks[-1][1] == 1003
    assert all(a[1] == b[0] for a, b in zip(chunks, chunks[1:], strict=False))
    assert split_frames(10, 4, min_chunk=5) == [(0, 5), (5, 10)]
    assert split_frames(0, 4) == []


def _doc(**over):
    d = {"name": "t", "source": {"url": "sqlite:///x.db", "table": "t"},
         "start": "2020-01-01", "end": "2020-02-01"}
    d.update(over)
    return d


@pytest.mark.parametrize("over, match", [
    ({"source": {"url": "sqlite:///x", "connection": "c", "table": "t"}}, "at most one"),
    ({"source": {"url": "sqlite:///x", "table": "t; DROP TABLE x"}}, "table"),
    ({"source": {"url": "sqlite:///x", "table": "t", "metric": "a+b"}}, "metric"),
    ({"source": {"url": "sqlite:///x", "table": "t", "aggregate": "median"}}, "aggregate"),
    ({"size": [1101, 600]}, "even"),
    ({"geography": {"projection": "gall"}}, "projection"),
    ({"end": "2019-01-01"}, "empty date range"),
    ({"colour": 1}, "unknown key"),
])
def test_spec_errors_name_file_and_key(over, match):
    with pytest.raises(SpecError, match=match) as ei:
        spec_from_dict(_doc(**over), "anims/t.yaml")
    assert "anims/t.yaml" in str(ei.value)


def test_shipped_example_specs_are_valid():
    from framecast.choropleth.spec import default_spec_dir, load_specs

    specs = load_specs(default_spec_dir())
    assert {s.name for s in specs} >= {"covid_daily", "covid_weekly"}
    assert all(s.connection for s in specs)
