#!/usr/bin/env bash
# Entry point of every framecast container: refuse placeholder secrets, wait until the metadata database answers (so a
# component started together with PostgreSQL does not crash-loop), then run the command.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Placeholder, example or malformed secrets: stop here with a message naming the variable.
python "$here/check_secrets.py"

if [ "${FRAMECAST_WAIT_FOR_DB:-true}" = "true" ]; then
  tries=0
  until airflow db check >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge "${FRAMECAST_DB_WAIT_TRIES:-60}" ]; then
      echo "entrypoint: metadata database not reachable after $tries tries" >&2
      airflow db check
      exit 1
    fi
    sleep 2
  done
fi

exec "$@"
