"""Publishing a rendered run: upload, manifest last, latest pointer last of all, retention.

Order of operations, and why:

1. Inventory the local run from its frame records and hash every file.
2. One listing per remote directory tells what is already there. A file is skipped when the
   run's previous manifest has the same size + sha256 and the remote size matches, or, after
   an interrupted publish that never wrote a manifest, when the remote file has the same size
   and is not older than the local one (files only ever appear under their final name
   complete, so a present file is a whole file).
3. The rest goes up through ``workers`` connections, each reconnecting with exponential
   backoff when the connection drops and continuing with the file it was on.
4. The run's ``manifest.json`` is written once every file it lists arrived (an increment of a
   run still arriving merges its steps into the manifest as the target has it now, status
   ``in_progress``), then ``runs.json``; ``latest.json`` is switched only for a complete run or
   once the first steps the model's ``latest_when`` asks for are there, never to an older run,
   and only after a final publish are runs beyond the retention count removed (never the one
   ``latest`` points to).

A failure at any point leaves the previous ``latest`` run untouched and the new run without a
manifest (or with the previous products only), so viewers keep showing complete data.
"""

from __future__ import annotations

import logging
import posixpath
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import TypeVar

from framecast.errors import FramecastError, PublishError
from framecast.publish import manifest as mf
from framecast.publish.target import PublishTarget, RemoteStat, is_temp_name, is_transient

log = logging.getLogger(__name__)
T = TypeVar("T")
#: (files done, files total, path just done); called from the upload worker threads
Progress = Callable[[int, int, str], None]
VIEWER_FILES = ("index.html", "viewer.js", "viewer.css")


@dataclass
class PublishReport:
    """What one publish call did."""

    model: str
    run_id: str
    target: str
    products: list[str]
    complete: bool
    uploaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    bytes_uploaded: int = 0
    retries: int = 0
    seconds: float = 0.0
    latest: str | None = None
    removed_runs: list[str] = field(default_factory=list)
    symlink: bool = False
    #: a complete run older than the one ``latest`` points to: published beside it, not switched
    kept_newer_latest: bool = False
    #: the run's state after this publish (in_progress / complete / incomplete), its steps
    #: published so far and the expected steps still missing
    status: str = ""
    steps: list[int] = field(default_factory=list)
    missing_steps: list[int] = field(default_factory=list)

    def summary(self) -> str:
        rate = self.bytes_uploaded / self.seconds / 1e6 if self.seconds > 0 else 0.0
        return (
            f"{self.model} {self.run_id} -> {self.target}: {len(self.uploaded)} uploaded, "
            f"{len(self.skipped)} unchanged, {self.bytes_uploaded / 1e6:.1f} MB in "
            f"{self.seconds:.1f} s ({rate:.1f} MB/s), {self.retries} retries, "
            f"latest={self.latest}{' (newer, kept)' if self.kept_newer_latest else ''}, "
            f"removed={self.removed_runs or '-'}"
        )


class _Retrying:
    """One connection that reopens itself: transient failures close it, wait, and retry.

    Credentials errors and other framecast errors pass straight through: retrying a wrong
    password only locks accounts.
    """

    def __init__(self, target: PublishTarget, retries: int, backoff: float, counter: _Counter):
        self.target = target
        self.retries = retries
        self.backoff = backoff
        self.counter = counter

    def __call__(self, what: str, fn: Callable[[PublishTarget], T]) -> T:
        attempt = 0
        while True:
            try:
                self.target.connect()
                return fn(self.target)
            except FramecastError:
                raise
            except Exception as exc:
                if not is_transient(exc):
                    raise PublishError(f"{self.target.description}: {what} failed: {exc}") from exc
                self.target.close()
                attempt += 1
                if attempt > self.retries:
                    raise PublishError(
                        f"{self.target.description}: {what} failed after {attempt} attempts: "
                        f"{type(exc).__name__}: {exc}"
                    ) from exc
                self.counter.add(1)
                delay = min(self.backoff * 2 ** (attempt - 1), 60.0)
                log.warning("%s: %s: %s; reconnecting in %.1f s", self.target.description,
                            what, exc, delay)
                time.sleep(delay)


