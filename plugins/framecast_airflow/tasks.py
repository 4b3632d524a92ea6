"""The bodies of the model DAG's tasks: each a few lines calling core framecast functions.

Kept apart from the DAG factory so the DAG file stays declarative and each step can be swapped
(for example the publish step, when a deployment publishes to a remote server) without touching
scheduling code. Everything here receives the Airflow context explicitly.
"""

from __future__ import annotations

import os
from typing import Any

from framecast.catalog import chunk_files, needed_variables, window_variables
from framecast.errors import SpecError
from framecast.publish import PublishTarget
from framecast_airflow.hooks import FramecastUpstreamHook
from framecast_airflow.runtime import metrics_db, run_context


def wanted_variables(model: str, spec) -> list[str]:
    """What the charts and the point forecasts read (what a chunk waits for and fetches)."""
    from framecast_airflow.points import point_variables

    return sorted(set(needed_variables(spec)) | set(point_variables(model, spec)))


def download_chunk(model: str, chunk: dict[str, Any], context: Any) -> dict[str, int]:
    """Fetch a chunk's files and the earlier steps its windowed charts read.

    Earlier steps another chunk already fetched are skipped (valid files stay), so a chunk never
    waits on another chunk's download and clearing one chunk re-downloads nothing it has.
    """
    rc = run_context(model, context)
    files = chunk_files(rc.spec, rc.run_time, chunk, wanted_variables(model, rc.spec),
                        window_variables(rc.spec))
    results = FramecastUpstreamHook(rc.spec).download(files, rc.raw_dir)
    return {
        "downloaded": sum(r.status == "downloaded" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "bytes": sum(r.bytes for r in results),
        "retried": sum(max(0, r.attempts - 1) for r in results),
    }


def render_processes() -> int:
    """Processes one render task renders with: ``FRAMECAST_RENDER_PROCESSES`` (default 1).

    Why more than one: a chunk's charts are public only when all of them are rendered, so its
    latency is its render time. The embedded default gives the one render slot of its
    ``framecast_render`` pool every core (one chunk's charts split over all of them), while
    downloads and increments use the other task slots; a Celery deployment leaves it at 1 and
    sizes the pool to its render workers' CPUs instead (docs/airflow.md).
    """
    raw = os.environ.get("FRAMECAST_RENDER_PROCESSES", "").strip() or "1"
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise SpecError(f"FRAMECAST_RENDER_PROCESSES={raw!r}: expected a whole number >= 1")
    return n


def render_steps(model: str, chunk: dict[str, Any], context: Any) -> dict[str, Any]:
    """Every product on every region for one chunk of steps, in :func:`render_processes`
    processes (one process keeps the static maps and imports warm across its charts); frames
    and timing records go to the run folder."""
    from framecast.render.runner import Chunk, render_run

    rc = run_context(model, context)
    ti = context.get("ti")
    climatology = (rc.spec.climatology.resolve(rc.data_root)
                   if rc.spec.climatology is not None else None)
    steps = tuple(chunk["steps"])
    work = [Chunk(product, region, steps)
            for product in rc.spec.products for region in rc.spec.regions]
    records = render_run(rc.raw_dir, rc.frames_root, model=model, run_time=rc.run_time,
                         chunks=work, workers=min(render_processes(), len(work)),
                         climatology=climatology, start_method="fork",
                         try_number=int(getattr(ti, "try_number", 0) or 0))
    return {"frames": len(records), "bytes": sum(r.bytes for r in records)}


PUBLISH_CONN_ID = "framecast_publish_default"


def publish_target(rc) -> PublishTarget:
    """The target is the Airflow connection ``FRAMECAST_PUBLISH_CONN_ID`` (default
    ``framecast_publish_default``: SFTP, FTP/FTPS or a folder) when it is defined, otherwise
    the local publish folder (Variable ``framecast_publish_root``), the embedded default."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from framecast.publish import target_from_url
    from framecast_airflow.publish_hook import FramecastPublishHook

    conn_id = os.environ.get("FRAMECAST_PUBLISH_CONN_ID", PUBLISH_CONN_ID)
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return target_from_url(str(rc.publish_root))
    return FramecastPublishHook(publish_conn_id=conn_id).get_target()


def _force_latest(context: Any) -> bool:
    return bool((context.get("params") or {}).get("force_latest", False))


def publish_chunk(model: str, chunk: dict[str, Any], context: Any,
                  available_at: float | None = None) -> str:
    """Publish one chunk's frames while later steps are still upstream (an increment).

    The run's manifest gains the chunk's frames and stays ``in_progress``; ``latest`` moves to
    this run once the model's ``latest_when`` rule holds (never backwards). Increments of one
    run are serialised by the task's ``max_active_tis_per_dagrun=1``; the publisher also merges
    with the manifest as the target has it now. When ``available_at`` (the chunk's files seen
    upstream, from its wait) is given, the chunk's latency is recorded for the run report, with
    the DAG run that published it (the ops view links runs in progress to it).
    """
    import time

    from framecast.metrics.latency import write_latency
    from framecast.publish import publish_increment

    rc = run_context(model, context)
    report = publish_increment(
        rc.frames_dir, publish_target(rc), chunk["steps"], model=model, run_time=rc.run_time,
        expected_steps=rc.spec.steps, latest_after_step=rc.spec.latest_after_step(),
        force_latest=_force_latest(context))
    dag = context.get("dag")
    write_latency(rc.frames_dir, chunk["label"], chunk["steps"], run_time=rc.run_time,
                  available_at=available_at, published_at=time.time(),
                  dag_id=getattr(dag, "dag_id", "") or "", run_id=context.get("run_id") or "")
    return report.summary()


def publish(model: str, context: Any) -> str:
    """Publish the whole run: report, point forecasts, every frame; mark it complete or
    incomplete (naming the missing steps) and switch ``latest`` by the ``latest_when`` rule.

    Runs after every chunk, whether it succeeded or not, so a run with a chunk that never
    arrived upstream is still published as far as it goes, flagged incomplete, and operators
    (``$FRAMECAST_ALERT_EMAILS``) get an e-mail naming the missing steps. A backfill or
    re-run of an older cycle is published beside the newer run; the DAG param ``force_latest``
    (trigger form / ``--conf '{"force_latest": true}'``) moves ``latest`` back.
    """
    from framecast.metrics.report import write_report
    from framecast.points.runner import POINTS_DIR, write_index
    from framecast.publish import publish_run

    rc = run_context(model, context)
    write_report(rc.frames_dir)  # the timing report is published with the charts
    if (rc.frames_dir / POINTS_DIR).is_dir():  # every batch's places in the viewer's index
        write_index(rc.frames_dir, model, rc.run_time.isoformat())
    report = publish_run(rc.frames_dir, publish_target(rc), model=model, run_time=rc.run_time,
                         force_latest=_force_latest(context), expected_steps=rc.spec.steps,
                         latest_after_step=rc.spec.latest_after_step())
    if report.status == "incomplete":
        from framecast_airflow.alerts import alert_incomplete_run, alert_recipients

        to = alert_recipients()
        if to:
            alert_incomplete_run(
                to=to, model=model, run_id=report.run_id,
                manifest_status={"missing_steps": report.missing_steps, "steps": report.steps},
                dag_id=context["dag"].dag_id, dag_run_id=context["run_id"])
    return report.summary()


class metrics_db_of:  # noqa: N801 - used like a function; a class so DAGs serialize it
    """The metrics database URL for a task context (resolved at run time, on the worker)."""

    def __init__(self, model: str) -> None:
        self.model = model

    def __call__(self, context: Any) -> str:
        return metrics_db(run_context(self.model, context).data_root)


def metrics(model: str, context: Any) -> dict:
    """Store the run's per-frame timings, emit timers, check the performance budget.

    Also (re)writes the run's timing report; e-mails ``$FRAMECAST_ALERT_EMAILS`` when a product
    got slower than its trailing runs or any task needed a retry.
    """
    from framecast_airflow.alerts import alert_recipients, run_metrics_task

    rc = run_context(model, context)
    return run_metrics_task(db_url=metrics_db(rc.data_root), run_dir=rc.frames_dir,
                            dag_id=context["dag"].dag_id, run_id=context["run_id"],
                            to=alert_recipients())


def retention(model: str, context: Any) -> list[str]:
    """Delete raw data of all but the newest ``retention_runs`` runs of this model."""
    from framecast.retention import prune_runs

    rc = run_context(model, context)
    deleted = prune_runs(rc.data_root / "raw" / model, rc.spec.retention_runs, rc.run_time)
    return [p.name for p in deleted]
