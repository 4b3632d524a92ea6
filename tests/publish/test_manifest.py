"""The documents a viewer reads and the publish plumbing, checked exactly.

Expected manifests are written out here by hand from the files (sizes from ``stat``, digests
from hashlib), so a changed key, order, flag or merge rule fails; the local target's temp file +
rename and the publisher's retry, skip and sweep rules are checked on a real folder.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from framecast.errors import DataError, FramecastError, PublishError
from framecast.publish import LocalTarget, publish_increment, publish_product, publish_run
from framecast.publish import manifest as mf
from framecast.publish import publisher as pb
from framecast.publish.target import RemoteStat
from framecast.records import FrameRecord, write_records

RUN = datetime(2026, 11, 23, 6, tzinfo=UTC)
NOW = datetime(2026, 11, 23, 9, 30, 15, 123456, tzinfo=UTC)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _run(tmp_path: Path, records, files: dict[str, bytes]) -> Path:
    run = tmp_path / "run"
    for rel, data in files.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_bytes(data)
    write_records(run, "chunk", records)
    return run


RUN_ISO = RUN.isoformat()


def _rec(product, region, step, path=None, run=RUN_ISO, valid=""):
    return FrameRecord(model="m", run=run, product=product, region=region, step=step,
                       path=path or f"{product}/{region}/{step:03d}.png", valid_time=valid)


def _prec(product, place, step, path, valid=""):
    """A point-forecast record as framecast.points.runner writes it (region = the place)."""
    return FrameRecord(model="m", run=RUN_ISO, product=product, region=place, step=step,
                       path=path, valid_time=valid)


# ------------------------------------------------------------------ small pure helpers


def test_run_ids_of_naive_and_aware_times_in_another_local_zone(monkeypatch):
    """Naive times are UTC and aware ones are converted to UTC, whatever the machine's zone."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert mf.run_id_of(datetime(2026, 1, 2, 3, 4)) == "2026010203"
        assert mf.run_id_of(datetime(2026, 1, 2, 1, tzinfo=timezone(timedelta(hours=-5)))) == \
            "2026010206"
        assert mf.as_utc(datetime(2026, 1, 2, 3, tzinfo=timezone(timedelta(hours=1)))) == \
            datetime(2026, 1, 2, 2, tzinfo=UTC)
        assert mf.as_utc(datetime(2026, 1, 2, 3, tzinfo=timezone(timedelta(hours=1)))).tzinfo \
            is UTC
    finally:
        monkeypatch.undo()
        time.tzset()


def test_run_ids_names_and_utc():
    assert mf.run_id_of(datetime(2026, 1, 2, 3, 4)) == "2026010203"  # naive is UTC
    assert mf.run_id_of(datetime(2026, 1, 2, 1, tzinfo=timezone(timedelta(hours=-5)))) == \
        "2026010206"
    assert mf.as_utc(datetime(2026, 1, 2, 3)).tzinfo is UTC
    for ok in ("t2m", "T2M_mslp", "a.b+c-d", "0"):
        assert mf.check_name("product", ok, "w") == ok
    for bad in ("", "-x", ".x", "a/b", "a b", "ä", None):
        with pytest.raises(DataError, match=r"^w: product .* is not a safe name"):
            mf.check_name("product", bad, "w")
    assert mf.RUN_ID_RE.match("2026112306") and not mf.RUN_ID_RE.match("202611230")
    assert not mf.RUN_ID_RE.match("x2026112306") and not mf.RUN_ID_RE.match("20261123066")


def test_sha256_of_a_file_larger_than_one_read(tmp_path):
    p = tmp_path / "big"
    p.write_bytes(os.urandom((1 << 20) * 2 + 17))
    assert mf.sha256_file(p) == _digest(p)


def test_dumps_and_loads():
    doc = {"b": 1, "a": [1, 2]}
    assert mf.dumps(doc) == b'{\n "b": 1,\n "a": [\n  1,\n  2\n ]\n}\n'
    assert mf.loads(mf.dumps(doc), "w") == doc
    assert mf.loads(None, "w") is None
    with pytest.raises(PublishError, match=r"^where/x.json: not valid JSON"):
        mf.loads(b"{nope", "where/x.json")
    with pytest.raises(PublishError, match=r"^w: not valid JSON"):
        mf.loads(b"\xff\xfe{", "w")
    with pytest.raises(PublishError, match=r"^w: expected a JSON object$"):
        mf.loads(b"[1]", "w")


# ------------------------------------------------------------------ inventory


def test_collect_files_frames_videos_report_and_filters(tmp_path):
    files = {"t2m/eu/000.png": b"a" * 10, "t2m/eu/003.png": b"b" * 11,
             "pmsl/eu/000.png": b"c" * 12, "t2m/eu/t2m.mp4": b"v" * 5, "t2m/eu/t2m.GIF": b"g",
             "t2m/eu/.hidden.mp4": b"h", "t2m/eu/notes.txt": b"n", "pmsl/eu/x.mp4/inner": b"d",
             "_report/report.html": b"r" * 3, "_report/.tmp": b"t"}
    recs = [_rec("t2m", "eu", 3), _rec("t2m", "eu", 0),
            _rec("pmsl", "eu", 0, valid="2026-11-23T06:30:00+00:00")]  # the record's wins
    run = _run(tmp_path, recs, files)
    got = mf.collect_files(run, RUN)
    summary = [(f.rel, f.kind, f.product, f.region, f.step, f.valid_time, f.size) for f in got]
    assert summary == [  # records in (product, region, step) order, then videos, report
        ("pmsl/eu/000.png", "frame", "pmsl", "eu", 0, "2026-11-23T06:30:00+00:00", 12),
        ("t2m/eu/000.png", "frame", "t2m", "eu", 0, "2026-11-23T06:00:00+00:00", 10),
        ("t2m/eu/003.png", "frame", "t2m", "eu", 3, "2026-11-23T09:00:00+00:00", 11),
        ("t2m/eu/t2m.GIF", "gif", "t2m", "eu", None, "", 1),
        ("t2m/eu/t2m.mp4", "mp4", "t2m", "eu", None, "", 5),
        ("_report/report.html", "report", "", "", None, "", 3),
    ]
    for f in got:
        assert f.path == run / f.rel and f.sha256 == _digest(run / f.rel)
        assert f.mtime == (run / f.rel).stat().st_mtime
    only = mf.collect_files(run, RUN, products=["pmsl"])
    assert [f.rel for f in only] == ["pmsl/eu/000.png"]  # no report with a product filter
    with pytest.raises(DataError, match=r"no frames recorded for product\(s\) \['clouds'\]"):
        mf.collect_files(run, RUN, products=["pmsl", "clouds"])


@pytest.mark.parametrize(("record", "message"), [
    (_rec("t2m", "eu", 0, path="../x.png"), "frame path '../x.png' is not inside the run"),
    (_rec("t2m", "eu", 0, path="/etc/x.png"), "frame path '/etc/x.png' is not inside the run"),
    (_rec("t 2m", "eu", 0), "product 't 2m' is not a safe name"),
    (_rec("t2m", "e/u", 0, path="t2m/eu/000.png"), "region 'e/u' is not a safe name"),
    (_rec("t2m", "eu", 0, run="2026-11-23T00:00:00+00:00"),
     "frames belong to run 2026112300, not 2026112306 (frame t2m/eu/000.png)"),
    (_rec("t2m", "eu", 0, run="yesterday"), "record run time 'yesterday' is not ISO 8601"),
    (_rec("t2m", "eu", 5), "recorded file t2m/eu/005.png is missing"),
    (_rec("t2m", "eu", 1), "t2m/eu/001.png: file is empty; refusing to publish it"),
    (_prec("meteogram", "ham burg", 0, "points/x/meteogram.png"),
     "place 'ham burg' is not a safe name"),
    (_prec("meteogram", "hamburg", 0, "../meteogram.png"),
     "point file path '../meteogram.png' is not inside the run directory"),
    (_prec("section", "hamburg", 0, "/etc/section.png"),
     "point file path '/etc/section.png' is not inside the run directory"),
    (_prec("sounding", "hamburg", 6, "points/hamburg/sounding_+006.png"),
     "recorded file points/hamburg/sounding_+006.png is missing"),
])
def test_collect_files_refuses_bad_records(tmp_path, record, message):
    run = _run(tmp_path, [record], {"t2m/eu/000.png": b"x", "t2m/eu/001.png": b""})
    with pytest.raises(DataError, match="_records|empty") as ei:
        mf.collect_files(run, RUN)
    assert message in str(ei.value)