class _Counter:
    def __init__(self) -> None:
        self.value = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> int:
        with self._lock:
            self.value += n
            return self.value


def publish_run(
    run_path: Path,
    target: PublishTarget,
    *,
    model: str,
    run_time: datetime,
    products: Iterable[str] | None = None,
    retention: int | None = None,
    workers: int = 4,
    progress: Progress | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    viewer: bool = True,
    symlink: bool = True,
    force_latest: bool = False,
    expected_steps: Iterable[int] | None = None,
    latest_after_step: int | None = None,
) -> PublishReport:
    """Publish a whole run and make it the one ``latest.json`` points to, unless it is older.

    ``products`` restricts the run to those products (default: all recorded). ``retention``
    keeps that many newest runs on the server (None: keep all). ``workers`` bounds the number
    of parallel connections. ``latest`` never moves backwards: a run older than the current
    ``latest`` (a re-run or a backfill of an older cycle) is published beside it, and only
    ``force_latest=True`` points ``latest`` back at it. Raises PublishAuthError on rejected
    credentials (nothing is written), PublishError when the target stays unreachable after
    ``retries`` reconnects.

    ``expected_steps`` (the steps the run should have) marks a run that lacks some of them
    ``incomplete`` (with ``missing_steps``) instead of ``complete``; such a run becomes
    ``latest`` only when ``latest_after_step`` is set and every step up to it is there.
    """
    return _publish(
        Path(run_path), target, model=model, run_time=run_time, products=products,
        complete=True, retention=retention, workers=workers, progress=progress,
        retries=retries, backoff=backoff, viewer=viewer, symlink=symlink,
        force_latest=force_latest, expected_steps=expected_steps,
        latest_after_step=latest_after_step,
    )


def publish_increment(
    run_path: Path,
    target: PublishTarget,
    steps: Iterable[int],
    *,
    model: str,
    run_time: datetime,
    expected_steps: Iterable[int],
    latest_after_step: int | None = None,
    workers: int = 4,
    progress: Progress | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    viewer: bool = True,
    symlink: bool = True,
    force_latest: bool = False,
) -> PublishReport:
    """Publish the frames of ``steps`` (one chunk of a run still arriving upstream).

    The uploaded frames join the run's manifest as it is on the target now (re-read just
    before the manifest is rewritten, so increments never drop each other's entries; callers
    still run one increment per run at a time). The run stays ``in_progress`` until the final
    :func:`publish_run`; ``latest`` moves to it once every product/region has every expected
    step up to ``latest_after_step`` (None: only the final publish of a complete run moves it),
    and never backwards unless ``force_latest``. A chunk published again after the run was
    finished re-evaluates the status, so re-running a missing chunk completes the run.
    """
    return _publish(
        Path(run_path), target, model=model, run_time=run_time, products=None,
        complete=False, retention=None, workers=workers, progress=progress,
        retries=retries, backoff=backoff, viewer=viewer, symlink=symlink,
        force_latest=force_latest, steps=list(steps), expected_steps=expected_steps,
        latest_after_step=latest_after_step,
    )


def publish_product(
    run_path: Path,
    target: PublishTarget,
    product: str | Iterable[str],
    *,
    model: str,
    run_time: datetime,
    workers: int = 4,
    progress: Progress | None = None,
    retries: int = 5,
    backoff: float = 1.0,
    viewer: bool = True,
) -> PublishReport:
    """Publish the frames of one product (or a few) as soon as they exist.

    The run's manifest gains the product (marked ``complete: false``) and the run appears in
    ``runs.json`` as in progress, so early products can be viewed before the run is done;
    ``latest.json`` is left alone until :func:`publish_run` finishes the run.
    """
    names = [product] if isinstance(product, str) else list(product)
    return _publish(
        Path(run_path), target, model=model, run_time=run_time, products=names,
        complete=False, retention=None, workers=workers, progress=progress,
        retries=retries, backoff=backoff, viewer=viewer, symlink=False, force_latest=False,
    )


