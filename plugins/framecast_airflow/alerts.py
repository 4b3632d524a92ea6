"""Deadline alerts, budget alerts and task-try recording for model DAGs.

Why Deadline Alerts: Airflow 3 replaced the 2.x ``sla=`` with ``DeadlineAlert``; the scheduler
notices a missed deadline while the run is still going and the triggerer runs an async
callback, so an operator hears about late charts *before* the run ends (or if it never does).
Deadlines are pruned when a run finishes in time, so an on-time run sends nothing.

Why one module: everything a model DAG needs to tell operators something went wrong is here,
built on the SMTP provider's hook and the core's :mod:`framecast.metrics` texts:

- :func:`publish_deadline` -> a ``DeadlineAlert`` for ``DAG(deadline=...)``;
- :func:`notify_deadline_missed` -> the async callback that sends the "late" e-mail;
- :func:`run_metrics_task` -> body of a DAG's metrics task: store, timers, report, budget check
  and budget e-mail;
- :class:`RecordTaskTry` -> ``on_retry_callback``/``on_success_callback`` recording task tries,
  so retries of mapped render tasks show up in the budget alert.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from framecast.errors import FramecastError
from framecast.metrics import budget, messages, report, store
from framecast.records import read_records

log = logging.getLogger(__name__)

DEFAULT_SMTP_CONN_ID = "smtp_default"
ALERT_EMAILS_ENV = "FRAMECAST_ALERT_EMAILS"


def alert_recipients(env: Mapping[str, str] | None = None) -> list[str]:
    """Operators' addresses from ``$FRAMECAST_ALERT_EMAILS`` (comma-separated; empty: none).

    Why the environment: the same DAG files run in development (no e-mail) and production,
    and the deployment, not the code, knows who is on call.
    """
    env = os.environ if env is None else env
    return [a.strip() for a in env.get(ALERT_EMAILS_ENV, "").split(",") if a.strip()]


def ui_base_url(explicit: str | None = None) -> str:
    """Base URL of the Airflow UI: explicit, else ``[api] base_url``, else localhost:8080."""
    if explicit:
        return explicit
    from airflow.configuration import conf

    return conf.get("api", "base_url", fallback="") or "http://localhost:8080"


def publish_deadline(
    after: timedelta,
    *,
    to: str | Iterable[str],
    what: str = "charts published",
    smtp_conn_id: str = DEFAULT_SMTP_CONN_ID,
    ui_url: str | None = None,
    reference: Any = None,
    name: str | None = None,
):
    """A ``DeadlineAlert`` that e-mails ``to`` when a run is not done ``after`` its reference.

    ``reference`` defaults to ``DeadlineReference.DAGRUN_LOGICAL_DATE``: for model DAGs the
    logical date is the model run time, so "charts within 4 h of the 00 UTC run" is
    ``publish_deadline(timedelta(hours=4), ...)``. Pass ``DeadlineReference.DAGRUN_QUEUED_AT``
    for "within N minutes of starting".
    """
    from airflow.sdk import DeadlineAlert, DeadlineReference
    from airflow.sdk.definitions.callback import AsyncCallback

    recipients = [to] if isinstance(to, str) else list(to)
    if not recipients:
        raise ValueError("publish_deadline: 'to' names no recipient")
    return DeadlineAlert(
        reference=reference if reference is not None else DeadlineReference.DAGRUN_LOGICAL_DATE,
        interval=after,
        callback=AsyncCallback(
            notify_deadline_missed,
            kwargs={"to": recipients, "what": what, "smtp_conn_id": smtp_conn_id,
                    "ui_url": ui_url},
        ),
        name=name or f"framecast: {what}",
    )


def deadline_email(context: Mapping[str, Any], *, what: str, ui_url: str | None = None
                   ) -> tuple[str, str]:
    """Subject and HTML of the missed-deadline e-mail from the callback's context.

    The scheduler passes ``{"dag_run": <DAGRunResponse as JSON>, "deadline": {...}}``.
    """
    dag_run = dict(context.get("dag_run") or {})
    deadline = dict(context.get("deadline") or {})
    dag_id = str(dag_run.get("dag_id", "?"))
    run_id = str(dag_run.get("dag_run_id") or dag_run.get("run_id") or "?")
    link = messages.run_url(ui_base_url(ui_url), dag_id, run_id)
    subject = messages.deadline_subject(dag_id, run_id, what)
    html = messages.deadline_html(
        dag_id=dag_id,
        run_id=run_id,
        what=what,
        deadline_time=str(deadline.get("deadline_time", "?")),
        logical_date=str(dag_run.get("logical_date") or "-"),
        state=str(dag_run.get("state", "?")),
        link=link,
    )
    return subject, html


async def notify_deadline_missed(
    *,
    to: list[str] | str,
    what: str = "charts published",
    smtp_conn_id: str = DEFAULT_SMTP_CONN_ID,
    ui_url: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> str:
    """Deadline callback (runs in the triggerer): send the "late" e-mail; returns the subject."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    subject, html = deadline_email(context or {}, what=what, ui_url=ui_url)
    async with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        await hook.asend_email_smtp(to=to, subject=subject, html_content=html)
    log.info("deadline e-mail sent to %s: %s", to, subject)
    return subject