def test_collect_files_without_records_and_records_without_run_time(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no frame records; render the run first"):
        mf.collect_files(tmp_path / "empty", RUN)
    run = _run(tmp_path, [_rec("t2m", "eu", 0, run="")], {"t2m/eu/000.png": b"x"})
    assert [f.rel for f in mf.collect_files(run, RUN)] == ["t2m/eu/000.png"]
    # a record without a run time does not end the check of the records after it
    write_records(run, "other", [_rec("u", "eu", 0, run="2026-11-23T00:00:00+00:00")])
    with pytest.raises(DataError, match="frames belong to run 2026112300, not 2026112306"):
        mf.collect_files(run, RUN)


V0, V6, V24 = ("2026-11-23T06:00:00+00:00", "2026-11-23T12:00:00+00:00",
               "2026-11-24T06:00:00+00:00")


def test_collect_files_lists_point_forecasts_and_their_index(tmp_path):
    """Point files come from their records (kind "point", the place as region, the recorded
    step and valid time); the places index and report travel with a whole-run publish only."""
    files = {"t2m/eu/000.png": b"a" * 4, "points/hamburg/meteogram.png": b"m" * 5,
             "points/hamburg/section.png": b"s" * 6, "points/hamburg/sounding_+006.png": b"6" * 7,
             "points/hamburg/sounding_+024.png": b"2" * 8, "points/hamburg/hamburg.csv": b"c" * 9,
             "points/hamburg/hamburg.json": b"j" * 10, "points/oslo/meteogram.png": b"o" * 11,
             "points/index.json": b"{}" * 6, "_report/report.html": b"r" * 3}
    recs = [_rec("t2m", "eu", 0),
            _prec("sounding", "hamburg", 24, "points/hamburg/sounding_+024.png", V24),
            _prec("meteogram", "oslo", 0, "points/oslo/meteogram.png", V0),
            _prec("meteogram", "hamburg", 0, "points/hamburg/meteogram.png", V0),
            _prec("section", "hamburg", 0, "points/hamburg/section.png", V0),
            _prec("sounding", "hamburg", 6, "points/hamburg/sounding_+006.png", V6),
            _prec("pointcsv", "hamburg", 0, "points/hamburg/hamburg.csv", V0),
            _prec("pointjson", "hamburg", 0, "points/hamburg/hamburg.json", V0)]
    run = _run(tmp_path, recs, files)
    got = mf.collect_files(run, RUN)
    summary = [(f.rel, f.kind, f.product, f.region, f.step, f.valid_time, f.size) for f in got]
    assert summary == [  # records in (product, place, step) order, then the index, the report
        ("points/hamburg/meteogram.png", "point", "meteogram", "hamburg", 0, V0, 5),
        ("points/oslo/meteogram.png", "point", "meteogram", "oslo", 0, V0, 11),
        ("points/hamburg/hamburg.csv", "point", "pointcsv", "hamburg", 0, V0, 9),
        ("points/hamburg/hamburg.json", "point", "pointjson", "hamburg", 0, V0, 10),
        ("points/hamburg/section.png", "point", "section", "hamburg", 0, V0, 6),
        ("points/hamburg/sounding_+006.png", "point", "sounding", "hamburg", 6, V6, 7),
        ("points/hamburg/sounding_+024.png", "point", "sounding", "hamburg", 24, V24, 8),
        ("t2m/eu/000.png", "frame", "t2m", "eu", 0, V0, 4),
        ("points/index.json", "points-index", "", "", None, "", 12),
        ("_report/report.html", "report", "", "", None, "", 3),
    ]
    for f in got:
        assert f.path == run / f.rel and f.sha256 == _digest(run / f.rel)
    # a product filter or an increment (steps) leaves point forecasts, index and report out
    assert [f.rel for f in mf.collect_files(run, RUN, products=["t2m"])] == ["t2m/eu/000.png"]
    assert [f.rel for f in mf.collect_files(run, RUN, steps=[0])] == ["t2m/eu/000.png"]
    with pytest.raises(DataError, match=r"_records: no frame records for step\(s\) \[24\]$"):
        mf.collect_files(run, RUN, steps=[24])  # a sounding's step is not a chart's
    # an index without recorded point files (a stale folder) is not published
    bare = _run(tmp_path / "bare", [_rec("t2m", "eu", 0)],
                {"t2m/eu/000.png": b"a", "points/index.json": b"{}"})
    assert [f.kind for f in mf.collect_files(bare, RUN)] == ["frame"]


# ------------------------------------------------------------------ documents


def _lf(rel, kind, product, region, step=None, size=1, sha="s", valid=""):
    return mf.LocalFile(rel=rel, path=Path(rel), size=size, sha256=sha, mtime=0.0,
                        product=product, region=region, kind=kind, step=step, valid_time=valid)


def test_build_manifest_exact_document_and_product_merge():
    files = [_lf("t2m/eu/3.png", "frame", "t2m", "eu", 3, 30, "h3", "v3"),
             _lf("t2m/eu/0.png", "frame", "t2m", "eu", 0, 20, "h0", "v0"),
             _lf("t2m/al/0.png", "frame", "t2m", "al", 0, 21, "ha", "va"),
             _lf("t2m/eu/t.mp4", "mp4", "t2m", "eu", None, 5, "hm"),
             _lf("_report/r.html", "report", "", "", None, 7, "hr")]
    doc = mf.build_manifest("m", RUN, files, complete=False, now=NOW)
    assert doc == {
        "format": 1, "model": "m", "run": "2026-11-23T06:00:00+00:00", "run_id": "2026112306",
        "complete": False, "published_at": "2026-11-23T09:30:15+00:00",
        "products": {"t2m": {"regions": {
            "al": {"frames": [{"step": 0, "valid_time": "va", "file": "t2m/al/0.png",
                               "size": 21, "sha256": "ha"}], "videos": {}},
            "eu": {"frames": [
                {"step": 0, "valid_time": "v0", "file": "t2m/eu/0.png", "size": 20,
                 "sha256": "h0"},
                {"step": 3, "valid_time": "v3", "file": "t2m/eu/3.png", "size": 30,
                 "sha256": "h3"}],
                "videos": {"mp4": {"file": "t2m/eu/t.mp4", "size": 5, "sha256": "hm"}}}}}},
        "product_names": ["t2m"], "regions": ["al", "eu"], "steps": [0, 3],
        "files": {"_report/r.html": {"size": 7, "sha256": "hr"},
                  "t2m/al/0.png": {"size": 21, "sha256": "ha"},
                  "t2m/eu/0.png": {"size": 20, "sha256": "h0"},
                  "t2m/eu/3.png": {"size": 30, "sha256": "h3"},
                  "t2m/eu/t.mp4": {"size": 5, "sha256": "hm"}},
        "report": {"_report/r.html": {"size": 7, "sha256": "hr"}},
        "places": {}, "places_index": "",  # a run without point forecasts
    }
    assert list(doc["files"]) == sorted(doc["files"])
    # a second product is added; t2m (not republished) is kept with its files
    pm = [_lf("pmsl/eu/6.png", "frame", "pmsl", "eu", 6, 9, "p6", "v6")]
    merged = mf.build_manifest("m", RUN, pm, complete=True, previous=doc, now=NOW)
    assert merged["product_names"] == ["pmsl", "t2m"] and merged["steps"] == [0, 3, 6]
    assert merged["products"]["t2m"] == doc["products"]["t2m"]
    assert set(merged["files"]) == {"pmsl/eu/6.png", "t2m/al/0.png", "t2m/eu/0.png",
                                    "t2m/eu/3.png", "t2m/eu/t.mp4"}
    assert merged["complete"] is True and merged["report"] == {}
    # republishing t2m replaces its frames rather than appending to them
    again = mf.build_manifest("m", RUN, files[:1], complete=True, previous=merged, now=NOW)
    assert again["products"]["t2m"]["regions"] == {"eu": {"frames": [
        {"step": 3, "valid_time": "v3", "file": "t2m/eu/3.png", "size": 30, "sha256": "h3"}],
        "videos": {}}}
    assert set(again["files"]) == {"pmsl/eu/6.png", "t2m/eu/3.png"}
    # a product given by its videos alone is replaced too (its frames are not carried over)
    for kind in ("mp4", "gif"):
        video = _lf(f"t2m/eu/t.{kind}", kind, "t2m", "eu", None, 6, "hn")
        vid = mf.build_manifest("m", RUN, [video], complete=True, previous=merged, now=NOW)
        assert vid["products"]["t2m"] == {"regions": {"eu": {"frames": [], "videos": {
            kind: {"file": f"t2m/eu/t.{kind}", "size": 6, "sha256": "hn"}}}}}
        assert vid["steps"] == [6] and merged["products"]["t2m"] == doc["products"]["t2m"]
    assert mf.build_manifest("m", RUN, [], complete=True, previous={"products": None},
                             now=NOW)["products"] == {}
    before = datetime.now(UTC).replace(microsecond=0)
    stamped = datetime.fromisoformat(mf.build_manifest("m", RUN, [], complete=True)
                                     ["published_at"])
    assert before <= stamped <= datetime.now(UTC)


def _entry(rel, size, sha, **extra):
    return {**extra, "file": rel, "size": size, "sha256": sha}


# A run with charts and point forecasts for two places. The sounding files are named without
# zero padding here so that file-name order (+24 before +6) differs from step order.
POINT_FILES = [
    _lf("t2m/eu/0.png", "frame", "t2m", "eu", 0, 20, "h0", "v0"),
    _lf("points/oslo/meteogram.png", "point", "meteogram", "oslo", 0, 11, "om", "v0"),
    _lf("points/hamburg/sounding_+24.png", "point", "sounding", "hamburg", 24, 8, "s24", "v24"),
    _lf("points/hamburg/meteogram.png", "point", "meteogram", "hamburg", 0, 5, "hm", "v0"),
    _lf("points/hamburg/hamburg.json", "point", "pointjson", "hamburg", 0, 10, "hj", "v0"),
    _lf("points/hamburg/sounding_+6.png", "point", "sounding", "hamburg", 6, 7, "s6", "v6"),
    _lf("points/hamburg/section.png", "point", "section", "hamburg", 0, 6, "hs", "v0"),
    _lf("points/hamburg/hamburg.csv", "point", "pointcsv", "hamburg", 0, 9, "hc", "v0"),
    _lf("points/index.json", "points-index", "", "", None, 12, "ix"),
]
POINT_PLACES = {
    "hamburg": {
        "csv": _entry("points/hamburg/hamburg.csv", 9, "hc"),
        "json": _entry("points/hamburg/hamburg.json", 10, "hj"),
        "meteogram": _entry("points/hamburg/meteogram.png", 5, "hm"),
        "section": _entry("points/hamburg/section.png", 6, "hs"),
        "soundings": [
            _entry("points/hamburg/sounding_+6.png", 7, "s6", step=6, valid_time="v6"),
            _entry("points/hamburg/sounding_+24.png", 8, "s24", step=24, valid_time="v24"),
        ],
    },
    "oslo": {"meteogram": _entry("points/oslo/meteogram.png", 11, "om")},
}
POINT_FLAT = {
    "points/hamburg/hamburg.csv": {"size": 9, "sha256": "hc"},
    "points/hamburg/hamburg.json": {"size": 10, "sha256": "hj"},
    "points/hamburg/meteogram.png": {"size": 5, "sha256": "hm"},
    "points/hamburg/section.png": {"size": 6, "sha256": "hs"},
    "points/hamburg/sounding_+24.png": {"size": 8, "sha256": "s24"},
    "points/hamburg/sounding_+6.png": {"size": 7, "sha256": "s6"},
    "points/index.json": {"size": 12, "sha256": "ix"},
    "points/oslo/meteogram.png": {"size": 11, "sha256": "om"},
}
T2M_EU_0 = {"t2m": {"regions": {"eu": {"frames": [
    {"step": 0, "valid_time": "v0", "file": "t2m/eu/0.png", "size": 20, "sha256": "h0"}],
    "videos": {}}}}}


def test_build_manifest_places_exact_document():
    """Point files are listed under ``places`` (csv/json renamed, soundings in step order),
    not as products, steps or regions; the flat map lists them for skipping."""
    doc = mf.build_manifest("m", RUN, POINT_FILES, complete=True, now=NOW)
    assert doc == {
        "format": 1, "model": "m", "run": "2026-11-23T06:00:00+00:00", "run_id": "2026112306",
        "complete": True, "published_at": "2026-11-23T09:30:15+00:00",
        "products": T2M_EU_0, "product_names": ["t2m"], "regions": ["eu"], "steps": [0],
        "files": {**POINT_FLAT, "t2m/eu/0.png": {"size": 20, "sha256": "h0"}},
        "report": {}, "places": POINT_PLACES, "places_index": "points/index.json",
    }
    assert list(doc["places"]) == ["hamburg", "oslo"]
    assert list(doc["files"]) == sorted(doc["files"])


def test_build_manifest_keeps_or_replaces_places():
    """A product-only publish keeps the places, their index and their files; a publish with
    point files replaces them all (places of the previous publish are not carried over)."""
    prev = {"format": 1, "products": T2M_EU_0, "report": {},
            "files": {**POINT_FLAT, "t2m/eu/0.png": {"size": 20, "sha256": "h0"},
                      "_report/r.html": {"size": 1, "sha256": "r"}},
            "places": {"oslo": POINT_PLACES["oslo"], "hamburg": POINT_PLACES["hamburg"]},
            "places_index": "points/index.json"}
    pm = [_lf("pmsl/eu/0.png", "frame", "pmsl", "eu", 0, 9, "p0", "v0")]
    doc = mf.build_manifest("m", RUN, pm, complete=False, previous=prev, now=NOW)
    assert doc == {
        "format": 1, "model": "m", "run": "2026-11-23T06:00:00+00:00", "run_id": "2026112306",
        "complete": False, "published_at": "2026-11-23T09:30:15+00:00",
        "products": {"pmsl": {"regions": {"eu": {"frames": [
            {"step": 0, "valid_time": "v0", "file": "pmsl/eu/0.png", "size": 9, "sha256": "p0"}],
            "videos": {}}}}, **T2M_EU_0},
        "product_names": ["pmsl", "t2m"], "regions": ["eu"], "steps": [0],
        "files": {**POINT_FLAT, "pmsl/eu/0.png": {"size": 9, "sha256": "p0"},
                  "t2m/eu/0.png": {"size": 20, "sha256": "h0"}},
        "report": {}, "places": POINT_PLACES, "places_index": "points/index.json",
    }
    assert list(doc["places"]) == ["hamburg", "oslo"] and list(doc["products"]) == ["pmsl", "t2m"]
    bergen = [_lf("points/bergen/meteogram.png", "point", "meteogram", "bergen", 0, 4, "bm", "v0")]
    doc = mf.build_manifest("m", RUN, bergen, complete=False, previous=prev, now=NOW)
    assert doc["places"] == {"bergen": {"meteogram": _entry("points/bergen/meteogram.png", 4,
                                                              "bm")}}
    assert doc["places_index"] == "" and doc["products"] == T2M_EU_0
    assert doc["files"] == {"points/bergen/meteogram.png": {"size": 4, "sha256": "bm"},
                            "t2m/eu/0.png": {"size": 20, "sha256": "h0"}}
    for empty in ({"products": None}, {"places": None, "places_index": None, "files": None}):
        doc = mf.build_manifest("m", RUN, pm, complete=False, previous=empty, now=NOW)
        assert (doc["places"], doc["places_index"]) == ({}, "")
        assert doc["files"] == {"pmsl/eu/0.png": {"size": 9, "sha256": "p0"}}


def _fr(product, region, step, sha):
    return {"step": step, "valid_time": f"v{step}", "file": f"{product}/{region}/{step}.png",
            "size": 10 + step, "sha256": sha}


def test_merge_increment_exact_document():
    """Frames merge per (product, region, step), the increment winning; videos add up; the
    previous manifest's other keys (places, report, status) stay; the files map is the union
    with the increment's entries winning; the previous document is not modified."""
    mp4 = {"file": "t2m/eu/t.mp4", "size": 5, "sha256": "hm"}
    gif = {"file": "t2m/eu/t.gif", "size": 6, "sha256": "hg"}
    previous = {
        "format": 1, "model": "m", "run": RUN_ISO, "run_id": "2026112306", "complete": False,
        "published_at": "2026-11-23T09:00:00+00:00",
        "products": {"t2m": {"regions": {"eu": {"frames": [_fr("t2m", "eu", 0, "a0"),
                                                           _fr("t2m", "eu", 1, "a1")],
                                                "videos": {"mp4": mp4}}}},
                     "clouds": {"regions": {"eu": {"frames": [_fr("clouds", "eu", 0, "c0")]}}}},
        "product_names": ["clouds", "t2m"], "regions": ["eu"], "steps": [0, 1],
        "files": {"clouds/eu/0.png": {"size": 10, "sha256": "c0"},
                  "t2m/eu/0.png": {"size": 10, "sha256": "a0"},
                  "t2m/eu/1.png": {"size": 11, "sha256": "a1"},
                  "t2m/eu/t.mp4": {"size": 5, "sha256": "hm"}},
        "report": {"_report/r.html": {"size": 1, "sha256": "r"}},
        "places": {"oslo": {"meteogram": _entry("points/oslo/m.png", 3, "om")}},
        "places_index": "points/index.json",
        "status": "in_progress", "expected_steps": [0, 1, 2], "missing_steps": [2],
    }
    before = json.loads(json.dumps(previous))
    new = {
        "published_at": "2026-11-23T10:00:00+00:00", "status": "ignored", "places": {},
        "products": {"t2m": {"regions": {"eu": {"frames": [_fr("t2m", "eu", 2, "b2"),
                                                           _fr("t2m", "eu", 1, "b1")],
                                                "videos": {"gif": gif}},
                                         "al": {"frames": [_fr("t2m", "al", 1, "l1")]}}},
                     "pmsl": {"regions": {"eu": {"frames": [_fr("pmsl", "eu", 1, "p1")],
                                                 "videos": {}}}}},
        "files": {"t2m/eu/1.png": {"size": 11, "sha256": "b1"},
                  "t2m/eu/2.png": {"size": 12, "sha256": "b2"},
                  "t2m/al/1.png": {"size": 11, "sha256": "l1"},
                  "pmsl/eu/1.png": {"size": 11, "sha256": "p1"}},
    }
    merged = mf.merge_increment(previous, new)
    assert merged == {
        "format": 1, "model": "m", "run": RUN_ISO, "run_id": "2026112306", "complete": False,
        "published_at": "2026-11-23T10:00:00+00:00",
        "products": {
            "clouds": {"regions": {"eu": {"frames": [_fr("clouds", "eu", 0, "c0")],
                                          "videos": {}}}},
            "pmsl": {"regions": {"eu": {"frames": [_fr("pmsl", "eu", 1, "p1")], "videos": {}}}},
            "t2m": {"regions": {
                "eu": {"frames": [_fr("t2m", "eu", 0, "a0"), _fr("t2m", "eu", 1, "b1"),
                                  _fr("t2m", "eu", 2, "b2")],
                       "videos": {"mp4": mp4, "gif": gif}},
                "al": {"frames": [_fr("t2m", "al", 1, "l1")], "videos": {}}}},
        },
        "product_names": ["clouds", "pmsl", "t2m"], "regions": ["al", "eu"], "steps": [0, 1, 2],
        "files": {"clouds/eu/0.png": {"size": 10, "sha256": "c0"},
                  "pmsl/eu/1.png": {"size": 11, "sha256": "p1"},
                  "t2m/al/1.png": {"size": 11, "sha256": "l1"},
                  "t2m/eu/0.png": {"size": 10, "sha256": "a0"},
                  "t2m/eu/1.png": {"size": 11, "sha256": "b1"},
                  "t2m/eu/2.png": {"size": 12, "sha256": "b2"},
                  "t2m/eu/t.mp4": {"size": 5, "sha256": "hm"}},
        "report": {"_report/r.html": {"size": 1, "sha256": "r"}},
        "places": {"oslo": {"meteogram": _entry("points/oslo/m.png", 3, "om")}},
        "places_index": "points/index.json",
        "status": "in_progress", "expected_steps": [0, 1, 2], "missing_steps": [2],
    }
    assert list(merged["products"]) == ["clouds", "pmsl", "t2m"]
    assert list(merged["files"]) == sorted(merged["files"])
    assert previous == before  # the manifest read from the target is not changed in place
    # nothing there yet: the increment is the manifest; an increment without files adds none
    assert mf.merge_increment(None, new) is new and mf.merge_increment({}, new) is new
    bare = mf.merge_increment(previous, {"published_at": "x", "products": {}})
    assert bare["files"] == previous["files"] and bare["steps"] == [0, 1]
    assert bare["products"]["t2m"] == previous["products"]["t2m"]


def _regions(**steps):
    """A manifest whose product ``p`` has a region per keyword with frames of those steps."""
    return {"products": {"p": {"regions": {r: {"frames": [{"step": s} for s in ss]}
                                           for r, ss in steps.items()}}}}


def test_covered_steps_and_set_status():
    assert mf.covered_steps({}) == set() and mf.covered_steps({"products": None}) == set()
    assert mf.covered_steps({"products": {"p": {"regions": None}}}) == set()
    assert mf.covered_steps(_regions(eu=[0, 1, 2], al=[1, 2, 3])) == {1, 2}
    assert mf.covered_steps({"products": {"p": {"regions": {"eu": {"frames": [{"step": 4}]}}},
                                          "q": {"regions": {"eu": {}}}}}) == set()
    man = _regions(eu=[0, 1, 2], al=[1, 2, 3])
    assert mf.set_status(man, "in_progress", [3, 2, "1", 0, 2]) is man
    assert man == {**_regions(eu=[0, 1, 2], al=[1, 2, 3]), "status": "in_progress",
                   "complete": False, "expected_steps": [0, 1, 2, 3], "missing_steps": [0, 3]}
    mf.set_status(man, "incomplete", [1, 2, 5])
    assert (man["status"], man["complete"], man["expected_steps"], man["missing_steps"]) == (
        "incomplete", False, [1, 2, 5], [5])
    mf.set_status(man, "complete", [])
    assert (man["status"], man["complete"], man["expected_steps"], man["missing_steps"]) == (
        "complete", True, [], [])
    with pytest.raises(PublishError, match=r"^run status 'done' is not one of in_progress, "
                                           r"complete, incomplete$"):
        mf.set_status(man, "done", [])
    assert man["status"] == "complete"


def _state(status, expected, **steps):
    return {**_regions(**steps), "status": status, "expected_steps": expected}


@pytest.mark.parametrize(("manifest", "upto", "ready"), [
    ({"status": "complete"}, None, True),  # a complete run always qualifies
    ({"complete": True}, None, True),  # an older manifest without a status
    ({"complete": False}, None, False),
    ({}, 3, False),
    ({"status": "in_progress", "complete": True}, None, False),  # the status rules
    (_state("in_progress", [0, 1, 2, 3, 4, 5], eu=[0, 1, 2, 3]), None, False),
    (_state("in_progress", [0, 1, 2, 3, 4, 5], eu=[0, 1, 2, 3]), 3, True),
    (_state("in_progress", [0, 1, 2, 3, 4, 5], eu=[0, 1, 2, 3]), 0, True),
    (_state("in_progress", [0, 1, 2, 3, 4, 5], eu=[0, 1, 2, 3]), 4, False),
    (_state("in_progress", [0, 1, 2, 3, 4, 5], eu=[0, 1, 2]), 3, False),  # step 3 itself
    (_state("in_progress", [0, 1, 2, 3, 4, 5], eu=[0, 1, 2, 3], al=[0, 1, 2]), 3, False),
    (_state("in_progress", [0, 1, 2, 3, 4, 5], eu=[0, 1, 2, 3], al=[0, 1, 2]), 2, True),
    (_state("in_progress", [3, 6], eu=[3]), 0, False),  # no expected step up to 0
    (_state("in_progress", [3, 6], eu=[3]), 3, True),
    (_state("incomplete", [0, 1, 4], eu=[0, 1]), None, False),
    (_state("incomplete", [0, 1, 4], eu=[0, 1]), 1, True),
    ({**_regions(eu=[0, 1]), "status": "in_progress", "expected_steps": None}, 1, False),
])
def test_ready_for_latest_rules(manifest, upto, ready):
    assert mf.ready_for_latest(manifest, upto) is ready


def test_latest_runs_and_summary_documents():
    man = mf.build_manifest("m", RUN, [_lf("b/eu/0.png", "frame", "b", "eu", 0),
                                       _lf("a/eu/0.png", "frame", "a", "eu", 0)],
                            complete=True, now=NOW)
    assert mf.latest_doc(man) == {"format": 1, "model": "m", "run_id": "2026112306",
                                  "run": "2026-11-23T06:00:00+00:00",
                                  "manifest": "2026112306/manifest.json",
                                  "published_at": "2026-11-23T09:30:15+00:00"}
    assert mf.run_summary(man) == {"run_id": "2026112306", "run": "2026-11-23T06:00:00+00:00",
                                   "complete": True, "status": "complete",
                                   "missing_steps": [], "products": ["a", "b"],
                                   "manifest": "2026112306/manifest.json",
                                   "published_at": "2026-11-23T09:30:15+00:00"}
    assert mf.run_summary({"run_id": "1", "run": "r"}) == {
        "run_id": "1", "run": "r", "complete": False, "status": "in_progress",
        "missing_steps": [], "products": [],
        "manifest": "1/manifest.json", "published_at": ""}
    assert mf.run_summary({"run_id": "1", "run": "r", "complete": 1}) == {
        "run_id": "1", "run": "r", "complete": True, "status": "complete",
        "missing_steps": [], "products": [],
        "manifest": "1/manifest.json", "published_at": ""}
    inc = {"run_id": "2", "run": "r", "complete": False, "status": "incomplete",
           "missing_steps": (4, 5), "products": {"b": {}, "a": {}}, "published_at": "p"}
    assert mf.run_summary(inc) == {
        "run_id": "2", "run": "r", "complete": False, "status": "incomplete",
        "missing_steps": [4, 5], "products": ["a", "b"],
        "manifest": "2/manifest.json", "published_at": "p"}
    doc = mf.runs_doc("m", {"2026112300": {"id": 1}, "2026112306": {"id": 2},
                            "2026112218": {"id": 0}}, "2026112300")
    assert doc == {"format": 1, "model": "m", "latest": "2026112300",
                   "runs": [{"id": 2}, {"id": 1}, {"id": 0}]}


# ------------------------------------------------------------------ local target


def test_local_target_writes_through_a_temp_name_and_cleans_up(tmp_path, monkeypatch):
    t = LocalTarget(tmp_path / "www")
    t.connect()
    assert t.description == f"file://{tmp_path / 'www'}"
    t.makedirs("a/b")
    t.makedirs("a/b")  # already there: no error
    t.write_bytes("a/b/x.json", b"{}")
    assert (tmp_path / "www/a/b/x.json").read_bytes() == b"{}"
    assert t.read_bytes("a/b/x.json") == b"{}" and t.read_bytes("a/b/none") is None
    assert t.stat("a/b/x.json").size == 2 and t.stat("nope") is None
    assert t.stat("a/b/x.json").mtime == (tmp_path / "www/a/b/x.json").stat().st_mtime
    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 << 20))
    t.upload(src, "a/b/big.bin")
    assert (tmp_path / "www/a/b/big.bin").read_bytes() == src.read_bytes()
    assert set(t.scan("a/b")) == {"x.json", "big.bin"} and t.scan("a/b/x.json") == {}
    assert t.scan("zz") == {} and t.listdir("zz") == [] and t.listdir("a/b/x.json") == []
    (tmp_path / "www/a/b/sub").mkdir()
    (tmp_path / "www/a/b/ln").symlink_to("x.json")
    assert set(t.scan("a/b")) == {"x.json", "big.bin"}  # files only, not links to them
    (tmp_path / "www/a/b/ln").unlink()
    assert t.listdir("a/b") == ["big.bin", "sub", "x.json"]
    assert t.scan("a/b")["big.bin"] == RemoteStat(3 << 20, (tmp_path / "www/a/b/big.bin")
                                                  .stat().st_mtime)
    # a writer failing midway leaves the old content and no temp file
    synced = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))

    def boom(fh):
        fh.write(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        t._write_via_temp("a/b/x.json", boom)
    assert t.listdir("a/b") == ["big.bin", "sub", "x.json"]
    assert t.read_bytes("a/b/x.json") == b"{}" and not synced
    t.write_bytes("a/b/x.json", b"[]")
    assert len(synced) == 1 and t.read_bytes("a/b/x.json") == b"[]"
    LocalTarget(tmp_path / "www", fsync=False).write_bytes("a/b/y", b"1")
    assert len(synced) == 1
    c = t.clone()
    assert isinstance(c, LocalTarget) and c.root == t.root and c.fsync is True
    assert LocalTarget(tmp_path, fsync=False).clone().fsync is False
    t.remove("a/b/y")
    t.remove("a/b/y")  # missing: no error
    assert not (tmp_path / "www/a/b/y").exists()
    with pytest.raises(PublishError, match="escapes the publish root"):
        t.write_bytes("../evil", b"x")
    t.close()


def test_local_target_trees_and_links(tmp_path):
    root = tmp_path / "www"
    t = LocalTarget(root)
    t.connect()
    t.makedirs("m/run1/x")
    (root / "m/run1/x/f").write_bytes(b"1")
    with pytest.raises(PublishError, match="refusing to remove the publish root"):
        t.remove_tree("")
    with pytest.raises(PublishError, match="refusing to remove the publish root"):
        t.remove_tree("m/..")
    assert t.link_latest("nowhere/latest", "run1") is False  # no folder to link in
    assert t.link_latest("m/latest", "run1") is True
    assert os.readlink(root / "m/latest") == "run1"
    assert t.link_latest("m/latest", "run2") is True
    assert os.readlink(root / "m/latest") == "run2"
    assert [p.name for p in (root / "m").iterdir() if p.name.startswith(".")] == []
    t.remove_tree("m/latest")  # the link goes, not what it points to
    assert not os.path.lexists(root / "m/latest") and (root / "m/run1/x/f").exists()
    (root / "m/latest").mkdir()  # a real folder occupies the name: left alone
    assert t.link_latest("m/latest", "run1") is False
    assert (root / "m/latest").is_dir() and sorted(os.listdir(root / "m")) == ["latest", "run1"]
    t.remove_tree("m/run1")
    t.remove_tree("m/run1")  # missing: no error
    assert sorted(os.listdir(root / "m")) == ["latest"]


def test_local_target_connect_reports_a_root_it_cannot_create(tmp_path):
    (tmp_path / "file").write_bytes(b"")
    with pytest.raises(PublishError, match=r"cannot create publish root .*file/www"):
        LocalTarget(tmp_path / "file" / "www").connect()
    LocalTarget(tmp_path / "a" / "b" / "www").connect()  # missing parents are created
    assert (tmp_path / "a" / "b" / "www").is_dir()


# ------------------------------------------------------------------ publisher rules


def test_plan_skips_only_identical_files():
    f = _lf("p/r/0.png", "frame", "p", "r", 0, size=10, sha="aa")
    f = mf.LocalFile(**{**f.__dict__, "mtime": 1000.0})
    d = "m/1/p/r"

    def plan(st, prev):
        todo, same = pb._plan([f], "m/1", {d: {"0.png": st}} if st else {}, prev)
        return "skip" if same == [f] and not todo else "upload" if todo == [f] else "?"

    entry = {"files": {"p/r/0.png": {"size": 10, "sha256": "aa"}}}
    assert plan(None, entry) == "upload"
    assert plan(RemoteStat(10, 0.0), entry) == "skip"  # manifest says same: mtime irrelevant
    assert plan(RemoteStat(9, 5000.0), entry) == "upload"  # remote size differs
    assert plan(RemoteStat(10, 5000.0), {"files": {"p/r/0.png": {"size": 10, "sha256": "b"}}}) \
        == "upload"
    assert plan(RemoteStat(10, 5000.0), {"files": {"p/r/0.png": {"size": 11, "sha256": "aa"}}}) \
        == "upload"
    # no manifest entry (an interrupted publish): same size and not older than local
    assert plan(RemoteStat(10, 999.0), None) == "skip"  # within the 1 s tolerance
    assert plan(RemoteStat(10, 998.9), None) == "upload"
    assert plan(RemoteStat(10, None), None) == "upload"
    assert plan(RemoteStat(10, 2000.0), {"files": None}) == "skip"
    # every file is looked at: one skipped does not end the plan
    g = mf.LocalFile(**{**f.__dict__, "rel": "p/r/1.png"})
    todo, same = pb._plan([f, g], "m/1", {d: {"0.png": RemoteStat(10, 1000.0),
                                              "1.png": RemoteStat(10, 1000.0)}}, None)
    assert (todo, same) == ([], [f, g])
    todo, same = pb._plan([f, g], "m/1", {d: {"0.png": RemoteStat(10, 1000.0)}}, None)
    assert (todo, same) == ([g], [f])


class _Flaky(LocalTarget):
    """A real local folder whose operations fail ``fails`` times with a given exception."""

    def __init__(self, root, exc, fails):
        super().__init__(root)
        self.exc, self.fails, self.connects, self.closes = exc, fails, 0, 0

    def connect(self):
        self.connects += 1
        super().connect()

    def close(self):
        self.closes += 1

    def op(self):
        if self.fails > 0:
            self.fails -= 1
            raise self.exc
        return "ok"


def test_retrying_connection(tmp_path, monkeypatch, caplog):
    sleeps = []
    monkeypatch.setattr(pb.time, "sleep", sleeps.append)
    counter = pb._Counter()
    t = _Flaky(tmp_path, ConnectionResetError("reset"), 3)
    with caplog.at_level(logging.WARNING, logger=pb.__name__):
        assert pb._Retrying(t, 5, 0.5, counter)("op", lambda x: x.op()) == "ok"
    assert sleeps == [0.5, 1.0, 2.0] and counter.value == 3 and t.closes == 3 and t.connects == 4
    assert [r.getMessage() for r in caplog.records][:1] == [
        f"{t.description}: op: reset; reconnecting in 0.5 s"]
    sleeps.clear()
    t = _Flaky(tmp_path, ConnectionResetError("reset"), 9)
    with pytest.raises(PublishError, match=r"file://.*: op failed after 3 attempts: "
                                           r"ConnectionResetError: reset"):
        pb._Retrying(t, 2, 40.0, pb._Counter())("op", lambda x: x.op())
    assert sleeps == [40.0, 60.0]  # capped at a minute
    t = _Flaky(tmp_path, PermissionError("denied"), 1)
    with pytest.raises(PublishError, match=r"file://.*: op failed: denied$"):
        pb._Retrying(t, 5, 0.5, pb._Counter())("op", lambda x: x.op())
    t = _Flaky(tmp_path, FramecastError("mine"), 1)
    with pytest.raises(FramecastError, match="^mine$"):
        pb._Retrying(t, 5, 0.5, pb._Counter())("op", lambda x: x.op())
    assert counter.add(2) == 5


def test_publish_report_and_argument_checks(tmp_path, make_run_dir):
    r = pb.PublishReport("m", "2026112306", "file:///x", ["a"], True, uploaded=["a", "b"],
                         skipped=["c"], bytes_uploaded=3_000_000, retries=2, seconds=2.0,
                         latest="2026112306", removed_runs=["2026112300"])
    assert r.summary() == ("m 2026112306 -> file:///x: 2 uploaded, 1 unchanged, 3.0 MB in "
                           "2.0 s (1.5 MB/s), 2 retries, latest=2026112306, "
                           "removed=['2026112300']")
    r = pb.PublishReport("m", "1", "t", [], False, bytes_uploaded=1_050_001, seconds=1.0)
    assert "1.1 MB in 1.0 s (1.1 MB/s)" in r.summary()  # MB are 10**6 bytes
    r = pb.PublishReport("m", "1", "t", [], False)
    assert r.summary().endswith("0.0 MB in 0.0 s (0.0 MB/s), 0 retries, latest=None, removed=-")
    run = make_run_dir(tmp_path / "out", products=("t2m",), regions=("eu",), steps=(0,))
    www = LocalTarget(tmp_path / "www")
    with pytest.raises(PublishError, match="retention must be at least 1 run, got 0"):
        publish_run(run, www, model="icon-eu", run_time=datetime(2026, 11, 23, tzinfo=UTC),
                    retention=0)
    with pytest.raises(PublishError, match="workers must be at least 1, got 0"):
        publish_run(run, www, model="icon-eu", run_time=datetime(2026, 11, 23, tzinfo=UTC),
                    workers=0)
    with pytest.raises(DataError, match=r"^publish: model 'ic on' is not a safe name"):
        publish_run(run, www, model="ic on", run_time=datetime(2026, 11, 23, tzinfo=UTC))
    assert not (tmp_path / "www").exists()


def test_publish_sequence_on_a_real_folder(tmp_path, make_run_dir):
    """Product by product, then the whole run: pointers, viewer, partial sweep, skips,
    progress callbacks, retention (the latest run survives), the symlink."""
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "out", run_time=t0, products=("t2m", "pmsl"),
                       regions=("eu",), steps=(0, 1))
    www = tmp_path / "www"
    seen = []
    rep = publish_product(run, LocalTarget(www), "t2m", model="m", run_time=t0, workers=1,
                          progress=lambda d, n, p: seen.append((d, n, p)))
    assert rep.complete is False and rep.latest is None and rep.products == ["t2m"]
    assert sorted(rep.uploaded) == ["t2m/eu/t2m_eu_000.png", "t2m/eu/t2m_eu_001.png"]
    assert [(d, n) for d, n, _ in seen] == [(1, 2), (2, 2)]
    assert not (www / "m/latest.json").exists() and not os.path.lexists(www / "m/latest")
    runs = json.loads((www / "m/runs.json").read_text())
    assert runs["latest"] is None and [r["complete"] for r in runs["runs"]] == [False]
    for name in pb.VIEWER_FILES:
        assert (www / "m" / name).read_bytes() == pb._viewer_files()[name]
    viewer_mtime = (www / "m/index.html").stat().st_mtime_ns
    # leftovers of an interrupted upload are swept; unchanged files are skipped
    (www / "m/2026112300/t2m/eu/.t2m_eu_000.png.abcd1234.part").write_bytes(b"half")
    seen.clear()
    rep = publish_run(run, LocalTarget(www), model="m", run_time=t0, workers=2,
                      progress=lambda d, n, p: seen.append((d, n, p)))
    assert sorted(rep.skipped) == ["t2m/eu/t2m_eu_000.png", "t2m/eu/t2m_eu_001.png"]
    assert sorted(rep.uploaded) == ["pmsl/eu/pmsl_eu_000.png", "pmsl/eu/pmsl_eu_001.png"]
    assert sorted(d for d, _, _ in seen) == [1, 2, 3, 4] and {n for _, n, _ in seen} == {4}
    assert sorted(p for _, _, p in seen) == sorted(rep.skipped + rep.uploaded)
    assert rep.complete is True and rep.latest == "2026112300" and rep.symlink is True
    assert rep.bytes_uploaded == sum((run / p).stat().st_size for p in rep.uploaded)
    assert sorted(os.listdir(www / "m/2026112300/t2m/eu")) == ["t2m_eu_000.png", "t2m_eu_001.png"]
    assert (www / "m/index.html").stat().st_mtime_ns == viewer_mtime  # unchanged: not rewritten
    latest = json.loads((www / "m/latest.json").read_text())
    assert latest["run_id"] == "2026112300" and os.readlink(www / "m/latest") == "2026112300"
    # republishing one product of the finished run keeps it finished and latest
    rep = publish_product(run, LocalTarget(www), "pmsl", model="m", run_time=t0, viewer=False)
    assert rep.complete is True and rep.latest == "2026112300" and rep.uploaded == []
    man = json.loads((www / "m/2026112300/manifest.json").read_text())
    assert man["complete"] is True and man["product_names"] == ["pmsl", "t2m"]
    # two newer runs with retention 2: the oldest goes, runs.json lists the rest newest first
    for k in (1, 2):
        tk = t0 + timedelta(hours=6 * k)
        rk = make_run_dir(tmp_path / f"out{k}", run_time=tk, products=("t2m",),
                          regions=("eu",), steps=(0,))
        rep = publish_run(rk, LocalTarget(www), model="m", run_time=tk, retention=2,
                          symlink=False)
    assert rep.removed_runs == ["2026112300"] and rep.symlink is False
    assert sorted(n for n in os.listdir(www / "m") if n.isdigit()) == ["2026112306",
                                                                        "2026112312"]
    runs = json.loads((www / "m/runs.json").read_text())
    assert runs["latest"] == "2026112312"
    assert [r["run_id"] for r in runs["runs"]] == ["2026112312", "2026112306"]
    assert os.readlink(www / "m/latest") == "2026112300"  # symlink=False left it alone
    # retention with nothing to remove
    rep = publish_run(rk, LocalTarget(www), model="m", run_time=tk, retention=5)
    assert rep.removed_runs == [] and rep.uploaded == []


