"""Download verification in detail, fast: tiny real GRIB messages (ecCodes' own samples)
served by the real local upstream server.

Each check names the defect it catches: accepting a truncated, foreign or corrupt file;
retrying what must not be retried (or the reverse); leaving a temp file; a wrong byte range.
"""

from __future__ import annotations

import base64
import bz2
import io
from pathlib import Path

import pytest
import requests

from framecast.catalog import HttpSpec, RemoteFile
from framecast.errors import FetchError, GribError
from framecast.fetch import (
    RETRY_STATUS,
    USER_AGENT,
    FetchResult,
    IdxEntry,
    fetch_file,
    fetch_files,
    grib_message_count,
    idx_ranges,
    is_valid,
    join_url,
    missing_files,
    new_session,
    parse_idx,
    remote_exists,
    split_credentials,
    validate_file,
)
from framecast.upstream import UpstreamServer

# back-offs capped tiny: a mutant that sleeps the cap instead of the back-off costs 0.05 s,
# not a minute, and still fails the checks of the recorded sleeps
FAST = HttpSpec(timeout=5, retries=3, backoff=0.01, max_backoff=0.05)


def _message(edition: int = 2, short_name: str = "t", step: int = 0) -> bytes:
    import eccodes

    h = eccodes.codes_grib_new_from_samples(f"GRIB{edition}")
    try:
        if edition == 2:
            eccodes.codes_set(h, "shortName", short_name)
            eccodes.codes_set(h, "step", step)
        return eccodes.codes_get_message(h)
    finally:
        eccodes.codes_release(h)


@pytest.fixture(scope="module")
def msgs():
    return {"t": _message(2, "t"), "t6": _message(2, "t", 6), "g1": _message(1)}


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------ GRIB structure


def test_message_count_walks_editions_and_rejects_damage(tmp_path, msgs):
    two = _write(tmp_path / "two.grib2", msgs["t"] + msgs["t6"])
    assert grib_message_count(two) == 2
    assert grib_message_count(_write(tmp_path / "g1", msgs["g1"])) == 1
    assert grib_message_count(_write(tmp_path / "mix", msgs["g1"] + msgs["t"])) == 2
    n = len(msgs["t"])
    cases = {
        "empty": (b"", "empty file, expected GRIB2"),
        "html": (b"<html>404 not found</html>", "no GRIB message at byte 0"),
        "short": (b"GRIB\x00\x00", "no GRIB message at byte 0"),
        "tail": (msgs["t"] + b"GRIB", f"no GRIB message at byte {n}"),
        "trunc": (msgs["t"][:-10], f"message 1 at byte 0 claims {n} bytes but the file has "
                                   f"{n - 10} left"),
        "trunc2": (msgs["t"] + msgs["t"][:-1], f"message 2 at byte {n} claims {n} bytes but "
                                               f"the file has {n - 1} left"),
        # a length whose high byte is set is not read as a small one
        "huge": (b"GRIB\x00\x00\x00\x02\x01" + (32).to_bytes(7, "big") + bytes(12) + b"7777",
                 f"claims {(1 << 56) + 32} bytes but the file has 32 left"),
        "marker": (msgs["t"][:-4] + b"7770", "message 1 at byte 0 lacks its end marker"),
        "edition": (msgs["t"][:7] + b"\x03" + msgs["t"][8:], "unknown GRIB edition 3 at byte 0"),
        "tiny": (b"GRIB\x00\x00\x00\x02" + (19).to_bytes(8, "big") + b"7777",
                 "claims 19 bytes"),
    }
    for name, (data, message) in cases.items():
        p = _write(tmp_path / name, data)
        with pytest.raises(GribError, match="^" + str(p).replace(".", r"\.")) as ei:
            grib_message_count(p)
        assert message in str(ei.value), (name, str(ei.value))
    # a GRIB1 length is 3 bytes: a message of 70,000 bytes (more than 2 bytes can count)
    g1 = b"GRIB" + (70_000).to_bytes(3, "big") + b"\x01" + bytes(70_000 - 12) + b"7777"
    assert grib_message_count(_write(tmp_path / "big1", g1 + msgs["g1"])) == 2
    # exactly 20 bytes is the smallest length accepted by the walk
    p = _write(tmp_path / "twenty", b"GRIB\x00\x00\x00\x02" + (20).to_bytes(8, "big") + b"7777")
    assert grib_message_count(p) == 1


