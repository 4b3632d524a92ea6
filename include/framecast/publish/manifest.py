"""What a published run contains: the local file inventory, the run manifest, the run index.

Pure functions over plain data (no I/O except reading local files to hash them), so the exact
JSON a viewer reads is easy to test. Three documents live on the server:

- ``<model>/<run_id>/manifest.json``: products -> regions -> frames (step, valid time, file,
  size, sha256) and videos, plus a flat ``files`` map used to skip identical files when a run
  is published again. Written after every file of the listed products arrived.
- ``<model>/latest.json``: the run a viewer shows by default; switched only when a run is
  complete.
- ``<model>/runs.json``: every run on the server (newest first) for the viewer's run picker.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from framecast.errors import DataError, PublishError
from framecast.records import RECORDS_DIR, REPORT_DIR, read_records

MANIFEST_FORMAT = 1
MANIFEST_NAME = "manifest.json"
LATEST_NAME = "latest.json"
RUNS_NAME = "runs.json"
RUN_ID_RE = re.compile(r"^\d{10}$")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")
VIDEO_KINDS = {".mp4": "mp4", ".gif": "gif"}
#: Record products of point forecasts (framecast.points.runner): listed under ``places``.
POINT_PRODUCTS = frozenset({"meteogram", "section", "sounding", "pointcsv", "pointjson"})
POINTS_INDEX = "points/index.json"


@dataclass(frozen=True)
class LocalFile:
    """One file of a rendered run that is to be published."""

    rel: str  # POSIX path relative to the run directory, e.g. "t2m/europe/t2m_003.png"
    path: Path
    size: int
    sha256: str
    mtime: float
    product: str
    region: str
    kind: str  # "frame", "mp4", "gif", "report", "point" or "points-index"
    step: int | None = None
    valid_time: str = ""


def run_id_of(run_time: datetime) -> str:
    """``YYYYMMDDHH`` of a run time (naive times are taken as UTC)."""
    return as_utc(run_time).strftime("%Y%m%d%H")


def as_utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t.astimezone(UTC)


def check_name(kind: str, value: str, where: str) -> str:
    """Names become URL and path components on the server: keep them boring."""
    if not _NAME_RE.match(value or ""):
        raise DataError(
            f"{where}: {kind} {value!r} is not a safe name (letters, digits, '._+-' only)"
        )
    return value


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _local_file(run_path: Path, rel: str, **kw) -> LocalFile:
    path = run_path / rel
    try:
        st = path.stat()
    except FileNotFoundError as exc:
        raise DataError(f"{run_path / RECORDS_DIR}: recorded file {rel} is missing") from exc
    if st.st_size == 0:
        raise DataError(f"{path}: file is empty; refusing to publish it")
    return LocalFile(
        rel=rel, path=path, size=st.st_size, sha256=sha256_file(path), mtime=st.st_mtime, **kw
    )


def collect_files(
    run_path: Path, run_time: datetime, products: Iterable[str] | None = None,
    steps: Iterable[int] | None = None,
) -> list[LocalFile]:
    """Every frame (from the run's frame records) and video of the wanted products.

    Frames come from the records rather than from globbing, so stray files in the run folder
    (a half-rendered chunk, an editor's backup) are never published. Videos are whatever
    ``<product>/<region>/*.mp4|*.gif`` exists for a product/region that has frames.
    ``steps`` keeps only the chart frames of those steps (one increment of a run still
    arriving): no videos, point forecasts or report, which need the whole run.
    """
    run_path = Path(run_path)
    wanted = set(products) if products is not None else None
    records = read_records(run_path)
    if not records:
        raise DataError(f"{run_path / RECORDS_DIR}: no frame records; render the run first")
    where = str(run_path / RECORDS_DIR)
    if steps is not None:
        step_set = {int(s) for s in steps}
        records = [r for r in records
                   if r.product not in POINT_PRODUCTS and int(r.step) in step_set]
        if not records:
            raise DataError(f"{where}: no frame records for step(s) {sorted(step_set)}")
    _check_run_time(records, run_time, where)
    files: list[LocalFile] = []
    regions: set[tuple[str, str]] = set()
    for rec in records:
        if wanted is not None and rec.product not in wanted:
            continue
        if rec.product in POINT_PRODUCTS:
            files.append(_point_file(run_path, rec, where))
            continue
        check_name("product", rec.product, where)
        check_name("region", rec.region, where)
        rel = Path(rec.path).as_posix()
        if rel.startswith("/") or ".." in rel.split("/"):
            raise DataError(f"{where}: frame path {rec.path!r} is not inside the run directory")
        valid = rec.valid_time or (as_utc(run_time) + timedelta(hours=rec.step)).isoformat()
        files.append(
            _local_file(
                run_path, rel, product=rec.product, region=rec.region, kind="frame",
                step=int(rec.step), valid_time=valid,
            )
        )
        regions.add((rec.product, rec.region))
    if wanted is not None and steps is None:
        missing = wanted - {p for p, _ in regions}
        if missing:
            raise DataError(f"{where}: no frames recorded for product(s) {sorted(missing)}")
    if steps is not None:
        return files
    for product, region in sorted(regions):
        folder = run_path / product / region
        for video in sorted(folder.glob("*")):
            kind = VIDEO_KINDS.get(video.suffix.lower())
            if kind and video.is_file() and not video.name.startswith("."):
                rel = video.relative_to(run_path).as_posix()
                files.append(_local_file(run_path, rel, product=product, region=region, kind=kind))
    index = run_path / POINTS_INDEX
    if wanted is None and index.is_file() and any(f.kind == "point" for f in files):
        files.append(_local_file(run_path, POINTS_INDEX, product="", region="",
                                 kind="points-index"))
    report_dir = run_path / REPORT_DIR
    if wanted is None and report_dir.is_dir():
        # The run's timing report (framecast.metrics.report) travels with the charts.
        for f in sorted(report_dir.iterdir()):
            if f.is_file() and not f.name.startswith("."):
                rel = f.relative_to(run_path).as_posix()
                files.append(_local_file(run_path, rel, product="", region="", kind="report"))
    return files


def _point_file(run_path: Path, rec, where: str) -> LocalFile:
    """A point-forecast file (meteogram, section, sounding, CSV/JSON) of a place."""
    check_name("place", rec.region, where)
    rel = Path(rec.path).as_posix()
    if rel.startswith("/") or ".." in rel.split("/"):
        raise DataError(f"{where}: point file path {rec.path!r} is not inside the run directory")
    return _local_file(run_path, rel, product=rec.product, region=rec.region, kind="point",
                       step=int(rec.step), valid_time=rec.valid_time)


def _check_run_time(records, run_time: datetime, where: str) -> None:
    """Frames of another run published under this run's name would show wrong valid times."""
    want = as_utc(run_time)
    for rec in records:
        if not rec.run:
            continue
        try:
            got = as_utc(datetime.fromisoformat(rec.run))
        except ValueError as exc:
            raise DataError(f"{where}: record run time {rec.run!r} is not ISO 8601") from exc
        if got != want:
            raise DataError(
                f"{where}: frames belong to run {got:%Y%m%d%H}, not {want:%Y%m%d%H} "
                f"(frame {rec.path})"
            )


def build_manifest(
    model: str,
    run_time: datetime,
    files: list[LocalFile],
    *,
    complete: bool,
    previous: dict | None = None,
    now: datetime | None = None,
) -> dict:
    """The run manifest for ``files``; products of ``previous`` not in ``files`` are kept.

    Keeping earlier products is what lets products be published one by one: each call adds
    (or replaces) its products and the viewer sees every product published so far.
    """
    now = now or datetime.now(UTC)
    products: dict[str, dict] = {}
    flat: dict[str, dict] = {}
    new_products = {f.product for f in files if f.kind in ("frame", "mp4", "gif")}
    report: dict[str, dict] = {}
    if previous:
        for name, prod in (previous.get("products") or {}).items():
            if name in new_products:
                continue
            products[name] = prod
            for rel, meta in (previous.get("files") or {}).items():
                if rel.split("/", 1)[0] == name:
                    flat[rel] = meta
    places: dict[str, dict] = {}
    places_index = ""
    if previous and not any(f.kind == "point" for f in files):
        places = previous.get("places") or {}  # a later product-only publish keeps them
        places_index = previous.get("places_index") or ""
        for rel, meta in (previous.get("files") or {}).items():
            if rel.split("/", 1)[0] == "points":
                flat[rel] = meta
    for f in sorted(files, key=lambda f: (f.product, f.region, f.kind, f.step or 0, f.rel)):
        if f.kind == "points-index":
            places_index = f.rel
            flat[f.rel] = {"size": f.size, "sha256": f.sha256}
            continue
        if f.kind == "point":
            place = places.setdefault(f.region, {})
            entry = {"file": f.rel, "size": f.size, "sha256": f.sha256}
            if f.product == "sounding":
                place.setdefault("soundings", []).append(
                    {"step": f.step, "valid_time": f.valid_time, **entry})
            else:
                place[{"pointcsv": "csv", "pointjson": "json"}.get(f.product, f.product)] = entry
            flat[f.rel] = {"size": f.size, "sha256": f.sha256}
            continue
        if f.kind == "report":
            report[f.rel] = {"size": f.size, "sha256": f.sha256}
            flat[f.rel] = report[f.rel]
            continue
        region = (
            products.setdefault(f.product, {"regions": {}})["regions"]
            .setdefault(f.region, {"frames": [], "videos": {}})
        )
        entry = {"file": f.rel, "size": f.size, "sha256": f.sha256}
        if f.kind == "frame":
            region["frames"].append({"step": f.step, "valid_time": f.valid_time, **entry})
        else:
            region["videos"][f.kind] = entry
        flat[f.rel] = {"size": f.size, "sha256": f.sha256}
    steps = sorted(
        {fr["step"] for p in products.values() for r in p["regions"].values() for fr in r["frames"]}
    )
    regions = sorted({r for p in products.values() for r in p["regions"]})
    return {
        "format": MANIFEST_FORMAT,
        "model": model,
        "run": as_utc(run_time).isoformat(),
        "run_id": run_id_of(run_time),
        "complete": complete,
        "published_at": now.isoformat(timespec="seconds"),
        "products": dict(sorted(products.items())),
        "product_names": sorted(products),
        "regions": regions,
        "steps": steps,
        "files": dict(sorted(flat.items())),
        "report": report,
        "places": dict(sorted(places.items())),
        "places_index": places_index,
    }


#: Run states a manifest carries: still arriving, all expected steps there, given up on some.
STATUSES = ("in_progress", "complete", "incomplete")


def merge_increment(previous: dict | None, new: dict) -> dict:
    """``new`` (one increment's frames) laid over ``previous`` (what the target lists now).

    Frames merge per (product, region, step), the increment winning, so increments of different
    steps add up and a re-published chunk replaces its own frames only. Everything else the
    previous manifest lists (places, report, videos) stays.
    """
    if not previous:
        return new
    out = dict(previous)
    products = {name: {"regions": {r: {"frames": list(reg.get("frames", [])),
                                        "videos": dict(reg.get("videos", {}))}
                                    for r, reg in (prod.get("regions") or {}).items()}}
                for name, prod in (previous.get("products") or {}).items()}
    for name, prod in (new.get("products") or {}).items():
        for region, reg in prod["regions"].items():
            have = products.setdefault(name, {"regions": {}})["regions"].setdefault(
                region, {"frames": [], "videos": {}})
            steps = {fr["step"] for fr in reg["frames"]}
            have["frames"] = sorted([fr for fr in have["frames"] if fr["step"] not in steps]
                                    + reg["frames"], key=lambda fr: fr["step"])
            have["videos"].update(reg.get("videos", {}))
    out["products"] = dict(sorted(products.items()))
    out["product_names"] = sorted(products)
    out["regions"] = sorted({r for p in products.values() for r in p["regions"]})
    out["steps"] = sorted({fr["step"] for p in products.values()
                           for r in p["regions"].values() for fr in r["frames"]})
    out["files"] = dict(sorted({**(previous.get("files") or {}),
                                **(new.get("files") or {})}.items()))
    out["published_at"] = new["published_at"]
    return out


def covered_steps(manifest: dict) -> set[int]:
    """Steps every product/region of the manifest has a frame for."""
    regions = [r for p in (manifest.get("products") or {}).values()
               for r in (p.get("regions") or {}).values()]
    if not regions:
        return set()
    sets = [{fr["step"] for fr in r.get("frames", [])} for r in regions]
    return set.intersection(*sets)


def set_status(manifest: dict, status: str, expected_steps: Iterable[int]) -> dict:
    """Mark ``manifest`` in_progress / complete / incomplete against the run's expected steps.

    ``missing_steps`` lists expected steps some product/region still lacks: the steps to come
    for a run in progress, the steps given up on for an incomplete one. ``complete`` stays the
    boolean older viewers read.
    """
    if status not in STATUSES:
        raise PublishError(f"run status {status!r} is not one of {', '.join(STATUSES)}")
    expected = sorted({int(s) for s in expected_steps})
    have = covered_steps(manifest)
    manifest["status"] = status
    manifest["complete"] = status == "complete"
    manifest["expected_steps"] = expected
    manifest["missing_steps"] = [s for s in expected if s not in have]
    return manifest


def ready_for_latest(manifest: dict, upto_step: int | None) -> bool:
    """Whether a run's published frames satisfy its model's ``latest_when`` rule.

    ``upto_step`` None: only a complete run. Otherwise every product/region must have every
    expected step up to and including ``upto_step`` (the first 24 h, the first chunk).
    """
    if manifest.get("status", "complete" if manifest.get("complete") else "") == "complete":
        return True
    if upto_step is None:
        return False
    expected = [s for s in manifest.get("expected_steps") or [] if s <= upto_step]
    return bool(expected) and set(expected) <= covered_steps(manifest)


def latest_doc(manifest: dict) -> dict:
    """``latest.json``: just enough for a viewer to find the run's manifest."""
    return {
        "format": MANIFEST_FORMAT,
        "model": manifest["model"],
        "run_id": manifest["run_id"],
        "run": manifest["run"],
        "manifest": f"{manifest['run_id']}/{MANIFEST_NAME}",
        "published_at": manifest["published_at"],
    }


def runs_doc(model: str, entries: dict[str, dict], latest: str | None) -> dict:
    """``runs.json`` from per-run summaries keyed by run id, newest first."""
    return {
        "format": MANIFEST_FORMAT,
        "model": model,
        "latest": latest,
        "runs": [entries[k] for k in sorted(entries, reverse=True)],
    }


def run_summary(manifest: dict) -> dict:
    return {
        "run_id": manifest["run_id"],
        "run": manifest["run"],
        "complete": bool(manifest.get("complete")),
        "status": manifest.get("status") or ("complete" if manifest.get("complete")
                                             else "in_progress"),
        "missing_steps": list(manifest.get("missing_steps") or []),
        "products": sorted(manifest.get("products", {})),
        "manifest": f"{manifest['run_id']}/{MANIFEST_NAME}",
        "published_at": manifest.get("published_at", ""),
    }


def dumps(doc: dict) -> bytes:
    return (json.dumps(doc, indent=1, sort_keys=False) + "\n").encode()


def loads(data: bytes | None, where: str) -> dict | None:
    """Parse a JSON document read from the target; None if absent.

    A document that does not parse is reported, not silently replaced: it means something
    other than framecast writes into the publish folder.
    """
    if data is None:
        return None
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PublishError(f"{where}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise PublishError(f"{where}: expected a JSON object")
    return doc