class _FlakyReads(LocalTarget):
    """A real folder whose first ``fails`` reads drop the connection (shared across clones)."""

    def __init__(self, root, box):
        super().__init__(root)
        self.box = box

    def clone(self):
        return _FlakyReads(self.root, self.box)

    def read_bytes(self, remote):
        if self.box["fails"] > 0:
            self.box["fails"] -= 1
            raise ConnectionResetError("dropped")
        return super().read_bytes(remote)


def test_publish_run_reconnects_counts_retries_and_ships_the_viewer(tmp_path, make_run_dir,
                                                                    monkeypatch):
    """A dropped connection on the first read is retried (counted in the report); a whole-run
    publish ships the viewer by default and points ``latest`` at the run."""
    monkeypatch.setattr(pb.time, "sleep", lambda s: None)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "out", run_time=t0, products=("t2m",), regions=("eu",),
                       steps=(0,))
    www = tmp_path / "www"
    rep = publish_run(run, _FlakyReads(www, {"fails": 1}), model="m", run_time=t0, workers=1)
    assert rep.retries == 1 and rep.latest == "2026112300" and rep.symlink is True
    assert sorted(n for n in os.listdir(www / "m") if not n[0].isdigit()) == [
        "index.html", "latest", "latest.json", "runs.json", "viewer.css", "viewer.js"]
    assert "1 retries, latest=2026112300" in rep.summary()


