"""Run an animation: prepare once, render segments (in parallel), join, write outputs.

The three steps are separate functions because Airflow runs them as separate tasks (prepare,
one mapped task per segment, finish); :func:`run_animation` chains them with a process pool
for the CLI. State between steps lives in a work directory: ``assets.npz`` (the rasterised
map), ``plan.json`` (scale and frame ranges), ``segments/`` (encoded parts + per-segment
stats). Outputs appear atomically, and only after every segment succeeded: a failed run never
replaces a published video with a truncated one.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from framecast.choropleth.geography import load_countries
from framecast.choropleth.raster import RenderAssets, build_assets, png_bytes
from framecast.choropleth.renderer import FrameRenderer
from framecast.choropleth.source import (
    SourceStats,
    make_engine,
    safe_url,
    stream_frames,
    value_range,
)
from framecast.choropleth.spec import AnimationSpec
from framecast.choropleth.style import ColorScale, resolve_scale
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


def _scale_from_plan(spec: AnimationSpec, plan: Plan) -> ColorScale:
    return resolve_scale(spec.style, plan.vmin, plan.vmax)


def prepare(spec: AnimationSpec, work_dir: str | Path, *, chunks: int | None = None) -> Plan:
    """Check the source, fix the colour scale from the data's range, rasterise the map once."""
    work = Path(work_dir)
    (work / "segments").mkdir(parents=True, exist_ok=True)
    st = spec.style
    fixed = st.breaks is not None or (st.vmin is not None and st.vmax is not None)
    engine = make_engine(spec.source.url)
    try:
        # A scale fixed by the spec only needs to know the range holds data: one plain scan
        # instead of the full aggregation (which the segments run anyway).
        data_min, data_max = value_range(engine, spec.source, spec.timeline,
                                         aggregated=not fixed)
    finally:
        engine.dispose()
    tl = spec.timeline
    if data_min is None:
        where = spec.source.table or "source.query"
        raise DataError(f"{spec.path}: no numeric {spec.source.metric!r} values in {where} "
                        f"between {tl.start:%Y-%m-%d %H:%M} and {tl.end:%Y-%m-%d %H:%M} "
                        f"({safe_url(spec.source.url)})")
    scale = resolve_scale(spec.style, data_min, data_max)
    countries = load_countries(spec.scale)
    assets = build_assets(countries, spec.style, scale, spec.width, spec.height,
                          projection=spec.projection,
                          central_longitude=spec.central_longitude, extent=spec.extent)
    assets.save(work / "assets.npz")
    n = len(tl)
    plan = Plan(str(work), n, split_frames(n, chunks or spec.render.chunks,
                                           spec.render.min_chunk_frames),
                scale.vmin, scale.vmax, list(scale.breaks), data_min, data_max)
    _write_json(work / "plan.json", plan.to_json())
    return plan


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_text(json.dumps(obj, indent=1, default=str))
    os.replace(tmp, path)


def frame_texts(spec: AnimationSpec, i: int, n: int, values: np.ndarray) -> tuple[str, str]:
    """Title and caption for frame i (templates see time, frame, frames, count, max, ...)."""
    finite = values[np.isfinite(values)]
    fields = dict(time=spec.timeline.time(i), frame=i + 1, frames=n, count=int(finite.size),
                  max=float(finite.max()) if finite.size else float("nan"),
                  min=float(finite.min()) if finite.size else float("nan"),
                  mean=float(finite.mean()) if finite.size else float("nan"),
                  total=float(finite.sum()) if finite.size else 0.0)
    st = spec.style
    return st.title.format(**fields), (st.caption.format(**fields) if st.caption else "")


def segment_path(work_dir: str | Path, index: int) -> Path:
    return Path(work_dir) / "segments" / f"seg_{index:05d}.mp4"


