"""A regulator's pipeline must not call out: every entry point sets the opt-outs."""

from __future__ import annotations

import re
from pathlib import Path

from collectwatch.config import NO_TELEMETRY_ENV, PROJECT_ROOT, Settings
from collectwatch.orchestration import embedded_airflow_env
from collectwatch.warehouse import dbt_environment

OPT_OUTS_CHECKED = ("DO_NOT_TRACK", "DBT_SEND_ANONYMOUS_USAGE_STATS", "GX_ANALYTICS_ENABLED")


def test_makefile_exports_every_opt_out():
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    for name, value in NO_TELEMETRY_ENV.items():
        assert re.search(rf"^export {name} := {re.escape(value)}$", makefile, re.M), name


def test_pipeline_processes_get_the_opt_outs(tmp_path):
    settings = Settings.from_env().with_data_dir(tmp_path)
    for environment in (dbt_environment(settings, tmp_path / "c.duckdb"),
                        embedded_airflow_env(settings)):  # fmt: skip
        for name in OPT_OUTS_CHECKED:
            assert environment[name] == NO_TELEMETRY_ENV[name]


def test_dbt_project_disables_anonymous_usage_stats():
    project = (PROJECT_ROOT / "dbt_project" / "dbt_project.yml").read_text()
    assert re.search(r"send_anonymous_usage_stats:\s*false", project)


def test_tests_run_with_the_opt_outs():
    import os

    for name in OPT_OUTS_CHECKED:
        assert os.environ[name] == NO_TELEMETRY_ENV[name]
    assert Path(os.environ["AIRFLOW_HOME"]).name == "airflow"
