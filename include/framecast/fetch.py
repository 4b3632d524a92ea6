"""Downloading model runs: streaming, retried, verified, atomic, and idempotent.

A file only counts as downloaded once it sits at its final path and parses as complete GRIB2
with the expected number of messages. Until then it lives in a temp file beside the target,
so an interrupted task, a dropped connection or a corrupt transfer never leaves a half-written
file that a later render would read. A file already present and valid is not downloaded again,
so re-running a DAG run costs one local check per file.

Transient failures (HTTP 5xx, 429, timeouts, connection resets, truncated bodies, corrupt
payloads) are retried with exponential back-off; anything else fails at once with a
:class:`~framecast.errors.FetchError` naming the URL.

GFS files are large multi-field files; only the needed fields are fetched with HTTP Range
requests using the byte offsets of the wgrib2 ``.idx`` index published beside each file.

A hostile or broken upstream cannot exhaust the worker: bytes on the wire and bytes after bz2
decompression are capped per file (``http.max_bytes``, ``http.max_decompressed_bytes``, per
model), decompression runs in bounded steps, a body that does not start like GRIB is rejected
after its first bytes, the ``.idx`` is read under a small cap, the whole file (every attempt
and back-off) has a deadline (``http.deadline``) checked after every read, back-offs are capped
(``http.max_backoff``), and a redirect from https to plain http is refused. Exceeding a limit
fails the file at once (retrying would only repeat it) with the limit's name in the message.
"""

from __future__ import annotations

import bz2
import io
import logging
import os
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
import urllib3.exceptions

from framecast.catalog import HttpSpec, RemoteFile
from framecast.errors import FetchError, GribError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
RETRY_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "framecast/0.1 (+https://github.com/framecast)"
#: A wgrib2 inventory is a few hundred short lines; anything far larger is not one.
MAX_IDX_BYTES = 4 << 20
GRIB_MAGIC = b"GRIB"


class _Transient(Exception):
    """A failure worth retrying (server error, reset, truncated or corrupt payload)."""


@dataclass(frozen=True)
class FetchResult:
    """What happened to one file: ``downloaded`` or ``skipped`` (already valid locally)."""

    url: str
    path: str
    status: str
    bytes: int
    attempts: int
    seconds: float


@dataclass(frozen=True)
class IdxEntry:
    """One line of a wgrib2 ``.idx`` file with the byte range of its message.

    ``end`` is exclusive; None for the last message (up to the end of the file).
    """

    number: int
    start: int
    end: int | None
    var: str
    level: str

    @property
    def key(self) -> str:
        return f"{self.var}:{self.level}"


# --------------------------------------------------------------------------- GRIB checks


