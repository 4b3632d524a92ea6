#!/usr/bin/env bash
# Debian-based stand-ins for the three public images the deployment uses, for machines that
# reach Debian's package archive but no image registry (Docker Hub):
#
#   framecast-local/debian:bookworm   debootstrap --variant=minbase, imported (the base)
#   framecast-local/python:3.11       for python:3.11-slim-bookworm  (BASE_IMAGE of Dockerfile)
#   framecast-local/postgres:15       for postgres:16   (POSTGRES_USER/_PASSWORD/_DB, PGDATA,
#                                     /docker-entrypoint-initdb.d, pg_isready, PGPORT)
#   framecast-local/redis:7           for redis:7.4     (redis-server, redis-cli, /data)
#
# Same interface as the public images, so docker-compose.yaml runs unchanged with
#   FRAMECAST_BASE_IMAGE=framecast-local/python:3.11 FRAMECAST_POSTGRES_IMAGE=framecast-local/postgres:15
#   FRAMECAST_REDIS_IMAGE=framecast-local/redis:7
#
#   deploy/local-images.sh             build the images that do not exist yet
#   deploy/local-images.sh --rebuild   build all of them again
#
# Needs root (debootstrap), a running Docker engine, `debootstrap`. Builds use host networking
# (no bridge network needed). The Debian mirror is the machine's own (apt sources), or
# $DEBIAN_MIRROR.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DOCKER="${DOCKER:-docker}"
PREFIX="${FRAMECAST_LOCAL_IMAGE_PREFIX:-framecast-local}"
SUITE=bookworm
rebuild=false
[ "${1:-}" = "--rebuild" ] && rebuild=true

mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local m
  # deb822 sources (URIs: ...) first, then one-line sources (deb URL suite ...)
  m="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null \
        | awk '/^URIs:/ {for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}')"
  if [ -z "$m" ]; then
    m="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
          | awk '$1 == "deb" {for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}')"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

exists() { "$DOCKER" image inspect "$1" >/dev/null 2>&1; }

build_base() {
  local tag="$PREFIX/debian:$SUITE" root
  if ! $rebuild && exists "$tag"; then echo "local-images: $tag exists"; return; fi
  command -v debootstrap >/dev/null || { echo "local-images: install debootstrap" >&2; exit 1; }
  root="$(mktemp -d /tmp/framecast-debootstrap.XXXXXX)"
  trap 'rm -rf "$root"' RETURN
  echo "local-images: debootstrap $SUITE from $(mirror)"
  debootstrap --variant=minbase "$SUITE" "$root" "$(mirror)" >"$root.log" 2>&1 \
    || { tail -20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
  rm -f "$root.log"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  tar -C "$root" -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$tag" >/dev/null
  echo "local-images: built $tag"
}

build() {  # build NAME TAG
  local tag="$PREFIX/$2"
  if ! $rebuild && exists "$tag"; then echo "local-images: $tag exists"; return; fi
  DOCKER_BUILDKIT=1 "$DOCKER" build --network host --quiet \
    --build-arg "BASE=$PREFIX/debian:$SUITE" -t "$tag" "$here/images/$1" >/dev/null
  echo "local-images: built $tag"
}

build_base
build python python:3.11
build postgres postgres:15
build redis redis:7