def test_validate_file_counts_and_checks_keys(tmp_path, msgs):
    p = _write(tmp_path / "x.grib2", msgs["t"] + msgs["t6"])
    validate_file(p, 2)
    validate_file(p, 2, {"step": "6"})
    with pytest.raises(GribError, match=r"expected 1 GRIB message\(s\), found 2"):
        validate_file(p, 1)
    with pytest.raises(GribError, match="none of its 2 GRIB message"):
        validate_file(p, 2, {"step": "7"})
    assert is_valid(p, 2) and is_valid(p, 2, {"shortName": "t"})
    assert not is_valid(p, 3) and not is_valid(tmp_path / "none", 1)
    assert not is_valid(tmp_path, 1)  # a folder is not a file
    assert not is_valid(_write(tmp_path / "bad", b"junk"), 1)


def test_idx_parsing_and_ranges():
    text = ("1:0:d=2026112300:TMP:2 m above ground:anl:\n"
            "2:100:d=2026112300:PRMSL:mean sea level:anl:\n\n"
            "3.1:250:d=2026112300:UGRD:10 m above ground:anl:\n"
            "3.2:250:d=2026112300:VGRD:10 m above ground:anl:\n"
            "4:400:d=2026112300:TMP:2 m above ground:anl:\n")
    e = parse_idx(text, "f.idx")
    assert e == [IdxEntry(1, 0, 100, "TMP", "2 m above ground"),
                 IdxEntry(2, 100, 250, "PRMSL", "mean sea level"),
                 IdxEntry(3, 250, 250, "UGRD", "10 m above ground"),
                 IdxEntry(3, 250, 400, "VGRD", "10 m above ground"),
                 IdxEntry(4, 400, None, "TMP", "2 m above ground")]
    assert e[1].key == "PRMSL:mean sea level"
    # the first TMP wins, adjacent messages merge, file order, duplicates ignored
    assert idx_ranges(e, ["PRMSL:mean sea level", "TMP:2 m above ground",
                          "PRMSL:mean sea level"], "s") == [(0, 250)]
    assert idx_ranges(e, ["VGRD:10 m above ground", "TMP:2 m above ground"], "s") == [
        (0, 100), (250, 400)]
    assert idx_ranges(e[3:], ["TMP:2 m above ground", "VGRD:10 m above ground"], "s") == [
        (250, None)]
    with pytest.raises(FetchError, match=r"^s: field\(s\) \['X:y'\] not in the index$"):
        idx_ranges(e, ["X:y", "TMP:2 m above ground"], "s")
    with pytest.raises(FetchError, match=r"^f\.idx: line 2 is not a wgrib2 inventory line"):
        parse_idx("1:0:d=x:TMP:sfc\n2:5:d\n", "f.idx")
    with pytest.raises(FetchError, match=r"^f\.idx: line 1: bad message number/offset"):
        parse_idx("a:0:d=x:TMP:sfc\n", "f.idx")
    with pytest.raises(FetchError, match=r"line 1: bad message number/offset"):
        parse_idx("1:zz:d=x:TMP:sfc\n", "f.idx")
    assert parse_idx("") == []
    with pytest.raises(FetchError, match=r"^\.idx: line 1 is not a wgrib2 inventory line"):
        parse_idx("1:0:d")  # no source given: named after the kind of file
    assert parse_idx("1:0:d:V:L") == [IdxEntry(1, 0, None, "V", "L")]


def test_urls_and_sessions():
    assert join_url("http://h/a/", "/b/c") == "http://h/a/b/c"
    assert join_url("http://h/a", "b") == "http://h/a/b"
    with new_session() as s:
        assert s.headers["User-Agent"] == USER_AGENT
    assert {500, 502, 503, 504, 429, 408, 425} == set(RETRY_STATUS)


