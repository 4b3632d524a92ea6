#!/usr/bin/env python3
"""The main job on the embedded default: one ICON-EU run, end to end, through Airflow.

1. An Airflow home under ``var/airflow`` with a SQLite metadata DB (``airflow db migrate``,
   idempotent) and the download pool.
2. A sample ICON-EU run in DWD's exact open-data layout (``.grib2.bz2`` per variable and step)
   under ``var/upstream/icon-eu``, served by a local HTTP server standing in for
   opendata.dwd.de.
3. The embedded default running for real (:mod:`framecast_airflow.localstack`): api-server,
   scheduler, dag-processor and triggerer with the LocalExecutor, one task slot per core. The
   demo triggers ``framecast_icon_eu`` for that run through the REST API and waits for it:
   sensor, parallel downloads, mapped renders, publish, metrics, retention.
4. The charts end up in ``var/publish/icon-eu/<run>/`` with a browsable ``index.html``.

Re-running is cheap: sample data, downloads and static map layers already present are reused.
``--ui`` (``make ui``) serves the same home with the Airflow UI until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

from framecast.catalog import DEFAULT_MODELS_FILE, format_run  # noqa: E402
from framecast.upstream import UpstreamServer  # noqa: E402
from framecast_airflow import localstack  # noqa: E402
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
#: Where the demo keeps its sample climatology, under the data root.
CLIMATOLOGY = "climatology/monthly_means.grib2"
DAG_ID = "framecast_icon_eu"
UPSTREAM_PORT = int(os.environ.get("FRAMECAST_UPSTREAM_PORT", "8181"))


def demo_env(upstream_url: str | None = None, var: Path = VAR) -> dict[str, str]:
    """The environment the demo (and ``make ui``) run Airflow with; ``var`` is the workspace
    (the benchmark and the tests use their own)."""
    env = {
        "FRAMECAST_MODELS_FILE": str(var / "demo" / "models.yaml"),
        "FRAMECAST_DATA_ROOT": str(var / "data"),
        "FRAMECAST_PUBLISH_ROOT": str(var / "publish"),
        "FRAMECAST_METRICS_DB": f"sqlite:///{var / 'data' / 'metrics.sqlite'}",
        "FRAMECAST_STATIC_CACHE": str(var / "data" / "cache" / "static-maps"),
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
    }
    shared = ROOT.parent / "shared" / "cartopy-data"
    if "CARTOPY_DATA_DIR" not in os.environ and shared.is_dir():
        env["CARTOPY_DATA_DIR"] = str(shared)
    if upstream_url:
        env[conn_env_name("framecast_upstream_icon_eu")] = connection_json(upstream_url)
    return env


#: How the demo's chunks wait upstream (models.yaml ``sensor``): checks every few seconds.
DEMO_SENSOR = {"mode": "last_step", "poke_interval": 5, "timeout": 600}


def write_demo_catalog(path: Path, steps: list[int], products: list[str] = DEMO_PRODUCTS,
                       regions: list[str] = DEMO_REGIONS, chunk_size: int = 4,
                       sensor: dict | None = None) -> None:
    """The shipped ICON-EU entry, cut to a few steps and products so the demo takes minutes.
    ``sensor`` replaces :data:`DEMO_SENSOR` (the cycle benchmark waits longer)."""
    doc = yaml.safe_load(DEFAULT_MODELS_FILE.read_text())
    icon_eu = doc["models"]["icon-eu"]
    icon_eu.update({"steps": steps, "products": products, "regions": regions,
                    "chunk_size": chunk_size})
    if any(p.endswith("_anomaly") for p in products):
        # the sample climatology (sample_climatology) for the anomaly chart
        icon_eu["climatology"] = {"path": CLIMATOLOGY,
                                  "fields": ["t2m", "gh500", "t850", "msl"]}
    doc["models"] = {"icon-eu": icon_eu}
    doc["defaults"]["sensor"] = dict(sensor or DEMO_SENSOR)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Written by scripts/demo.py: the ICON-EU demo catalog.\n"
                    + yaml.safe_dump(doc, sort_keys=False))


def sample_data(run_time: datetime, steps: list[int], var: Path = VAR) -> Path:
    """DWD-layout sample files for the run (generated once; deterministic)."""
    from framecast.catalog import get_model, needed_variables
    from framecast.sampledata import generate_run

    root = var / "upstream" / "icon-eu"
    spec = get_model("icon-eu", var / "demo" / "models.yaml")
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


def sample_climatology(var: Path = VAR) -> Path:
    """The monthly means anomaly charts subtract, under the data root where the demo catalog
    says; written once (a second)."""
    from framecast.sampledata.climatology import generate_climatology

    path = var / "data" / CLIMATOLOGY
    if not path.exists():
        generate_climatology(path)
    return path


@dataclass
class DemoRun:
    """How a demo run went: final state, seconds from the trigger, components' own CPU s."""

    state: str
    seconds: float
    component_cpu: dict[str, float]


