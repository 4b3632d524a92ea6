"""Point products of a run for a list of places: data files, meteograms, sections, soundings.

One extraction reads every GRIB message once for all places (:mod:`framecast.points.extract`);
the charts are then drawn in worker processes, a batch of places each. Every file written
gets a :class:`~framecast.records.FrameRecord` (product ``meteogram``, ``section``,
``sounding``, ``pointcsv`` or ``pointjson``, region = the place's slug) in the run's
``_records`` folder, like map frames: publishing, the manifest and the timing metrics use them.

Layout under the run directory::

    points/index.json                       places, their files (the viewer's place picker)
    points/<slug>/meteogram.png
    points/<slug>/section.png
    points/<slug>/sounding_+024.png
    points/<slug>/<slug>.csv, <slug>.json
"""

from __future__ import annotations

import json
import resource
import socket
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from framecast.errors import SpecError
from framecast.points.extract import PointSeries, extract
from framecast.points.output import atomic_write, write_csv, write_json
from framecast.points.places import Place
from framecast.records import FrameRecord, run_dir, write_records

POINTS_DIR = "points"
INDEX_NAME = "index.json"
#: What can be made per place.
PRODUCTS = ("data", "meteogram", "section", "sounding")
#: Record product names of point files (the manifest lists them under ``places``).
RECORD_PRODUCTS = ("meteogram", "section", "sounding", "pointcsv", "pointjson")


@dataclass
class PointsReport:
    """What a call made: records, timings and memory."""

    records: list[FrameRecord] = field(default_factory=list)
    extract_s: float = 0.0
    render_s: float = 0.0
    messages: int = 0
    peak_rss_mb: list[float] = field(default_factory=list)  # per worker process

    @property
    def images(self) -> int:
        return sum(r.product in ("meteogram", "section", "sounding") for r in self.records)


def check_products(products: Sequence[str]) -> list[str]:
    bad = [p for p in products if p not in PRODUCTS]
    if bad or not products:
        raise SpecError(f"point products {bad or '[]'}: expected some of {', '.join(PRODUCTS)}")
    return list(products)


def batch_label(kind: str, places: Sequence[Place]) -> str:
    """``meteograms/Hamburg..Munich``: a mapped task's name in the Airflow UI."""
    if not places:
        return f"{kind}/(none)"
    if len(places) == 1:
        return f"{kind}/{places[0].name}"
    return f"{kind}/{places[0].name}..{places[-1].name}"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _record(series: PointSeries, place: Place, product: str, step: int, rel: str, path: Path,
            ms: float, try_number: int) -> FrameRecord:
    return FrameRecord(series.model, series.run_time.isoformat(), product, place.slug, step,
                       rel, render_ms=round(ms, 1), bytes=path.stat().st_size,
                       host=socket.gethostname(), try_number=try_number,
                       valid_time=(series.run_time + timedelta(hours=step)).isoformat())


def render_places(series: PointSeries, run_path: Path, products: Sequence[str],
                  sounding_steps: Sequence[int] = (), try_number: int = 0,
                  progress: Callable[[int], object] | None = None
                  ) -> tuple[list[FrameRecord], float]:
    """Write the products of every place in ``series``; returns records and peak RSS (MB)."""
    from framecast.points.meteogram import draw_meteogram
    from framecast.points.section import draw_section

    records: list[FrameRecord] = []
    steps = [s for s in sounding_steps if s in series.steps]
    for i, place in enumerate(series.places):
        base = Path(POINTS_DIR) / place.slug
        entry: dict = {**place.to_dict(), "slug": place.slug,
                       "grid_point": [float(series.grid_lat[i]), float(series.grid_lon[i])]}
        if "data" in products:
            for product, suffix, writer in (("pointcsv", "csv", write_csv),
                                            ("pointjson", "json", write_json)):
                t0 = time.perf_counter()
                rel = (base / f"{place.slug}.{suffix}").as_posix()
                path = writer(series, i, run_path / rel)
                records.append(_record(series, place, product, 0, rel, path,
                                       (time.perf_counter() - t0) * 1e3, try_number))
                entry[suffix] = rel
        charts: list[tuple[str, int, Callable]] = []
        if "meteogram" in products:
            charts.append(("meteogram", 0, lambda i=i: draw_meteogram(series, i)))
        if "section" in products:
            charts.append(("section", 0, lambda i=i: draw_section(series, i)))
        if "sounding" in products:
            from framecast.points.sounding import draw_sounding

            charts += [("sounding", s, lambda i=i, s=s: draw_sounding(series, i, s))
                       for s in steps]
        for product, step, draw in charts:
            t0 = time.perf_counter()
            result = draw()
            name = f"sounding_+{step:03d}.png" if product == "sounding" else f"{product}.png"
            rel = (base / name).as_posix()
            path = atomic_write(run_path / rel, result.png)
            records.append(_record(series, place, product, step, rel, path,
                                   (time.perf_counter() - t0) * 1e3, try_number))
            if product == "sounding":
                entry.setdefault("soundings", []).append({"step": step, "file": rel,
                                                          **result.annotations})
            else:
                entry[product] = rel
                entry[f"{product}_panels"] = result.panels
            if progress:
                progress(1)
        atomic_write(run_path / base / "place.json", json.dumps(entry).encode())
    return records, _peak_rss_mb()