class _Refusing(LocalTarget):
    """A real folder that refuses (permanently) to write or remove one path."""

    def __init__(self, root, refuse):
        super().__init__(root)
        self.refuse = refuse

    def clone(self):
        return _Refusing(self.root, self.refuse)

    def write_bytes(self, remote, data):
        if remote.endswith(self.refuse):
            raise PermissionError(f"read-only: {remote}")
        super().write_bytes(remote, data)

    def remove_tree(self, remote):
        if remote.endswith(self.refuse):
            raise PermissionError(f"read-only: {remote}")
        super().remove_tree(remote)


@pytest.mark.parametrize(("refuse", "operation"), [
    ("manifest.json", "write manifest"), ("runs.json", "write runs.json"),
    ("latest.json", "switch latest"), ("2026112300", "remove run 2026112300"),
])
def test_a_refused_step_names_the_operation_and_keeps_latest(tmp_path, make_run_dir, refuse,
                                                             operation):
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    www = tmp_path / "www"
    for k in range(2):
        tk = t0 + timedelta(hours=6 * k)
        run = make_run_dir(tmp_path / f"o{k}", run_time=tk, products=("t2m",), regions=("eu",),
                           steps=(0,))
        target = _Refusing(www, refuse) if k == 1 else LocalTarget(www)
        if k == 0:
            publish_run(run, target, model="m", run_time=tk)
            continue
        with pytest.raises(PublishError, match=rf"^file://.*: {operation} failed: read-only"):
            publish_run(run, target, model="m", run_time=tk, retention=1)
    if refuse in ("manifest.json", "latest.json"):  # latest moves only after the manifest
        assert json.loads((www / "m/latest.json").read_text())["run_id"] == "2026112300"


