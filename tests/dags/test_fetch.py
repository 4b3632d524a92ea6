"""Downloads against the real local upstream server: retries, corruption, ranges, idempotence."""

from __future__ import annotations

import bz2
import gzip
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from framecast.catalog import HttpSpec, get_model, run_files
from framecast.errors import FetchError, GribError
from framecast.fetch import (
    fetch_file,
    fetch_files,
    grib_message_count,
    idx_ranges,
    missing_files,
    parse_idx,
    present_prefix,
    validate_file,
)
from framecast.upstream import UpstreamServer

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)  # the run conftest.SampleRuns generates
FAST = HttpSpec(timeout=10, retries=4, backoff=0.01, max_backoff=0.05)  # see test_fetch_units


@pytest.fixture
def icon_eu(sample_runs):
    root = sample_runs.get("icon-eu")
    with UpstreamServer(root) as server:
        yield server, run_files(get_model("icon-eu"), RUN, ["t2m", "msl"], steps=[0, 1])


@pytest.fixture
def gfs(sample_runs):
    root = sample_runs.get("gfs")
    with UpstreamServer(root) as server:
        yield server, run_files(get_model("gfs"), RUN, ["t2m", "msl"], steps=[1, 2])


def _leftovers(dest: Path) -> list[Path]:
    return [p for p in dest.rglob("*") if p.name.startswith(".")]


def test_dwd_files_are_decompressed_verified_and_rerun_skips(icon_eu, tmp_path):
    server, files = icon_eu
    results = fetch_files(server.url, files, tmp_path, http=FAST)
    assert [r.status for r in results] == ["downloaded"] * 4
    for rf in files:
        local = tmp_path / rf.local_path
        served = bz2.decompress((server.root / rf.url_path).read_bytes())
        assert local.read_bytes() == served
        assert grib_message_count(local) == 1
    assert len(server.gets(".bz2")) == 4
    server.clear_log()
    again = fetch_files(server.url, files, tmp_path, http=FAST)
    assert [r.status for r in again] == ["skipped"] * 4
    assert server.requests == []  # a re-run does not even ask the server
    assert _leftovers(tmp_path) == []


def test_transient_500s_and_dropped_connections_are_retried(icon_eu, tmp_path):
    server, files = icon_eu
    server.fail(files[0].url_path, times=2, status=503)
    server.drop(files[1].url_path, times=2)
    results = fetch_files(server.url, files[:2], tmp_path, http=FAST)
    assert [r.attempts for r in results] == [3, 3]
    for rf in files[:2]:
        validate_file(tmp_path / rf.local_path, 1, rf.expect)
    statuses = [r.status for r in server.requests if r.path == files[0].url_path]
    assert statuses == [503, 503, 200]
    assert _leftovers(tmp_path) == []


def test_corrupt_download_is_detected_and_fetched_again(icon_eu, tmp_path):
    server, files = icon_eu
    rf = files[0]
    server.corrupt(rf.url_path, times=1)
    result = fetch_file(server.url, rf, tmp_path, http=FAST)
    assert result.attempts == 2 and result.status == "downloaded"
    assert (tmp_path / rf.local_path).read_bytes() == bz2.decompress(
        (server.root / rf.url_path).read_bytes())


def test_gzip_encoding_proxy_is_declined_and_still_read_when_forced(icon_eu, tmp_path):
    """A compressing proxy in front of the file server: framecast asks for the identity
    encoding, and a server that gzips anyway (Content-Length of the gzipped body) is decoded
    and verified against the wire length, not refused as short or retried."""
    server, files = icon_eu
    asked, forced = files[0], files[1]
    server.gzip(asked.url_path)
    server.gzip(forced.url_path, always=True)
    wire = {}
    for rf in (asked, forced):
        result = fetch_file(server.url, rf, tmp_path, http=FAST)
        assert (result.attempts, result.status) == (1, "downloaded")
        raw = (server.root / rf.url_path).read_bytes()
        assert (tmp_path / rf.local_path).read_bytes() == bz2.decompress(raw)
        wire[rf.url_path] = (result.bytes, len(raw), len(gzip.compress(raw, mtime=0)))
    assert wire[asked.url_path][0] == wire[asked.url_path][1]  # identity asked for: served as stored
    assert wire[forced.url_path][0] == wire[forced.url_path][2] != wire[forced.url_path][1]  # the gzipped length
    assert len(server.gets()) == 2


def test_persistent_failure_names_the_url_and_leaves_nothing(icon_eu, tmp_path):
    server, files = icon_eu
    rf = files[0]
    server.corrupt(rf.url_path, times=10)
    with pytest.raises(FetchError, match=rf.url_path.replace(".", r"\.") + ".*4 attempts"):
        fetch_file(server.url, rf, tmp_path, http=FAST)
    assert not (tmp_path / rf.local_path).exists()
    assert _leftovers(tmp_path) == []


