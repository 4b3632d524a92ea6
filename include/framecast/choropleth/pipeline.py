"""Run an animation: prepare once, render segments (in parallel), join, write outputs.

The three steps are separate functions because Airflow runs them as separate tasks (prepare,
one mapped task per segment, finish); :func:`run_animation` chains them with a process pool
for the CLI. State between steps lives in a work directory: ``assets.npz`` (the rasterised
map), ``plan.json`` (scale and frame ranges), ``segments/`` (encoded parts + per-segment
stats). Outputs appear atomically, and only after every segment succeeded: a failed run never
replaces a published video with a truncated one.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from framecast.choropleth.codes import CodeMatcher, detect_code_type
from framecast.choropleth.geography import load_features
from framecast.choropleth.raster import (
    RenderAssets,
    build_assets,
    label_raster,
    make_layout,
    png_bytes,
)
from framecast.choropleth.renderer import FrameRenderer
from framecast.choropleth.source import (
    SourceStats,
    distinct_codes,
    inspect_source,
    make_engine,
    safe_url,
    stream_metric_frames,
    value_ranges,
)
from framecast.choropleth.spec import AnimationSpec
from framecast.choropleth.style import ColorScale, Style, resolve_scale
from framecast.choropleth.timeline import split_frames
from framecast.errors import DataError, RenderError
from framecast.video import VideoWriter, concat_segments, make_gif

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Plan:
    """Result of :func:`prepare`: what every segment task needs besides the spec."""

    work_dir: str
    frames: int
    chunks: list[tuple[int, int]]
    vmin: float
    vmax: float
    breaks: list[float]
    data_min: float | None
    data_max: float | None
    time_kind: str | None = None
    code_type: str | None = None
    # One entry per metric: {metric, vmin, vmax, breaks, data_min, data_max}; the fields
    # above are the first metric's (what single-metric callers read).
    metrics: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "chunks": [list(c) for c in self.chunks]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Plan:
        return cls(**{**d, "chunks": [tuple(c) for c in d["chunks"]]})


@dataclass
class SegmentResult:
    """One encoded segment plus what is needed to check the run stayed at constant cost:
    ``marks`` are (frame, seconds since segment start, resident memory in kB) every
    ``MARK_EVERY`` frames, plus the worker's resident memory at start and end."""

    index: int
    start: int
    stop: int
    path: str
    seconds: float
    stats: SourceStats = field(default_factory=SourceStats)
    marks: list[tuple[int, float, int]] = field(default_factory=list)
    rss_start_kb: int = 0
    rss_end_kb: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "stop": self.stop, "path": self.path,
                "seconds": self.seconds, "stats": self.stats.to_dict(),
                "marks": [list(m) for m in self.marks], "rss_start_kb": self.rss_start_kb,
                "rss_end_kb": self.rss_end_kb}


MARK_EVERY = 1000


