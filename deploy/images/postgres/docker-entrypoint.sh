#!/bin/sh
# First start on an empty PGDATA: initdb with POSTGRES_USER/POSTGRES_PASSWORD, create
# POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sql and *.sh, as the official image does.
# TCP logins need the password (scram-sha-256); the local socket trusts (healthchecks).
set -eu
if [ "${1:-}" = "postgres" ]; then
  shift
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "${POSTGRES_PASSWORD:-}" ]; then
      echo "postgres: POSTGRES_PASSWORD is not set; refusing to create a database without one" >&2
      exit 1
    fi
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
    initdb -D "$PGDATA" -U "$user" --pwfile="$pwfile" -E UTF8 --locale=C.UTF-8 --auth-local=trust \
      --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
    # a socket-only server for the set-up (no TCP port taken, nothing reachable yet)
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start >/dev/null
    export PGUSER="$user"
    if [ "$db" != "postgres" ]; then  # initdb creates only "postgres" (and the templates)
      psql -v ON_ERROR_STOP=1 -d postgres -q -c "CREATE DATABASE \"$db\""
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sql) echo "postgres: running $f"; psql -v ON_ERROR_STOP=1 -d "$db" -q -f "$f" ;;
        *.sh) echo "postgres: running $f"; . "$f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -w -m fast stop >/dev/null
    echo "postgres: database initialised"
  fi
  exec postgres "$@"
fi
exec "$@"
