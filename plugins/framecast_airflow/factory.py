"""The DAG factory: one DAG per model in ``models.yaml``.

Shape of every model DAG (one DAG run = one model run)::

    plan_downloads ─┐                   plan_renders ─┐
    wait_upstream ──┴─> download[batch ...] ──────────┴─> render[t2m_mslp/europe/+000..+011 ...]
        ─> publish ─> metrics, retention

* Schedule: a cron trigger at each cycle + the model's availability ``delay``, with a data
  interval of (run time, run time + delay]; Airflow's logical date is the interval start, so a
  scheduled or backfilled DAG run's logical date *is* the model run time. Manual runs process
  the newest cycle at or before their logical date (:func:`framecast.catalog.run_time_for`).
* ``wait_upstream`` defers to the triggerer while the run is incomplete upstream.
* Downloads are mapped over batches of files and run in an Airflow pool, so several model DAGs
  never open more connections than the pool allows.
* Renders are mapped over (product, region, chunk of steps); mapped instances start in map-index
  order and the chunks are ordered step-major, so every chart's first hours come first. Render
  tasks also outrank downloads of other runs (``priority_weight``, absolute), so an older run
  finishes its charts before a newer run's downloads take the worker slots.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG, CronTriggerTimetable, get_current_context, task

from framecast.catalog import ModelSpec
from framecast_airflow import tasks
from framecast_airflow.alerts import RecordTaskTry, alert_recipients, publish_deadline
from framecast_airflow.sensors import UpstreamRunSensor

START_DATE = datetime(2026, 1, 1)
RENDER_PRIORITY = 10
DOWNLOAD_PRIORITY = 5


def _doc(spec: ModelSpec) -> str:
    return (
        f"### {spec.title}\n\n"
        f"Follows {spec.name} runs at {', '.join(f'{c:02d}' for c in spec.cycles)} UTC, "
        f"starting {spec.delay} after each run time (`{spec.cron()}` UTC). "
        f"Steps +{spec.steps[0]}..+{spec.steps[-1]} h ({len(spec.steps)}), products "
        f"{', '.join(spec.products)} on {', '.join(spec.regions)}, {spec.chunk_size} steps per "
        f"render task. Upstream connection: `{spec.conn_id}` (default {spec.default_base_url}).\n\n"
        "Re-run a single chart chunk by clearing its mapped `render` instance; downloads skip "
        "files that are already present and valid."
    )


#: Upper bound of any one task's run time (downloads and the sensor get theirs on top).
TASK_TIMEOUT = timedelta(hours=2)


def build_dag(spec: ModelSpec) -> DAG:
    """The DAG for one model; ids, schedule and limits come from ``spec``."""
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
    deadline = None
    if spec.publish_within is not None and recipients:
        deadline = publish_deadline(spec.publish_within, to=recipients,
                                    what=f"{spec.title} charts published")
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
        deadline=deadline,
    ) as dag:

        @task
        def plan_downloads() -> list[list[dict]]:
            """The run's files in download batches, early steps first."""
            return tasks.plan_downloads(model, get_current_context())

        @task
        def plan_renders() -> list[dict]:
            """The run's (product, region, steps) render chunks, early steps first."""
            return tasks.plan_renders(model, get_current_context())

        wait_upstream = UpstreamRunSensor(
            task_id="wait_upstream",
            model=model,
            deferrable=True,
            poke_interval=spec.sensor.poke_interval,
            timeout=spec.sensor.timeout,
            retries=0,
            execution_timeout=timedelta(seconds=spec.sensor.timeout) + TASK_TIMEOUT,
        )

        @task(
            pool=spec.download_pool,
            priority_weight=DOWNLOAD_PRIORITY,
            weight_rule="absolute",
            map_index_template="{{ batch_label }}",
            # every file of the batch may use its whole per-file deadline
            execution_timeout=timedelta(seconds=spec.http.deadline * spec.download_batch_size)
            + TASK_TIMEOUT,
        )
        def download(batch: list[dict]) -> dict:
            """Fetch one batch of files (streamed, retried, verified, atomic)."""
            context = get_current_context()
            context["batch_label"] = tasks.batch_label(batch)
            return tasks.download(model, batch, context)

        @task(
            priority_weight=RENDER_PRIORITY,
            weight_rule="absolute",
            map_index_template="{{ chunk_label }}",
        )
        def render(chunk: dict) -> dict:
            """Render one product/region chunk of steps; writes frames and timing records."""
            context = get_current_context()
            context["chunk_label"] = chunk["label"]
            return tasks.render(model, chunk, context)

        @task
        def publish() -> str:
            """Put the run's charts where viewers read them."""
            return tasks.publish(model, get_current_context())

        @task(trigger_rule="all_done")
        def metrics() -> dict:
            """Store per-frame timings, emit timers, check the budget; runs even after failures."""
            return tasks.metrics(model, get_current_context())

        @task
        def retention() -> list[str]:
            """Delete raw data of old runs."""
            return tasks.retention(model, get_current_context())

        downloaded = download.expand(batch=plan_downloads())
        wait_upstream >> downloaded
        rendered = render.expand(chunk=plan_renders())
        downloaded >> rendered
        published = publish()
        rendered >> published
        published >> [metrics(), retention()]
    return dag
