"""Airflow UI page "Frame timings": recent model runs with their timing summaries and links.

Why a plugin page: operators live in the Airflow UI; a nav entry that shows, per model run,
how many frames, how fast (p50/p95), whether anything was retried, and links to the Airflow
run and the published report answers "is today's run normal?" without a shell.

Airflow 3 serves plugin pages as FastAPI sub-apps mounted on the api-server (``fastapi_apps``)
and lists them in the UI through ``external_views``; the page is plain server-rendered HTML,
so it works inside the UI's iframe and with no JavaScript. The metrics database is
``$FRAMECAST_METRICS_DB`` or ``[framecast] metrics_db`` in airflow.cfg.
FastAPI plugin apps are not behind Airflow's login by themselves: every route here depends on
Airflow's own authentication (the UI's JWT cookie or an ``Authorization: Bearer`` token, checked
by the api-server's auth manager) and on the user being allowed to see plugin views, so an
anonymous request gets 401 and a user without that right 403. A listing costs a fixed number
of queries (three) and at most :data:`MAX_RUNS` runs.

A run's page also shows its publish latency by step (inputs upstream -> charts public), read
from the run's latency records (:mod:`framecast.metrics.latency`) in the data root the tasks
write to, with the run report's own table. Those records exist from the first published chunk
on, so a run still in progress (not yet in the metrics database) has a page too, and the
listing shows it, marked "in progress", among the stored runs: found by
:func:`framecast.metrics.latency.in_progress_runs`, which walks each model folder's run
folders newest first, reads only those not stored, never one older than the listing's oldest
stored run once the listing is full, and stops after ``last`` runs (plus a few folders without
records): a bounded cost however many run folders were ever written.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

from airflow.plugins_manager import AirflowPlugin
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse

from framecast.errors import FramecastError
from framecast.metrics import messages, report, store
from framecast.metrics.latency import (
    MODEL_NAME,
    RunProgress,
    StepLatency,
    in_progress_runs,
    read_latency,
)
from framecast.records import run_dir

URL_PREFIX = "/framecast-metrics"
#: Most runs one listing shows (each run's frames are read to compute its percentiles).
MAX_RUNS = 100

_STYLE = (
    "body{font-family:sans-serif;margin:1em}table{border-collapse:collapse}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#eee}"
    "td.l{text-align:left}.warn{color:#b00;font-weight:bold}tr.progress td{background:#fff8dc}"
)


def metrics_db_url() -> str:
    """The metrics DB the page reads: env first, then airflow.cfg, then the core default."""
    env = os.environ.get(store.DEFAULT_DB_ENV)
    if env:
        return env
    from airflow.configuration import conf

    return conf.get("framecast", "metrics_db", fallback="") or store.default_db_url()


#: A model name as a folder name: no path separators, no dot segments.
_MODEL: re.Pattern[str] = MODEL_NAME


def data_root() -> Path:
    """Where the tasks keep run folders, resolved as they resolve it (``runtime.run_context``):
    the Airflow Variable ``framecast_data_root``, else ``$FRAMECAST_DATA_ROOT``, else
    ``$AIRFLOW_HOME/framecast``. The api-server reads Variables straight from its secrets
    backends and metadata DB."""
    from airflow.models.variable import Variable

    from framecast_airflow.runtime import VAR_DATA_ROOT, default_data_root

    return Path(Variable.get(VAR_DATA_ROOT, default_var=None) or default_data_root())


def run_latency(model: str, run_iso: str) -> list[StepLatency]:
    """The run's publish latency records, by step ([] when none were written yet).

    ``model`` becomes a folder name, so anything but a plain name is refused (400), never
    joined into a path.
    """
    if not _MODEL.match(model):
        raise HTTPException(status_code=400, detail=f"model {model!r}: not a model name")
    return read_latency(run_dir(data_root() / "frames", model, datetime.fromisoformat(run_iso)))


def latency_section(model: str, run_iso: str) -> tuple[str, bool]:
    """The page's latency part and whether the run has any record; an unreadable record is
    shown, naming its file, without hiding the frame timings."""
    try:
        rows = run_latency(model, run_iso)
    except FramecastError as exc:
        return f'<p class="warn">Publish latency unreadable: {escape(str(exc))}</p>', True
    if not rows:
        return "<p>No publish latency recorded for this run.</p>", False
    return report.latency_table(rows), True


def _ui_base() -> str:
    from airflow.configuration import conf

    base = conf.get("api", "base_url", fallback="") or ""
    return base.rstrip("/")


def _page(title: str, body: str) -> HTMLResponse:
    return HTMLResponse(
        f'<!doctype html><html><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>"
    )


def listing(stored: list[store.RunSummary], progress: list[RunProgress],
            last: int) -> list[store.RunSummary | RunProgress]:
    """Stored runs and runs in progress in one list: newest run first, then by model (the
    metrics database's order), at most ``last`` (pure, tested directly)."""
    rows: list[store.RunSummary | RunProgress] = sorted([*stored, *progress],
                                                        key=lambda r: r.model)
    rows.sort(key=lambda r: r.run, reverse=True)
    return rows[:last]


def _hms(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def progress_cells(p: RunProgress) -> str:
    """The timing columns of a run in progress: what is published so far, its newest chunk."""
    if p.error:
        return (f'<td colspan="7" class="l"><b>in progress</b>: '
                f'<span class="warn">latency records unreadable: {escape(p.error)}</span></td>')
    what = (f"<b>in progress</b>: {p.steps} step{'s' * (p.steps != 1)} "
            f"(+{p.first_step:03d}..+{p.last_step:03d}) in {p.chunks} "
            f"chunk{'s' * (p.chunks != 1)} published")
    n = p.newest
    if n is not None:
        lat = "-" if n.latency_s is None else f"{n.latency_s:.1f} s"
        what += (f"; newest {escape(n.chunk)} public {_hms(n.published_at)} UTC, "
                 f"{n.since_run_s / 60:.1f} min after run time, latency {lat}")
    return f'<td colspan="7" class="l">{what}</td>'


def runs_table(rows: list[store.RunSummary | RunProgress], ui_base: str) -> str:
    """HTML table of run summaries with links; runs in progress span the timing columns
    (pure, tested directly)."""
    if not rows:
        return "<p>No runs recorded yet.</p>"
    head = (
        "<table id=\"runs\"><tr><th>model</th><th>run</th><th>frames</th><th>products</th>"
        "<th>p50 ms</th><th>p95 ms</th><th>frame time s</th><th>MB</th><th>max try</th>"
        "<th>links</th></tr>"
    )
    out = [head]
    for r in rows:
        detail = f"runs/{quote(r.model, safe='')}/{quote(r.run, safe='')}"
        links = [f'<a href="{escape(detail, quote=True)}">timings</a>']
        if r.dag_id and r.run_id:
            link = messages.run_url(ui_base, r.dag_id, r.run_id)
            links.append(f'<a href="{escape(link, quote=True)}" target="_top">Airflow run</a>')
        if isinstance(r, RunProgress):
            out.append(f'<tr class="progress"><td class="l">{escape(r.model)}</td>'
                       f'<td class="l">{escape(r.run)}</td>{progress_cells(r)}'
                       f"<td class=\"l\">{' | '.join(links)}</td></tr>")
            continue
        if r.report_url:
            links.append(f'<a href="{escape(r.report_url, quote=True)}" target="_blank">report</a>')
        retry = f'<span class="warn">{r.max_try}</span>' if r.max_try > 1 else str(r.max_try)
        out.append(
            f'<tr><td class="l">{escape(r.model)}</td><td class="l">{escape(r.run)}</td>'
            f"<td>{r.frames}</td><td>{r.products}</td><td>{r.p50_ms:.1f}</td>"
            f"<td>{r.p95_ms:.1f}</td><td>{r.total_ms / 1000:.1f}</td><td>{r.bytes / 1e6:.2f}</td>"
            f"<td>{retry}</td><td class=\"l\">{' | '.join(links)}</td></tr>"
        )
    out.append("</table>")
    return "".join(out)


def groups_table(recs: list) -> str:
    """Per product/region timings of a run's frames (the run report's statistics)."""
    rows = "".join(
        f'<tr><td class="l">{escape(g.product)}</td><td class="l">{escape(g.region)}</td>'
        f"<td>{g.frames}</td><td>{g.p50_ms:.1f}</td><td>{g.p95_ms:.1f}</td>"
        f"<td>{g.max_ms:.1f}</td>"
        + "".join(f"<td>{g.stage_median_ms[s]:.1f}</td>" for s in report.STAGES)
        + f"<td>{g.frames_per_s:.2f}</td></tr>"
        for g in report.group_stats(recs)
    )
    return (
        '<table id="groups"><tr><th>product</th>'
        "<th>region</th><th>frames</th><th>p50 ms</th><th>p95 ms</th><th>max ms</th>"
        + "".join(f"<th>{s.removesuffix('_ms')} (median)</th>" for s in report.STAGES)
        + f"<th>frames/s per worker</th></tr>{rows}</table>"
    )


def airflow_user_required() -> Any:
    """Dependency: an authenticated Airflow user allowed to see plugin views (401/403)."""
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.api_fastapi.core_api.security import requires_access_view

    return Depends(requires_access_view(AccessView.PLUGINS))


def create_app() -> FastAPI:
    """The page's FastAPI app (mounted by Airflow at :data:`URL_PREFIX`), login required."""
    app = FastAPI(title="framecast frame timings", docs_url=None, redoc_url=None,
                  openapi_url=None, dependencies=[airflow_user_required()])

    @app.get("/", response_class=HTMLResponse)
    def index(model: str | None = Query(None), last: int = Query(30, ge=1, le=MAX_RUNS)):
        try:
            stored = store.recent_runs(metrics_db_url(), model=model or None, last=last)
        except FramecastError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        note = ""
        try:
            progress = in_progress_runs(data_root() / "frames",
                                        [(r.model, r.run) for r in stored],
                                        model=model or None, last=last)
        except OSError as exc:  # the stored runs are still worth showing
            progress = []
            note = f'<p class="warn">Runs in progress unreadable: {escape(str(exc))}</p>'
        what = f" of {model}" if model else ""
        return _page(f"Frame timings: recent runs{what}",
                     note + runs_table(listing(stored, progress, last), _ui_base()))

    @app.get("/runs/{model}/{run}", response_class=HTMLResponse)
    def run_detail(model: str, run: str):
        try:
            run_iso = store.normalize_run(run)
            recs = store.frames(metrics_db_url(), model, run_iso)
        except FramecastError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from exc
        latency, has_latency = latency_section(model, run_iso)
        if not recs and not has_latency:
            raise HTTPException(status_code=404,
                                detail=f"no frames and no latency records for {model} {run_iso}")
        body = '<p><a href="../../">all runs</a></p>' + (
            groups_table(recs) if recs
            else "<p>No frame timings stored yet (the run's metrics task has not run).</p>")
        return _page(f"Frame timings: {model} {run_iso}", body + latency)

    return app


class FramecastMetricsPlugin(AirflowPlugin):
    """Registers the page with the api-server and adds it to the UI's Browse menu."""

    name = "framecast_metrics"
    fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Frame timings"}]
    external_views = [
        {
            "name": "Frame timings",
            "href": URL_PREFIX.lstrip("/") + "/",
            "destination": "nav",
            "category": "browse",
            "url_route": "framecast-metrics",
        }
    ]
