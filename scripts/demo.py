#!/usr/bin/env python3
"""The main job on the embedded default: one ICON-EU run, end to end, through Airflow.

1. An Airflow home under ``var/airflow`` with a SQLite metadata DB (``airflow db migrate``,
   idempotent) and the download pool.
2. A sample ICON-EU run in DWD's exact open-data layout (``.grib2.bz2`` per variable and step)
   under ``var/upstream/icon-eu``, served by a local HTTP server standing in for
   opendata.dwd.de.
3. ``airflow dags test framecast_icon_eu`` for that run: sensor, parallel downloads, mapped
   renders, publish, metrics, retention.
4. The charts end up in ``var/publish/icon-eu/<run>/`` with a browsable ``index.html``.

Re-running is cheap: sample data and downloads already present are reused.
``scripts/airflow-ui.sh`` starts the Airflow UI on the same home afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from framecast.catalog import DEFAULT_MODELS_FILE, format_run  # noqa: E402
from framecast.upstream import UpstreamServer  # noqa: E402
from framecast_airflow.localenv import (  # noqa: E402
    LocalAirflow,
    conn_env_name,
    connection_json,
)

VAR = ROOT / "var"
#: A representative set of the chart library (every product renders in the test suite).
DEMO_PRODUCTS = ["t2m_mslp", "t2m_wind10", "precip_mslp", "precip_type", "gusts", "clouds",
                 "low_clouds", "cape_cin", "z500_t500", "theta_e850", "jet300", "snow_depth",
                 "ir_satellite", "t2m_anomaly"]
DEMO_REGIONS = ["europe", "germany"]


def demo_env(upstream_url: str | None = None) -> dict[str, str]:
    """The environment the demo (and scripts/airflow-ui.sh) run Airflow with."""
    env = {
        "FRAMECAST_MODELS_FILE": str(VAR / "demo" / "models.yaml"),
        "FRAMECAST_DATA_ROOT": str(VAR / "data"),
        "FRAMECAST_PUBLISH_ROOT": str(VAR / "publish"),
        "FRAMECAST_METRICS_DB": f"sqlite:///{VAR / 'data' / 'metrics.sqlite'}",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }
    shared = ROOT.parent / "shared" / "cartopy-data"
    if "CARTOPY_DATA_DIR" not in os.environ and shared.is_dir():
        env["CARTOPY_DATA_DIR"] = str(shared)
    if upstream_url:
        env[conn_env_name("framecast_upstream_icon_eu")] = connection_json(upstream_url)
    return env


def write_demo_catalog(path: Path, steps: list[int]) -> None:
    """The shipped ICON-EU entry, cut to a few steps and products so the demo takes minutes."""
    doc = yaml.safe_load(DEFAULT_MODELS_FILE.read_text())
    icon_eu = doc["models"]["icon-eu"]
    icon_eu.update({"steps": steps, "products": DEMO_PRODUCTS, "regions": DEMO_REGIONS,
                    "chunk_size": 4,
                    # the sample climatology (sample_climatology) for the anomaly chart
                    "climatology": {"path": "climatology/monthly_means.grib2",
                                    "fields": ["t2m", "gh500", "t850", "msl"]}})
    doc["models"] = {"icon-eu": icon_eu}
    doc["defaults"]["sensor"] = {"mode": "last_step", "poke_interval": 5, "timeout": 600}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by scripts/demo.py: the ICON-EU demo catalog.\n"
                    + yaml.safe_dump(doc, sort_keys=False))


def sample_data(run_time: datetime, steps: list[int]) -> Path:
    """DWD-layout sample files for the run (generated once; deterministic)."""
    from framecast.catalog import get_model, needed_variables
    from framecast.sampledata import generate_run

    root = VAR / "upstream" / "icon-eu"
    spec = get_model("icon-eu", VAR / "demo" / "models.yaml")
    variables = list(needed_variables(spec))
    marker = root / f".complete-{format_run(run_time)}-{len(steps)}-{'-'.join(variables)}"
    if not marker.exists():
        print(f"generating ICON-EU sample run {run_time:%Y-%m-%d %H} UTC: steps "
              f"+{steps[0]}..+{steps[-1]} h, variables {', '.join(variables)} ...", flush=True)
        t0 = time.perf_counter()
        files = generate_run("icon-eu", run_time, steps, root, variables=variables, bz2=True)
        marker.write_text("")
        print(f"  {len(files)} files in {time.perf_counter() - t0:.0f} s", flush=True)
    return root


def sample_climatology() -> Path:
    """The monthly means anomaly charts subtract, where models.yaml says (under the data
    root); written once (a second)."""
    from framecast.catalog import get_model
    from framecast.sampledata.climatology import generate_climatology

    spec = get_model("icon-eu", VAR / "demo" / "models.yaml")
    path = spec.climatology.resolve(VAR / "data")
    if not path.exists():
        generate_climatology(path)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="model run time YYYYMMDDHH (default: today 00 UTC)")
    parser.add_argument("--steps", type=int, default=6, help="last forecast hour (default 6)")
    args = parser.parse_args(argv)

    now = datetime.now(UTC)
    run_time = (datetime.strptime(args.run, "%Y%m%d%H").replace(tzinfo=UTC) if args.run
                else now.replace(hour=0, minute=0, second=0, microsecond=0))
    steps = list(range(0, args.steps + 1))
    write_demo_catalog(VAR / "demo" / "models.yaml", steps)
    os.environ.update(demo_env())
    upstream_root = sample_data(run_time, steps)
    sample_climatology()

    airflow = LocalAirflow(VAR / "airflow", extra_env=demo_env())
    print(f"preparing Airflow home {airflow.home} (SQLite) ...", flush=True)
    airflow.migrate({"framecast_download": 4})

    with UpstreamServer(upstream_root) as upstream:
        airflow.extra_env = demo_env(upstream.url)
        logical = run_time  # a DAG run's logical date is the model run time
        log = VAR / "demo" / "dags-test.log"
        print(f"running DAG framecast_icon_eu for run {format_run(run_time)} "
              f"(logical date {logical.isoformat()}), upstream {upstream.url} ...", flush=True)
        t0 = time.perf_counter()
        proc = airflow.dags_test("framecast_icon_eu", logical.isoformat(), timeout=3600)
        log.write_text(proc.stdout + proc.stderr)
        took = time.perf_counter() - t0
    publish = VAR / "publish" / "icon-eu"
    run_dir = publish / format_run(run_time)
    pngs = sorted(run_dir.rglob("*.png")) if run_dir.is_dir() else []
    if proc.returncode != 0 or not pngs:
        print(f"demo: the DAG run failed after {took:.0f} s; Airflow's output is in {log}",
              file=sys.stderr)
        return 1
    print(f"done in {took:.0f} s: {len(pngs)} charts of {len(DEMO_PRODUCTS)} products x "
          f"{len(DEMO_REGIONS)} regions x {len(steps)} steps")
    print(f"charts:  {run_dir}")
    print(f"viewer:  {publish / 'index.html'}")
    print(f"timings: {VAR / 'data' / 'frames' / 'icon-eu' / format_run(run_time) / '_report'}"
          "/index.html")
    print("Airflow UI on this home: bash scripts/airflow-ui.sh")
    return 0


if __name__ == "__main__":
    sys.exit(main())