# ------------------------------------------------------------------ the body sink


def test_sink_caps_the_bytes_across_chunks_and_names_the_limit():
    from framecast.fetch import _Sink

    mib3 = 3 << 20
    buf = io.BytesIO()
    sink = _Sink(buf, "http://h/f", mib3, "http.max_bytes")
    sink.write(b"GR")
    sink.write(b"IB" + bytes(mib3 - 6))
    sink.write(b"77")  # exactly the limit: accepted
    assert buf.getvalue() == b"GRIB" + bytes(mib3 - 6) + b"77"
    with pytest.raises(FetchError, match=r"^http://h/f: more than 3145728 bytes \(3\.0 MiB\) "
                                         r"\(http\.max_bytes\); refusing the file$"):
        sink.write(b"7")
    assert len(buf.getvalue()) == mib3  # the byte over the limit was not written
    # the magic is checked across chunk boundaries too
    bad = _Sink(io.BytesIO(), "http://h/g", 100, "x")
    bad.write(b"GR")
    with pytest.raises(Exception, match=r"^http://h/g: body does not start with b'GRIB'"):
        bad.write(b"IX")


class _RecordingBz2:
    """A real bz2 decompressor that records the size of every piece it hands out."""

    def __init__(self):
        self.dec = bz2.BZ2Decompressor()
        self.pieces: list[int] = []

    def decompress(self, data, max_length=-1):
        out = self.dec.decompress(data, max_length=max_length)
        self.pieces.append(len(out))
        return out

    eof = property(lambda self: self.dec.eof)
    needs_input = property(lambda self: self.dec.needs_input)


def test_decompression_runs_in_bounded_steps():
    """8 MiB of zeros compress to a few hundred bytes: they come out 1 MiB at a time, never at
    once (a bz2 bomb must hit the cap before it fills memory)."""
    from framecast.fetch import CHUNK, _Sink

    body = b"GRIB" + bytes((8 << 20) - 4)
    dec = _RecordingBz2()
    buf = io.BytesIO()
    _Sink(buf, "http://h/f.bz2", 9 << 20, "http.max_decompressed_bytes", dec).write(
        bz2.compress(body))
    assert buf.getvalue() == body and dec.eof
    assert max(dec.pieces) == CHUNK == 1 << 20 and sum(dec.pieces) == len(body)


# ------------------------------------------------------------------ real server


@pytest.fixture
def upstream(tmp_path, msgs):
    root = tmp_path / "up"
    _write(root / "run/t.grib2", msgs["t"])
    _write(root / "run/t.grib2.bz2", bz2.compress(msgs["t"]))
    _write(root / "run/two.grib2", msgs["t"] + msgs["t6"])
    idx = (f"1:0:d=2007032300:TMP:surface:anl:\n"
           f"2:{len(msgs['t'])}:d=2007032300:TMP:surface:6 hour fcst:\n")
    _write(root / "run/two.grib2.idx", idx.encode())
    with UpstreamServer(root) as server:
        yield server


def _rf(url_path, local="t.grib2", **kw) -> RemoteFile:
    return RemoteFile(url_path=url_path, local_path=local, step=0, variables=("t2m",), **kw)


def test_plain_and_bz2_downloads_then_skip(upstream, tmp_path, msgs):
    dest = tmp_path / "dest"
    r = fetch_file(upstream.url, _rf("run/t.grib2", "a/t.grib2", expect={"shortName": "t"}),
                   dest, http=FAST)
    assert r == FetchResult(upstream.url + "/run/t.grib2", str(dest / "a/t.grib2"),
                            "downloaded", len(msgs["t"]), 1, r.seconds)
    assert (dest / "a/t.grib2").read_bytes() == msgs["t"] and r.seconds >= 0
    comp = bz2.compress(msgs["t"])
    r = fetch_file(upstream.url + "/", _rf("/run/t.grib2.bz2", "b.grib2", compression="bz2"),
                   dest, http=FAST)
    assert r.status == "downloaded" and r.bytes == len(comp)
    assert (dest / "b.grib2").read_bytes() == msgs["t"]
    upstream.clear_log()
    r = fetch_file(upstream.url, _rf("run/t.grib2", "a/t.grib2"), dest, http=FAST)
    assert (r.status, r.bytes, r.attempts) == ("skipped", 0, 0) and upstream.requests == []
    assert 0 <= r.seconds < 5  # the time of the local check, not a clock reading
    assert sorted(p.name for p in dest.rglob("*")) == ["a", "b.grib2", "t.grib2"]


