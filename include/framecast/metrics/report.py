"""Run report: where a run's time went, as PNG plots plus an HTML table in the run directory.

Why inside the run directory: the publisher uploads the run directory, so the report reaches
the same audience as the charts with no extra plumbing. Why atomic: a report is regenerated
when a retried chunk adds records; readers must see the old report or the new one, never a
half-written PNG. Each file goes through a temp file and ``os.replace``; ``index.html`` (the
page that links the plots) is written last, like a manifest.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from framecast.errors import DataError
from framecast.metrics.latency import StepLatency, read_latency
from framecast.metrics.store import frame_total_ms, percentile
from framecast.records import REPORT_DIR, FrameRecord

STAGES = ("load_ms", "render_ms", "encode_ms", "upload_ms")


@dataclass(frozen=True)
class GroupStats:
    """Timings of one product/region of a run."""

    product: str
    region: str
    frames: int
    p50_ms: float
    p95_ms: float
    max_ms: float
    stage_median_ms: dict[str, float]
    bytes: int
    sum_ms: float

    @property
    def frames_per_s(self) -> float:
        """Frames per second one worker sustains for this product (frames / summed frame time)."""
        return 0.0 if self.sum_ms <= 0 else 1000.0 * self.frames / self.sum_ms


def group_stats(records: Sequence[FrameRecord]) -> list[GroupStats]:
    """Per product/region statistics, sorted by product then region."""
    groups: dict[tuple[str, str], list[FrameRecord]] = defaultdict(list)
    for r in records:
        groups[(r.product, r.region)].append(r)
    out = []
    for (product, region), recs in sorted(groups.items()):
        totals = [frame_total_ms(r) for r in recs]
        out.append(
            GroupStats(
                product=product,
                region=region,
                frames=len(recs),
                p50_ms=percentile(totals, 50),
                p95_ms=percentile(totals, 95),
                max_ms=max(totals),
                stage_median_ms={s: percentile([getattr(r, s) for r in recs], 50) for s in STAGES},
                bytes=sum(int(r.bytes) for r in recs),
                sum_ms=sum(totals),
            )
        )
    return out


def _atomic_write(target: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return buf.getvalue()


def plot_steps(records: Sequence[FrameRecord]) -> bytes:
    """Frame time by forecast step, one line per product/region: shows slow steps or regions."""
    from matplotlib.figure import Figure

    groups: dict[tuple[str, str], list[FrameRecord]] = defaultdict(list)
    for r in records:
        groups[(r.product, r.region)].append(r)
    fig = Figure(figsize=(9, 4.5))
    ax = fig.add_subplot()
    for (product, region), recs in sorted(groups.items()):
        recs = sorted(recs, key=lambda r: r.step)
        ax.plot([r.step for r in recs], [frame_total_ms(r) for r in recs], marker=".",
                label=f"{product} / {region}")
    ax.set_xlabel("forecast step (h)")
    ax.set_ylabel("frame time (ms)")
    ax.set_title("Frame time by step")
    ax.grid(alpha=0.3)
    if groups:
        ax.legend(fontsize="small", loc="best")
    fig.tight_layout()
    return _png(fig)


def plot_stages(stats: Sequence[GroupStats]) -> bytes:
    """Median time per stage, stacked, per product/region: shows which stage dominates."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, max(2.5, 0.45 * len(stats) + 1.5)))
    ax = fig.add_subplot()
    labels = [f"{s.product} / {s.region}" for s in stats]
    left = [0.0] * len(stats)
    for stage in STAGES:
        vals = [s.stage_median_ms[stage] for s in stats]
        ax.barh(labels, vals, left=left, label=stage.removesuffix("_ms"))
        left = [a + b for a, b in zip(left, vals, strict=True)]
    ax.set_xlabel("median ms per frame")
    ax.set_title("Where a frame's time goes")
    ax.invert_yaxis()
    ax.legend(fontsize="small", loc="lower right")
    fig.tight_layout()
    return _png(fig)


