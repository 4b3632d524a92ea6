"""The shipped model DAG file (dags/framecast_models.py) with ``FRAMECAST_ALERT_EMAILS`` set
sends its publish-deadline e-mail: a real scheduler evaluates the deadline, the triggerer runs
the callback, the SMTP test server receives it (tests/metrics/airflow_stack.py).

The model catalog is the shipped one cut down to ICON-EU with ``publish_within: 1h``, and the
run is triggered for a model run two days ago, so its deadline (run time + 1 h) has passed when
the run is created. The upstream is a closed port: the run waits for data while the e-mail
goes out, as it would in production when the data is late.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import services
import yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
RUN = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)


def _celery_local():
    name = "framecast_celery_local_for_deadline"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / "celery_local.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
    return sys.modules[name]


@pytest.fixture(scope="module")
def shipped(stack_mod, tmp_path_factory):
    from framecast.catalog import get_model

    services.require_postgres()
    cl = _celery_local()
    work = tmp_path_factory.mktemp("shipped")
    models = cl.write_models_file(work / "models.yaml", steps=[0], chunk_size=1,
                                  products=["t2m_mslp"], regions=["europe"], retries=0)
    doc = yaml.safe_load(models.read_text())
    doc["models"]["icon-eu"]["publish_within"] = "1h"
    models.write_text(yaml.safe_dump(doc))
    spec = get_model("icon-eu", models)
    env = {"FRAMECAST_MODELS_FILE": str(models),
           "FRAMECAST_ALERT_EMAILS": "ops@example.com, duty@example.com",
           "AIRFLOW_CONN_" + spec.conn_id.upper(): cl.connection_json("http://127.0.0.1:1"),
           "FRAMECAST_DATA_DIR": str(work / "data"), "FRAMECAST_OUT_DIR": str(work / "out")}
    st = stack_mod.start_stack(work, [ROOT / "dags" / "framecast_models.py"], extra_env=env)
    st.spec = spec
    yield st
    stack_mod.stop_stack(st)


def test_shipped_model_dag_sends_its_deadline_email(shipped):
    """One e-mail to both addresses of FRAMECAST_ALERT_EMAILS naming the DAG, the run and
    what was late. Building the model DAG without the deadline, reading another variable, or
    a callback that cannot send, fails here."""
    import subprocess

    dag_id = shipped.spec.dag_id
    shipped.wait_dag(dag_id)
    run_id = f"late_{RUN:%Y%m%d%H}"
    logical = RUN + shipped.spec.delay
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "trigger", dag_id,
         "--logical-date", logical.isoformat(), "--run-id", run_id],
        env=shipped.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    mails = shipped.wait_mail(run_id, timeout=240)
    assert len(mails) == 1
    mail = mails[0]
    assert mail["Subject"] == (f"[framecast] LATE: {dag_id} {run_id}: "
                               f"{shipped.spec.title} charts published")
    assert {a.strip() for a in mail["To"].split(",")} == {"ops@example.com", "duty@example.com"}
    body = mail.get_payload(0).get_payload(decode=True).decode()
    assert run_id in body and dag_id in body
    time.sleep(5)  # another scheduler loop must not send it again
    assert len(shipped.inbox.matching(run_id)) == 1
