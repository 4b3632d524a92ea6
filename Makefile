# framecast: every target installs what it needs into .venv first (idempotent).
SHELL := /bin/bash
PY := .venv/bin/python
PIP := .venv/bin/pip
# Natural Earth shapefiles: a preseeded folder beside the checkout when there is one, else
# var/cartopy-data filled once by `make geodata` (the only step that downloads geography).
SHARED_NE := $(abspath ../shared/cartopy-data)
export CARTOPY_DATA_DIR ?= $(if $(wildcard $(SHARED_NE)),$(SHARED_NE),$(abspath var/cartopy-data))

.PHONY: setup geodata demo test update-reference mutation lint bench bench-choropleth bench-icon bench-products bench-points bench-cycle-overhead bench-cycle ui sample-data celery-local compose-check compose-test clean

.venv/.installed: requirements.txt pyproject.toml scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -e .
	touch $@

setup: .venv/.installed geodata

geodata: .venv/.installed
	$(PY) deploy/preseed_natural_earth.py --check --data-dir "$(CARTOPY_DATA_DIR)" >/dev/null 2>&1 \
	  || $(PY) deploy/preseed_natural_earth.py --data-dir "$(CARTOPY_DATA_DIR)"

## The main job on the embedded default (SQLite metadata DB, local upstream, local publish folder).
demo: setup
	$(PY) scripts/demo.py

## The test suite (CI runs exactly this). PostgreSQL/Redis: FRAMECAST_TEST_PG_URL /
## FRAMECAST_TEST_REDIS_URL, else the machine's, else throwaway servers under var/ (docs/testing.md).
test: setup
	$(PY) -m ruff check include dags plugins tests bench scripts deploy
	bash scripts/run-tests.sh

## Rewrite tests/core/reference/*.png from the current renderer (look at them before committing).
update-reference: setup
	$(PY) tests/core/update_reference.py

## Mutation score of the modules whose bugs publish wrong charts (slow; docs/testing.md).
mutation: setup
	$(PY) scripts/mutation.py --jobs 2

lint: setup
	$(PY) -m ruff check include dags plugins tests bench scripts deploy

## The Airflow UI on the demo's embedded home (http://localhost:8080).
ui: setup
	bash scripts/airflow-ui.sh

sample-data: setup
	.venv/bin/framecast sample-data --model icon-eu --run 2026112300 --steps 0-12 --out var/data/icon-eu

## Production topology on this machine without Docker (CeleryExecutor, local PostgreSQL + Redis)
celery-local: setup
	$(PY) scripts/celery_local.py

## Validate the docker-compose deployment (no Docker engine needed)
compose-check: setup
	docker-compose --env-file deploy/framecast.env.example config -q

## Build the image and run the compose stack for real (Docker engine started if needed)
compose-test: setup
	$(PY) -m pytest -q -p no:cacheprovider -s tests/deploy/test_compose_stack.py

bench: setup
	$(PY) bench/bench_render.py

bench-choropleth: setup
	$(PY) bench/bench_choropleth.py

## ICON global at R3B7 size: set-up, ms/frame and peak RSS, linear vs nearest-cell sampling
bench-icon: setup
	$(PY) bench/bench_icon.py

bench-products: setup
	$(PY) bench/bench_products.py

## Meteograms + time-height sections, 100 places x full ICON-EU run (data generated once)
bench-points: setup
	$(PY) bench/bench_points.py

## Render throughput through the real scheduler + LocalExecutor vs `framecast render`, same frames
bench-cycle-overhead: setup
	$(PY) bench/bench_cycle_overhead.py

## Streaming cycle vs waiting for the whole run (release-schedule upstream, embedded default);
## options after ARGS=, e.g. make bench-cycle ARGS="--products t2m_mslp --last-step 11"
bench-cycle: setup
	$(PY) bench/bench_cycle.py $(ARGS)

clean:
	rm -rf var out
