"""Choropleth animation benchmark: the naive matplotlib reference vs framecast, one run, same data.

Measures, at WIDTHxHEIGHT into MP4 (H.264, yuv420p: matplotlib FFMpegWriter's settings):

1. the naive reference users write: FuncAnimation, each frame builds a Polygon per country
   part and a PatchCollection, removes the previous collection, writer 'ffmpeg'  (ms/frame);
2. the same reference without removing old collections (the common bug): s/frame at frame 10
   and at frame 40 (growth);
3. ffmpeg alone encoding framecast's frames from a raw file, one encoder thread pinned to one
   core (the floor, frames/s);
4. framecast, one segment: one process streams rows from SQL and renders, one single-threaded
   encoder (frames/s);
5. framecast with parallel segments (--workers processes, joined losslessly).

With ``--frames`` above 20,000 it runs the long-run mode instead: framecast only (parallel
segments), printing the whole-run time, time per frame over the first and the last 10% of
frames, and each worker's resident memory at start and end.

(3b) is ffmpeg alone with its own threading on every core: the floor an end-to-end run
(database to MP4) is compared with.

Quick run (about 1-2 minutes):   .venv/bin/python bench/bench_choropleth.py
Full HD:   .venv/bin/python bench/bench_choropleth.py --width 1920 --height 1080 --floor-frames 150
Long run:                        .venv/bin/python bench/bench_choropleth.py --frames 100000
           (add --width 1920 --height 1080 --floor-frames 150 for Full HD)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("CARTOPY_DATA_DIR", str(ROOT.parent / "shared" / "cartopy-data"))
os.environ.setdefault("MPLBACKEND", "Agg")

BREAKS = [10, 50, 100, 250, 500, 1000]


def _spec(url: str, frames: int, width: int, height: int, hourly: bool, name: str = "bench"):
    from framecast.choropleth.spec import spec_from_dict

    step = timedelta(hours=1) if hourly else timedelta(days=1)
    start = date(2000, 1, 1) if hourly else date(2020, 1, 1)
    end = (np.datetime64(start) + np.timedelta64(int((frames - 1) * step.total_seconds()), "s"))
    return spec_from_dict({
        "name": name,
        "source": {"url": url, "table": "bench", "code_column": "code", "time_column": "date",
                   "metric": "value", "aggregate": "last", "chunk_rows": 20000},
        "interval": "1h" if hourly else "day", "start": str(start), "end": str(end),
        "size": [width, height], "fps": 25,
        "style": {"breaks": BREAKS, "cmap": "YlOrRd", "number_format": "{:,.0f}",
                  "legend_title": "New cases per million",
                  "title": "New cases per million, {time:%d %b %Y %H:%M}"},
        "render": {"chunks": 1, "min_chunk_frames": 1, "threads": 1},
    }, "bench")


def naive_values(url: str, frames: int, hourly: bool) -> tuple[list[str], np.ndarray]:
    """What a typical script does: read the table with pandas, pivot dates x countries."""
    import pandas as pd
    from sqlalchemy import create_engine

    eng = create_engine(url)
    df = pd.read_sql("SELECT code, date, value FROM bench ORDER BY date LIMIT :n",
                     eng, params={"n": frames * 400})
    eng.dispose()
    wide = df.pivot_table(index="date", columns="code", values="value", aggfunc="last")
    return list(wide.columns), wide.to_numpy()[:frames]


def run_naive(out: Path, width: int, height: int, codes: list[str], table: np.ndarray,
              frames: int, clear: bool) -> list[float]:
    """The reference: returns the wall time at which each frame was handed to ffmpeg."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shapefile
    from matplotlib.animation import FFMpegWriter, FuncAnimation
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import BoundaryNorm
    from matplotlib.patches import Polygon

    from framecast.geo import natural_earth_path
    from framecast.video import ffmpeg_exe

    matplotlib.rcParams["animation.ffmpeg_path"] = ffmpeg_exe()
    reader = shapefile.Reader(str(natural_earth_path("cultural", "admin_0_countries", "110m")))
    shapes = reader.shapes()
    iso = [r["ISO_A3"] for r in reader.records()]
    col = {c: i for i, c in enumerate(codes)}
    cmap = plt.get_cmap("YlOrRd", len(BREAKS) + 1)
    norm = BoundaryNorm([0, *BREAKS, 1e9], cmap.N)
    fig, ax = plt.subplots(figsize=(width / 100, height / 100), dpi=100)
    ax.set_xlim(-180, 180)
    ax.set_ylim(-60, 90)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap=cmap), ax=ax, orientation="horizontal",
                 fraction=0.05, pad=0.02)
    title = ax.set_title("")
    stamps: list[float] = []

    def update(i: int):
        if clear:
            for coll in list(ax.collections):
                coll.remove()
        patches, vals = [], []
        for shp, code in zip(shapes, iso, strict=True):
            v = table[i, col[code]] if code in col else np.nan
            bounds = [*shp.parts, len(shp.points)]
            for a, b in zip(bounds, bounds[1:], strict=False):
                patches.append(Polygon(np.asarray(shp.points[a:b]), closed=True))
                vals.append(v)
        pc = PatchCollection(patches, cmap=cmap, norm=norm, edgecolor="white", linewidth=0.3)
        pc.set_array(np.ma.masked_invalid(np.asarray(vals, dtype=float)))
        pc.cmap.set_bad("#c8c8c8")
        ax.add_collection(pc)
        title.set_text(f"New cases per million, frame {i}")
        return (pc, title)

    anim = FuncAnimation(fig, update, frames=frames, blit=False, repeat=False)
    anim.save(str(out), writer=FFMpegWriter(fps=25),
              progress_callback=lambda i, n: stamps.append(time.perf_counter()))
    plt.close(fig)
    return stamps


