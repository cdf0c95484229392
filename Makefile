# collectwatch — read top to bottom: set-up, demo, tests, the rest.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PERIOD ?= $(shell $(PYTHON) -c "import datetime as d; t=d.date.today().replace(day=1)-d.timedelta(days=1); print(t.strftime('%Y-%m'))")
SCALE ?= small
DATA_DIR ?= $(or $(COLLECTWATCH_DATA_DIR),data)
STATE_DIR ?= $(or $(COLLECTWATCH_STATE_DIR),.state)
DOCS_DIR = $(abspath $(STATE_DIR))/dbt-docs

# A regulator's pipeline does not phone home (DESIGN "Phoning home").
export DO_NOT_TRACK := 1
export DBT_SEND_ANONYMOUS_USAGE_STATS := False
export GX_ANALYTICS_ENABLED := false
export AIRFLOW__COSMOS__ENABLE_TELEMETRY := False
export SCARF_ANALYTICS := false

.PHONY: install demo test test-crash test-integration lint pytest browser bench-intake bench bench-history bench-readme docs serve airflow lock clean

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
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup --no-loadscope-reorder -m "not integration and not crash"

# The crash tests: `collectwatch run` SIGKILLed at every fault point (during dbt build, the
# gate, publish, between the renames), then recovered; about ten minutes: its own CI step.
test-crash: install
	$(BIN)/python -m pytest -q -m crash tests/e2e/test_faults.py

# The production topology as real processes: PostgreSQL and Redis (installed from Debian packages
# when missing, as root), an api-server, a scheduler, a dag-processor and two Celery workers run
# both DAGs; the publication must equal the embedded run's. Several minutes: its own CI step.
test-integration: install
	$(BIN)/python -m pytest -q -rs -m integration tests/integration

# dbt docs (every model and column described, lineage) into the state folder. dbt opens
# a copy of the published warehouse, never the file analysts read; without a raw zone
# (no `make demo` yet) the docs are built from the parsed project without compiled SQL.
docs: install
	mkdir -p $(DOCS_DIR)
	if [ -f $(DATA_DIR)/warehouse/collectwatch.duckdb ]; then \
	  cp $(DATA_DIR)/warehouse/collectwatch.duckdb $(DOCS_DIR)/warehouse.duckdb; fi
	COLLECTWATCH_WAREHOUSE_PATH=$(DOCS_DIR)/warehouse.duckdb \
	COLLECTWATCH_RAW_DIR=$(abspath $(DATA_DIR))/raw \
	$(BIN)/dbt docs generate --project-dir dbt_project --profiles-dir dbt_project \
	  --target-path $(DOCS_DIR)/target --log-path $(DOCS_DIR)/logs \
	  --vars '{"periods": ["$(PERIOD)"]}' $(if $(wildcard $(DATA_DIR)/raw/_current.parquet),,--no-compile)
	@echo "dbt docs: $(DOCS_DIR)/target/index.html"
	@echo "serve:    $(BIN)/dbt docs serve --project-dir dbt_project --profiles-dir dbt_project --target-path $(DOCS_DIR)/target"

# Intake of a 10M-row contact log vs a plain DuckDB CSV -> Parquet conversion (bench/README.md);
# BENCH_ROWS=1000000 for a quick iteration (the README's figures come from the 10M run).
bench-intake: install
	$(BIN)/python bench/intake.py $(if $(BENCH_ROWS),--rows $(BENCH_ROWS))

# A generated month through every stage against plain-DuckDB floors, then a resubmission
# (bench/README.md). National unless SCALE is given here: `make bench SCALE=small` (~2 min).
BENCH_SCALE = $(if $(filter command line,$(origin SCALE)),$(SCALE),national)
FORMAT ?= csv
bench: install
	$(BIN)/python bench/nightly.py --scale $(BENCH_SCALE) --format $(FORMAT)
	$(BIN)/python bench/report.py

# A night's read of one month as the raw zone keeps 1..24 months, in the staging views' old
# and current forms (bench/README.md; ~8 min, mostly writing 57,600 small files).
bench-history: install
	$(BIN)/python bench/history.py

# Rewrite the benchmark tables in README.md and bench/README.md from bench/results*.json.
bench-readme: install
	$(BIN)/python bench/report.py

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
