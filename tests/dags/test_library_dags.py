"""A model listing a product it cannot feed is refused when its DAG is built (DagBag import
error naming the product and inputs), in a real Airflow process; the shipped catalog builds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
MODELS = ROOT / "include" / "framecast" / "config" / "models.yaml"

PROBE = r"""
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(DAGS)
print("RESULT" + json.dumps({"errors": {k: str(v)[-600:] for k, v in bag.import_errors.items()},
                             "dags": sorted(bag.dags)}))
"""


def _dagbag(tmp_path: Path, models: Path) -> dict:
    sys.path.insert(0, str(ROOT / "plugins"))
    from framecast_airflow.localenv import LocalAirflow

    env = LocalAirflow(tmp_path / "home").env() | {"FRAMECAST_MODELS_FILE": str(models)}
    code = PROBE.replace("DAGS", repr(str(ROOT / "dags" / "framecast_models.py")))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(x for x in proc.stdout.splitlines() if x.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def test_product_without_inputs_is_refused_at_dag_build(tmp_path):
    doc = yaml.safe_load(MODELS.read_text())
    doc["models"]["gfs"]["products"] += ["ir_satellite", "precip_type"]
    bad = tmp_path / "models.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = _dagbag(tmp_path, bad)
    (error,) = result["errors"].values()
    assert "model 'gfs'" in error
    assert "'ir_satellite' needs ir_bt" in error
    assert "'precip_type' needs rain_con, rain_gsp, snow_con, snow_gsp" in error
    assert result["dags"] == []  # the whole file is refused, nothing half-built


def test_shipped_library_builds_for_every_model(tmp_path):
    result = _dagbag(tmp_path, MODELS)
    assert result["errors"] == {}
    assert result["dags"] == ["framecast_gfs", "framecast_icon", "framecast_icon_eu"]


def test_anomaly_products_without_climatology_are_refused_at_dag_build(tmp_path):
    """Without `climatology:` a model's anomaly products are an import error naming the
    climatology inputs (never a failure in the middle of a run)."""
    doc = yaml.safe_load(MODELS.read_text())
    assert "climatology" not in doc["models"]["icon"]  # optional, off as shipped
    doc["models"]["icon"]["products"] += ["t2m_anomaly", "z500_anomaly"]
    bad = tmp_path / "models.yaml"
    bad.write_text(yaml.safe_dump(doc))
    result = _dagbag(tmp_path, bad)
    (error,) = result["errors"].values()
    assert "model 'icon'" in error
    assert "'t2m_anomaly' needs climatology of t2m" in error
    assert "'z500_anomaly' needs climatology of gh500" in error
    assert "models.icon.climatology is not configured" in error
    assert result["dags"] == []