def window_deadlines(spec: Any, *, to: list[str], smtp_conn_id: str = DEFAULT_SMTP_CONN_ID,
                     ui_url: str | None = None) -> list:
    """One ``DeadlineAlert`` per ``publish_windows`` entry of the model ("first 24 h within
    2 h 30 min of run time").

    The scheduler fires each at run time + ``within`` while the DAG run is still going; the
    callback then looks at the run's latency records and e-mails only if some step of the
    window was not published by then, so a run whose first hours are online in time but whose
    last steps are still arriving sends nothing.
    """
    from airflow.sdk import DeadlineAlert, DeadlineReference
    from airflow.sdk.definitions.callback import AsyncCallback

    out = []
    for w in spec.publish_windows:
        what = f"{spec.title} charts +0..{w.label} h published"
        out.append(DeadlineAlert(
            reference=DeadlineReference.DAGRUN_LOGICAL_DATE,
            interval=w.within,
            callback=AsyncCallback(notify_window_missed, kwargs={
                "to": to, "what": what, "model": spec.name, "upto_step": w.upto_step,
                "within_s": w.within.total_seconds(), "smtp_conn_id": smtp_conn_id,
                "ui_url": ui_url}),
            name=f"framecast: {what}",
        ))
    return out


def window_published_in_time(model: str, logical_date: str, upto_step: int,
                             within_s: float, data_root: Path | None = None) -> bool:
    """Whether every step up to ``upto_step`` of the run was published within ``within_s``
    of its run time, by the run's latency records (false while any step is missing)."""
    from datetime import datetime

    from framecast.catalog import get_model, run_time_for
    from framecast.metrics.latency import read_latency, window_published_s
    from framecast.records import run_dir

    spec = get_model(model)
    if data_root is None:
        from framecast_airflow.runtime import default_data_root

        data_root = default_data_root()
    run_time = run_time_for(spec, datetime.fromisoformat(logical_date))
    rows = read_latency(run_dir(data_root / "frames", model, run_time))
    done = window_published_s(rows, upto_step, list(spec.steps))
    return done is not None and done <= within_s


async def notify_window_missed(
    *,
    to: list[str] | str,
    what: str,
    model: str,
    upto_step: int,
    within_s: float,
    smtp_conn_id: str = DEFAULT_SMTP_CONN_ID,
    ui_url: str | None = None,
    context: Mapping[str, Any] | None = None,
) -> str | None:
    """Window deadline callback (triggerer): e-mail unless the window is already public."""
    dag_run = dict((context or {}).get("dag_run") or {})
    logical = str(dag_run.get("logical_date") or "")
    if logical and window_published_in_time(model, logical, upto_step, within_s):
        log.info("%s: %s in time, no e-mail", model, what)
        return None
    return await notify_deadline_missed(to=to, what=what, smtp_conn_id=smtp_conn_id,
                                        ui_url=ui_url, context=context)


def alert_incomplete_run(*, to: list[str], model: str, run_id: str, manifest_status: dict,
                         dag_id: str, dag_run_id: str, smtp_conn_id: str = DEFAULT_SMTP_CONN_ID,
                         ui_url: str | None = None) -> str:
    """E-mail that a run was published without some steps; returns the subject."""
    missing = list(manifest_status["missing_steps"])
    subject = messages.incomplete_subject(model, run_id, missing)
    html = messages.incomplete_html(
        model=model, run_id=run_id, missing=missing, published=list(manifest_status["steps"]),
        dag_id=dag_id, dag_run_id=dag_run_id,
        link=messages.run_url(ui_base_url(ui_url), dag_id, dag_run_id))
    send_email(to=to, subject=subject, html=html, smtp_conn_id=smtp_conn_id)
    log.info("incomplete-run e-mail sent to %s: %s", to, subject)
    return subject