def floor_fps(spec, raw_frames: int, work: Path, both_cores: bool = False) -> tuple[float, int]:
    """ffmpeg alone: encode framecast's own frames from a raw file, 1 thread pinned to 1 core,
    or (``both_cores``) with ffmpeg's own threading on every core: the end-to-end floor."""
    from framecast.choropleth.geography import load_countries
    from framecast.choropleth.pipeline import frame_texts
    from framecast.choropleth.raster import build_assets
    from framecast.choropleth.renderer import FrameRenderer
    from framecast.choropleth.source import SourceStats, make_engine, stream_frames
    from framecast.choropleth.style import resolve_scale
    from framecast.video import ffmpeg_exe

    countries = load_countries(spec.scale)
    scale = resolve_scale(spec.style, 0, 1000)
    r = FrameRenderer(build_assets(countries, spec.style, scale, spec.width, spec.height),
                      scale, spec.style)
    raw = work / "frames.rgb0"
    eng = make_engine(spec.source.url)
    with open(raw, "wb") as fh:
        for i, v in stream_frames(eng, spec.source, spec.timeline, countries, 0, raw_frames,
                                  SourceStats()):
            title, caption = frame_texts(spec, i, raw_frames, v)
            fh.write(r.render(v, title, caption).tobytes())
    eng.dispose()
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo",
           "-vcodec", "rawvideo", "-s", f"{spec.width}x{spec.height}", "-pix_fmt", "rgb0",
           "-framerate", "25", "-i", str(raw), "-vcodec", "libx264", "-pix_fmt", "yuv420p",
           *([] if both_cores else ["-threads", "1"]), str(work / "floor.mp4")]
    if shutil.which("taskset") and not both_cores:
        cmd = ["taskset", "-c", "0", *cmd]
    subprocess.run(["cat", str(raw)], stdout=subprocess.DEVNULL, check=True)  # warm the cache
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    dt = time.perf_counter() - t
    raw.unlink()
    return raw_frames / dt, (work / "floor.mp4").stat().st_size


def framecast_run(spec, out: Path, workers: int) -> dict:
    from framecast.choropleth.pipeline import run_animation

    return run_animation(spec, out, workers=workers, chunks=workers)


