#!/usr/bin/env bash
# Entry point of every framecast container: refuse placeholder secrets, wait until the metadata
# database answers (so a component started together with PostgreSQL does not crash-loop), then
# run the command. A database that answers but refuses the login (wrong role password, missing
# role or database) will not get better by waiting: that stops at once saying what to fix.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# Placeholder, example or malformed secrets: stop here with a message naming the variable.
python "$here/check_secrets.py"

if [ "${FRAMECAST_WAIT_FOR_DB:-true}" = "true" ]; then
  tries=0
  until out="$(airflow db check 2>&1)"; do
    if grep -qiE 'password authentication failed|no password supplied|database "[^"]*" does not exist|role "[^"]*" does not exist' <<<"$out"; then
      reason="$(grep -oiE 'password authentication failed for user "[^"]*"|no password supplied|database "[^"]*" does not exist|role "[^"]*" does not exist' <<<"$out" | head -1)"
      echo "entrypoint: the metadata database refused the login: $reason." >&2
      echo "entrypoint: check FRAMECAST_AIRFLOW_DB_PASSWORD in .env; airflow-init sets the" \
           "role's password from it, so run \`docker-compose run --rm airflow-init\` after" \
           "changing it." >&2
      exit 78
    fi
    tries=$((tries + 1))
    if [ "$tries" -ge "${FRAMECAST_DB_WAIT_TRIES:-60}" ]; then
      echo "entrypoint: metadata database not reachable after $tries tries:" >&2
      tail -5 <<<"$out" >&2
      exit 1
    fi
    sleep 2
  done
fi

exec "$@"