def send_email(*, to: str | Iterable[str], subject: str, html: str,
               smtp_conn_id: str = DEFAULT_SMTP_CONN_ID) -> None:
    """Send one HTML e-mail through an Airflow SMTP connection (synchronous, from a task)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=smtp_conn_id) as hook:
        hook.send_email_smtp(to=to, subject=subject, html_content=html)


def run_metrics_task(
    *,
    db_url: str,
    run_dir: str | Path,
    dag_id: str,
    run_id: str,
    to: str | Iterable[str] | None,
    smtp_conn_id: str = DEFAULT_SMTP_CONN_ID,
    factor: float = 1.5,
    trailing: int = 10,
    min_runs: int = 3,
    ui_url: str | None = None,
    emit_timers: bool = True,
    report_url: str = "",
) -> dict[str, Any]:
    """Everything a model DAG's metrics task does, in order; returns a JSON-able summary.

    1. write the run report into ``run_dir/_report`` so it is published with the charts;
    2. store the run's frame records (idempotent upsert: retries never double-count);
    3. emit one Airflow timer per frame and stage (StatsD/OpenTelemetry as configured);
    4. compare per-frame p50/p95 with the trailing runs and look for retried tasks;
    5. e-mail ``to`` when a product regressed or any task needed a retry.

    ``report_url`` (where the published report will be) is shown in the ops view.
    """
    run_path = Path(run_dir)
    records = read_records(run_path)
    summary: dict[str, Any] = {"frames": 0, "timers": 0, "report": None, "ok": True,
                               "alert_sent": False}
    if not records:
        log.warning("%s: no frame records, nothing to store or check", run_path)
        return summary
    # the report first: it needs only the run directory, so a metrics DB outage cannot cost it
    summary["report"] = str(report.write_report(run_path, records))
    summary["frames"] = store.upsert_frames(db_url, records)
    if emit_timers:
        from framecast_airflow.frame_stats import emit_frame_timings

        summary["timers"] = emit_frame_timings(records)
    model, run = records[0].model, records[0].run
    store.register_run(db_url, model, run, dag_id, run_id, report_url)
    result = budget.evaluate_run(db_url, model, run, trailing=trailing, factor=factor,
                                 min_runs=min_runs, dag_id=dag_id, run_id=run_id)
    summary.update(
        ok=result.ok,
        regressions=[r.product for r in result.regressions],
        retried_tasks=[f"{t.task_id}[{t.map_index}] try {t.try_number}"
                       for t in result.retried_tasks],
        retried_frames=[f"{f.product}/{f.region}" for f in result.retried_frames],
        no_baseline=result.no_baseline,
    )
    if not result.ok and to:
        link = messages.run_url(ui_base_url(ui_url), dag_id, run_id)
        send_email(to=to, subject=messages.budget_subject(result),
                   html=messages.budget_html(result, dag_id=dag_id, run_id=run_id, link=link),
                   smtp_conn_id=smtp_conn_id)
        summary["alert_sent"] = True
    return summary


class RecordTaskTry:
    """Task state callback storing ``(dag_id, run_id, task_id, map_index, try_number, state)``.

    Use one instance per state, e.g. ``on_retry_callback=RecordTaskTry(db, "up_for_retry")``
    and ``on_success_callback=RecordTaskTry(db, "success")``. ``db_url`` may be a function of
    the task context, for deployments that resolve the metrics DB at run time. A failure to
    record is logged and swallowed: metrics must never fail the task they observe.
    """

    def __init__(self, db_url: str | Callable[[Mapping[str, Any]], str], state: str,
                 model: str = "", run: str = "") -> None:
        self.db_url = db_url
        self.state = state
        self.model = model
        self.run = run

    def __call__(self, context: Mapping[str, Any]) -> None:
        ti = context["ti"]
        map_index = getattr(ti, "map_index", None)
        attempt = store.TaskTry(
            dag_id=ti.dag_id,
            run_id=ti.run_id,
            task_id=ti.task_id,
            map_index=-1 if map_index is None else int(map_index),
            try_number=int(ti.try_number),
            state=self.state,
            model=self.model,
            run=self.run,
        )
        try:
            db_url = self.db_url(context) if callable(self.db_url) else self.db_url
            store.record_task_try(db_url, attempt)
        except FramecastError:  # observing must not break the observed task
            log.exception("could not record task try %s", attempt)