def _publish(
    run_path: Path,
    target: PublishTarget,
    *,
    model: str,
    run_time: datetime,
    products: Iterable[str] | None,
    complete: bool,
    retention: int | None,
    workers: int,
    progress: Progress | None,
    retries: int,
    backoff: float,
    viewer: bool,
    symlink: bool,
    force_latest: bool,
    steps: list[int] | None = None,
    expected_steps: Iterable[int] | None = None,
    latest_after_step: int | None = None,
) -> PublishReport:
    t0 = time.perf_counter()
    mf.check_name("model", model, "publish")
    if retention is not None and retention < 1:
        raise PublishError(f"retention must be at least 1 run, got {retention}")
    if workers < 1:
        raise PublishError(f"workers must be at least 1, got {workers}")
    run_id = mf.run_id_of(run_time)
    files = mf.collect_files(run_path, run_time, products, steps=steps)
    run_dir = f"{model}/{run_id}"
    report = PublishReport(
        model=model, run_id=run_id, target=target.description,
        products=sorted({f.product for f in files}), complete=complete,
    )
    counter = _Counter()
    main = _Retrying(target, retries, backoff, counter)
    try:
        # credentials are checked here, before anything is written
        main("connect", lambda t: None)
        prev = _read_json(main, f"{run_dir}/{mf.MANIFEST_NAME}")
        # the pointer documents must be ours before anything is uploaded: a foreign file
        # there means a wrong target folder, found out before we write into it
        for name in (mf.LATEST_NAME, mf.RUNS_NAME):
            _read_json(main, f"{model}/{name}")
        dirs = sorted({posixpath.dirname(f"{run_dir}/{f.rel}") for f in files})
        remote: dict[str, dict[str, RemoteStat]] = {}
        for d in dirs:
            # one listing tells what is there; only folders that list empty (missing) are
            # created, which keeps re-publishing to a few round trips per folder
            remote[d] = main(f"list {d}", lambda t, d=d: t.scan(d))
            if not remote[d]:
                main(f"create {d}", lambda t, d=d: t.makedirs(d))
        todo, skipped = _plan(files, run_dir, remote, prev)
        report.skipped = [f.rel for f in skipped]
        done = _Counter()
        total = len(files)
        for f in skipped:
            if progress:
                progress(done.add(1), total, f.rel)
        _upload_all(target, todo, run_dir, workers, retries, backoff, counter, done, total,
                    progress, report)
        _sweep_partials(main, dirs, remote, rescan=counter.value > 0)
        if viewer:
            _publish_viewer(main, model)
        if not complete:
            # another product or chunk of this run may have been published meanwhile: merge
            # with the manifest as it is now, not as it was when we started
            prev = _read_json(main, f"{run_dir}/{mf.MANIFEST_NAME}")
        new_manifest = _next_manifest(model, run_time, files, complete, prev, steps,
                                      expected_steps)
        report.complete = new_manifest["status"] == "complete"
        report.status = new_manifest["status"]
        report.steps = list(new_manifest["steps"])
        report.missing_steps = list(new_manifest["missing_steps"])
        main("write manifest", lambda t: t.write_bytes(
            f"{run_dir}/{mf.MANIFEST_NAME}", mf.dumps(new_manifest)))
        switch = mf.ready_for_latest(new_manifest, latest_after_step)
        report.latest = _switch_pointers(main, model, new_manifest, switch, symlink, report,
                                         force_latest=force_latest)
        if complete and retention is not None:
            report.removed_runs = _apply_retention(main, model, retention, report.latest)
    finally:
        target.close()
    report.retries = counter.value
    report.seconds = time.perf_counter() - t0
    log.info("published %s", report.summary())
    return report