def plot_throughput(stats: Sequence[GroupStats]) -> bytes:
    """Frames per second one worker sustains per product/region."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, max(2.5, 0.45 * len(stats) + 1.5)))
    ax = fig.add_subplot()
    ax.barh([f"{s.product} / {s.region}" for s in stats], [s.frames_per_s for s in stats])
    ax.set_xlabel("frames/s per worker")
    ax.set_title("Throughput")
    ax.invert_yaxis()
    fig.tight_layout()
    return _png(fig)


def latency_table(rows: Sequence[StepLatency]) -> str:
    """Per step: inputs upstream -> charts public, and public after run time (minutes).

    Shared by the run report and the ops view in the Airflow UI, so both show the same table.
    """
    if not rows:
        return ""

    def utc(t: float | None) -> str:
        return "-" if t is None else datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")

    body = "".join(
        f"<tr><td>{r.step}</td><td>{escape(r.chunk)}</td><td>{utc(r.available_at)}</td>"
        f"<td>{utc(r.published_at)}</td>"
        f"<td>{'-' if r.latency_s is None else f'{r.latency_s:.1f}'}</td>"
        f"<td>{r.since_run_s / 60:.1f}</td></tr>"
        for r in rows
    )
    return ("<h2>Publish latency by step</h2><table id=\"latency\"><tr><th>step</th>"
            "<th>chunk</th><th>inputs upstream (UTC)</th><th>published (UTC)</th>"
            "<th>latency s</th><th>after run time min</th></tr>" + body + "</table>")


def render_html(model: str, run: str, stats: Sequence[GroupStats],
                records: Sequence[FrameRecord], images: Sequence[str],
                latency: Sequence[StepLatency] = ()) -> str:
    """The report page: summary table, publish latency, per-step table and the plots."""
    total_frames = sum(s.frames for s in stats)
    total_s = sum(s.sum_ms for s in stats) / 1000.0
    head = (
        "<tr><th>product</th><th>region</th><th>frames</th><th>p50 ms</th><th>p95 ms</th>"
        "<th>max ms</th>" + "".join(f"<th>{st.removesuffix('_ms')} ms (median)</th>" for st in STAGES)
        + "<th>frames/s per worker</th><th>MB</th></tr>"
    )
    rows = "".join(
        f"<tr><td>{escape(s.product)}</td><td>{escape(s.region)}</td><td>{s.frames}</td>"
        f"<td>{s.p50_ms:.1f}</td><td>{s.p95_ms:.1f}</td><td>{s.max_ms:.1f}</td>"
        + "".join(f"<td>{s.stage_median_ms[st]:.1f}</td>" for st in STAGES)
        + f"<td>{s.frames_per_s:.2f}</td><td>{s.bytes / 1e6:.2f}</td></tr>"
        for s in stats
    )
    step_rows = "".join(
        f"<tr><td>{escape(r.product)}</td><td>{escape(r.region)}</td><td>{r.step}</td>"
        + "".join(f"<td>{getattr(r, st):.1f}</td>" for st in STAGES)
        + f"<td>{frame_total_ms(r):.1f}</td><td>{int(r.bytes)}</td><td>{escape(r.host)}</td>"
        f"<td>{int(r.try_number)}</td><td><a href=\"../{escape(r.path, quote=True)}\">"
        f"{escape(r.path)}</a></td></tr>"
        for r in records
    )
    imgs = "".join(f'<p><img src="{escape(i, quote=True)}" alt="{escape(i)}"></p>' for i in images)
    title = f"framecast timings: {model} {run}"
    return (
        "<!doctype html><html><head><meta charset=\"utf-8\">"
        f"<title>{escape(title)}</title><style>"
        "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#eee}"
        "</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f"<p>{total_frames} frames, {total_s:.1f} s of frame time in total.</p>"
        f"<h2>By product and region</h2><table id=\"summary\">{head}{rows}</table>"
        f"{latency_table(latency)}{imgs}"
        "<h2>By step</h2><table id=\"steps\"><tr><th>product</th><th>region</th><th>step</th>"
        + "".join(f"<th>{st.removesuffix('_ms')} ms</th>" for st in STAGES)
        + "<th>total ms</th><th>bytes</th><th>host</th><th>try</th><th>frame</th></tr>"
        f"{step_rows}</table></body></html>"
    )


def write_report(run_dir: Path | str, records: Sequence[FrameRecord] | None = None) -> Path:
    """Write ``<run_dir>/_report/{index.html,*.png}``; returns the path of ``index.html``.

    ``records`` defaults to the run directory's own ``_records``.
    """
    from framecast.records import read_records

    run_path = Path(run_dir)
    if records is None:
        records = read_records(run_path)
    if not records:
        raise DataError(f"{run_path}: no frame records under _records/, nothing to report")
    models = {r.model for r in records}
    runs = {r.run for r in records}
    if len(models) != 1 or len(runs) != 1:
        raise DataError(
            f"{run_path}: records mix model runs {sorted(models)} / {sorted(runs)}; "
            "a report covers one model run"
        )
    records = sorted(records, key=lambda r: (r.product, r.region, r.step))
    stats = group_stats(records)
    out = run_path / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    images = {
        "steps.png": plot_steps(records),
        "stages.png": plot_stages(stats),
        "throughput.png": plot_throughput(stats),
    }
    for name, data in images.items():
        _atomic_write(out / name, data)
    index = out / "index.html"
    html = render_html(models.pop(), runs.pop(), stats, records, list(images),
                       read_latency(run_path))
    _atomic_write(index, html.encode("utf-8"))
    return index
