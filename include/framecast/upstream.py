"""A local HTTP upstream: serves a directory in DWD/NOAA layout, with fault injection.

Tests and the demo point framecast at this server instead of opendata.dwd.de or NOMADS. It is a
real HTTP/1.1 server on 127.0.0.1 (random free port) supporting HEAD, GET and single byte-range
requests, so the download code runs exactly as in production. Faults reproduce what real
upstreams do to a busy downloader: transient 5xx, connections dropped mid-body, corrupted
payloads, and files not published yet. Hostile behaviours reproduce what a compromised or
broken upstream (or a man in the middle) can do: a body that never ends, trickled a few bytes
at a time (``trickle``), and redirects to another URL such as plain http (``redirect``); the
server can speak TLS (``tls=(cert, key)``).

Run it by hand: ``python -m framecast.upstream ROOT [--port N]``.
"""

from __future__ import annotations

import argparse
import gzip
import re
import shutil
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass
class Faults:
    """Injected faults, keyed by URL path relative to the server root (no leading slash).

    ``errors``/``drops``/``corrupt`` count down per GET of that path: the next N requests
    fail that way, then the file is served normally. ``missing`` paths answer 404 until
    removed from the set (a run still being published).
    """

    errors: Counter = field(default_factory=Counter)
    drops: Counter = field(default_factory=Counter)
    corrupt: Counter = field(default_factory=Counter)
    missing: set[str] = field(default_factory=set)
    error_status: int = 500
    #: path -> ``time.time()`` before which it answers 404 (a run arriving step by step)
    not_before: dict[str, float] = field(default_factory=dict)
    trickle: set[str] = field(default_factory=set)
    redirects: dict[str, str] = field(default_factory=dict)
    trickle_interval: float = 0.05
    #: paths served gzip-encoded (``Content-Encoding: gzip``, the length of the encoded body),
    #: as a compressing proxy or CDN in front of the file server does: ``True`` only to
    #: clients that accept gzip, ``False`` whatever the client asked for (a misconfigured one)
    gzip: dict[str, bool] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One request as seen by the server (for tests: what was downloaded, how often)."""

    method: str
    path: str
    range: str
    status: int


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (stdlib signature)
        pass  # requests are recorded in server.requests instead of stderr noise

    def _rel(self) -> str:
        return unquote(urlsplit(self.path).path).lstrip("/")

    def _record(self, status: int) -> None:
        with self.server.lock:
            self.server.requests.append(
                Request(self.command, self._rel(), self.headers.get("Range", ""), status)
            )

    def _file(self) -> Path | None:
        rel = self._rel()
        root = self.server.root
        p = (root / rel).resolve()
        if root not in p.parents and p != root:
            return None
        faults = self.server.faults
        if rel in faults.missing or not p.is_file():
            return None
        if time.time() < faults.not_before.get(rel, 0.0):
            return None
        return p

    def _error(self, status: int) -> None:
        body = f"{status} {HTTPStatus(status).phrase}\n".encode()
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _take(self, counter: Counter, rel: str) -> bool:
        with self.server.lock:
            if counter[rel] > 0:
                counter[rel] -= 1
                return True
        return False

    def do_HEAD(self) -> None:  # noqa: N802 (stdlib naming)
        self._serve(head=True)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(head=False)

    def _redirect(self, location: str) -> None:
        self._record(302)
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _trickle(self) -> None:
        """A body without end: GRIB's magic, then one byte per interval until the client goes."""
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            self.wfile.write(b"GRIB")
            while not self.server.stopping.is_set():
                self.wfile.write(b"\0")
                self.wfile.flush()
                time.sleep(self.server.faults.trickle_interval)
        except OSError:
            pass  # the client gave up: what a downloader with a deadline does

    def _gzipped(self, p: Path, head: bool) -> None:
        """The whole file gzip-encoded (no ranges: proxies drop them when they compress)."""
        body = gzip.compress(p.read_bytes(), mtime=0)
        self._record(200)
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        rel = self._rel()
        faults = self.server.faults
        if rel in faults.redirects:
            self._redirect(faults.redirects[rel])
            return
        if not head and rel in faults.trickle:
            self._trickle()
            return
        p = self._file()
        if p is None:
            self._error(404)
            return
        if not head and self._take(faults.errors, rel):
            self._error(faults.error_status)
            return
        if rel in faults.gzip and (
                not faults.gzip[rel]
                or "gzip" in self.headers.get("Accept-Encoding", "").lower()):
            self._gzipped(p, head)
            return
        size = p.stat().st_size
        start, end = 0, size - 1
        status = 200
        rng = self.headers.get("Range")
        if rng:
            m = _RANGE.match(rng.strip())
            if not m or (not m.group(1) and not m.group(2)):
                self._error(416)
                return
            if m.group(1):
                start = int(m.group(1))
                end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
            else:  # suffix range: the last N bytes
                start = max(0, size - int(m.group(2)))
            if start >= size or start > end:
                self._error(416)
                return
            status = 206
        length = end - start + 1
        self._record(status)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.end_headers()
        if head:
            return
        corrupt, drop = self._take(faults.corrupt, rel), self._take(faults.drops, rel)
        if not corrupt and not drop:  # streamed: a large file costs no server memory
            with open(p, "rb") as fh:
                fh.seek(start)
                try:
                    shutil.copyfileobj(_Limited(fh, length), self.wfile, 1 << 20)
                except OSError:
                    self.close_connection = True  # the client hung up (a cap refused the file)
            return
        with open(p, "rb") as fh:
            fh.seek(start)
            body = fh.read(length)
        if corrupt:
            body = corrupt_bytes(body)
        if drop:
            self.wfile.write(body[: max(1, len(body) // 2)])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)


class _Limited:
    """A file object that ends after ``n`` bytes (one byte range)."""

    def __init__(self, fh, n: int) -> None:
        self.fh, self.left = fh, n

    def read(self, size: int = -1) -> bytes:
        size = self.left if size < 0 else min(size, self.left)
        data = self.fh.read(size)
        self.left -= len(data)
        return data


def corrupt_bytes(body: bytes) -> bytes:
    """Same length, damaged the way bad transfers damage files: a zeroed block and tail."""
    b = bytearray(body)
    n = len(b)
    mid = n // 2
    b[mid : mid + 4096] = bytes(len(b[mid : mid + 4096]))
    b[max(0, n - 8) :] = bytes(len(b[max(0, n - 8) :]))
    return bytes(b)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, root: Path, faults: Faults) -> None:
        super().__init__(addr, _Handler)
        self.root = root
        self.faults = faults
        self.requests: list[Request] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()


class UpstreamServer:
    """A local upstream serving ``root``; use as a context manager or start()/stop()."""

    def __init__(self, root: Path, host: str = "127.0.0.1", port: int = 0,
                 tls: tuple[Path, Path | None] | None = None) -> None:
        self.root = Path(root).resolve()
        self.faults = Faults()
        self._server = _Server((host, port), self.root, self.faults)
        self._thread: threading.Thread | None = None
        self.scheme = "http"
        if tls is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(str(tls[0]), str(tls[1]) if tls[1] else None)
            self._server.socket = ctx.wrap_socket(self._server.socket, server_side=True)
            self.scheme = "https"

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self.scheme}://{host}:{port}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def requests(self) -> list[Request]:
        with self._server.lock:
            return list(self._server.requests)

    def clear_log(self) -> None:
        with self._server.lock:
            self._server.requests.clear()

    def gets(self, suffix: str = "") -> list[Request]:
        """Successful GETs (full or ranged) of paths ending in ``suffix``."""
        return [r for r in self.requests
                if r.method == "GET" and r.status in (200, 206) and r.path.endswith(suffix)]

    def fail(self, path: str, times: int = 1, status: int = 500) -> None:
        self.faults.error_status = status
        self.faults.errors[path] += times

    def drop(self, path: str, times: int = 1) -> None:
        self.faults.drops[path] += times

    def corrupt(self, path: str, times: int = 1) -> None:
        self.faults.corrupt[path] += times

    def gzip(self, path: str, *, always: bool = False) -> None:
        """Serve ``path`` gzip-encoded to clients that accept it (``always``: to every client)."""
        self.faults.gzip[path] = not always

    def hide(self, path: str) -> None:
        self.faults.missing.add(path)

    def publish(self, path: str) -> None:
        self.faults.missing.discard(path)
        self.faults.not_before.pop(path, None)

    def release(self, schedule: dict[str, float]) -> None:
        """Make each path visible only from its instant on (see :mod:`framecast.arrival`)."""
        self.faults.not_before.update(schedule)

    def replay_run(self, model: str, run: str, *, speedup: float, start: float | None = None,
                   models_file: Path | None = None) -> dict[str, float]:
        """Release the files of one run of ``model`` as the model's arrival table says.

        Step 0 appears at ``start`` (default: now), later steps at their arrival offsets
        divided by ``speedup``. Returns the schedule (url path -> instant).
        """
        from framecast.arrival import load_arrival, release_schedule
        from framecast.catalog import get_model, needed_variables, parse_run, run_files

        spec = get_model(model, models_file)
        files = run_files(spec, parse_run(run), needed_variables(spec))
        base = _base_path(self.root, files)
        schedule = release_schedule(files, load_arrival(model), speedup=speedup,
                                    start=time.time() if start is None else start)
        schedule = {f"{base}{k}": v for k, v in schedule.items()}
        self.release(schedule)
        return schedule

    def trickle(self, path: str) -> None:
        """GETs of ``path`` answer with a body that never ends, a byte at a time."""
        self.faults.trickle.add(path)

    def redirect(self, path: str, location: str) -> None:
        """GETs and HEADs of ``path`` answer 302 to ``location``."""
        self.faults.redirects[path] = location

    def start(self) -> UpstreamServer:
        # a short poll interval: stop() waits for the serving loop's next poll, and tests
        # start and stop a server per case (the default 0.5 s would dominate their runtime)
        self._thread = threading.Thread(target=self._server.serve_forever, name="upstream",
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> UpstreamServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _base_path(root: Path, files: list) -> str:
    """The folder under ``root`` that holds the model's layout (``""`` or ``"a/b/"``).

    Sample runs are often written below a prefix mirroring the real server's base URL
    (``weather/nwp/icon-eu/grib/00/...``); the first file of the run found on disk tells which.
    """
    on_disk = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
    for f in files:
        for rel in on_disk:
            if rel == f.url_path or rel.endswith("/" + f.url_path):
                return rel[: len(rel) - len(f.url_path)]
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve a directory as a local model upstream.")
    parser.add_argument("root", type=Path)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--model", help="with --run: replay that run as it arrives upstream")
    parser.add_argument("--run", help="run time YYYYMMDDHH to replay")
    parser.add_argument("--speedup", type=float, default=60.0,
                        help="arrival offsets divided by this (default 60: an hour per minute)")
    args = parser.parse_args(argv)
    if bool(args.model) != bool(args.run):
        parser.error("--model and --run go together")
    server = UpstreamServer(args.root, args.host, args.port)
    if args.model:
        schedule = server.replay_run(args.model, args.run, speedup=args.speedup)
        span = max(schedule.values()) - min(schedule.values()) if schedule else 0.0
        print(f"replaying {args.model} {args.run}: {len(schedule)} files over {span:.0f} s",
              flush=True)
    print(f"serving {server.root} at {server.url}", flush=True)
    try:
        server._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server._server.server_close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