def test_missing_file_fails_at_once(icon_eu, tmp_path):
    server, files = icon_eu
    server.hide(files[0].url_path)
    with pytest.raises(FetchError, match="404"):
        fetch_file(server.url, files[0], tmp_path, http=FAST)
    assert len(server.requests) == 1


def test_file_of_another_step_is_rejected(icon_eu, tmp_path):
    server, files = icon_eu
    wrong = replace(files[0], expect={**files[0].expect, "endStep": "5"})
    with pytest.raises(FetchError, match="endStep=5"):
        fetch_file(server.url, wrong, tmp_path, http=FAST)
    assert not (tmp_path / wrong.local_path).exists()


def test_broken_local_file_is_replaced(icon_eu, tmp_path):
    server, files = icon_eu
    rf = files[0]
    target = tmp_path / rf.local_path
    target.parent.mkdir(parents=True)
    good = bz2.decompress((server.root / rf.url_path).read_bytes())
    target.write_bytes(good[: len(good) // 2])
    with pytest.raises(GribError, match="truncated"):
        validate_file(target, 1)
    assert fetch_file(server.url, rf, tmp_path, http=FAST).status == "downloaded"
    assert target.read_bytes() == good


def test_gfs_fetches_only_the_needed_fields_by_range(gfs, tmp_path):
    server, files = gfs
    results = fetch_files(server.url, files, tmp_path, http=FAST)
    for rf, res in zip(files, results, strict=True):
        full = (server.root / rf.url_path).stat().st_size
        local = tmp_path / rf.local_path
        assert grib_message_count(local) == 2
        assert res.bytes == local.stat().st_size < full
    ranged = [r for r in server.requests if r.status == 206]
    assert ranged and all(r.range.startswith("bytes=") for r in ranged)
    assert len(server.gets(".idx")) == 2


def test_gfs_dropped_range_is_retried(gfs, tmp_path):
    server, files = gfs
    server.drop(files[0].url_path, times=1)
    server.fail(files[0].url_path + ".idx", times=1)
    res = fetch_file(server.url, files[0], tmp_path, http=FAST)
    assert res.attempts == 3
    assert grib_message_count(tmp_path / files[0].local_path) == 2


def test_missing_files_reports_what_is_not_published(icon_eu, gfs):
    server, files = icon_eu
    assert missing_files(server.url, files) == []
    server.hide(files[-1].url_path)
    assert missing_files(server.url, files) == [files[-1].url_path]
    gserver, gfiles = gfs
    gserver.hide(gfiles[0].url_path + ".idx")
    assert missing_files(gserver.url, gfiles) == [gfiles[0].url_path + ".idx"]


def test_present_prefix_stops_at_the_first_missing_file(icon_eu, gfs):
    """A waiting chunk's poll: one HEAD per file up to the first one missing, none after it."""
    server, files = icon_eu
    assert len(files) == 4
    assert present_prefix(server.url, files) == 4
    server.hide(files[1].url_path)
    server.hide(files[3].url_path)
    server.clear_log()
    assert present_prefix(server.url, files) == 1
    assert [(r.method, r.path) for r in server.requests] == [
        ("HEAD", files[0].url_path), ("HEAD", files[1].url_path)]
    server.publish(files[1].url_path)
    assert present_prefix(server.url, files[1:]) == 2  # files[3] still missing
    gserver, gfiles = gfs
    gserver.hide(gfiles[0].url_path + ".idx")  # GFS: the file without its index is not there
    assert present_prefix(gserver.url, gfiles) == 0


def test_idx_parsing_and_range_merging():
    text = ("1:0:d=2026112300:PRMSL:mean sea level:anl:\n"
            "2:100:d=2026112300:HGT:surface:anl:\n"
            "3:250:d=2026112300:TMP:2 m above ground:anl:\n"
            "4:400:d=2026112300:UGRD:10 m above ground:anl:\n")
    entries = parse_idx(text)
    assert [(e.start, e.end) for e in entries] == [(0, 100), (100, 250), (250, 400), (400, None)]
    assert idx_ranges(entries, ["TMP:2 m above ground", "UGRD:10 m above ground"], "x") == [
        (250, None)]
    assert idx_ranges(entries, ["PRMSL:mean sea level", "TMP:2 m above ground"], "x") == [
        (0, 100), (250, 400)]
    with pytest.raises(FetchError, match=r"x: field\(s\) \['CAPE:surface'\] not in the index"):
        idx_ranges(entries, ["CAPE:surface"], "x")
    with pytest.raises(FetchError, match="line 1"):
        parse_idx("garbage")