def test_transient_failures_are_retried_with_backoff(upstream, tmp_path):
    sleeps = []
    upstream.fail("run/t.grib2", times=1, status=503)
    upstream.corrupt("run/t.grib2", times=1)
    dest = tmp_path / "d"
    r = fetch_file(upstream.url, _rf("run/t.grib2"), dest, http=HttpSpec(5, 3, 0.5),
                   sleep=sleeps.append)
    assert (r.status, r.attempts) == ("downloaded", 3) and sleeps == [0.5, 1.0]
    assert [p.name for p in dest.iterdir()] == ["t.grib2"]
    upstream.drop("run/t.grib2.bz2", times=1)
    r = fetch_file(upstream.url, _rf("run/t.grib2.bz2", "z.grib2", compression="bz2"),
                   dest, http=FAST, sleep=sleeps.append)
    assert (r.status, r.attempts) == ("downloaded", 2)


def test_persistent_and_permanent_failures(upstream, tmp_path, msgs):
    sleeps = []
    upstream.fail("run/t.grib2", times=5, status=500)
    with pytest.raises(FetchError, match=r"/run/t\.grib2: failed after 3 attempts; last error: "
                                         r".*HTTP 500"):
        fetch_file(upstream.url, _rf("run/t.grib2"), tmp_path / "d", http=FAST,
                   sleep=sleeps.append)
    assert sleeps == [0.01, 0.02]  # no sleep after the last attempt
    upstream.faults.errors.clear()
    assert list((tmp_path / "d").iterdir()) == []  # no temp file left
    with pytest.raises(FetchError, match=r"/run/nope\.grib2: HTTP 404 not found on the upstream"):
        fetch_file(upstream.url, _rf("run/nope.grib2"), tmp_path / "d", http=FAST)
    upstream.fail("run/t.grib2", times=1, status=403)
    with pytest.raises(FetchError, match=r"/run/t\.grib2: HTTP 403 Forbidden"):
        fetch_file(upstream.url, _rf("run/t.grib2"), tmp_path / "d", http=FAST)
    # a valid file of the wrong kind (one message where two are expected) is never accepted
    with pytest.raises(FetchError, match=r"failed after 3 attempts.*expected 2 GRIB message"):
        fetch_file(upstream.url, _rf("run/t.grib2", messages=2), tmp_path / "d", http=FAST,
                   sleep=lambda s: None)
    # a bz2 file served as plain is not GRIB; a plain file declared bz2 is not bz2
    with pytest.raises(FetchError, match=r"body does not start with b'GRIB' \(not GRIB"):
        fetch_file(upstream.url, _rf("run/t.grib2.bz2"), tmp_path / "d", http=FAST,
                   sleep=lambda s: None)
    with pytest.raises(FetchError, match="corrupt compressed data"):
        fetch_file(upstream.url, _rf("run/t.grib2", compression="bz2"), tmp_path / "d",
                   http=FAST, sleep=lambda s: None)
    assert list((tmp_path / "d").iterdir()) == []
    with pytest.raises(FetchError, match=r"http://127\.0\.0\.1:1/x: failed after 2 attempts.*"
                                         r"ConnectionError"):
        fetch_file("http://127.0.0.1:1", _rf("x"), tmp_path / "e",
                   http=HttpSpec(2, 2, 0.0, max_backoff=0.05))


