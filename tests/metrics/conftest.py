"""Fixtures for the metrics tests: frame records and a throw-away PostgreSQL database."""

from __future__ import annotations

import pytest
import services

from framecast.records import FrameRecord


def make_records(model="icon-eu", run="2026-11-23T00:00:00+00:00", products=("t_2m", "pmsl"),
                 regions=("europe",), steps=range(0, 6), render_ms=100.0, try_number=1,
                 host="worker-1"):
    """Frame records with deterministic timings: render time grows a little with the step."""
    out = []
    for p in products:
        for reg in regions:
            for s in steps:
                out.append(FrameRecord(
                    model=model, run=run, product=p, region=reg, step=s,
                    path=f"{p}/{reg}/{s:03d}.png", load_ms=10.0, render_ms=render_ms + s,
                    encode_ms=5.0, upload_ms=1.0, bytes=1000 + s, host=host,
                    try_number=try_number, valid_time="",
                ))
    return out


@pytest.fixture
def pg_url():
    """A fresh PostgreSQL database for one test (unique name), dropped afterwards; a missing
    server fails the test (tests/services.py)."""
    name = services.new_database("fc_metrics_test")
    url = services.pg_url(name, "psycopg")
    yield url
    from framecast.metrics.store import get_engine

    get_engine(url).dispose()
    get_engine.cache_clear()
    services.drop_database(name)


@pytest.fixture
def make():
    """The record factory, as a fixture (test modules cannot import conftest)."""
    return make_records


def _load_stack_module():
    """Load airflow_stack.py under a unique name (test modules cannot import siblings)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "framecast_tests_metrics_airflow_stack"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, Path(__file__).with_name("airflow_stack.py"))
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="session")
def stack_mod():
    return _load_stack_module()
