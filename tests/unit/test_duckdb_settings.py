"""Every pipeline connection gets the configured memory limit, threads and a spill folder
on the data volume: a query bigger than the limit spills there instead of failing; dbt
keeps building after a model spilled."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import duckdb

from collectwatch.config import DUCKDB_CONFIG, NO_TELEMETRY_ENV, Settings, connect_duckdb
from collectwatch.warehouse import dbt_environment

DBT_PROJECT = Path(__file__).resolve().parents[2] / "dbt_project"


def test_a_query_over_the_memory_limit_spills_to_the_data_volume(tmp_path):
    settings = replace(
        Settings.from_env().with_data_dir(tmp_path / "data"),
        duckdb_memory_limit="64MB",
        duckdb_threads=1,
    )
    con = settings.duckdb()
    try:
        limit, threads, spill = con.execute(
            "select current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('temp_directory')"
        ).fetchone()
        # ~200 MB of strings: more than the limit, so the table must live partly on disk
        con.execute("create table t as select i, md5(i::varchar) as s from range(3000000) t(i)")
        count, spilled = con.execute(
            "select (select count(distinct s) from t), "
            "(select count(*) from duckdb_temporary_files())"
        ).fetchone()
    finally:
        con.close()
    assert (limit, threads, spill) == ("61.0 MiB", 1, str(settings.duckdb_temp_dir))
    assert count == 3_000_000
    assert spilled > 0
    assert settings.duckdb_temp_dir.parent == settings.data_dir


def test_pipeline_batches_take_the_intake_threads_and_a_lone_session_all(tmp_path, monkeypatch):
    """Intake batches run side by side, so each gets its own (smaller) thread count; a
    session alone (the CLI's ``intake`` and ``check``) and every other connection keep
    ``duckdb_threads``."""
    from collectwatch import pipeline
    from collectwatch.intake.process import IntakeSession

    settings = replace(
        Settings.from_env().with_data_dir(tmp_path / "data"),
        duckdb_threads=3,
        intake_duckdb_threads=1,
    )
    seen = []

    class Recorded(IntakeSession):
        def intake_many(self, paths):
            [(threads,)] = self.con.execute("select current_setting('threads')").fetchall()
            seen.append(threads)
            return []

    monkeypatch.setattr(pipeline, "IntakeSession", Recorded)
    pipeline.intake_batch(settings, [])
    with IntakeSession(settings, record=False) as session:
        [(alone,)] = session.con.execute("select current_setting('threads')").fetchall()
    assert (seen, alone) == ([1], 3)


def test_dbt_keeps_building_after_a_model_spilled(tmp_path):
    """The project's own profile on a two-model project: the first model spills past a
    64 MB limit, and the second (and its test) still run on the same DuckDB instance.
    With temp_directory among the profile's settings, the second failed ("Cannot switch
    temporary directory after the current one has been used", dbt-duckdb #600)."""
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: spill\nversion: '1.0.0'\nconfig-version: 2\nprofile: collectwatch\n"
        "flags:\n  send_anonymous_usage_stats: false\n"
    )
    (project / "models" / "big.sql").write_text(
        "{{ config(materialized='table') }}\n"
        "select i, md5(i::varchar) as s from range(3000000) t(i) order by s"
    )
    (project / "models" / "after.sql").write_text(
        "{{ config(materialized='table') }}\nselect count(distinct s) as n from {{ ref('big') }}"
    )
    (project / "models" / "io.sql").write_text(
        "{{ config(materialized='table') }}\n"
        "select current_setting('async_threads') as async_threads"
    )
    (project / "models" / "after.yml").write_text(
        "models:\n  - name: after\n    columns:\n      - name: n\n        data_tests: [not_null]\n"
    )
    environment = {
        **os.environ,
        **NO_TELEMETRY_ENV,
        "COLLECTWATCH_WAREHOUSE_PATH": str(tmp_path / "candidate.duckdb"),
        "COLLECTWATCH_DUCKDB_MEMORY_LIMIT": "64MB",
        "COLLECTWATCH_DUCKDB_THREADS": "1",
    }
    dbt = Path(sys.executable).with_name("dbt")
    completed = subprocess.run(
        [str(dbt), "build", "--project-dir", str(project), "--profiles-dir", str(DBT_PROJECT),
         "--target-path", str(tmp_path / "target"), "--log-path", str(tmp_path / "logs")],
        env=environment, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:]
    con = duckdb.connect(str(tmp_path / "candidate.duckdb"), read_only=True)
    assert con.execute("select n from after").fetchone() == (3_000_000,)
    assert con.execute("select async_threads from io").fetchone() == (0,)  # DUCKDB_CONFIG
    assert "PASS=4" in completed.stdout