def load_avg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def quick(args: argparse.Namespace, url: str, work: Path, hourly: bool) -> None:
    spec = _spec(url, args.frames, args.width, args.height, hourly)
    codes, table = naive_values(url, max(args.naive_frames, args.grow_frames), hourly)
    print(f"load average before: {load_avg()}", flush=True)

    stamps = run_naive(work / "naive.mp4", args.width, args.height, codes, table,
                       args.naive_frames, clear=True)
    naive_ms = (stamps[-1] - stamps[0]) / (len(stamps) - 1) * 1000
    print(f"(1) naive reference, collections cleared: {naive_ms:.1f} ms/frame "
          f"({args.naive_frames} frames)", flush=True)

    stamps = run_naive(work / "naive_grow.mp4", args.width, args.height, codes, table,
                       args.grow_frames, clear=False)
    per = np.diff(stamps)

    def at(k: int) -> float:
        return float(np.mean(per[max(0, k - 2):k + 1]))

    print(f"(2) naive reference, collections accumulating: {at(10):.3f} s/frame at frame 10, "
          f"{at(40):.3f} s/frame at frame 40 ({at(40) / at(10):.1f}x)", flush=True)

    floor, _ = floor_fps(spec, args.floor_frames, work)
    print(f"(3) ffmpeg alone, 1 encoder thread on 1 core: {floor:.1f} frames/s "
          f"({args.floor_frames} frames)", flush=True)
    floor2, _ = floor_fps(spec, args.floor_frames, work, both_cores=True)
    print(f"(3b) ffmpeg alone, all {os.cpu_count()} cores: {floor2:.1f} frames/s "
          f"({args.floor_frames} frames)", flush=True)

    s1 = framecast_run(spec, work / "fc1", 1)
    fps1 = s1["frames"] / s1["render_seconds"]
    print(f"(4) framecast, 1 segment: {fps1:.1f} frames/s = {1000 / fps1:.1f} ms/frame "
          f"({s1['frames']} frames; prepare {s1['prepare_seconds']:.1f} s once; end to end "
          f"{s1['seconds']:.1f} s)", flush=True)

    sp = framecast_run(spec, work / "fcp", args.workers)
    fpsp = sp["frames"] / sp["render_seconds"]
    print(f"(5) framecast, {args.workers} parallel segments: {fpsp:.1f} frames/s "
          f"(end to end incl. prepare and lossless concat {sp['seconds']:.1f} s)", flush=True)

    print(f"load average after: {load_avg()}")
    print("ratios:")
    print(f"  framecast per frame vs naive (1): {naive_ms / (1000 / fps1):.1f}x faster "
          f"(goal >= 5x)")
    print(f"  framecast 1 segment vs ffmpeg floor (3): {fps1 / floor * 100:.0f}% "
          f"(goal >= 60%)")
    print(f"  framecast parallel vs ffmpeg floor (3): {fpsp / floor:.2f}x (goal > 1)")
    print(f"  framecast parallel, database to MP4, vs ffmpeg alone on all cores (3b): "
          f"{fpsp / floor2 * 100:.0f}% (goal >= 90%)")
    print(json.dumps({"naive_ms_per_frame": round(naive_ms, 2),
                      "grow_s_at_10": round(at(10), 4), "grow_s_at_40": round(at(40), 4),
                      "floor_fps": round(floor, 2), "floor_all_cores_fps": round(floor2, 2),
                      "framecast_fps": round(fps1, 2),
                      "framecast_parallel_fps": round(fpsp, 2), "workers": args.workers}))


