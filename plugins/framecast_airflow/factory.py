"""The DAG factory: one DAG per model in ``models.yaml``.

Shape of every model DAG (one DAG run = one model run, streamed chunk by chunk)::

    chunk[+000..+011]: wait -> download -> render -> publish (increment) --+
    chunk[+012..+023]: wait -> download -> render -> publish (increment) --+-> publish -> metrics
    ...                                                                      +-> retention
    chunk[*].download -> extract_points -> meteograms[meteograms/Hamburg..Munich ...] -> publish

* Schedule: a cron trigger at each cycle + the model's ``delay`` (when the first steps are
  normally upstream), with a data interval of (run time, run time + delay]; Airflow's logical
  date is the interval start, so a scheduled or backfilled DAG run's logical date *is* the
  model run time. Manual runs process the newest cycle at or before their logical date
  (:func:`framecast.catalog.run_time_for`).
* ``chunk`` is a mapped task group over the run's chunks of ``chunk_size`` steps
  (:func:`framecast.catalog.pipeline_chunks`), every instance named by its steps. Each chunk's
  ``wait`` defers to the triggerer until that chunk's files are upstream, so chunk k is
  downloaded, rendered and public while later steps are still being computed upstream, and
  clearing one chunk re-does only that chunk.
* Downloads run in an Airflow pool, so several model DAGs never open more connections than the
  pool allows. Renders outrank downloads (``priority_weight``, absolute), increments outrank
  both: an older run finishes its charts before a newer run's downloads take the worker slots.
* Increments of one run are serialised (``max_active_tis_per_dagrun=1``); the final
  ``publish`` runs whatever happened to the chunks and marks the run complete or incomplete.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import (
    DAG,
    CronTriggerTimetable,
    Param,
    get_current_context,
    task,
    task_group,
)

from framecast.catalog import ModelSpec, check_products, pipeline_chunks
from framecast_airflow import points as points_tasks
from framecast_airflow import tasks
from framecast_airflow.alerts import (
    RecordTaskTry,
    alert_recipients,
    publish_deadline,
    window_deadlines,
)
from framecast_airflow.sensors import UpstreamRunSensor

START_DATE = datetime(2026, 1, 1)
RENDER_PRIORITY = 10
DOWNLOAD_PRIORITY = 5
#: publishing a rendered chunk outranks everything: its charts are what users wait for
PUBLISH_PRIORITY = 20


def _labelled(chunk: dict) -> Any:
    """The task context with the chunk's name for ``map_index_template`` (``+024..+035``)."""
    context = get_current_context()
    context["chunk_label"] = chunk["label"]
    return context


def _doc(spec: ModelSpec) -> str:
    return (
        f"### {spec.title}\n\n"
        f"Follows {spec.name} runs at {', '.join(f'{c:02d}' for c in spec.cycles)} UTC, "
        f"starting {spec.delay} after each run time (`{spec.cron()}` UTC). "
        f"Steps +{spec.steps[0]}..+{spec.steps[-1]} h ({len(spec.steps)}), products "
        f"{', '.join(spec.products)} on {', '.join(spec.regions)}, streamed in chunks of "
        f"{spec.chunk_size} steps (`latest` moves at `{spec.latest_when}`). Upstream "
        f"connection: `{spec.conn_id}` (default {spec.default_base_url}).\n\n"
        "Re-run a single chunk by clearing its failed `chunk` tasks (with downstream); "
        "downloads skip files that are already present and valid."
    )


#: Upper bound of any one task's run time (downloads and the sensor get theirs on top).
TASK_TIMEOUT = timedelta(hours=2)


