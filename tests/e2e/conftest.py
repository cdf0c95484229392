"""One pipeline run shared by every end-to-end module: two generated months (a base
month and the month after it, so month-on-month figures and the planted outsourcing jump
exist), taken in and published by the real DAGs once per session (under `make pytest`,
once on each worker: the end-to-end tests are spread over both, tests/conftest.py).
Modules that change the published state (new inputs, new versions) sort after
test_pipeline.py and put those tests last; a worker takes its tests in collection order."""

from __future__ import annotations

import json
import os
import shutil

import duckdb
import pandas as pd
import pytest

from collectwatch.config import Settings
from collectwatch.generate import generate_month
from collectwatch.orchestration import run_embedded

BASE_PERIOD = "2026-09"
PERIOD = "2026-10"
# Before 2026-10's due date (15 November, 23:59:59 +08:00): preliminary; 2026-09 is final.
AS_OF = "2026-11-10T09:00:00+08:00"


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    settings = Settings.from_env().with_data_dir(root / "data")
    os.environ["COLLECTWATCH_DATA_DIR"] = str(settings.data_dir)
    return settings


@pytest.fixture(scope="session")
def months(settings, tmp_path_factory):
    """The generated months by period, kept aside (intake consumes the landing copies)."""
    generated = {}
    for period in (BASE_PERIOD, PERIOD):
        month = generate_month(settings, period, tmp_path_factory.mktemp(period), seed=5)
        shutil.copytree(
            month.out_dir,
            settings.landing_dir,
            ignore=shutil.ignore_patterns("*.json"),
            dirs_exist_ok=True,
        )
        generated[period] = month
    return generated


@pytest.fixture(scope="session")
def submitted(months):
    return months[PERIOD]


@pytest.fixture(scope="session")
def first_run(settings, months):
    return run_embedded(settings, [BASE_PERIOD, PERIOD], as_of=AS_OF)


def published(settings: Settings, table: str, period: str = PERIOD) -> pd.DataFrame:
    pointer = json.loads((settings.publish_dir / period / "latest.json").read_text())
    folder = settings.publish_dir / period / pointer["path"] / "internal"
    return pd.read_parquet(folder / f"{table}.parquet")


def hash_tables(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict]:
    """The build side (the hash table: the right child) of each hash join in ``sql``'s
    physical plan, as a plan node with its children."""
    [(_, plan)] = con.execute(f"explain (format json) {sql}").fetchall()
    tables, nodes = [], json.loads(plan)
    while nodes:
        node = nodes.pop()
        if node["name"] == "HASH_JOIN":
            tables.append(node["children"][1])
        nodes.extend(node.get("children", []))
    return tables


def hash_table_sides(con: duckdb.DuckDBPyConnection, sql: str) -> list[str]:
    """The operator on the build side of each hash join in ``sql``'s physical plan."""
    return [table["name"] for table in hash_tables(con, sql)]


def operators(node: dict) -> set[str]:
    """Every operator of a plan node's subtree."""
    return {node["name"]}.union(*(operators(child) for child in node.get("children", [])))
