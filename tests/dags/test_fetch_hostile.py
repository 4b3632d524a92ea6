"""Downloads from a hostile or broken upstream, against real loopback HTTP(S) servers.

Each case must fail the one file with an error naming the URL and the limit, within the
configured deadline, with bounded memory (tracemalloc peak, server included) and with nothing
left in the destination folder; limits fail at once instead of being retried.
"""

from __future__ import annotations

import bz2
import importlib.util
import shutil
import time
import tracemalloc
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.catalog import HttpSpec, get_model, run_files
from framecast.errors import FetchError
from framecast.fetch import fetch_file
from framecast.upstream import UpstreamServer

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)  # the run conftest.SampleRuns generates
MiB = 1 << 20
LIMITS = HttpSpec(timeout=5, retries=3, backoff=0.01, max_bytes=8 * MiB,
                  max_decompressed_bytes=16 * MiB, deadline=6, max_backoff=0.05)
MEMORY_BOUND = 24 * MiB  # far below every hostile payload (64 MiB on the wire, 256 MiB bz2)

pytestmark = pytest.mark.timeout(120)


def _self_signed_cert(folder: Path) -> Path:
    """The publish tests' self-signed certificate for 127.0.0.1 (cert and key in one PEM)."""
    path = Path(__file__).resolve().parents[1] / "publish" / "conftest.py"
    spec = importlib.util.spec_from_file_location("publish_conftest_cert", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.self_signed_cert(folder)


@pytest.fixture
def upstream(sample_runs, tmp_path):
    """A private copy of the ICON-EU sample run (cases replace files in it) and its files."""
    root = tmp_path / "upstream"
    shutil.copytree(sample_runs.get("icon-eu"), root)
    files = run_files(get_model("icon-eu"), RUN, ["t2m"], steps=[0])
    return root, files[0]


@pytest.fixture(scope="module")
def bz2_bomb() -> bytes:
    """256 MiB of a GRIB-looking header and zeros, compressed to a few hundred bytes."""
    c = bz2.BZ2Compressor(9)
    parts = [c.compress(b"GRIB" + bytes(12))]
    zeros = bytes(MiB)
    parts += [c.compress(zeros) for _ in range(256)]
    parts.append(c.flush())
    return b"".join(parts)


def _fetch(url: str, rf, dest: Path, http: HttpSpec = LIMITS, sleep=time.sleep):
    """fetch_file, returning (error, seconds, peak traced bytes)."""
    tracemalloc.start()
    t0 = time.monotonic()
    try:
        with pytest.raises(FetchError) as info:
            fetch_file(url, rf, dest, http=http, sleep=sleep)
    finally:
        seconds = time.monotonic() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return str(info.value), seconds, peak


def _nothing_left(dest: Path) -> None:
    assert [p for p in dest.rglob("*") if p.is_file()] == []


def test_oversized_file_fails_at_once(upstream, tmp_path):
    root, rf = upstream
    big = root / rf.url_path
    with open(big, "wb") as fh:  # 64 MiB, well over max_bytes
        for _ in range(64):
            fh.write(bz2.compress(b"x") + bytes(MiB - 40))
    dest = tmp_path / "dest"
    with UpstreamServer(root) as server:
        msg, seconds, peak = _fetch(server.url, rf, dest)
        gets = len(server.gets(".bz2"))
    assert "http.max_bytes" in msg and rf.url_path in msg, msg
    assert seconds < LIMITS.deadline
    assert peak < MEMORY_BOUND, peak
    assert gets == 1  # a limit is not retried
    _nothing_left(dest)


def test_oversized_body_without_length_is_cut_at_the_cap(upstream, tmp_path):
    """No Content-Length to refuse up front: the cap on bytes read stops it."""
    root, rf = upstream
    dest = tmp_path / "dest"
    http = replace(LIMITS, max_bytes=4096, deadline=30)
    with UpstreamServer(root) as server:
        server.faults.trickle_interval = 0.0005  # fast: the cap, not the deadline, must stop it
        server.trickle(rf.url_path)
        msg, seconds, peak = _fetch(server.url, replace(rf, compression="none"), dest, http)
    assert "http.max_bytes" in msg, msg
    assert seconds < http.deadline
    _nothing_left(dest)


def test_bz2_bomb_is_stopped_at_the_decompressed_cap(upstream, tmp_path, bz2_bomb):
    root, rf = upstream
    (root / rf.url_path).write_bytes(bz2_bomb)
    dest = tmp_path / "dest"
    with UpstreamServer(root) as server:
        msg, seconds, peak = _fetch(server.url, rf, dest)
        gets = len(server.gets(".bz2"))
    assert len(bz2_bomb) < 4096
    assert "http.max_decompressed_bytes" in msg and rf.url_path in msg, msg
    assert seconds < LIMITS.deadline
    assert peak < MEMORY_BOUND, peak
    assert gets == 1
    _nothing_left(dest)


def test_never_ending_trickle_fails_at_the_deadline(upstream, tmp_path):
    root, rf = upstream
    dest = tmp_path / "dest"
    http = replace(LIMITS, deadline=3)
    with UpstreamServer(root) as server:
        server.trickle(rf.url_path)  # one byte every 50 ms: the read timeout never fires
        msg, seconds, peak = _fetch(server.url, replace(rf, compression="none"), dest, http)
    assert "http.deadline" in msg and rf.url_path in msg, msg
    assert http.deadline <= seconds < http.deadline + 2, seconds
    assert peak < MEMORY_BOUND, peak
    _nothing_left(dest)


def test_https_to_http_redirect_is_refused(upstream, tmp_path, monkeypatch):
    root, rf = upstream
    pem = _self_signed_cert(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(pem))  # trust the test server's certificate
    dest = tmp_path / "dest"
    with UpstreamServer(root) as plain, UpstreamServer(root, tls=(pem, None)) as secure:
        assert secure.url.startswith("https://")
        # the TLS server itself works: the file downloads and validates
        ok = fetch_file(secure.url, rf, tmp_path / "ok", http=LIMITS)
        assert ok.status == "downloaded"
        secure.redirect(rf.url_path, f"{plain.url}/{rf.url_path}")
        msg, seconds, _ = _fetch(secure.url, rf, dest)
        plain_requests = plain.requests
    assert "refusing redirect from https to http" in msg, msg
    assert seconds < LIMITS.deadline
    assert plain_requests == []  # the plain-http URL was never requested
    _nothing_left(dest)


def test_backoff_is_capped_and_stops_at_the_deadline(upstream, tmp_path):
    root, rf = upstream
    slept: list[float] = []
    http = replace(LIMITS, retries=6, backoff=30.0, max_backoff=0.2, deadline=30)
    with UpstreamServer(root) as server:
        server.fail(rf.url_path, times=3, status=503)
        res = fetch_file(server.url, rf, tmp_path / "dest", http=http, sleep=slept.append)
    assert res.status == "downloaded" and res.attempts == 4
    assert slept == [0.2, 0.2, 0.2]  # 30, 60, 120 s uncapped
    # a back-off that would end after the deadline is not slept: the file fails at once
    http = replace(LIMITS, retries=6, backoff=30.0, max_backoff=60.0, deadline=5)
    with UpstreamServer(root) as server:
        server.fail(rf.url_path, times=5, status=503)
        msg, seconds, _ = _fetch(server.url, rf, tmp_path / "dest2", http, sleep=slept.append)
    assert "http.deadline" in msg and seconds < http.deadline, msg
    _nothing_left(tmp_path / "dest2")


def test_oversized_idx_is_refused(sample_runs, tmp_path):
    root = tmp_path / "gfs"
    shutil.copytree(sample_runs.get("gfs"), root)
    rf = run_files(get_model("gfs"), RUN, ["t2m"], steps=[1])[0]
    idx = root / (rf.url_path + ".idx")
    line = idx.read_text().splitlines()[0] + "\n"
    idx.write_text(line * (6 * MiB // len(line)))  # a 6 MiB "inventory"
    with UpstreamServer(root) as server:
        msg, seconds, peak = _fetch(server.url, rf, tmp_path / "dest")
    assert "index size limit" in msg and ".idx" in msg, msg
    assert peak < MEMORY_BOUND, peak
    _nothing_left(tmp_path / "dest")


def test_limits_are_configurable_per_model(tmp_path):
    from framecast.catalog import load_models
    from framecast.errors import SpecError

    src = (Path(__file__).resolve().parents[2] / "include" / "framecast" / "config"
           / "models.yaml").read_text()
    custom = src.replace("  icon-eu:\n", "  icon-eu:\n    http: {max_bytes: 1234, deadline: 7,"
                         " max_decompressed_bytes: 5678, max_backoff: 3}\n", 1)
    (tmp_path / "m.yaml").write_text(custom)
    spec = load_models(tmp_path / "m.yaml")["icon-eu"]
    assert (spec.http.max_bytes, spec.http.max_decompressed_bytes, spec.http.deadline,
            spec.http.max_backoff) == (1234, 5678, 7.0, 3.0)
    (tmp_path / "bad.yaml").write_text(custom.replace("max_bytes: 1234", "max_bytes: -1"))
    with pytest.raises(SpecError, match="max_bytes"):
        load_models(tmp_path / "bad.yaml")


def test_upstream_connections_default_to_https():
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "plugins"))
    from framecast_airflow.hooks import base_url_from_connection

    assert base_url_from_connection("opendata.dwd.de", None, None, {}) == "https://opendata.dwd.de"
    assert base_url_from_connection("mirror", 8080, "http", {}) == "http://mirror:8080"
    for spec in __import__("framecast.catalog", fromlist=["x"]).load_models().values():
        assert spec.default_base_url.startswith("https://"), spec.name


def test_validation_reads_one_message_at_a_time(upstream, tmp_path):
    """A 40-message file is validated with memory for about one message, not the file."""
    from framecast.fetch import validate_file

    root, rf = upstream
    message = bz2.decompress((root / rf.url_path).read_bytes())
    big = tmp_path / "many.grib2"
    big.write_bytes(message * 40)
    tracemalloc.start()
    try:
        validate_file(big, 40, rf.expect)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert big.stat().st_size == 40 * len(message)
    assert peak < 4 * len(message), (peak, len(message))
