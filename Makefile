# framecast: every target installs what it needs into .venv first (idempotent).
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip
export CARTOPY_DATA_DIR ?= $(abspath ../shared/cartopy-data)

.PHONY: setup demo test lint bench ui clean

.venv/.installed: requirements.txt pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $@

setup: .venv/.installed

## The main job on the embedded default (SQLite metadata DB, local upstream, local publish folder).
demo: setup
	$(PY) scripts/demo.py

## The test suite (CI runs exactly this).
test: setup
	$(PY) -m ruff check include dags plugins tests bench scripts
	$(PY) -m pytest -q -p no:cacheprovider tests

lint: setup
	$(PY) -m ruff check include dags plugins tests bench scripts

bench: setup
	$(PY) bench/bench_render.py

clean:
	rm -rf var out