def rss_kb() -> int:
    """Current resident set size of this process (Linux /proc), 0 where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _scale_from_plan(spec: AnimationSpec, plan: Plan, k: int = 0) -> ColorScale:
    if not plan.metrics:
        return resolve_scale(spec.style, plan.vmin, plan.vmax)
    m = plan.metrics[k]
    return resolve_scale(spec.style_for(m["metric"]), m["vmin"], m["vmax"])


def assets_path(work_dir: str | Path, k: int, n_metrics: int) -> Path:
    """The rasterised map of metric k (one file for a single-metric spec)."""
    return Path(work_dir) / ("assets.npz" if n_metrics == 1 else f"assets_{k}.npz")


def resolve_source(spec: AnimationSpec) -> tuple[AnimationSpec, str]:
    """The spec with its time column's kind found, and the code system the table uses.

    Checks that every column exists (a clear error naming the missing one and the table's
    columns) before any frame is rendered.
    """
    engine = make_engine(spec.source.url)
    try:
        source = inspect_source(engine, spec.source)
        code_type = source.code_type
        if code_type == "detect":
            try:
                code_type = detect_code_type(distinct_codes(engine, source), spec.level)
            except DataError as exc:
                raise DataError(f"{spec.path}: source.code_column {source.code_column!r}: "
                                f"{exc}") from exc
    finally:
        engine.dispose()
    return replace(spec, source=source), code_type


def matcher_for(spec: AnimationSpec, plan: Plan) -> CodeMatcher:
    code_type = plan.code_type or ("iso_a2+iso_a3" if spec.source.code_type == "detect"
                                   else spec.source.code_type)
    return CodeMatcher(load_features(spec.level, spec.scale), code_type, level=spec.level)


def prepare(spec: AnimationSpec, work_dir: str | Path, *, chunks: int | None = None) -> Plan:
    """Check the source, fix each metric's colour scale from the data, rasterise the map once.

    One label raster serves every metric (per distinct layout); only the overlay (legend) is
    drawn per metric.
    """
    work = Path(work_dir)
    (work / "segments").mkdir(parents=True, exist_ok=True)
    spec, code_type = resolve_source(spec)
    metrics = spec.metrics
    styles = [spec.style_for(m) for m in metrics]
    # A scale fixed by the spec only needs to know the range holds data: one plain scan
    # instead of the full aggregation (which the segments run anyway).
    fixed = all(st.breaks is not None or (st.vmin is not None and st.vmax is not None)
                for st in styles)
    engine = make_engine(spec.source.url)
    try:
        ranges = value_ranges(engine, spec.source, spec.timeline, aggregated=not fixed)
    finally:
        engine.dispose()
    tl = spec.timeline
    empty = [m for m, (lo, _) in zip(metrics, ranges, strict=True) if lo is None]
    if empty:
        where = spec.source.table or "source.query"
        raise DataError(f"{spec.path}: no numeric {', '.join(repr(m) for m in empty)} values "
                        f"in {where} between {tl.start:%Y-%m-%d %H:%M} and "
                        f"{tl.end:%Y-%m-%d %H:%M} ({safe_url(spec.source.url)})")
    features = load_features(spec.level, spec.scale)
    labels_by_layout: dict[Any, np.ndarray] = {}
    per_metric = []
    pw, ph = spec.panel_size()
    for k, (metric, st, (lo, hi)) in enumerate(zip(metrics, styles, ranges, strict=True)):
        scale = resolve_scale(st, lo, hi)
        layout = make_layout(pw, ph, st, projection=spec.projection,
                             central_longitude=spec.central_longitude, extent=spec.extent)
        if layout not in labels_by_layout:
            labels_by_layout[layout] = label_raster(layout, features)
        assets = build_assets(features, st, scale, pw, ph,
                              projection=spec.projection,
                              central_longitude=spec.central_longitude, extent=spec.extent,
                              labels=labels_by_layout[layout])
        assets.save(assets_path(work, k, len(metrics)))
        per_metric.append({"metric": metric, "vmin": scale.vmin, "vmax": scale.vmax,
                           "breaks": list(scale.breaks), "data_min": lo, "data_max": hi})
    n = len(tl)
    first = per_metric[0]
    plan = Plan(str(work), n, split_frames(n, chunks or spec.render.chunks,
                                           spec.render.min_chunk_frames),
                first["vmin"], first["vmax"], first["breaks"], first["data_min"],
                first["data_max"], spec.source.time_kind, code_type, per_metric)
    _write_json(work / "plan.json", plan.to_json())
    return plan


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def frame_texts(spec: AnimationSpec, i: int, n: int, values: np.ndarray,
                style: Style | None = None) -> tuple[str, str]:
    """Title and caption for frame i (templates see time, frame, frames, count, max, ...)."""
    finite = values[np.isfinite(values)]
    fields = dict(time=spec.timeline.time(i), frame=i + 1, frames=n, count=int(finite.size),
                  max=float(finite.max()) if finite.size else float("nan"),
                  min=float(finite.min()) if finite.size else float("nan"),
                  mean=float(finite.mean()) if finite.size else float("nan"),
                  total=float(finite.sum()) if finite.size else 0.0)
    st = style or spec.style
    return st.title.format(**fields), (st.caption.format(**fields) if st.caption else "")


def segment_path(work_dir: str | Path, index: int, metric: int | None = None) -> Path:
    """Segment ``index`` (of metric k of a several-metric spec); its .json holds the stats."""
    tail = "" if metric is None else f".m{metric}"
    return Path(work_dir) / "segments" / f"seg_{index:05d}{tail}.mp4"


def render_segment(spec: AnimationSpec, plan: Plan, index: int, *,
                   progress: Progress | None = None,
                   assets: RenderAssets | list[RenderAssets] | None = None) -> SegmentResult:
    """Stream, render and encode frames plan.chunks[index] into one segment file per metric.

    All metrics come from one query pass; each has its own renderer and encoder process, so
    the encoders work in parallel while this process renders the next metric's frame.
    """
    t0 = time.perf_counter()
    a, b = plan.chunks[index]
    work = Path(plan.work_dir)
    metrics = spec.metrics
    m = len(metrics)
    multi = spec.multi
    if assets is None:
        assets = [RenderAssets.load(assets_path(work, k, m)) for k in range(m)]
    elif isinstance(assets, RenderAssets):
        assets = [assets]
    styles = [spec.style_for(x) for x in metrics]
    renderers = [FrameRenderer(assets[k], _scale_from_plan(spec, plan, k), styles[k])
                 for k in range(m)]
    source = replace(spec.source, time_kind=plan.time_kind) if plan.time_kind else spec.source
    matcher = matcher_for(spec, plan)
    stats = SourceStats()
    n_out = m if multi else 1
    outs = [segment_path(work, index, k if multi else None) for k in range(n_out)]
    png_dirs: list[Path | None] = [None] * n_out
    if spec.outputs.png:
        png_dirs = [work / "png" / (metrics[k] if multi else "") for k in range(n_out)]
        for pd in png_dirs:
            pd.mkdir(parents=True, exist_ok=True)  # type: ignore[union-attr]
    canvas = None
    if spec.grid:  # small multiples: panels pasted into one frame, one encoder
        canvas = np.zeros((spec.height, spec.width, 4), dtype=np.uint8)
        canvas[..., :3] = spec.style.background
    engine = make_engine(spec.source.url)
    done = 0
    rss_start = rss_kb()
    marks: list[tuple[int, float, int]] = [(a, 0.0, rss_start)]
    t_start = time.perf_counter()
    writers = [VideoWriter(out, spec.width, spec.height, spec.fps, crf=spec.render.crf,
                           preset=spec.render.preset, threads=spec.render.threads)
               for out in outs]
    try:
        with contextlib.ExitStack() as stack:
            for w in writers:
                stack.enter_context(w)
            for i, values in stream_metric_frames(engine, source, spec.timeline, matcher, a, b,
                                                  stats):
                for k in range(m):
                    title, caption = frame_texts(spec, i, plan.frames, values[k], styles[k])
                    frame = renderers[k].render(values[k], title, caption)
                    if canvas is not None:
                        x0, y0 = spec.panel_origin(k)
                        canvas[y0:y0 + frame.shape[0], x0:x0 + frame.shape[1]] = frame
                        continue
                    writers[k].write(frame)
                    if png_dirs[k] is not None:
                        (png_dirs[k] / f"frame_{i:06d}.png").write_bytes(png_bytes(frame))
                if canvas is not None:
                    writers[0].write(canvas)
                    if png_dirs[0] is not None:
                        (png_dirs[0] / f"frame_{i:06d}.png").write_bytes(png_bytes(canvas))
                done += 1
                if done % MARK_EVERY == 0:
                    marks.append((a + done, time.perf_counter() - t_start, rss_kb()))
                if progress is not None and done % 25 == 0:
                    progress(25)
            for w in writers:
                if w.frames_written != b - a:
                    raise RenderError(f"segment {index} wrote {w.frames_written} frames, "
                                      f"expected {b - a}")
    finally:
        engine.dispose()
    if progress is not None and done % 25:
        progress(done % 25)
    if marks[-1][0] != b:
        marks.append((b, time.perf_counter() - t_start, rss_kb()))
    result = SegmentResult(index, a, b, str(outs[0]), time.perf_counter() - t0, stats, marks,
                           rss_start, rss_kb())
    _write_json(segment_path(work, index).with_suffix(".json"), result.to_json())
    return result


def _load_segment_stats(path: Path) -> SourceStats:
    d = json.loads(path.with_suffix(".json").read_text())["stats"]
    s = SourceStats(d["groups"], d["frames_with_data"], d["null_values"], d["non_numeric"])
    s.unknown_codes.update(d["unknown_codes"])
    s.matched_codes.update(d.get("matched", ()))
    return s


def _publish_file(src: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    tmp = dest_dir / f".{src.name}.part"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def _join_outputs(spec: AnimationSpec, segs: list[Path], base: str, png_src: Path,
                  work: Path, out: Path) -> dict[str, str]:
    """Join one video's segments and publish its MP4/GIF/PNG frames under ``base``."""
    staged = work / f"{base}.mp4"
    if len(segs) == 1:
        shutil.copyfile(segs[0], staged)
    else:
        concat_segments(segs, staged)
    outputs: dict[str, str] = {}
    if spec.outputs.gif:
        gif = make_gif(staged, work / f"{base}.gif", fps=spec.outputs.gif_fps,
                       width=spec.outputs.gif_width)
        outputs["gif"] = str(_publish_file(gif, out))
    if spec.outputs.mp4:
        outputs["mp4"] = str(_publish_file(staged, out))
    if spec.outputs.png:
        png_out = out / f"{base}_frames"
        tmp = out / f".{base}_frames.part"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(png_src, tmp)
        old = out / f".{base}_frames.old"
        if png_out.exists():
            os.replace(png_out, old)
        os.replace(tmp, png_out)
        shutil.rmtree(old, ignore_errors=True)
        outputs["png"] = str(png_out)
    return outputs