def test_ranged_download_fetches_only_the_wanted_message(upstream, tmp_path, msgs):
    rf = _rf("run/two.grib2", "two.grib2", fields=("TMP:surface",), expect={"step": "0"})
    r = fetch_file(upstream.url, rf, tmp_path, http=FAST)
    assert r.status == "downloaded" and r.bytes == len(msgs["t"])
    assert (tmp_path / "two.grib2").read_bytes() == msgs["t"]
    ranges = [q.range for q in upstream.gets("two.grib2")]
    assert ranges == [f"bytes=0-{len(msgs['t']) - 1}"]
    assert len(upstream.gets(".idx")) == 1
    upstream.clear_log()
    both = _rf("run/two.grib2", "both.grib2", messages=2, fields=("TMP:surface",))
    # TMP:surface twice in the index: the first is taken, so one message arrives
    with pytest.raises(FetchError, match=r"expected 2 GRIB message"):
        fetch_file(upstream.url, both, tmp_path, http=FAST, sleep=lambda s: None)
    with pytest.raises(FetchError, match=r"/run/two\.grib2\.idx: field\(s\) \['UGRD:x'\] not in "
                                         r"the index"):
        fetch_file(upstream.url, _rf("run/two.grib2", "u", fields=("UGRD:x",)), tmp_path,
                   http=FAST)
    with pytest.raises(FetchError, match=r"two\.grib2x\.idx: HTTP 404"):
        fetch_file(upstream.url, _rf("run/two.grib2x", "v", fields=("TMP:surface",)),
                   tmp_path, http=FAST)


def test_ranged_download_of_the_last_message_is_open_ended(upstream, tmp_path, msgs):
    idx = (f"1:0:d=2007032300:PRMSL:msl:anl:\n"
           f"2:{len(msgs['t'])}:d=2007032300:TMP:surface:6 hour fcst:\n")
    (upstream.root / "run/two.grib2.idx").write_text(idx)
    rf = _rf("run/two.grib2", "six.grib2", fields=("TMP:surface",), expect={"step": "6"})
    r = fetch_file(upstream.url, rf, tmp_path, http=FAST)
    assert (tmp_path / "six.grib2").read_bytes() == msgs["t6"] and r.bytes == len(msgs["t6"])
    assert [q.range for q in upstream.gets("two.grib2")] == [f"bytes={len(msgs['t'])}-"]


def test_fetch_files_in_order_and_missing_files(upstream, tmp_path):
    files = [_rf("run/t.grib2", "1.grib2"), _rf("run/t.grib2.bz2", "2.grib2", compression="bz2")]
    res = fetch_files(upstream.url, files, tmp_path, http=FAST)
    assert [(Path(r.path).name, r.status) for r in res] == [("1.grib2", "downloaded"),
                                                            ("2.grib2", "downloaded")]
    assert [r.status for r in fetch_files(upstream.url, files, tmp_path, http=FAST)] == [
        "skipped", "skipped"]
    # the download settings and the sleep reach every file
    sleeps = []
    upstream.fail("run/two.grib2", times=5, status=503)
    with pytest.raises(FetchError, match="failed after 3 attempts"):
        fetch_files(upstream.url, [_rf("run/two.grib2", "3.grib2", messages=2)], tmp_path,
                    http=FAST, sleep=sleeps.append)
    assert sleeps == [0.01, 0.02]
    upstream.faults.errors.clear()
    gfs = _rf("run/two.grib2", fields=("TMP:surface",))
    no_idx = _rf("run/t.grib2", fields=("TMP:surface",))
    upstream.hide("run/t.grib2.bz2")
    assert missing_files(upstream.url, [files[0], files[1], gfs, no_idx,
                                        _rf("run/gone")]) == [
        "run/t.grib2.bz2", "run/t.grib2.idx", "run/gone"]
    with new_session() as s:
        assert remote_exists(s, upstream.url + "/run/t.grib2", 5) is True
        assert remote_exists(s, upstream.url + "/run/gone", 5) is False
        upstream.fail("run/t.grib2", times=1, status=403)
    with pytest.raises(FetchError, match=r"127\.0\.0\.1:1/x: upstream unreachable "
                                         r"\(ConnectionError\)"):
        missing_files("http://127.0.0.1:1", [_rf("x")], timeout=2)