def long_run(args: argparse.Namespace, url: str, work: Path, hourly: bool) -> None:
    spec = _spec(url, args.frames, args.width, args.height, hourly)
    print(f"load average before: {load_avg()}", flush=True)
    floor2, _ = floor_fps(spec, args.floor_frames, work, both_cores=True)
    print(f"ffmpeg alone, all {os.cpu_count()} cores: {floor2:.1f} frames/s "
          f"({args.floor_frames} frames of this animation from a raw file)", flush=True)
    done = {"n": 0, "t": time.perf_counter()}

    def progress(n: int, total: int) -> None:
        if n - done["n"] >= 10000 or (n == total and n > done["n"]):
            print(f"  {n}/{total} frames, {time.perf_counter() - t0:.0f} s", flush=True)
            done["n"] = n

    from framecast.choropleth import pipeline
    from framecast.choropleth.pipeline import run_animation

    pipeline.MARK_EVERY = max(1, args.frames // 100)  # workers are forked: they see this
    t0 = time.perf_counter()
    s = run_animation(spec, work / "long", workers=args.workers, chunks=args.workers,
                      progress=progress)
    total = time.perf_counter() - t0
    n = s["frames"]
    window = n // 10
    details = s["segment_details"]

    def per_frame(lo: int, hi: int) -> float:
        """Seconds per frame over [lo, hi] from the timing marks of the segment holding lo."""
        seg = next(d for d in details if d["start"] <= lo < d["stop"])
        pts = [(f, t) for f, t, _ in seg["marks"] if lo <= f <= hi]
        (f0, t0_), (f1, t1_) = pts[0], pts[-1]
        return (t1_ - t0_) / (f1 - f0)

    first = per_frame(0, window)
    last = per_frame(n - window, n)
    print(f"long run: {n} frames in {total:.0f} s ({total / 60:.1f} min, "
          f"{n / s['render_seconds']:.1f} frames/s render phase, {args.workers} segments; "
          f"{n / total:.1f} frames/s end to end)")
    print(f"  framecast end to end vs ffmpeg alone on all cores: {n / total / floor2 * 100:.0f}% "
          f"(goal >= 90%)")
    print(f"  time per frame, frames 0-{window}: {first * 1000:.2f} ms; frames {n - window}-{n}: "
          f"{last * 1000:.2f} ms ({(last / first - 1) * 100:+.1f}%)")
    for d in details:
        warm = d["marks"][min(2, len(d["marks"]) - 1)]
        print(f"  segment {d['index']} (frames {d['start']}-{d['stop']}): RSS "
              f"{d['rss_start_kb'] / 1024:.0f} MB at start, {warm[2] / 1024:.0f} MB at frame "
              f"{warm[0]}, {d['rss_end_kb'] / 1024:.0f} MB at end")
    print(f"load average after: {load_avg()}")
    print(json.dumps({"frames": n, "seconds": round(total, 1), "floor_all_cores_fps": round(floor2, 2),
                      "ms_per_frame_first": round(first * 1000, 3),
                      "ms_per_frame_last": round(last * 1000, 3),
                      "rss_kb": [(d["rss_start_kb"], d["rss_end_kb"])
                                 for d in details]}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=1000, help="framecast frames (>20000: long run)")
    p.add_argument("--naive-frames", type=int, default=60)
    p.add_argument("--grow-frames", type=int, default=45)
    p.add_argument("--floor-frames", type=int, default=300)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--countries", type=int, default=None,
                   help="countries in the data (default 200; 60 in the long run)")
    p.add_argument("--width", type=int, default=1100)
    p.add_argument("--height", type=int, default=600)
    p.add_argument("--db", type=Path, help="reuse/create this SQLite file")
    p.add_argument("--keep", action="store_true", help="keep the work folder")
    p.add_argument("--long", action="store_true", help="long-run mode at any --frames")
    args = p.parse_args(argv)
    if args.grow_frames < 42:
        p.error("--grow-frames must be at least 42 (growth is reported at frame 40)")

    from framecast.choropleth.sample import country_codes, load_table

    long = args.long or args.frames > 20000
    hourly = long
    n_countries = args.countries or (60 if long else 200)
    work = Path(tempfile.mkdtemp(prefix="fc_bench_choro_", dir="/dev/shm"
                                 if Path("/dev/shm").is_dir() and not long else None))
    db = args.db or (work / "bench.sqlite")
    url = f"sqlite:///{db}"
    try:
        if not db.exists():
            t = time.perf_counter()
            db.touch()
            rows = load_table(url, "bench", country_codes(n_countries), args.frames,
                              start=date(2000, 1, 1) if hourly else date(2020, 1, 1),
                              step=timedelta(hours=1) if hourly else timedelta(days=1))
            print(f"data: {rows} rows ({n_countries} countries x {args.frames} "
                  f"{'hours' if hourly else 'days'}) into SQLite in "
                  f"{time.perf_counter() - t:.1f} s", flush=True)
        print(f"size {args.width}x{args.height}, H.264 libx264 yuv420p (encoder defaults), "
              f"{os.cpu_count()} CPUs", flush=True)
        (long_run if long else quick)(args, url, work, hourly)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