def _next_manifest(
    model: str, run_time: datetime, files: list[mf.LocalFile], final: bool,
    prev: dict | None, steps: list[int] | None, expected_steps: Iterable[int] | None,
) -> dict:
    """The manifest after this publish, with its status (in_progress/complete/incomplete).

    A final publish lists exactly the run's files. A product publish replaces its products in
    ``prev``; an increment (``steps``) merges its frames into ``prev`` per step.
    """
    expected = (list(expected_steps) if expected_steps is not None
                else (prev or {}).get("expected_steps"))
    if steps is not None:
        fresh = mf.build_manifest(model, run_time, files, complete=False)
        manifest = mf.merge_increment(prev, fresh)
        finished = (prev or {}).get("status") in ("complete", "incomplete")
    else:
        manifest = mf.build_manifest(model, run_time, files,
                                     complete=final or bool(prev and prev.get("complete")),
                                     previous=None if final else prev)
        finished = final or manifest["complete"]
    if not expected:
        expected = manifest["steps"]
    if final and expected_steps is None:
        # a whole run published without a step plan is complete by definition (CLI, older
        # callers); products with fewer steps than others are not "missing" anything
        return mf.set_status(manifest, "complete", [])
    if finished:
        # a finished run (or a chunk re-published after it) is as complete as its frames
        missing = set(expected) - mf.covered_steps(manifest)
        return mf.set_status(manifest, "incomplete" if missing else "complete", expected)
    return mf.set_status(manifest, "in_progress", expected)


def _plan(
    files: list[mf.LocalFile],
    run_dir: str,
    remote: dict[str, dict[str, RemoteStat]],
    prev: dict | None,
) -> tuple[list[mf.LocalFile], list[mf.LocalFile]]:
    """Split files into (to upload, unchanged on the server)."""
    known = (prev or {}).get("files") or {}
    todo: list[mf.LocalFile] = []
    same: list[mf.LocalFile] = []
    for f in files:
        full = f"{run_dir}/{f.rel}"
        st = remote.get(posixpath.dirname(full), {}).get(posixpath.basename(full))
        entry = known.get(f.rel)
        if st is not None and st.size == f.size:
            if entry is not None:
                if entry.get("sha256") == f.sha256 and entry.get("size") == f.size:
                    same.append(f)
                    continue
            elif st.mtime is not None and st.mtime >= f.mtime - 1.0:
                same.append(f)
                continue
        todo.append(f)
    return todo, same


def _upload_all(
    target: PublishTarget,
    todo: list[mf.LocalFile],
    run_dir: str,
    workers: int,
    retries: int,
    backoff: float,
    counter: _Counter,
    done: _Counter,
    total: int,
    progress: Progress | None,
    report: PublishReport,
) -> None:
    """Upload ``todo`` over at most ``workers`` connections; first failure stops all."""
    if not todo:
        return
    queue = list(reversed(todo))  # big-to-small order is not worth it: frames are alike
    lock = threading.Lock()
    stop = threading.Event()

    def take() -> mf.LocalFile | None:
        with lock:
            return queue.pop() if queue and not stop.is_set() else None

    def worker() -> None:
        conn = _Retrying(target.clone(), retries, backoff, counter)
        try:
            while (f := take()) is not None:
                conn(f"upload {f.rel}", lambda t, f=f: t.upload(f.path, f"{run_dir}/{f.rel}"))
                with lock:
                    report.uploaded.append(f.rel)
                    report.bytes_uploaded += f.size
                if progress:
                    progress(done.add(1), total, f.rel)
        except BaseException:
            stop.set()
            raise
        finally:
            conn.target.close()

    n = min(workers, len(todo))
    with ThreadPoolExecutor(max_workers=n, thread_name_prefix="publish") as pool:
        futures = [pool.submit(worker) for _ in range(n)]
        wait(futures, return_when=FIRST_EXCEPTION)
        errors = [f.exception() for f in futures if f.exception() is not None]
    if errors:
        raise errors[0]


