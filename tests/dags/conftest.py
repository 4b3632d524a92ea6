"""Shared fixtures for the Airflow-side tests: sample runs in the real upstream layouts."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

RUN = datetime(2026, 11, 23, 0, tzinfo=UTC)
RUN2 = datetime(2026, 11, 23, 6, tzinfo=UTC)
STEPS = [0, 1, 2, 3]
VARIABLES = ["t2m", "msl"]


class SampleRuns:
    """Generates each (model, run) once per session into one upstream tree per model.

    With ``FRAMECAST_TEST_SAMPLE_RUNS`` set (scripts/mutation.py does: it starts one test
    session per mutant), the trees live in that folder and are generated once for all sessions:
    a marker written after a complete generation says a tree is there, and a lock keeps two
    sessions from writing it at the same time. The data is deterministic, so reusing it changes
    nothing a test sees.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: set[tuple[str, datetime]] = set()

    def get(self, model: str, run: datetime = RUN, steps: list[int] = STEPS) -> Path:
        import fcntl

        from framecast.sampledata import generate_run

        out = self.root / model
        if (model, run) not in self._done:
            self.root.mkdir(parents=True, exist_ok=True)
            marker = self.root / f"{model}-{run:%Y%m%d%H}.done"
            with open(self.root / ".lock", "w") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                if not marker.exists():
                    generate_run(model, run, steps, out, variables=VARIABLES, bz2=model != "gfs",
                                 icon_resolution=16 if model == "icon" else None)
                    marker.touch()
            self._done.add((model, run))
        return out


@pytest.fixture(scope="session")
def sample_runs(tmp_path_factory) -> SampleRuns:
    keep = os.environ.get("FRAMECAST_TEST_SAMPLE_RUNS")
    return SampleRuns(Path(keep) if keep else tmp_path_factory.mktemp("upstream"))


ROOT = Path(__file__).resolve().parents[2]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))  # framecast_airflow.localenv (no Airflow import)


def write_models(path: Path, *, steps: list[int] = STEPS, chunk_size: int = 2,
                 sensor_timeout: float = 60, **defaults) -> Path:
    """The shipped catalog cut down for tests: few steps, t2m_mslp on one region per model."""
    from framecast.catalog import DEFAULT_MODELS_FILE

    doc = yaml.safe_load(DEFAULT_MODELS_FILE.read_text())
    doc["defaults"].update({
        "chunk_size": chunk_size, "download_batch_size": 3, "retries": 0,
        "sensor": {"mode": "last_step", "poke_interval": 1, "timeout": sensor_timeout},
        "http": {"timeout": 10, "retries": 4, "backoff": 0.05},
        **defaults,
    })
    for name, model in doc["models"].items():
        model["steps"] = list(steps)
        model["products"] = ["t2m_mslp"]
        model["regions"] = ["europe"] if name == "icon-eu" else ["global"]
    path.write_text(yaml.safe_dump(doc))
    return path


class AirflowCase:
    """One test's Airflow home, data folders and upstream server, wired together."""

    def __init__(self, base: Path, template, upstream_url: str, model: str, **model_opts) -> None:
        from framecast.catalog import get_model
        from framecast_airflow.localenv import LocalAirflow, conn_env_name, connection_json

        self.base = base
        self.models_file = write_models(base / "models.yaml", **model_opts)
        self.spec = get_model(model, self.models_file)
        self.data = base / "data"
        self.publish = base / "publish"
        self.airflow = LocalAirflow(base / "home", extra_env={
            "FRAMECAST_MODELS_FILE": str(self.models_file),
            conn_env_name(self.spec.conn_id): connection_json(upstream_url),
            "FRAMECAST_DATA_ROOT": str(self.data),
            "FRAMECAST_PUBLISH_ROOT": str(self.publish),
            "FRAMECAST_METRICS_DB": f"sqlite:///{base / 'metrics.sqlite'}",
        })
        self.airflow.clone_db_from(template)

    def run(self, logical_date: str):
        return self.airflow.dags_test(self.spec.dag_id, logical_date)

    def states(self, task_id: str | None = None) -> list[dict]:
        rows = self.airflow.task_states(self.spec.dag_id)
        return [r for r in rows if task_id is None or r["task_id"] == task_id]

    def frames(self, run: str) -> dict[str, Path]:
        d = self.data / "frames" / self.spec.name / run
        return {p.relative_to(d).as_posix(): p for p in sorted(d.glob("*/*/*.png")) if p.is_file()}

    def published(self, run: str) -> list[str]:
        d = self.publish / self.spec.name / run
        return sorted(p.relative_to(d).as_posix() for p in d.glob("*/*/*.png"))

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")
                         for p in sorted((self.airflow.home / "logs").rglob("*.log")))


@pytest.fixture(scope="session")
def airflow_template(tmp_path_factory):
    """A migrated metadata DB with the download pool; each test starts from a copy."""
    from framecast_airflow.localenv import LocalAirflow

    af = LocalAirflow(tmp_path_factory.mktemp("airflow-template"))
    af.migrate({"framecast_download": 4})
    return af


@pytest.fixture
def airflow_case(tmp_path, airflow_template):
    """Factory: ``airflow_case(upstream_url, model, **catalog_options)``."""
    def make(upstream_url: str, model: str, **opts) -> AirflowCase:
        return AirflowCase(tmp_path, airflow_template, upstream_url, model, **opts)
    return make


class SmtpInbox:
    """A real SMTP server (aiosmtpd) on loopback keeping every message it receives."""

    def __init__(self) -> None:
        import threading

        self.messages: list = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        from email import message_from_bytes

        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def connection_json(self) -> str:
        """``smtp_default`` for the alert e-mails, pointing at this server."""
        import json

        return json.dumps({"conn_type": "smtp", "host": "127.0.0.1", "port": self.port,
                           "extra": {"disable_tls": True, "disable_ssl": True,
                                     "retry_limit": 0, "timeout": 10,
                                     "from_email": "framecast@example.com"}})


@pytest.fixture
def smtp_inbox():
    import socket

    from aiosmtpd.controller import Controller

    inbox = SmtpInbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        inbox.port = s.getsockname()[1]
    ctl = Controller(inbox, hostname="127.0.0.1", port=inbox.port)
    ctl.start()
    yield inbox
    ctl.stop()