def test_product_lists_foreign_runs_entries_and_the_log_line(tmp_path, make_run_dir, caplog,
                                                            monkeypatch):
    monkeypatch.setattr(pb.time, "sleep", lambda s: None)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "o", run_time=t0, products=("t2m", "pmsl", "clouds"),
                       regions=("eu",), steps=(0,))
    www = tmp_path / "www"
    (www / "m").mkdir(parents=True)
    (www / "m/runs.json").write_text(json.dumps({"runs": ["junk", {"no": "id"}, 3]}))
    with caplog.at_level(logging.INFO, logger=pb.__name__):
        rep = publish_product(run, _FlakyReads(www, {"fails": 1}), ["t2m", "pmsl"], model="m",
                              run_time=t0, retries=1)
    assert rep.products == ["pmsl", "t2m"] and rep.retries == 1
    assert f"published {rep.summary()}" in [r.getMessage() for r in caplog.records]
    runs = json.loads((www / "m/runs.json").read_text())
    assert [r["run_id"] for r in runs["runs"]] == ["2026112300"]
    with pytest.raises(PublishError, match="failed after 2 attempts"):
        publish_product(run, _FlakyReads(www, {"fails": 2}), "clouds", model="m", run_time=t0,
                        retries=1)


class _FlakyUploads(LocalTarget):
    """A real folder whose uploads drop the connection ``box["drops"]`` times (shared across
    clones) and refuse, permanently, the files whose path ends in ``box["refuse"]``."""

    def __init__(self, root, box):
        super().__init__(root)
        self.box = box

    def clone(self):
        return _FlakyUploads(self.root, self.box)

    def upload(self, local, remote):
        if self.box.get("refuse") and remote.endswith(self.box["refuse"]):
            raise PermissionError(f"read-only: {remote}")
        if self.box.get("drops", 0) > 0:
            self.box["drops"] -= 1
            raise ConnectionResetError("dropped")
        super().upload(local, remote)