def _sweep_partials(
    main: _Retrying, dirs: list[str], remote: dict[str, dict[str, RemoteStat]], rescan: bool
) -> None:
    """Remove ``.part`` leftovers of interrupted uploads (ours or an earlier attempt's)."""
    for d in dirs:
        names = main(f"list {d}", lambda t, d=d: t.listdir(d)) if rescan else list(remote[d])
        for name in names:
            if is_temp_name(name):
                main(f"remove {d}/{name}", lambda t, p=f"{d}/{name}": t.remove(p))


def _viewer_files() -> dict[str, bytes]:
    base = resources.files("framecast") / "viewer"
    return {name: (base / name).read_bytes() for name in VIEWER_FILES}


def _publish_viewer(main: _Retrying, model: str) -> None:
    """The viewer lives next to latest.json/runs.json; rewritten only when it changed."""
    for name, data in _viewer_files().items():
        path = f"{model}/{name}"
        if main(f"read {path}", lambda t, p=path: t.read_bytes(p)) != data:
            main(f"write {path}", lambda t, p=path, d=data: t.write_bytes(p, d))


def _read_json(main: _Retrying, path: str) -> dict | None:
    data = main(f"read {path}", lambda t: t.read_bytes(path))
    return mf.loads(data, f"{main.target.description}/{path}")


def _switch_pointers(
    main: _Retrying, model: str, manifest: dict, complete: bool, symlink: bool,
    report: PublishReport, *, force_latest: bool = False,
) -> str | None:
    """Update runs.json (and, when ``complete`` says the run may be shown by default,
    latest.json + the ``latest`` symlink).

    Run ids are ``YYYYMMDDHH``, so comparing them as strings orders them in time. An older
    run leaves ``latest`` where it is (``force_latest`` overrides): a backfill must never make
    the site show an outdated forecast as the current one.
    """
    latest_path = f"{model}/{mf.LATEST_NAME}"
    current = _read_json(main, latest_path)
    latest = current.get("run_id") if current else None
    if complete and latest is not None and manifest["run_id"] < latest and not force_latest:
        report.kept_newer_latest = True
        log.info("run %s is older than latest %s: published beside it, latest stays "
                 "(force_latest moves it back)", manifest["run_id"], latest)
    elif complete:
        main("switch latest", lambda t: t.write_bytes(latest_path, mf.dumps(mf.latest_doc(manifest))))
        latest = manifest["run_id"]
        if symlink:
            report.symlink = main("link latest", lambda t: t.link_latest(f"{model}/latest", latest))
    _write_runs(main, model, latest, add=manifest)
    return latest


def _remote_runs(main: _Retrying, model: str) -> list[str]:
    names = main(f"list {model}", lambda t: t.listdir(model))
    return sorted((n for n in names if mf.RUN_ID_RE.match(n)), reverse=True)


def _write_runs(
    main: _Retrying, model: str, latest: str | None, *, add: dict | None = None,
    drop: Iterable[str] = (),
) -> None:
    """Rebuild runs.json from the run folders on the server and the previous runs.json."""
    path = f"{model}/{mf.RUNS_NAME}"
    old = _read_json(main, path) or {}
    entries = {r["run_id"]: r for r in old.get("runs", []) if isinstance(r, dict) and "run_id" in r}
    on_server = set(_remote_runs(main, model))
    entries = {k: v for k, v in entries.items() if k in on_server}
    if add is not None:
        entries[add["run_id"]] = mf.run_summary(add)
    for run_id in drop:
        entries.pop(run_id, None)
    main("write runs.json", lambda t: t.write_bytes(path, mf.dumps(mf.runs_doc(model, entries, latest))))


def _apply_retention(main: _Retrying, model: str, keep: int, latest: str | None) -> list[str]:
    """Remove all but the ``keep`` newest runs; the latest run always survives.

    runs.json is rewritten *before* folders are deleted so the run picker never offers a run
    that is being removed.
    """
    runs = _remote_runs(main, model)
    doomed = [r for r in runs[keep:] if r != latest]
    if not doomed:
        return []
    _write_runs(main, model, latest, drop=doomed)
    for run_id in doomed:
        main(f"remove run {run_id}", lambda t, r=run_id: t.remove_tree(f"{model}/{r}"))
    return doomed