def finish(spec: AnimationSpec, plan: Plan, out_dir: str | Path) -> dict[str, Any]:
    """Join segments in order (lossless), make the GIFs, write the run summary last.

    A single-metric spec yields ``<name>.mp4``; several metrics yield ``<name>_<metric>.mp4``
    each, listed per metric under ``outputs``.
    """
    work = Path(plan.work_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = spec.metrics
    multi = spec.multi
    n = len(plan.chunks)
    per_metric = [[segment_path(work, i, k if multi else None) for i in range(n)]
                  for k in range(len(metrics) if multi else 1)]
    anchors = [segment_path(work, i).with_suffix(".json") for i in range(n)]
    missing = [str(s) for segs in per_metric for s in segs if not s.is_file()]
    missing += [str(s) for s in anchors if not s.is_file()]
    if missing:
        raise RenderError(f"{spec.name}: segment(s) missing, not publishing: {missing}")
    stats = SourceStats()
    details = []
    for s in anchors:
        stats.merge(_load_segment_stats(s))
        d = json.loads(s.read_text())
        details.append({k: d[k] for k in ("index", "start", "stop", "seconds", "marks",
                                          "rss_start_kb", "rss_end_kb")})
    if multi:
        outputs: dict[str, Any] = {
            metric: _join_outputs(spec, per_metric[k], base, work / "png" / metric, work, out)
            for k, (metric, base) in enumerate(zip(metrics, spec.output_names(), strict=True))}
    else:
        outputs = _join_outputs(spec, per_metric[0], spec.name, work / "png", work, out)
    matcher = matcher_for(spec, plan)
    groups = matcher.group_unmatched(stats.unknown_codes)
    source = stats.to_dict()
    source["unmatched"] = groups
    source["warnings"] = _grouped_warnings(stats, groups, spec.scale)
    summary = {"name": spec.name, "frames": plan.frames, "segments": n,
               "start": spec.timeline.start.isoformat(), "end": spec.timeline.end.isoformat(),
               "interval": spec.timeline.interval.label, "vmin": plan.vmin, "vmax": plan.vmax,
               "breaks": plan.breaks, "metrics": plan.metrics, "outputs": outputs,
               "time_kind": plan.time_kind,
               "codes": {"level": spec.level, "code_type": matcher.code_type,
                         "detected": spec.source.code_type == "detect",
                         "mapping": matcher.mapping(stats.matched_codes)},
               "source": source, "segment_details": details}
    _write_json(out / f"{spec.name}.summary.json", summary)
    return summary


def _grouped_warnings(stats: SourceStats, groups: dict[str, Any], scale: str) -> list[str]:
    """The source's warnings with unmatched codes split into aggregates / absent / unknown."""
    out = [w for w in stats.warnings() if "match no map feature" not in w]
    count = stats.unknown_codes
    if groups["aggregates"]:
        out.append(f"{len(groups['aggregates'])} aggregate code(s) are not countries and are "
                   f"not drawn: {', '.join(groups['aggregates'])}")
    if groups["absent_at_scale"]:
        by_note: dict[str, list[str]] = {}
        for code, note in groups["absent_at_scale"].items():
            by_note.setdefault(note, []).append(code)
        for note, codes in by_note.items():
            out.append(f"{len(codes)} code(s) {note}: {', '.join(codes)}")
    if groups["unknown"]:
        out.append(f"{len(groups['unknown'])} unknown code(s) match no map feature at {scale}: "
                   + ", ".join(f"{c!r} ({count.get(c, 0)})" for c in groups["unknown"]))
    return out


def _outputs_flat(summary: dict[str, Any]) -> list[dict[str, str]]:
    outs = summary["outputs"]
    if any(isinstance(v, dict) for v in outs.values()):
        return [v for v in outs.values() if isinstance(v, dict)]
    return [outs]


def publish_outputs(summary: dict[str, Any], dest_dir: str | Path) -> list[str]:
    """Copy the run's outputs to a local publish folder (each file atomically, summary last)."""
    dest = Path(dest_dir)
    done = []
    videos = _outputs_flat(summary)
    for outs in videos:
        for kind in ("mp4", "gif"):
            p = outs.get(kind)
            if p:
                done.append(str(_publish_file(Path(p), dest)))
    summ = Path(videos[0].get("mp4") or videos[0].get("gif") or "") if videos else Path()
    if summ.name:
        s = summ.parent / f"{summary['name']}.summary.json"
        if s.is_file():
            done.append(str(_publish_file(s, dest)))
    return done


# ---- process pool glue for the CLI ------------------------------------------------------

_COUNTER: Any = None


def _init_worker(counter: Any) -> None:
    global _COUNTER
    _COUNTER = counter


def _count(n: int) -> None:
    with _COUNTER.get_lock():
        _COUNTER.value += n


def _worker(spec: AnimationSpec, plan: Plan, index: int) -> SegmentResult:
    return render_segment(spec, plan, index, progress=_count)


def run_animation(spec: AnimationSpec, out_dir: str | Path, *, work_dir: str | Path | None = None,
                  workers: int = 1, chunks: int | None = None,
                  progress: Callable[[int, int], None] | None = None,
                  keep_work: bool = False) -> dict[str, Any]:
    """Prepare, render all segments with ``workers`` processes, finish; returns the summary.

    ``progress(done, total)`` is called from this process as frames complete.
    """
    import multiprocessing as mp
    import tempfile

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    own_work = work_dir is None
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix=f".{spec.name}.",
                                                                 dir=out))
    t0 = time.perf_counter()
    try:
        plan = prepare(spec, work, chunks=chunks or max(workers, 1))
        t_prep = time.perf_counter() - t0
        total = plan.frames
        if workers <= 1 or len(plan.chunks) == 1:
            done = 0

            def bump(n: int) -> None:
                nonlocal done
                done += n
                if progress:
                    progress(done, total)

            m = len(spec.metrics)
            assets = [RenderAssets.load(assets_path(work, k, m)) for k in range(m)]
            for k in range(len(plan.chunks)):
                render_segment(spec, plan, k, progress=bump, assets=assets)
        else:
            # fork: workers inherit the imported modules (spawn re-imports numpy, matplotlib,
            # SQLAlchemy per worker: seconds of start-up). No engine is open at this point.
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            counter = ctx.Value("q", 0)
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx,
                                     initializer=_init_worker, initargs=(counter,)) as pool:
                futs = [pool.submit(_worker, spec, plan, k) for k in range(len(plan.chunks))]
                pending = set(futs)
                while pending:
                    finished, pending = wait(pending, timeout=0.5, return_when=FIRST_EXCEPTION)
                    if progress:
                        progress(counter.value, total)
                    for f in finished:
                        f.result()
        t_render = time.perf_counter() - t0 - t_prep
        summary = finish(spec, plan, out)
        summary["seconds"] = round(time.perf_counter() - t0, 3)
        summary["prepare_seconds"] = round(t_prep, 3)
        summary["render_seconds"] = round(t_render, 3)
        summary["workers"] = workers
        _write_json(out / f"{spec.name}.summary.json", summary)
        return summary
    finally:
        if own_work and not keep_work:
            shutil.rmtree(work, ignore_errors=True)