def test_head_errors_other_than_missing_raise(tmp_path):
    import http.server
    import threading

    class H(http.server.BaseHTTPRequestHandler):
        def do_HEAD(self):  # noqa: N802 - stdlib name
            code = {"/forbidden": 403, "/redirect": 302, "/error": 500}.get(self.path, 200)
            if self.path == "/private":  # a mirror that wants its credentials
                code = 200 if self.headers.get("Authorization") == AUTH else 403
            if self.path == "/slow":
                stop.wait(3)
            self.send_response(code)
            if code == 302:
                self.send_header("Location", "/ok")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *a):
            pass

    AUTH = "Basic " + base64.b64encode(b"fc:s3cret").decode()
    stop = threading.Event()
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    try:
        with requests.Session() as s:
            assert remote_exists(s, base + "/forbidden", 5) is False
            assert remote_exists(s, base + "/redirect", 5) is True  # redirects are followed
            with pytest.raises(FetchError, match=r"/error: HEAD returned HTTP 500$"):
                remote_exists(s, base + "/error", 5)
            # the timeout bounds a server that does not answer
            with pytest.raises(FetchError, match=r"/slow: upstream unreachable \(ReadTimeout\)"):
                remote_exists(s, base + "/slow", 0.2)
        with pytest.raises(FetchError, match=r"/slow: upstream unreachable \(ReadTimeout\)"):
            missing_files(base, [_rf("slow")], timeout=0.2)
        # a mirror's credentials are sent with every HEAD, the URL stays bare
        private = base.replace("://", "://fc:s3cret@", 1)
        assert missing_files(private, [_rf("private")]) == []
        assert missing_files(base, [_rf("private")]) == ["private"]
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()


def test_credentials_leave_the_url_for_the_session(upstream, tmp_path):
    """user:password of a mirror's URL go into the session's auth: results and messages carry
    the bare URL (a password in it would reach task logs)."""
    assert split_credentials("http://u:p%40ss@127.0.0.1:8080/base") == (
        "http://127.0.0.1:8080/base", ("u", "p@ss"))
    assert split_credentials("https://u@[::1]:8443/x?y=1") == ("https://[::1]:8443/x?y=1",
                                                                ("u", ""))
    assert split_credentials("http://mirror.example/x") == ("http://mirror.example/x", None)
    base = upstream.url.replace("://", "://fc:s3cret@", 1)
    r = fetch_file(base, _rf("run/t.grib2"), tmp_path, http=FAST)
    assert r.status == "downloaded" and r.url == upstream.url + "/run/t.grib2"
    with pytest.raises(FetchError, match=r"nope\.grib2: HTTP 404") as err:
        fetch_file(base, _rf("run/nope.grib2", "nope.grib2"), tmp_path, http=FAST)
    assert "s3cret" not in str(err.value)


# ------------------------------------------------------------------ what a server announces


