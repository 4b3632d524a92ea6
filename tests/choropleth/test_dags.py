"""The choropleth DAG file imports cleanly, and one real ``airflow dags test`` run renders a
small animation from SQLite through mapped segment tasks to the publish folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framecast.choropleth.sample import country_codes, load_table
from framecast.choropleth.source import url_from_connection
from framecast.errors import SourceError

ROOT = Path(__file__).resolve().parents[2]
DAG_FILE = ROOT / "dags" / "choropleth_dags.py"
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _env(tmp_path: Path, specs: Path) -> dict[str, str]:
    env = dict(os.environ)
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    shutil.copy(DAG_FILE, dags / DAG_FILE.name)
    env.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "FRAMECAST_ANIMATIONS_DIR": str(specs),
        "FRAMECAST_CHOROPLETH_WORK": str(tmp_path / "work"),
        "FRAMECAST_CHOROPLETH_OUT": str(tmp_path / "out"),
    })
    return env


def _spec(specs: Path, publish: Path, **over: str) -> None:
    specs.mkdir(exist_ok=True)
    text = f"""
name: {over.get('name', 'small')}
source:
  connection: choropleth_test_db
  table: covid_daily
  code_column: code
  time_column: date
  metric: value
  aggregate: last
interval: day
start: 2020-03-01
end: 2020-04-19
size: [480, 270]
fps: 10
style:
  breaks: [10, 100, 500]
  title: "{{time:%d %b %Y}}"
render:
  chunks: 3
  min_chunk_frames: 10
outputs:
  mp4: true
publish:
  dir: {publish}
"""
    (specs / f"{over.get('name', 'small')}.yaml").write_text(text)


def test_dagbag_imports_every_shipped_spec(tmp_path):
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(tmp_path / 'dags')!r})\n"
        "import json; print(json.dumps({'errors': {k: str(v) for k, v in "
        "bag.import_errors.items()}, 'dags': {d: sorted(t.task_id for t in bag.dags[d].tasks) "
        "for d in bag.dags}}))\n")
    env = _env(tmp_path, ROOT / "include" / "framecast" / "config" / "animations")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["errors"] == {}
    assert set(out["dags"]) >= {"choropleth_covid_daily", "choropleth_covid_weekly"}
    assert out["dags"]["choropleth_covid_daily"] == [
        "chunk_indices", "finish", "prepare", "publish", "render_segment"]


def test_connection_urls():
    assert url_from_connection("sqlite", host="/tmp/a.db") == "sqlite:////tmp/a.db"
    assert url_from_connection("postgres", host="127.0.0.1", login="u", password="p@ss",
                               port=5432, schema="test") == \
        "postgresql+psycopg2://u:p%40ss@127.0.0.1:5432/test"
    assert url_from_connection("http", extra={"sqlalchemy_url": "sqlite://"}) == "sqlite://"
    with pytest.raises(SourceError, match="'http' is not supported"):
        url_from_connection("http", host="x")


@pytest.mark.slow
def test_airflow_dags_test_renders_and_publishes(tmp_path):
    db = tmp_path / "covid.sqlite"
    db.touch()
    load_table(f"sqlite:///{db}", "covid_daily", country_codes(200), 120)
    specs = tmp_path / "specs"
    publish = tmp_path / "publish"
    _spec(specs, publish)
    env = _env(tmp_path, specs)
    env["AIRFLOW_CONN_CHOROPLETH_TEST_DB"] = json.dumps({"conn_type": "sqlite", "host": str(db)})
    # no explicit work/out folders: they default to the shared data root
    del env["FRAMECAST_CHOROPLETH_WORK"], env["FRAMECAST_CHOROPLETH_OUT"]
    env["FRAMECAST_DATA_ROOT"] = str(tmp_path / "data")
    work = tmp_path / "data" / "choropleth" / "work"
    stale = work / "small" / "manual__abandoned"  # a failed run's frames, three days old
    (stale / "png").mkdir(parents=True)
    (stale / "png" / "f_00001.png").write_bytes(b"x")
    old = time.time() - 3 * 86400
    for p in (stale / "png" / "f_00001.png", stale / "png", stale):
        os.utime(p, (old, old))
    mig = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True,
                         timeout=300)
    assert mig.returncode == 0, mig.stderr[-3000:]
    run = subprocess.run([AIRFLOW, "dags", "test", "choropleth_small", "2024-06-01"], env=env,
                         capture_output=True, text=True, timeout=600)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log[-5000:]
    video = publish / "small.mp4"
    assert video.is_file(), log[-5000:]
    import imageio_ffmpeg

    assert imageio_ffmpeg.count_frames_and_secs(str(video))[0] == 50
    summary = json.loads((publish / "small.summary.json").read_text())
    assert summary["segments"] == 3 and summary["frames"] == 50
    assert "render_segment" in log and "segment 2" in log
    assert work.is_dir() and not list(work.rglob("*.mp4"))  # work dir cleaned after finish
    assert not stale.exists()  # the abandoned run's folder was swept
    assert (tmp_path / "data" / "choropleth" / "out" / "small" / "small.mp4").is_file()