def grib_message_count(path: Path) -> int:
    """Count GRIB messages by walking their headers; GribError if the structure is broken.

    Reads only the 16-byte headers and 4-byte end markers, so it costs microseconds even for
    large files: every message must start with ``GRIB``, give its length, and end in ``7777``.
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise GribError(f"{path}: empty file, expected GRIB2")
    count, offset = 0, 0
    with open(path, "rb") as fh:
        while offset < size:
            fh.seek(offset)
            head = fh.read(16)
            if len(head) < 16 or head[:4] != b"GRIB":
                raise GribError(f"{path}: no GRIB message at byte {offset} (truncated or not GRIB)")
            edition = head[7]
            if edition == 2:
                length = int.from_bytes(head[8:16], "big")
            elif edition == 1:
                length = int.from_bytes(head[4:7], "big")
            else:
                raise GribError(f"{path}: unknown GRIB edition {edition} at byte {offset}")
            if length < 20 or offset + length > size:
                raise GribError(
                    f"{path}: message {count + 1} at byte {offset} claims {length} bytes but the "
                    f"file has {size - offset} left (truncated)"
                )
            fh.seek(offset + length - 4)
            if fh.read(4) != b"7777":
                raise GribError(f"{path}: message {count + 1} at byte {offset} lacks its end "
                                "marker '7777' (corrupt)")
            count += 1
            offset += length
    return count


def _deep_validator() -> Callable[..., int] | None:
    """``framecast.dataset.validate_grib`` when available: decodes the messages with ecCodes."""
    try:
        from framecast.dataset import validate_grib
    except ImportError:  # the dataset layer is optional for pure transfer use
        return None
    return validate_grib


def validate_file(path: Path, messages: int, expect: Mapping[str, str] | None = None) -> None:
    """Raise GribError unless ``path`` is complete GRIB with exactly ``messages`` messages.

    The header walk catches truncation and most corruption for free; then every message is
    decoded with ecCodes and checked for the ``expect`` keys (run date/time, step).
    """
    n = grib_message_count(path)
    if n != messages:
        raise GribError(f"{path}: expected {messages} GRIB message(s), found {n}")
    deep = _deep_validator()
    if deep is not None:
        deep(Path(path), dict(expect) if expect else None)


def is_valid(path: Path, messages: int, expect: Mapping[str, str] | None = None) -> bool:
    """True when ``path`` exists and validates; never raises for a bad or missing file."""
    if not Path(path).is_file():
        return False
    try:
        validate_file(path, messages, expect)
    except GribError:
        return False
    return True


# --------------------------------------------------------------------------- .idx


def parse_idx(text: str, source: str = ".idx") -> list[IdxEntry]:
    """Parse a wgrib2 inventory (``n:offset:d=YYYYMMDDHH:VAR:LEVEL:STEP:...``)."""
    rows: list[tuple[int, int, str, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(":")
        if len(parts) < 5:
            raise FetchError(f"{source}: line {lineno} is not a wgrib2 inventory line: {line!r}")
        try:
            number, offset = int(parts[0].split(".")[0]), int(parts[1])
        except ValueError:
            raise FetchError(f"{source}: line {lineno}: bad message number/offset: {line!r}") from None
        rows.append((number, offset, parts[3], parts[4]))
    entries = []
    for i, (number, offset, var, level) in enumerate(rows):
        end = rows[i + 1][1] if i + 1 < len(rows) else None
        entries.append(IdxEntry(number, offset, end, var, level))
    return entries


def idx_ranges(entries: list[IdxEntry], fields: Iterable[str], source: str) -> list[
    tuple[int, int | None]
]:
    """Byte ranges covering ``fields`` (``VAR:LEVEL``), adjacent messages merged, in file order."""
    want = list(dict.fromkeys(fields))
    by_key: dict[str, IdxEntry] = {}
    for e in entries:
        by_key.setdefault(e.key, e)
    missing = [f for f in want if f not in by_key]
    if missing:
        raise FetchError(f"{source}: field(s) {missing} not in the index")
    chosen = sorted((by_key[f] for f in want), key=lambda e: e.start)
    ranges: list[tuple[int, int | None]] = []
    for e in chosen:
        if ranges and ranges[-1][1] == e.start:
            ranges[-1] = (ranges[-1][0], e.end)
        else:
            ranges.append((e.start, e.end))
    return ranges


# --------------------------------------------------------------------------- HTTP


def join_url(base_url: str, path: str) -> str:
    return base_url.rstrip("/") + "/" + path.lstrip("/")


def _refuse_downgrade(resp: requests.Response, *args, **kwargs) -> None:
    """Response hook: never follow a redirect from https to anything but https."""
    if resp.is_redirect and urlsplit(resp.url).scheme == "https":
        target = urljoin(resp.url, resp.headers.get("Location", ""))
        if urlsplit(target).scheme != "https":
            resp.close()
            raise FetchError(f"{resp.url}: refusing redirect from https to "
                             f"{urlsplit(target).scheme}://{urlsplit(target).netloc} "
                             f"(downgrade to an unencrypted connection)")


def split_credentials(base_url: str) -> tuple[str, tuple[str, str] | None]:
    """``(URL without user:password, (user, password) or None)``: credentials of a mirror go
    into the session's auth, so no message or log line built from a URL ever shows them."""
    parts = urlsplit(base_url)
    if parts.username is None and parts.password is None:
        return base_url, None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return (urlunsplit(parts._replace(netloc=netloc)),
            (unquote(parts.username or ""), unquote(parts.password or "")))


