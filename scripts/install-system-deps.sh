#!/usr/bin/env bash
# Debian packages the project needs beyond PyPI: headless Chromium + chromedriver (viewer and
# UI tests), docker-compose, the Docker engine and debootstrap (the compose deployment, built and
# run by tests/deploy/test_compose_stack.py on Debian-based images), PostgreSQL server binaries
# and redis-server (throwaway servers for `make test` when the machine runs none).
# Idempotent: installs only what is missing. Fails (exit 1) when something is missing and
# cannot be installed: a machine without them would otherwise run the suite without those tests.
set -euo pipefail
need=()
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need+=(chromium-driver)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 \
  || need+=(postgresql)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "${EUID}" -ne 0 ]; then
  echo "install-system-deps: missing ${need[*]}; run as root or install them with apt-get" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