def write_index(run_path: Path, model: str, run: str) -> Path:
    """``points/index.json`` from every place folder present (several batches write them)."""
    root = Path(run_path) / POINTS_DIR
    places = []
    for f in sorted(root.glob("*/place.json")):
        try:
            places.append(json.loads(f.read_text()))
        except (OSError, ValueError):
            continue
    places.sort(key=lambda p: p["name"].casefold())
    doc = {"format": 1, "model": model, "run": run, "places": places}
    return atomic_write(root / INDEX_NAME, json.dumps(doc, ensure_ascii=False).encode())


def _render_batch(series: PointSeries, run_path: Path, products: Sequence[str],
                  sounding_steps: Sequence[int], try_number: int
                  ) -> tuple[list[FrameRecord], float]:
    return render_places(series, run_path, products, sounding_steps, try_number)


def make_points(source: Path, out_root: Path, places: Sequence[Place], *,
                model: str | None = None, products: Sequence[str] = PRODUCTS,
                sounding_steps: Sequence[int] = (0, 12, 24, 48), method: str = "nearest",
                steps: Sequence[int] | None = None, workers: int = 1,
                records_name: str = "points", try_number: int = 0,
                progress: Callable[[int], object] | None = None) -> PointsReport:
    """Extract the run at ``source`` for ``places`` and write their products under
    ``<out_root>/<model>/<run>/points``; records go to ``_records/<records_name>.jsonl``."""
    products = check_products(products)
    report = PointsReport()
    t0 = time.perf_counter()
    series = extract(source, places, model=model, method=method, steps=steps, workers=workers)
    report.extract_s = time.perf_counter() - t0
    report.messages = series.messages
    extract_rss = list(series.worker_rss_mb)
    run_path = run_dir(out_root, series.model, series.run_time)
    t1 = time.perf_counter()
    n = len(series.places)
    workers = max(1, min(workers, n))
    if workers == 1:
        recs, rss = render_places(series, run_path, products, sounding_steps, try_number,
                                  progress)
        report.records, report.peak_rss_mb = recs, [rss]
    else:
        parts = [list(range(k, n, workers)) for k in range(workers)]
        with ProcessPoolExecutor(workers) as pool:
            futures = [pool.submit(_render_batch, series.subset(p), run_path, products,
                                   sounding_steps, try_number) for p in parts]
            for fut in futures:
                recs, rss = fut.result()
                report.records += recs
                report.peak_rss_mb.append(rss)
                if progress:
                    progress(sum(r.product in ("meteogram", "section", "sounding")
                                 for r in recs))
    report.render_s = time.perf_counter() - t1
    if workers == 1 or len(extract_rss) == 1:
        report.peak_rss_mb = [max(report.peak_rss_mb + extract_rss)]
    else:
        report.peak_rss_mb = [max(a, b) for a, b in zip(report.peak_rss_mb, extract_rss,
                                                         strict=False)]
    write_records(run_path, records_name, report.records)
    write_index(run_path, series.model, series.run_time.isoformat())
    return report