def new_session() -> requests.Session:
    s = requests.Session()
    s.headers["User-Agent"] = USER_AGENT
    # The files are compressed already (bz2, GRIB packing): a gzip layer costs both ends CPU for
    # nothing and drops byte ranges. A server that encodes anyway is still read right: the wire
    # bytes, not the decoded ones, are checked against Content-Length (_stream_to).
    s.headers["Accept-Encoding"] = "identity"
    s.hooks["response"].append(_refuse_downgrade)
    return s


def _limit_text(n: int) -> str:
    return f"{n} bytes ({n / (1 << 20):.1f} MiB)"


class _Sink:
    """Where a body goes: checks the GRIB magic, caps the bytes written, bounds decompression."""

    def __init__(self, fh, url: str, limit: int, limit_name: str, decompressor=None,
                 magic: bytes = GRIB_MAGIC) -> None:
        self.fh, self.url, self.limit, self.limit_name = fh, url, limit, limit_name
        self.decompressor = decompressor
        self.magic = magic
        self.head = b""
        self.written = 0

    def _out(self, data: bytes) -> None:
        if len(self.head) < len(self.magic):
            self.head += data[:len(self.magic) - len(self.head)]
            if not self.magic.startswith(self.head[:len(self.magic)]):
                raise _Transient(f"{self.url}: body does not start with {self.magic!r} "
                                 f"(not GRIB; an error page?)")
        self.written += len(data)
        if self.written > self.limit:
            raise FetchError(f"{self.url}: more than {_limit_text(self.limit)} "
                             f"({self.limit_name}); refusing the file")
        self.fh.write(data)

    def write(self, chunk: bytes) -> None:
        dec = self.decompressor
        if dec is None:
            self._out(chunk)
            return
        if dec.eof:
            return  # trailing bytes after the bz2 stream: ignored, as bunzip2 does
        data = chunk
        while True:  # bounded steps: never more than CHUNK bytes of output at once
            out = dec.decompress(data, max_length=CHUNK)
            data = b""
            if out:
                self._out(out)
            if dec.eof or dec.needs_input:
                break


def _stream_to(resp: requests.Response, sink: _Sink, url: str, http: HttpSpec,
               deadline: float) -> int:
    """Copy a response body into ``sink``; return bytes received on the wire.

    Reads whatever has arrived (``read1``), so a server trickling bytes cannot hold a read
    open past the deadline, and the wire and output caps are checked on every chunk. A body
    with a ``Content-Encoding`` (gzip, deflate) is decoded on the way; ``received`` counts the
    bytes on the wire (what ``Content-Length`` and ``http.max_bytes`` are about), the sink caps
    the decoded output.
    """
    received = 0
    expected = resp.headers.get("Content-Length")
    if expected is not None and expected.isdigit() and int(expected) > http.max_bytes:
        raise FetchError(f"{url}: server announces {expected} bytes, more than "
                         f"{_limit_text(http.max_bytes)} (http.max_bytes); refusing the file")
    try:
        while True:
            chunk = resp.raw.read1(CHUNK, decode_content=True)
            received = resp.raw.tell()
            if not chunk:
                break
            if received > http.max_bytes:
                raise FetchError(f"{url}: more than {_limit_text(http.max_bytes)} on the wire "
                                 f"(http.max_bytes); refusing the file")
            sink.write(chunk)
            if time.monotonic() > deadline:
                raise FetchError(f"{url}: not complete after {http.deadline:g} s "
                                 f"(http.deadline; {received} bytes received); giving up")
    except (urllib3.exceptions.HTTPError, requests.exceptions.RequestException,
            ConnectionError, TimeoutError) as exc:
        raise _Transient(f"{url}: connection lost after {received} bytes ({exc})") from None
    except (EOFError, ValueError) as exc:
        raise _Transient(f"{url}: corrupt compressed data after {received} bytes ({exc})") from None
    except OSError as exc:
        raise _Transient(f"{url}: corrupt compressed data after {received} bytes ({exc})") from None
    if expected is not None and received != int(expected):
        raise _Transient(f"{url}: got {received} of {expected} bytes")
    if sink.decompressor is not None and not sink.decompressor.eof:
        raise _Transient(f"{url}: bz2 stream ended early after {received} bytes")
    return received