def test_uploads_reconnect_give_up_and_stop_before_the_manifest(tmp_path, make_run_dir,
                                                                monkeypatch):
    sleeps = []
    monkeypatch.setattr(pb.time, "sleep", sleeps.append)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "o", run_time=t0, products=("t2m",), regions=("eu",),
                       steps=(0, 1, 2))
    www = tmp_path / "www"
    # an increment's upload dropped once: reconnected after the back-off, counted
    rep = publish_increment(run, _FlakyUploads(www, {"drops": 1}), [0], model="m", run_time=t0,
                            expected_steps=[0, 1, 2], retries=1, backoff=0.25, workers=1)
    assert sleeps == [0.25] and rep.retries == 1 and rep.uploaded == ["t2m/eu/t2m_eu_000.png"]
    # dropped more often than retried: the file that failed is named, no manifest changes
    manifest = (www / "m/2026112300/manifest.json").read_bytes()
    with pytest.raises(PublishError, match=r"^file://.*: upload t2m/eu/t2m_eu_001.png failed "
                                           r"after 2 attempts: ConnectionResetError: dropped$"):
        publish_run(run, _FlakyUploads(www, {"drops": 2}), model="m", run_time=t0, retries=1,
                    backoff=0.25, workers=1)
    assert (www / "m/2026112300/manifest.json").read_bytes() == manifest
    # a refused file with two upload connections: that error, nothing published after it
    with pytest.raises(PublishError, match=r"^file://.*: upload t2m/eu/t2m_eu_002.png failed: "
                                           r"read-only"):
        publish_run(run, _FlakyUploads(www, {"refuse": "t2m_eu_002.png"}), model="m",
                    run_time=t0, workers=2)
    assert (www / "m/2026112300/manifest.json").read_bytes() == manifest
    assert not (www / "m/latest.json").exists()


