# collectwatch — read top to bottom: set-up, demo, tests, the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PERIOD ?= $(shell $(PYTHON) -c "import datetime as d; t=d.date.today().replace(day=1)-d.timedelta(days=1); print(t.strftime('%Y-%m'))")
SCALE ?= small

# A regulator's pipeline does not phone home (DESIGN "Phoning home").
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := false
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export SCARF_ANALYTICS := false

.PHONY: install demo test test-integration lint pytest browser bench docs serve airflow lock clean

# The virtualenv with the locked dependencies (reinstalled when the lock changes).
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	touch $@

install: $(BIN)/.installed

# Generate a synthetic month into the landing folder, run the real DAGs once for it.
demo: install
	$(BIN)/collectwatch generate --period $(PERIOD) --scale $(SCALE) --seed 1 --out data/landing
	$(BIN)/collectwatch run --period $(PERIOD)
	@echo
	@echo "Warehouse (analysts, read-only): data/warehouse/collectwatch.duckdb"
	@echo "Publication:                     data/publish/$(PERIOD)/latest.json -> $$(cat data/publish/$(PERIOD)/latest.json | $(PYTHON) -c 'import json,sys; print(json.load(sys.stdin)["path"])')"
	@echo "Edit reports:                    data/reports/"

test: install lint pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	bash scripts/lint_sql.sh

pytest: install browser
	$(BIN)/python -m pytest -q -m "not integration"

# The production topology as real processes: PostgreSQL and Redis (installed from Debian packages
# when missing, as root), an api-server, a scheduler, a dag-processor and two Celery workers run
# both DAGs; the publication must equal the embedded run's. Several minutes: its own CI step.
test-integration: install
	$(BIN)/python -m pytest -q -rs -m integration tests/integration

# Headless Chromium (Debian package) and a CJK font for the portal's browser test;
# installed once, only where apt is available (the test says why it skips otherwise).
browser:
	@command -v chromium >/dev/null || ! command -v apt-get >/dev/null || \
	  { apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-wqy-zenhei; }
	@fc-list :lang=zh 2>/dev/null | grep -q . || ! command -v apt-get >/dev/null || \
	  apt-get install -y -qq --no-install-recommends fonts-wqy-zenhei

# The portal on 127.0.0.1:8000 (tokens: collectwatch token issue --scope national).
serve: install
	$(BIN)/collectwatch serve

# Airflow's own UI and scheduler on the same embedded metadata.
airflow: install
	$(BIN)/collectwatch airflow standalone

lock:
	{ echo "# Exact versions of every dependency, verified together on Python 3.11 ($$(date +%F))."; \
	  echo "# Regenerate with: make lock   (pip constraints format; the project itself is not listed)"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v '^collectwatch'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

clean:
	rm -rf data .state