def _timeout(http: HttpSpec, deadline: float) -> float:
    """Connect/read timeout: the configured one, never past the file's deadline."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchError(f"deadline of {http.deadline:g} s (http.deadline) passed")
    return min(http.timeout, left)


def _get(session: requests.Session, url: str, http: HttpSpec, headers=None,
         deadline: float | None = None) -> requests.Response:
    deadline = time.monotonic() + http.deadline if deadline is None else deadline
    try:
        resp = session.get(url, stream=True, timeout=_timeout(http, deadline),
                           headers=headers or {})
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise _Transient(f"{url}: {type(exc).__name__}: {exc}") from None
    if resp.status_code in RETRY_STATUS:
        resp.close()
        raise _Transient(f"{url}: HTTP {resp.status_code}")
    if resp.status_code == 404:
        resp.close()
        raise FetchError(f"{url}: HTTP 404 not found on the upstream server")
    if resp.status_code >= 400:
        resp.close()
        raise FetchError(f"{url}: HTTP {resp.status_code} {resp.reason}")
    return resp


def _download_once(
    session: requests.Session, base_url: str, rf: RemoteFile, tmp: Path, http: HttpSpec,
    deadline: float | None = None,
) -> int:
    """One attempt: write the file's final bytes to ``tmp``; returns bytes transferred."""
    deadline = time.monotonic() + http.deadline if deadline is None else deadline
    url = join_url(base_url, rf.url_path)
    with open(tmp, "wb") as fh:
        if rf.fields:
            idx_url = url + ".idx"
            resp = _get(session, idx_url, http, deadline=deadline)
            buf = io.BytesIO()
            try:
                _stream_to(resp, _Sink(buf, idx_url, MAX_IDX_BYTES, "index size limit",
                                       magic=b""), idx_url, http, deadline)
            finally:
                resp.close()
            text = buf.getvalue().decode("utf-8", "replace")
            total = 0
            out = _Sink(fh, url, http.max_bytes, "http.max_bytes")
            for start, end in idx_ranges(parse_idx(text, idx_url), rf.fields, idx_url):
                rng = f"bytes={start}-" + ("" if end is None else str(end - 1))
                resp = _get(session, url, http, headers={"Range": rng}, deadline=deadline)
                try:
                    if resp.status_code != 206:
                        raise FetchError(f"{url}: server ignored Range {rng} "
                                         f"(HTTP {resp.status_code}); ranged download needs 206")
                    out.head = b""  # every range starts with a GRIB message
                    total += _stream_to(resp, out, url, http, deadline)
                finally:
                    resp.close()
            return total
        resp = _get(session, url, http, deadline=deadline)
        try:
            dec = bz2.BZ2Decompressor() if rf.compression == "bz2" else None
            sink = _Sink(fh, url, http.max_decompressed_bytes if dec else http.max_bytes,
                         "http.max_decompressed_bytes" if dec else "http.max_bytes", dec)
            return _stream_to(resp, sink, url, http, deadline)
        finally:
            resp.close()