class _RefusingOp(LocalTarget):
    """A real folder where one operation on paths ending in ``suffix`` fails for good, after
    ``drops`` dropped connections on the first reads (shared across clones)."""

    def __init__(self, root, op, suffix, box):
        super().__init__(root)
        self.op, self.suffix, self.box = op, suffix, box

    def clone(self):
        return _RefusingOp(self.root, self.op, self.suffix, self.box)

    def _check(self, op, remote):
        if op == self.op and remote.endswith(self.suffix):
            raise PermissionError(f"read-only: {remote}")

    def read_bytes(self, remote):
        if self.box["drops"] > 0:
            self.box["drops"] -= 1
            raise ConnectionResetError("dropped")
        self._check("read_bytes", remote)
        return super().read_bytes(remote)

    def write_bytes(self, remote, data):
        self._check("write_bytes", remote)
        super().write_bytes(remote, data)

    def listdir(self, remote):
        self._check("listdir", remote)
        return super().listdir(remote)

    def scan(self, remote):
        self._check("scan", remote)
        return super().scan(remote)

    def makedirs(self, path):
        self._check("makedirs", path)
        super().makedirs(path)

    def remove(self, remote):
        self._check("remove", remote)
        super().remove(remote)

    def link_latest(self, link, target_name):
        self._check("link_latest", link)
        return super().link_latest(link, target_name)


