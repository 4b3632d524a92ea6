"""DAGs for the metrics end-to-end tests (run by a real scheduler, triggerer and api-server).

- ``fc_late``: its only task outlasts a 5 s deadline -> exactly one "late" e-mail.
- ``fc_ontime``: finishes well before a 90 s deadline -> no e-mail.
- ``fc_pipeline_fast`` / ``fc_pipeline_slow``: a mapped render task writing frame records,
  then the metrics task. The slow one renders with an injected per-frame delay and one mapped
  chunk fails on its first try, so it must raise the budget alert (slow product + retry); the
  fast one must not.

Settings come from the environment the test sets: FC_TEST_OUT (run directories),
FRAMECAST_METRICS_DB, FC_TEST_UI (Airflow base URL for links).
"""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, DeadlineReference, get_current_context, task

from framecast.metrics import store
from framecast.records import FrameRecord, chunk_name, run_dir, write_records
from framecast_airflow.alerts import RecordTaskTry, publish_deadline, run_metrics_task

OPS = ["ops@example.com"]
SMTP = "fc_smtp"
START = datetime(2026, 1, 1, tzinfo=UTC)
DB = os.environ.get("FRAMECAST_METRICS_DB", "sqlite:////tmp/fc-metrics-test.sqlite")
OUT = os.environ.get("FC_TEST_OUT", "/tmp/fc-test-out")
MODEL = "testmodel"
STEPS = [0, 1, 2, 3]
CHUNKS = [("t_2m", "europe"), ("pmsl", "europe"), ("t_2m", "alps")]


with DAG(
    "fc_late",
    schedule="@once",
    start_date=START,
    catchup=False,
    deadline=publish_deadline(timedelta(seconds=5), to=OPS, what="charts published",
                              smtp_conn_id=SMTP, reference=DeadlineReference.DAGRUN_QUEUED_AT,
                              ui_url=os.environ.get("FC_TEST_UI")),
):

    @task
    def slow_publish() -> None:
        time.sleep(20)

    slow_publish()


with DAG(
    "fc_ontime",
    schedule="@once",
    start_date=START,
    catchup=False,
    deadline=publish_deadline(timedelta(seconds=90), to=OPS, what="charts published",
                              smtp_conn_id=SMTP, reference=DeadlineReference.DAGRUN_QUEUED_AT,
                              ui_url=os.environ.get("FC_TEST_UI")),
):

    @task(priority_weight=100)
    def quick_publish() -> None:
        pass

    quick_publish()


def render_frame(delay_s: float) -> float:
    """Stand-in renderer: the injected delay is the "slowed-down renderer"; returns ms."""
    t0 = time.perf_counter()
    time.sleep(delay_s)
    return (time.perf_counter() - t0) * 1000.0


def make_pipeline(dag_id: str, run_time: datetime, delay_s: float, fail_chunk: int | None):
    with DAG(dag_id, schedule="@once", start_date=START, catchup=False) as dag:

        @task(retries=1, retry_delay=timedelta(seconds=1),
              on_retry_callback=RecordTaskTry(DB, "up_for_retry", MODEL, run_time.isoformat()),
              on_success_callback=RecordTaskTry(DB, "success", MODEL, run_time.isoformat()),
              map_index_template="{{ chunk }}")
        def render(chunk: int) -> int:
            ti = get_current_context()["ti"]
            product, region = CHUNKS[chunk]
            rdir = run_dir(OUT, MODEL, run_time)
            failing = chunk == fail_chunk and ti.try_number == 1
            records = []
            for step in (STEPS[:2] if failing else STEPS):
                ms = render_frame(delay_s)
                records.append(FrameRecord(
                    model=MODEL, run=run_time.isoformat(), product=product, region=region,
                    step=step, path=f"{product}/{region}/{step:03d}.png", load_ms=1.0,
                    render_ms=ms, encode_ms=1.0, bytes=100, host=socket.gethostname(),
                    try_number=ti.try_number,
                ))
            write_records(rdir, chunk_name(product, region, STEPS), records)
            store.upsert_frames(DB, records)  # partial rows of a failed try reach the DB too
            if failing:
                raise RuntimeError(f"injected failure of chunk {chunk} on try 1")
            return len(records)

        @task
        def metrics(counts: list[int]) -> dict:
            ctx = get_current_context()
            return run_metrics_task(
                db_url=DB, run_dir=run_dir(OUT, MODEL, run_time), dag_id=ctx["dag"].dag_id,
                run_id=ctx["run_id"], to=OPS, smtp_conn_id=SMTP, factor=2.0, trailing=5,
                min_runs=3, ui_url=os.environ.get("FC_TEST_UI"),
            )

        metrics(render.expand(chunk=list(range(len(CHUNKS)))))
    return dag


# Baseline (seeded history) about 400 ms/frame, budget factor 2: the fast run (20 ms) stays far
# below 800 ms even when a loaded machine stretches its sleeps, the slow one (1.2 s) far above.
make_pipeline("fc_pipeline_fast", datetime(2026, 11, 23, 6, tzinfo=UTC), 0.02, None)
make_pipeline("fc_pipeline_slow", datetime(2026, 11, 23, 12, tzinfo=UTC), 1.2, 1)