def fetch_file(
    base_url: str,
    rf: RemoteFile,
    dest_root: Path,
    *,
    http: HttpSpec | None = None,
    session: requests.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> FetchResult:
    """Download one file into ``dest_root / rf.local_path`` unless a valid copy is there."""
    http = http or HttpSpec()
    base_url, auth = split_credentials(base_url)
    target = Path(dest_root) / rf.local_path
    url = join_url(base_url, rf.url_path)
    t0 = time.perf_counter()
    if is_valid(target, rf.messages, rf.expect):
        return FetchResult(url, str(target), "skipped", 0, 0, time.perf_counter() - t0)
    target.parent.mkdir(parents=True, exist_ok=True)
    own = session is None
    session = session or new_session()
    if auth is not None:
        session.auth = auth
    last = ""
    deadline = time.monotonic() + http.deadline
    try:
        for attempt in range(1, http.retries + 1):
            fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.",
                                            suffix=".part")
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                nbytes = _download_once(session, base_url, rf, tmp, http, deadline)
                try:
                    validate_file(tmp, rf.messages, rf.expect)
                except GribError as exc:
                    raise _Transient(f"{url}: downloaded file is not valid: {exc}") from None
                os.replace(tmp, target)
                return FetchResult(url, str(target), "downloaded", nbytes, attempt,
                                   time.perf_counter() - t0)
            except _Transient as exc:
                last = str(exc)
                log.warning("attempt %d/%d failed: %s", attempt, http.retries, last)
                if attempt < http.retries:
                    pause = min(http.backoff * 2 ** (attempt - 1), http.max_backoff)
                    if time.monotonic() + pause >= deadline:
                        raise FetchError(f"{url}: no complete copy within {http.deadline:g} s "
                                         f"(http.deadline); last error: {last}") from None
                    sleep(pause)
            except FetchError as exc:
                if url in str(exc):
                    raise
                raise FetchError(f"{url}: {exc}") from None
            finally:
                tmp.unlink(missing_ok=True)
    finally:
        if own:
            session.close()
    raise FetchError(f"{url}: failed after {http.retries} attempts; last error: {last}")


def fetch_files(
    base_url: str,
    files: Iterable[RemoteFile],
    dest_root: Path,
    *,
    http: HttpSpec | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[FetchResult]:
    """Download several files over one connection pool, in order; stops at the first failure."""
    with new_session() as session:
        return [fetch_file(base_url, rf, dest_root, http=http, session=session, sleep=sleep)
                for rf in files]


def remote_exists(session: requests.Session, url: str, timeout: float) -> bool:
    """True when the server has ``url`` (HEAD 200); 404 is False; other failures raise."""
    try:
        resp = session.head(url, timeout=timeout, allow_redirects=True)
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise FetchError(f"{url}: upstream unreachable ({type(exc).__name__})") from None
    if resp.status_code == 200:
        return True
    if resp.status_code in (403, 404):
        return False
    raise FetchError(f"{url}: HEAD returned HTTP {resp.status_code}")


def _paths(rf: RemoteFile) -> list[str]:
    """What must exist upstream for ``rf``: the file and, for GFS (byte ranges), its ``.idx``."""
    return [rf.url_path] + ([rf.url_path + ".idx"] if rf.fields else [])


def missing_files(base_url: str, files: Iterable[RemoteFile], timeout: float = 30.0) -> list[str]:
    """URL paths of ``files`` not (yet) on the server; for GFS the ``.idx`` must exist too.

    One HEAD request per path: for a full report (what a timeout names). A waiting sensor
    polls with :func:`present_prefix` instead."""
    missing = []
    base_url, auth = split_credentials(base_url)
    with new_session() as session:
        session.auth = auth
        for rf in files:
            for p in _paths(rf):
                if not remote_exists(session, join_url(base_url, p), timeout):
                    missing.append(p)
    return missing


def present_prefix(base_url: str, files: Sequence[RemoteFile], timeout: float = 30.0) -> int:
    """How many of ``files``, in order, are on the server before the first one that is not.

    Why not :func:`missing_files` on every poll: a run has thousands of files and every chunk
    of it waits at once, so checking all of them every poke interval is a storm of HEAD
    requests against the upstream (and the triggerer's CPU) for an answer that only needs the
    first missing file. Files are listed by step, as they are published, and a published file
    stays, so a poller keeps the prefix it saw and asks about the rest only.
    """
    base_url, auth = split_credentials(base_url)
    with new_session() as session:
        session.auth = auth
        for i, rf in enumerate(files):
            if not all(remote_exists(session, join_url(base_url, p), timeout)
                       for p in _paths(rf)):
                return i
    return len(files)
