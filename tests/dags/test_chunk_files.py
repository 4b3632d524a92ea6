"""What a chunk downloads: every variable at its own steps, and only what windowed charts read
at the earlier steps of its ``lookback_hours``. Checked end to end: the chunk's files, fetched
from the real local upstream into an empty folder, render both kinds of chart."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from framecast.catalog import (
    chunk_files,
    get_model,
    pipeline_chunks,
    window_variables,
)
from framecast.errors import DataError
from framecast.fetch import fetch_files
from framecast.render.runner import render_chunk
from framecast.sampledata import generate_run
from framecast.upstream import UpstreamServer

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
VARIABLES = ["t2m", "msl", "tp"]


def test_shipped_icon_eu_reads_earlier_steps_of_precipitation_snow_and_extremes_only():
    assert window_variables(get_model("icon-eu")) == (
        "rain_con", "rain_gsp", "sd", "snow_con", "snow_gsp", "tmax2m", "tmin2m", "tp")
    spec = replace(get_model("icon-eu"), products=("t2m_mslp", "wind850"))
    assert window_variables(spec) == ()


def test_a_later_chunk_fetches_the_window_inputs_it_renders_from(tmp_path):
    upstream = tmp_path / "upstream"
    generate_run("icon-eu", RUN, [0, 1, 2, 3], upstream, variables=VARIABLES, bz2=True)
    spec = replace(get_model("icon-eu"), steps=(0, 1, 2, 3), chunk_size=2, lookback_hours=3,
                   products=("t2m_mslp", "precip_1h"))
    chunk = pipeline_chunks(spec)[1]
    assert (chunk["steps"], chunk["inputs"]) == ([2, 3], [0, 1, 2, 3])
    assert window_variables(spec) == ("tp",)

    files = chunk_files(spec, RUN, chunk, VARIABLES, window_variables(spec))
    assert sorted((f.step, v) for f in files for v in f.variables) == sorted(
        [(0, "tp"), (1, "tp")] + [(s, v) for s in (2, 3) for v in VARIABLES])

    raw = tmp_path / "raw"
    with UpstreamServer(upstream) as server:
        fetch_files(server.url, files, raw)
    for product in ("t2m_mslp", "precip_1h"):
        records = render_chunk(raw, tmp_path / "frames", model="icon-eu", run_time=RUN,
                               product=product, region="germany", steps=chunk["steps"])
        assert [r.step for r in records] == [2, 3]
    # the earlier step is really read: without it the 1 h sum at +2 cannot be made
    (step1_tp,) = [f for f in files if (f.step, f.variables) == (1, ("tp",))]
    (raw / step1_tp.local_path).unlink()
    with pytest.raises(DataError, match="step 1"):
        render_chunk(raw, tmp_path / "frames2", model="icon-eu", run_time=RUN,
                     product="precip_1h", region="germany", steps=[2])
