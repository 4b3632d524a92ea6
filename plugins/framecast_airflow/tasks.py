"""The bodies of the model DAG's tasks: each a few lines calling core framecast functions.

Kept apart from the DAG factory so the DAG file stays declarative and each step can be swapped
(for example the publish step, when a deployment publishes to a remote server) without touching
scheduling code. Everything here receives the Airflow context explicitly.
"""

from __future__ import annotations

import os
from typing import Any

from framecast.catalog import (
    RemoteFile,
    batches,
    needed_variables,
    render_chunks,
    run_files,
)
from framecast_airflow.hooks import FramecastUpstreamHook
from framecast_airflow.runtime import metrics_db, run_context


def plan_downloads(model: str, context: Any) -> list[list[dict[str, Any]]]:
    """The run's files (those its products need) in download batches, early steps first."""
    rc = run_context(model, context)
    spec = rc.spec
    from framecast_airflow.points import point_variables

    wanted = set(needed_variables(spec)) | set(point_variables(model, spec))
    return batches(run_files(spec, rc.run_time, sorted(wanted)), spec.download_batch_size)


def plan_renders(model: str, context: Any) -> list[dict[str, Any]]:
    """The run's (product, region, steps) render chunks, early steps first."""
    spec = run_context(model, context).spec
    return render_chunks(spec.products, spec.regions, spec.steps, spec.chunk_size)


def batch_label(batch: list[dict[str, Any]]) -> str:
    steps = [d["step"] for d in batch if d.get("step") is not None]
    span = f"+{min(steps):03d}..+{max(steps):03d}" if steps else "invariant"
    return f"{span} ({len(batch)} files)"


def download(model: str, batch: list[dict[str, Any]], context: Any) -> dict[str, int]:
    """Fetch one batch into the run's raw folder; valid files already there are skipped."""
    rc = run_context(model, context)
    results = FramecastUpstreamHook(rc.spec).download(
        [RemoteFile.from_dict(d) for d in batch], rc.raw_dir)
    return {
        "downloaded": sum(r.status == "downloaded" for r in results),
        "skipped": sum(r.status == "skipped" for r in results),
        "bytes": sum(r.bytes for r in results),
        "retried": sum(max(0, r.attempts - 1) for r in results),
    }


def render(model: str, chunk: dict[str, Any], context: Any) -> dict[str, Any]:
    """Render one (product, region, steps) chunk; writes its frames and timing records."""
    from framecast.render.runner import render_chunk

    rc = run_context(model, context)
    ti = context.get("ti")
    records = render_chunk(
        rc.raw_dir, rc.frames_root, model=model, run_time=rc.run_time,
        product=chunk["product"], region=chunk["region"], steps=list(chunk["steps"]),
        try_number=int(getattr(ti, "try_number", 0) or 0),
        climatology=(rc.spec.climatology.resolve(rc.data_root)
                     if rc.spec.climatology is not None else None),
    )
    return {"frames": len(records), "bytes": sum(r.bytes for r in records)}


PUBLISH_CONN_ID = "framecast_publish_default"


def publish(model: str, context: Any) -> str:
    """Publish the run's charts and switch ``latest`` to this run unless a newer one is there.

    A backfill or re-run of an older cycle is published beside the newer run; the DAG param
    ``force_latest`` (trigger form / ``--conf '{"force_latest": true}'``) moves ``latest`` back.

    The target is the Airflow connection ``FRAMECAST_PUBLISH_CONN_ID`` (default
    ``framecast_publish_default``: SFTP, FTP/FTPS or a folder) when it is defined, otherwise
    the local publish folder (Variable ``framecast_publish_root``), the embedded default.
    """
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    from framecast.metrics.report import write_report
    from framecast.points.runner import POINTS_DIR, write_index
    from framecast.publish import publish_run, target_from_url
    from framecast_airflow.publish_hook import publish_from_connection

    rc = run_context(model, context)
    force_latest = bool((context.get("params") or {}).get("force_latest", False))
    write_report(rc.frames_dir)  # the timing report is published with the charts
    if (rc.frames_dir / POINTS_DIR).is_dir():  # every batch's places in the viewer's index
        write_index(rc.frames_dir, model, rc.run_time.isoformat())
    conn_id = os.environ.get("FRAMECAST_PUBLISH_CONN_ID", PUBLISH_CONN_ID)
    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        report = publish_run(rc.frames_dir, target_from_url(str(rc.publish_root)), model=model,
                             run_time=rc.run_time, force_latest=force_latest)
        return report.summary()
    summary = publish_from_connection(conn_id, rc.frames_dir, model=model,
                                      run_time=rc.run_time, force_latest=force_latest)
    return (f"{summary['uploaded']} uploaded, {summary['skipped']} unchanged to "
            f"{summary['target']} (latest: {summary['latest']})")


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
