#!/usr/bin/env bash
# The Airflow UI on the demo's home (var/airflow, SQLite): the embedded default of
# plugins/framecast_airflow/localstack.py (api-server, scheduler, dag-processor, triggerer,
# LocalExecutor with one task slot per core) with the UI on http://127.0.0.1:8080 (loopback
# only, or $AIRFLOW__API__PORT; every user an admin, no login). The local upstream keeps serving
# the demo's ICON-EU sample run (var/upstream/icon-eu, port $FRAMECAST_UPSTREAM_PORT or 8181), so
# the framecast_icon_eu DAG can be triggered and re-run from the UI.
# Run scripts/demo.py (make demo) first. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/demo.py --ui