def _odd_server(msgs):
    """A stdlib HTTP server on 127.0.0.1 whose answers break the rules in one way per path."""
    import http.server
    import threading

    t = msgs["t"]
    stop = threading.Event()

    class H(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - stdlib name
            if self.path == "/slow":  # headers only after the client gave up
                stop.wait(3)
            if self.path == "/bad":
                self.send_response(400)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            if self.path == "/announce":  # a length over the cap, announced up front
                self.send_header("Content-Length", str(10**9))
                self.end_headers()
                return
            if self.path == "/endless":  # no length: read until the cap
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(t * 4)
                self.close_connection = True
                return
            self.send_header("Content-Length", str(len(t)))
            self.end_headers()
            self.wfile.write(t)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, stop


def test_announced_and_received_lengths_against_the_cap(tmp_path, msgs):
    srv, stop = _odd_server(msgs)
    base = f"http://127.0.0.1:{srv.server_address[1]}"
    n = len(msgs["t"])
    try:
        # exactly the cap is fine, on the wire and as announced
        r = fetch_file(base, _rf("exact"), tmp_path, http=HttpSpec(5, 1, 0.0, max_bytes=n))
        assert r.status == "downloaded" and r.bytes == n
        with pytest.raises(FetchError, match=r"/announce: server announces 1000000000 bytes, more "
                                             r"than 3145728 bytes \(3\.0 MiB\) \(http\.max_bytes\); "
                                             r"refusing the file$"):
            fetch_file(base, _rf("announce", "a"), tmp_path,
                       http=HttpSpec(5, 1, 0.0, max_bytes=3 << 20))
        with pytest.raises(FetchError, match=rf"/endless: more than {2 * n} bytes \(0\.0 MiB\) "
                                             r"on the wire \(http\.max_bytes\); refusing the file$"):
            fetch_file(base, _rf("endless", "e"), tmp_path,
                       http=HttpSpec(5, 1, 0.0, max_bytes=2 * n))
        with pytest.raises(FetchError, match=r"/bad: HTTP 400 Bad Request$"):
            fetch_file(base, _rf("bad", "b"), tmp_path, http=HttpSpec(5, 1, 0.0))
        # the read timeout bounds a server that does not answer
        with pytest.raises(FetchError, match=r"/slow: failed after 1 attempts; last error: .*"
                                             r"/slow: ReadTimeout: "):
            fetch_file(base, _rf("slow", "s"), tmp_path, http=HttpSpec(0.2, 1, 0.0))
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.grib2"]


def test_a_connection_dropped_every_time_names_the_loss(upstream, tmp_path):
    upstream.drop("run/t.grib2", times=5)
    with pytest.raises(FetchError, match=r"failed after 3 attempts; last error: .*/run/t\.grib2: "
                                         r"connection lost after \d+ bytes"):
        fetch_file(upstream.url, _rf("run/t.grib2"), tmp_path, http=FAST, sleep=lambda s: None)


def test_a_broken_index_is_named_by_its_url(upstream, tmp_path):
    rf = _rf("run/two.grib2", "r.grib2", fields=("TMP:surface",))
    (upstream.root / "run/two.grib2.idx").write_text("1:0:d\n")
    with pytest.raises(FetchError, match=r"/run/two\.grib2\.idx: line 1 is not a wgrib2 "
                                         r"inventory line"):
        fetch_file(upstream.url, rf, tmp_path, http=FAST)


def test_skip_and_download_check_the_expected_keys_and_count_attempts(upstream, tmp_path, msgs):
    """A local file of another step is not "already there"; a served file of another step is
    not accepted; a file failing every time is asked for exactly ``retries`` times."""
    dest = tmp_path / "d"
    _write(dest / "t.grib2", msgs["t6"])  # left by a run of another step
    rf = _rf("run/t.grib2", expect={"step": "0"})
    r = fetch_file(upstream.url, rf, dest, http=FAST)
    assert r.status == "downloaded" and (dest / "t.grib2").read_bytes() == msgs["t"]
    r = fetch_file(upstream.url, rf, dest, http=FAST)
    assert r == FetchResult(upstream.url + "/run/t.grib2", str(dest / "t.grib2"), "skipped", 0,
                            0, r.seconds)
    with pytest.raises(FetchError, match=r"downloaded file is not valid: .*none of its 1 GRIB"):
        fetch_file(upstream.url, _rf("run/t.grib2", "six.grib2", expect={"step": "6"}), dest,
                   http=FAST, sleep=lambda s: None)
    upstream.clear_log()
    upstream.fail("run/t.grib2", times=9, status=503)
    with pytest.raises(FetchError, match="failed after 3 attempts"):
        fetch_file(upstream.url, _rf("run/t.grib2", "x.grib2"), dest, http=FAST,
                   sleep=lambda s: None)
    assert [(q.method, q.path, q.status) for q in upstream.requests] == [
        ("GET", "run/t.grib2", 503)] * 3
    upstream.faults.errors.clear()
    assert sorted(p.name for p in dest.iterdir()) == ["t.grib2"]