LEFTOVER = "m/2026112300/t2m/eu/.t2m_eu_000.png.abcd1234.part"


@pytest.mark.parametrize(("op", "suffix", "drops", "operation"), [
    ("read_bytes", "m/index.html", 0, "read m/index.html"),
    ("read_bytes", "manifest.json", 0, "read m/2026112300/manifest.json"),
    ("scan", "t2m/eu", 0, "list m/2026112300/t2m/eu"),
    ("makedirs", "t2m/eu", 0, "create m/2026112300/t2m/eu"),
    ("write_bytes", "m/viewer.js", 0, "write m/viewer.js"),
    ("link_latest", "m/latest", 0, "link latest"),
    ("listdir", "m", 0, "list m"),  # the model folder (the run folders in it)
    ("remove", ".part", 0, f"remove {LEFTOVER}"),
    # the run's folders are listed again only after a reconnect (a dropped upload may have
    # left a temp file); otherwise the listing taken before the upload is used
    ("listdir", "t2m/eu", 0, None),
    ("listdir", "t2m/eu", 1, "list m/2026112300/t2m/eu"),
])
def test_every_step_of_a_publish_names_itself_when_refused(tmp_path, make_run_dir, monkeypatch,
                                                          op, suffix, drops, operation):
    monkeypatch.setattr(pb.time, "sleep", lambda s: None)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "o", run_time=t0, products=("t2m",), regions=("eu",),
                       steps=(0,))
    www = tmp_path / "www"
    if op != "makedirs":  # else the run's folder is not there yet
        (www / LEFTOVER).parent.mkdir(parents=True)
        (www / LEFTOVER).write_bytes(b"half")
    target = _RefusingOp(www, op, suffix, {"drops": drops})
    if operation is None:
        assert publish_run(run, target, model="m", run_time=t0).latest == "2026112300"
        assert not (www / LEFTOVER).exists()
        return
    with pytest.raises(PublishError, match=rf"^file://.*: {re.escape(operation)} failed: "
                                           r"read-only"):
        publish_run(run, target, model="m", run_time=t0)


def test_retention_removes_a_run_folder_runs_json_never_listed(tmp_path, make_run_dir):
    """A folder left by a publish that failed before its manifest is not in runs.json; the
    retention sweep removes it all the same."""
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "o", run_time=t0, products=("t2m",), regions=("eu",),
                       steps=(0,))
    www = tmp_path / "www"
    (www / "m/2026112218/t2m/eu").mkdir(parents=True)
    rep = publish_run(run, LocalTarget(www), model="m", run_time=t0, retention=1)
    assert rep.removed_runs == ["2026112218"] and not (www / "m/2026112218").exists()
    runs = json.loads((www / "m/runs.json").read_text())
    assert [r["run_id"] for r in runs["runs"]] == ["2026112300"]


def test_a_product_publish_never_moves_or_links_latest(tmp_path, make_run_dir):
    """Republishing a product of the latest run leaves the symlink alone; a product of an older
    finished run leaves ``latest`` on the newer one; a final publish after product publishes
    lists exactly its own products."""
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    t1 = t0 + timedelta(hours=6)
    runs = {t: make_run_dir(tmp_path / t.strftime("%H"), run_time=t, products=("t2m", "pmsl"),
                            regions=("eu",), steps=(0,)) for t in (t0, t1)}
    www = tmp_path / "www"
    for t in (t0, t1):
        publish_run(runs[t], LocalTarget(www), model="m", run_time=t)
    rep = publish_product(runs[t1], LocalTarget(www), "t2m", model="m", run_time=t1)
    assert rep.complete and rep.latest == "2026112306" and rep.symlink is False
    rep = publish_product(runs[t0], LocalTarget(www), "t2m", model="m", run_time=t0)
    assert rep.latest == "2026112306" and rep.kept_newer_latest
    assert json.loads((www / "m/latest.json").read_text())["run_id"] == "2026112306"
    rep = publish_run(runs[t0], LocalTarget(www), model="m", run_time=t0, products=["pmsl"])
    man = json.loads((www / "m/2026112300/manifest.json").read_text())
    assert man["product_names"] == ["pmsl"] and list(man["files"]) == ["pmsl/eu/pmsl_eu_000.png"]


class _Unreachable(LocalTarget):
    def connect(self):
        raise ConnectionRefusedError("refused")


def test_an_unreachable_target_fails_at_connect_before_anything_is_read(tmp_path, make_run_dir,
                                                                       monkeypatch):
    monkeypatch.setattr(pb.time, "sleep", lambda s: None)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "o", run_time=t0, products=("t2m",), regions=("eu",),
                       steps=(0,))
    with pytest.raises(PublishError, match=r"^file://.*: connect failed after 2 attempts: "
                                           r"ConnectionRefusedError: refused$"):
        publish_run(run, _Unreachable(tmp_path / "www"), model="m", run_time=t0, retries=1)
    assert not (tmp_path / "www").exists()


@pytest.mark.parametrize("how", ["run", "increment", "product"])
def test_default_reconnects_and_back_off(tmp_path, make_run_dir, monkeypatch, how):
    """Five reconnects by default, waiting 1, 2, 4, 8 and 16 s; a sixth drop gives up."""
    sleeps = []
    monkeypatch.setattr(pb.time, "sleep", sleeps.append)
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "o", run_time=t0, products=("t2m",), regions=("eu",),
                       steps=(0,))

    def publish(www, drops):
        target = _FlakyUploads(tmp_path / www, {"drops": drops})
        if how == "run":
            return publish_run(run, target, model="m", run_time=t0)
        if how == "increment":
            return publish_increment(run, target, [0], model="m", run_time=t0,
                                     expected_steps=[0])
        return publish_product(run, target, "t2m", model="m", run_time=t0)

    assert publish("a", 5).retries == 5 and sleeps == [1.0, 2.0, 4.0, 8.0, 16.0]
    with pytest.raises(PublishError, match="failed after 6 attempts"):
        publish("b", 6)


def test_a_changed_frame_of_the_same_size_is_uploaded_again(tmp_path, make_run_dir):
    """The manifest's digest decides, not the server copy's size and time: a frame re-rendered
    with other pixels but the same byte count goes up again even though the server's copy is
    newer than it."""
    t0 = datetime(2026, 11, 23, tzinfo=UTC)
    run = make_run_dir(tmp_path / "o", run_time=t0, products=("t2m",), regions=("eu",),
                       steps=(0, 1))
    www = tmp_path / "www"
    before = time.perf_counter()
    rep = publish_run(run, LocalTarget(www), model="m", run_time=t0)
    time_of_call = time.perf_counter() - before
    assert (rep.model, rep.run_id, rep.target) == ("m", "2026112300", f"file://{www}")
    assert 0 < rep.seconds <= time_of_call
    frame = run / "t2m/eu/t2m_eu_001.png"
    data = bytearray(frame.read_bytes())
    data[-20] ^= 0xFF
    frame.write_bytes(bytes(data))
    os.utime(frame, (1_000_000_000, 1_000_000_000))  # older than the server's copy
    rep = publish_run(run, LocalTarget(www), model="m", run_time=t0)
    assert rep.uploaded == ["t2m/eu/t2m_eu_001.png"] and rep.skipped == ["t2m/eu/t2m_eu_000.png"]
    assert (www / "m/2026112300/t2m/eu/t2m_eu_001.png").read_bytes() == bytes(data)