def run_demo(airflow: LocalAirflow, upstream_url: str, run_time: datetime, var: Path = VAR,
             on_poll=None, env: dict[str, str] | None = None) -> DemoRun:
    """Start the embedded default, trigger the run and wait for it. ``on_poll(stack)`` runs
    while the run is going (the tests call the API there); ``env`` overrides the components'
    settings (the benchmark's baseline)."""
    airflow.extra_env = demo_env(upstream_url, var)
    # The demo starts its run itself: no scheduled runs of other cycles meanwhile.
    own = {"AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False", **(env or {})}
    with localstack.start(airflow, env=own) as af:
        print(f"Airflow on {af.api_url}: LocalExecutor, {localstack.slots()} task slots, "
              f"logs in {af.home}/*.log", flush=True)
        af.wait_dag(DAG_ID)
        t0 = time.perf_counter()
        run_id = af.trigger(DAG_ID, run_time.isoformat(),
                            run_id=f"demo__{format_run(run_time)}__{int(time.time())}",
                            replace=True)
        print(f"triggered {DAG_ID} run {run_id} (logical date {run_time.isoformat()}), "
              f"upstream {upstream_url} ...", flush=True)
        state = af.wait_run(DAG_ID, run_id, on_poll=on_poll)
        took = time.perf_counter() - t0
        cpu = af.cpu_seconds()
        af.api("PATCH", f"/dags/{DAG_ID}", {"is_paused": True})  # the UI starts it by choice
        errors = af.db_errors()
    if errors:
        print("demo: metadata DB errors during the run:\n  " + "\n  ".join(errors[:20]),
              file=sys.stderr)
        state = "failed"
    return DemoRun(state, took, cpu)


def serve_ui(airflow: LocalAirflow, upstream_url: str) -> int:
    """The Airflow UI on the demo home until Ctrl-C (``make ui``)."""
    airflow.extra_env = demo_env(upstream_url)
    port = int(os.environ.get("AIRFLOW__API__PORT", "8080"))
    with localstack.start(airflow, port=port) as af:
        print(f"Airflow UI: {af.api_url} (every user an admin; loopback only); LocalExecutor "
              f"with {localstack.slots()} task slots; logs in {af.home}/*.log; Ctrl-C stops",
              flush=True)
        try:
            while True:
                af.check_alive()
                time.sleep(2)
        except KeyboardInterrupt:
            print("stopping ...", flush=True)
    return 0


def _stop_on_signals() -> None:
    """SIGTERM/SIGHUP (a closed terminal, ``kill``) end the demo or UI like Ctrl-C does, so the
    Airflow components (each in a process group of its own) are stopped, not orphaned."""
    def stop(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even when started in background


def main(argv: list[str] | None = None) -> int:
    _stop_on_signals()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="model run time YYYYMMDDHH (default: today 00 UTC)")
    parser.add_argument("--steps", type=int, default=6, help="last forecast hour (default 6)")
    parser.add_argument("--ui", action="store_true",
                        help="serve the Airflow UI on the demo home instead of running the demo")
    args = parser.parse_args(argv)

    airflow = LocalAirflow(VAR / "airflow", extra_env=demo_env())
    if args.ui:
        if not (VAR / "demo" / "models.yaml").is_file():
            print("run scripts/demo.py (make demo) first", file=sys.stderr)
            return 1
        os.environ.update(demo_env())
        with UpstreamServer(VAR / "upstream" / "icon-eu", port=UPSTREAM_PORT) as upstream:
            return serve_ui(airflow, upstream.url)

    now = datetime.now(UTC)
    run_time = (datetime.strptime(args.run, "%Y%m%d%H").replace(tzinfo=UTC) if args.run
                else now.replace(hour=0, minute=0, second=0, microsecond=0))
    steps = list(range(0, args.steps + 1))
    write_demo_catalog(VAR / "demo" / "models.yaml", steps)
    os.environ.update(demo_env())
    upstream_root = sample_data(run_time, steps)
    sample_climatology()

    print(f"preparing Airflow home {airflow.home} (SQLite) ...", flush=True)
    airflow.migrate({"framecast_download": 4})

    with UpstreamServer(upstream_root) as upstream:
        run = run_demo(airflow, upstream.url, run_time)
    state, took = run.state, run.seconds
    publish = VAR / "publish" / "icon-eu"
    run_dir = publish / format_run(run_time)
    pngs = sorted(p for p in run_dir.rglob("*.png") if "_report" not in p.parts) \
        if run_dir.is_dir() else []
    if state != "success" or not pngs:
        print(f"demo: the DAG run ended {state} after {took:.0f} s; Airflow's logs are in "
              f"{airflow.home.resolve()} (*.log, logs/)", file=sys.stderr)
        return 1
    print(f"done in {took:.0f} s: {len(pngs)} charts of {len(DEMO_PRODUCTS)} products x "
          f"{len(DEMO_REGIONS)} regions x {len(steps)} steps")
    print(f"charts:  {run_dir}")
    print(f"viewer:  {publish / 'index.html'}")
    print(f"timings: {VAR / 'data' / 'frames' / 'icon-eu' / format_run(run_time) / '_report'}"
          "/index.html")
    print("Airflow UI on this home: make ui")
    return 0


if __name__ == "__main__":
    sys.exit(main())