def render_segment(spec: AnimationSpec, plan: Plan, index: int, *,
                   progress: Progress | None = None,
                   assets: RenderAssets | None = None) -> SegmentResult:
    """Stream, render and encode frames plan.chunks[index] into one segment file."""
    t0 = time.perf_counter()
    a, b = plan.chunks[index]
    work = Path(plan.work_dir)
    assets = assets or RenderAssets.load(work / "assets.npz")
    scale = _scale_from_plan(spec, plan)
    renderer = FrameRenderer(assets, scale, spec.style)
    countries = load_countries(spec.scale)
    stats = SourceStats()
    out = segment_path(work, index)
    png_dir = work / "png" if spec.outputs.png else None
    if png_dir is not None:
        png_dir.mkdir(parents=True, exist_ok=True)
    engine = make_engine(spec.source.url)
    done = 0
    rss_start = rss_kb()
    marks: list[tuple[int, float, int]] = [(a, 0.0, rss_start)]
    t_start = time.perf_counter()
    try:
        with VideoWriter(out, spec.width, spec.height, spec.fps, crf=spec.render.crf,
                         preset=spec.render.preset, threads=spec.render.threads) as writer:
            for i, values in stream_frames(engine, spec.source, spec.timeline, countries, a, b,
                                           stats):
                title, caption = frame_texts(spec, i, plan.frames, values)
                frame = renderer.render(values, title, caption)
                writer.write(frame)
                if png_dir is not None:
                    (png_dir / f"frame_{i:06d}.png").write_bytes(png_bytes(frame))
                done += 1
                if done % MARK_EVERY == 0:
                    marks.append((a + done, time.perf_counter() - t_start, rss_kb()))
                if progress is not None and done % 25 == 0:
                    progress(25)
            if writer.frames_written != b - a:
                raise RenderError(f"segment {index} wrote {writer.frames_written} frames, "
                                  f"expected {b - a}")
    finally:
        engine.dispose()
    if progress is not None and done % 25:
        progress(done % 25)
    if marks[-1][0] != b:
        marks.append((b, time.perf_counter() - t_start, rss_kb()))
    result = SegmentResult(index, a, b, str(out), time.perf_counter() - t0, stats, marks,
                           rss_start, rss_kb())
    _write_json(out.with_suffix(".json"), result.to_json())
    return result


def _load_segment_stats(path: Path) -> SourceStats:
    d = json.loads(path.with_suffix(".json").read_text())["stats"]
    s = SourceStats(d["groups"], d["frames_with_data"], d["null_values"], d["non_numeric"])
    s.unknown_codes.update(d["unknown_codes"])
    return s


def _publish_file(src: Path, dest_dir: Path) -> Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    dest = dest_dir / src.name
    tmp = dest_dir / f".{src.name}.part"
    shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def finish(spec: AnimationSpec, plan: Plan, out_dir: str | Path) -> dict[str, Any]:
    """Join segments in order (lossless), make the GIF, write the run summary last."""
    work = Path(plan.work_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    segs = [segment_path(work, k) for k in range(len(plan.chunks))]
    missing = [str(s) for s in segs if not s.is_file()]
    if missing:
        raise RenderError(f"{spec.name}: segment(s) missing, not publishing: {missing}")
    stats = SourceStats()
    details = []
    for s in segs:
        stats.merge(_load_segment_stats(s))
        d = json.loads(s.with_suffix(".json").read_text())
        details.append({k: d[k] for k in ("index", "start", "stop", "seconds", "marks",
                                          "rss_start_kb", "rss_end_kb")})
    staged = work / f"{spec.name}.mp4"
    if len(segs) == 1:
        shutil.copyfile(segs[0], staged)
    else:
        concat_segments(segs, staged)
    outputs: dict[str, str] = {}
    if spec.outputs.gif:
        gif = make_gif(staged, work / f"{spec.name}.gif", fps=spec.outputs.gif_fps,
                       width=spec.outputs.gif_width)
        outputs["gif"] = str(_publish_file(gif, out))
    if spec.outputs.mp4:
        outputs["mp4"] = str(_publish_file(staged, out))
    if spec.outputs.png:
        png_out = out / f"{spec.name}_frames"
        tmp = out / f".{spec.name}_frames.part"
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(work / "png", tmp)
        old = out / f".{spec.name}_frames.old"
        if png_out.exists():
            os.replace(png_out, old)
        os.replace(tmp, png_out)
        shutil.rmtree(old, ignore_errors=True)
        outputs["png"] = str(png_out)
    summary = {"name": spec.name, "frames": plan.frames, "segments": len(segs),
               "start": spec.timeline.start.isoformat(), "end": spec.timeline.end.isoformat(),
               "interval": spec.timeline.interval.label, "vmin": plan.vmin, "vmax": plan.vmax,
               "breaks": plan.breaks, "outputs": outputs, "source": stats.to_dict(),
               "segment_details": details}
    _write_json(out / f"{spec.name}.summary.json", summary)
    return summary


def publish_outputs(summary: dict[str, Any], dest_dir: str | Path) -> list[str]:
    """Copy the run's outputs to a local publish folder (each file atomically, summary last)."""
    dest = Path(dest_dir)
    done = []
    for kind in ("mp4", "gif"):
        p = summary["outputs"].get(kind)
        if p:
            done.append(str(_publish_file(Path(p), dest)))
    summ = Path(summary["outputs"].get("mp4") or summary["outputs"].get("gif") or "")
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

            assets = RenderAssets.load(work / "assets.npz")
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
