#!/usr/bin/env bash
# `make test`: the servers the suite needs (the machine's, or throwaway ones started here and
# stopped afterwards), then pytest with every skip reported (-rs) and unknown markers rejected.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
exports="$($PY scripts/test_services.py up)"
eval "$exports"
trap '$PY scripts/test_services.py down' EXIT
$PY -m pytest -q -p no:cacheprovider -n 2 --dist loadfile "$@" tests
