#!/usr/bin/env bash
# The Airflow UI on the demo's home (var/airflow, SQLite): `airflow standalone` runs the
# api-server (UI on http://127.0.0.1:8080, loopback only, or $AIRFLOW__API__PORT; every user an admin, no login), scheduler,
# triggerer and dag-processor. The local upstream keeps serving the demo's ICON-EU sample run
# (var/upstream/icon-eu), so the framecast_icon_eu DAG can be triggered and re-run from the UI.
# Run scripts/demo.py (make demo) first. Stop with Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY="$ROOT/.venv/bin/python"
export PATH="$ROOT/.venv/bin:$PATH"  # standalone starts its components as `airflow ...`
[ -f var/demo/models.yaml ] || { echo "run scripts/demo.py (make demo) first" >&2; exit 1; }

PORT="${FRAMECAST_UPSTREAM_PORT:-8181}"
"$PY" -m framecast.upstream var/upstream/icon-eu --port "$PORT" &
UPSTREAM_PID=$!
trap 'kill "$UPSTREAM_PID" 2>/dev/null || true' EXIT

export AIRFLOW_HOME="$ROOT/var/airflow"
export AIRFLOW__CORE__DAGS_FOLDER="$ROOT/dags"
export AIRFLOW__CORE__PLUGINS_FOLDER="$ROOT/plugins"
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$ROOT/var/airflow/airflow.db"
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS=True
export FRAMECAST_MODELS_FILE="$ROOT/var/demo/models.yaml"
export FRAMECAST_DATA_ROOT="$ROOT/var/data"
export FRAMECAST_PUBLISH_ROOT="$ROOT/var/publish"
export FRAMECAST_METRICS_DB="sqlite:///$ROOT/var/data/metrics.sqlite"
export AIRFLOW_CONN_FRAMECAST_UPSTREAM_ICON_EU="{\"conn_type\": \"http\", \"extra\": {\"base_url\": \"http://127.0.0.1:$PORT\"}}"
if [ -z "${CARTOPY_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/cartopy-data" ]; then
  export CARTOPY_DATA_DIR="$ROOT/../shared/cartopy-data"
fi
export MPLBACKEND=Agg
export AIRFLOW__API__PORT="${AIRFLOW__API__PORT:-8080}"
# Loopback only: every user is an admin here, so nothing else on the network may reach it.
export AIRFLOW__API__HOST="${AIRFLOW__API__HOST:-127.0.0.1}"
exec_status=0
"$ROOT/.venv/bin/airflow" standalone || exec_status=$?
exit "$exec_status"