def build_dag(spec: ModelSpec) -> DAG:
    """The DAG for one model; ids, schedule and limits come from ``spec``.

    A product the model cannot feed is refused here (SpecError naming its inputs).
    """
    check_products(spec)
    model = spec.name
    default_args = {
        "owner": spec.owner,
        "retries": spec.retries,
        "retry_delay": spec.retry_delay,
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": timedelta(minutes=30),
        # no task may hold a worker slot forever (a hung upstream, a stuck render)
        "execution_timeout": TASK_TIMEOUT,
        # every retry is recorded, so the metrics task can alert on runs that needed them
        "on_retry_callback": RecordTaskTry(tasks.metrics_db_of(model), "up_for_retry", model),
    }
    recipients = alert_recipients()
    deadline = []
    if spec.publish_within is not None and recipients:
        deadline.append(publish_deadline(spec.publish_within, to=recipients,
                                         what=f"{spec.title} charts published"))
    if recipients:
        deadline += window_deadlines(spec, to=recipients)
    with DAG(
        dag_id=spec.dag_id,
        description=f"{spec.title}: wait for the run upstream, download, render, publish",
        schedule=CronTriggerTimetable(spec.cron(), timezone="UTC", interval=spec.delay),
        start_date=START_DATE,
        catchup=False,
        max_active_runs=spec.max_active_runs,
        dagrun_timeout=timedelta(seconds=spec.sensor.timeout) + timedelta(hours=6),
        default_args=default_args,
        tags=["framecast", "nwp", model, spec.layout],
        doc_md=_doc(spec),
        deadline=deadline or None,
        params={
            "force_latest": Param(
                False, type="boolean",
                description="Point 'latest' at this run even if a newer run is published "
                            "(a backfill of an older cycle otherwise goes beside it)"),
        },
    ) as dag:

        wait_timeout = timedelta(seconds=spec.sensor.timeout)
        chunk_tasks: dict[str, Any] = {}

        @task_group(group_id="chunk")
        def chunk_pipeline(chunk: dict) -> None:
            """One chunk of steps: wait upstream, download, render every chart, publish."""
            seen = UpstreamRunSensor(
                task_id="wait",
                model=model,
                chunk=chunk,
                deferrable=True,
                poke_interval=spec.sensor.poke_interval,
                timeout=spec.sensor.timeout,
                retries=0,
                execution_timeout=wait_timeout + TASK_TIMEOUT,
                map_index_template="{{ chunk_label }}",
            )

            @task(
                pool=spec.download_pool,
                priority_weight=DOWNLOAD_PRIORITY,
                weight_rule="absolute",
                map_index_template="{{ chunk_label }}",
                # every file of the chunk may use its whole per-file deadline
                execution_timeout=timedelta(seconds=spec.http.deadline
                                            * spec.download_batch_size) + TASK_TIMEOUT,
            )
            def download(chunk: dict) -> dict:
                """Fetch the chunk's files (streamed, retried, verified, atomic)."""
                context = _labelled(chunk)
                return tasks.download_chunk(model, chunk, context)

            @task(
                priority_weight=RENDER_PRIORITY,
                weight_rule="absolute",
                map_index_template="{{ chunk_label }}",
            )
            def render(chunk: dict) -> dict:
                """Render every product on every region for the chunk's steps."""
                context = _labelled(chunk)
                return tasks.render_steps(model, chunk, context)

            @task(
                priority_weight=PUBLISH_PRIORITY,
                weight_rule="absolute",
                map_index_template="{{ chunk_label }}",
                # increments of one run one at a time: none drops another's manifest entries
                max_active_tis_per_dagrun=1,
            )
            def publish(chunk: dict, seen: dict | None) -> str:
                """Publish the chunk's charts; the run stays in progress until all are there."""
                context = _labelled(chunk)
                return tasks.publish_chunk(model, chunk, context,
                                           available_at=(seen or {}).get("available_at"))

            downloaded = download(chunk)
            seen >> downloaded
            rendered = render(chunk)
            downloaded >> rendered
            rendered >> publish(chunk, seen.output)
            chunk_tasks["download"] = downloaded

        @task(trigger_rule="all_done", priority_weight=PUBLISH_PRIORITY, weight_rule="absolute")
        def publish() -> str:
            """Publish the whole run, complete or flagged incomplete with its missing steps."""
            return tasks.publish(model, get_current_context())

        @task(trigger_rule="all_done")
        def metrics() -> dict:
            """Store per-frame timings, emit timers, check the budget; runs even after failures."""
            return tasks.metrics(model, get_current_context())

        @task
        def retention() -> list[str]:
            """Delete raw data of old runs."""
            return tasks.retention(model, get_current_context())

        chunks = chunk_pipeline.expand(chunk=pipeline_chunks(spec))
        published = publish()
        chunks >> published
        pruned = retention()
        published >> [metrics(), pruned]
        # raw data of older runs goes only after a complete run; a missing chunk leaves the
        # retention task upstream_failed, which also marks the DAG run failed for operators
        chunks >> pruned

        if points_tasks.config_of(model) is not None:

            @task(priority_weight=RENDER_PRIORITY, weight_rule="absolute")
            def extract_points() -> list[dict]:
                """Read each GRIB message once for all places; batches of places to draw."""
                return points_tasks.extract_points(model, get_current_context())

            @task(
                priority_weight=RENDER_PRIORITY,
                weight_rule="absolute",
                map_index_template="{{ points_label }}",
            )
            def meteograms(batch: dict) -> dict:
                """Meteograms, sections, soundings and CSV/JSON of a batch of places."""
                context = get_current_context()
                context["points_label"] = batch["label"]
                return points_tasks.render_points(model, batch, context)

            point_batches = extract_points()
            chunk_tasks["download"] >> point_batches
            meteograms.expand(batch=point_batches) >> published
    return dag