def test_dbt_gets_its_own_memory_limit_and_the_pipeline_keeps_its_own(tmp_path):
    """The build runs alone, the intake batches side by side: dbt's profile reads
    COLLECTWATCH_DBT_MEMORY_LIMIT (passed as the variable the profile reads, as the test
    above shows it is applied), the pipeline's connections COLLECTWATCH_DUCKDB_MEMORY_LIMIT."""
    settings = replace(
        Settings.from_env().with_data_dir(tmp_path / "data"),
        duckdb_memory_limit="100MB",
        dbt_memory_limit="200MB",
    )
    environment = dbt_environment(settings, tmp_path / "candidate.duckdb")
    assert environment["COLLECTWATCH_DUCKDB_MEMORY_LIMIT"] == "200MB"
    con = settings.duckdb()
    try:
        (limit,) = con.execute("select current_setting('memory_limit')").fetchone()
    finally:
        con.close()
    reference = duckdb.connect(config={"memory_limit": "100MB"})
    assert limit == reference.execute("select current_setting('memory_limit')").fetchone()[0]
    reference.close()


PROJECT_ROOT = Path(__file__).resolve().parents[2]
# Failing writes to Parquet, each on a connection opened as the product opens them. With
# DuckDB's asynchronous I/O pool, one in a few hundred hung forever (collectwatch.config).
FAILING_WRITES = """
import sys
from collectwatch.config import Settings, connect_duckdb
from collectwatch.raw import write_parquet
from pathlib import Path
import duckdb
settings = Settings.from_env().with_data_dir(Path(sys.argv[1]))
failing = "select case when i < 200000 then i::varchar else 'x' end::int from range(300000) t(i)"
for con in (settings.duckdb(), connect_duckdb()):
    for _ in range(200):
        try:
            write_parquet(con, failing, Path(sys.argv[1]) / "out.parquet")
        except duckdb.ConversionException:
            pass
print("done")
"""


def test_failed_writes_to_parquet_do_not_hang_the_connection(tmp_path):
    completed = subprocess.run(
        [sys.executable, "-c", FAILING_WRITES, str(tmp_path)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert completed.stdout.strip() == "done", completed.stderr[-2000:]


def test_every_duckdb_connection_of_the_product_goes_through_its_settings(tmp_path):
    """Settings.duckdb and connect_duckdb apply DUCKDB_CONFIG, and no other code of the
    product opens DuckDB by itself (dbt's connections: the profile, tested above)."""
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    for con in (settings.duckdb(), connect_duckdb()):
        (async_threads,) = con.execute("select current_setting('async_threads')").fetchone()
        con.close()
        assert async_threads == DUCKDB_CONFIG["async_threads"] == 0
    openers = [
        str(path.relative_to(PROJECT_ROOT))
        for folder in ("include", "dags")
        for path in (PROJECT_ROOT / folder).rglob("*.py")
        for line in path.read_text().splitlines()
        if "duckdb.connect(" in line
    ]
    assert openers == ["include/collectwatch/config.py"]  # in connect_duckdb
