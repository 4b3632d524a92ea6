#!/usr/bin/env bash
# One-shot initialisation: refuse placeholder secrets, create the database roles (when
# FRAMECAST_DB_ADMIN_URL is set: one role + database each for metadata, Celery results and
# metrics, see deploy/db_roles.py), migrate the metadata DB, create the pools (deploy/pools.json) and,
# when the simple auth manager's passwords file is configured, write the admin login.
# Used by the docker-compose service airflow-init and by scripts/celery_local.py.
# Idempotent: run it again after every upgrade (`docker-compose run --rm airflow-init`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

python "$here/check_secrets.py"
if [ -n "${FRAMECAST_DB_ADMIN_URL:-}" ]; then
  python "$here/db_roles.py"
fi
airflow db migrate
airflow pools import "${FRAMECAST_POOLS_FILE:-$here/pools.json}"

passwords="${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}"
if [ -n "$passwords" ]; then
  if [ -z "${FRAMECAST_ADMIN_PASSWORD:-}" ]; then
    echo "init: FRAMECAST_ADMIN_PASSWORD is not set (see deploy/framecast.env.example)" >&2
    exit 1
  fi
  mkdir -p "$(dirname "$passwords")"
  tmp="$(mktemp "$(dirname "$passwords")/.passwords.XXXXXX")"
  python - "$tmp" <<'PY'
import json, os, sys
users = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin")
names = [u.split(":", 1)[0].strip() for u in users.split(",") if u.strip()]
with open(sys.argv[1], "w") as f:
    json.dump({name: os.environ["FRAMECAST_ADMIN_PASSWORD"] for name in names}, f)
PY
  chmod 600 "$tmp"
  mv "$tmp" "$passwords"
  echo "init: login written for ${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS:-admin:admin}"
fi
# Every model's upstream server: a warning now rather than a sensor waiting until its deadline.
python "$here/check_upstreams.py" --timeout "${FRAMECAST_UPSTREAM_CHECK_TIMEOUT:-10}"
echo "init: database migrated, pools imported"
