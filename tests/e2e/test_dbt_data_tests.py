"""End to end: the project's own generic data tests fail on the defect they exist for, run
by real dbt against a copy of the warehouse the shared pipeline run published."""

from __future__ import annotations

import json
import shutil
import subprocess

import duckdb
import pytest

from collectwatch.warehouse import BUILDING, RUN_VALUES_ENV, dbt_command, dbt_environment

from .conftest import AS_OF, BASE_PERIOD, PERIOD

pytestmark = pytest.mark.e2e


def _dbt_test(settings, warehouse, target, selector: str) -> subprocess.CompletedProcess:
    run_values = {"periods": [BASE_PERIOD, PERIOD], "as_of": AS_OF, "changed_submitters": None}
    command = [*dbt_command(settings, "test", target), "--select", selector]
    return subprocess.run(
        command,
        env={**dbt_environment(settings, warehouse), RUN_VALUES_ENV: json.dumps(run_values)},
        capture_output=True,
        text=True,
        check=False,
    )


def _passes_then_fails(settings, tmp_path, selector: str, defects: list[str], failing: str):
    """The selected tests pass on a copy of the published warehouse, and fail on a copy
    with each defect planted, naming the failing test."""
    warehouse = tmp_path / BUILDING  # the name dbt's profile builds under
    shutil.copy(settings.warehouse_path, warehouse)
    passed = _dbt_test(settings, warehouse, tmp_path, selector)
    assert passed.returncode == 0, passed.stdout[-3000:]
    assert "ERROR=0" in passed.stdout and "PASS=0" not in passed.stdout

    for defect in defects:
        copy = tmp_path / "defect" / BUILDING
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(warehouse, copy)
        with duckdb.connect(str(copy)) as con:
            con.execute(defect)
        failed = _dbt_test(settings, copy, tmp_path, selector)
        assert failed.returncode != 0, defect
        assert f"FAIL 1 {failing}" in failed.stdout, failed.stdout[-3000:]


def test_a_lost_or_doubled_event_fails_the_flagged_events_row_count(first_run, settings, tmp_path):
    """int_contact_events_flagged must hold one row per event of stg_contact_events (test
    as_many_rows_as, which stands for its key test): it passes on the published warehouse
    and fails once an event is deleted from the flagged table, or one is doubled."""
    _passes_then_fails(
        settings,
        tmp_path,
        "int_contact_events_flagged,test_name:as_many_rows_as",
        [
            "delete from int_contact_events_flagged where rowid = (select min(rowid) from "
            f"int_contact_events_flagged where period = '{PERIOD}')",
            "insert into int_contact_events_flagged select * from int_contact_events_flagged "
            f"where period = '{BASE_PERIOD}' limit 1",
        ],
        "as_many_rows_as_int_contact_events_flagged",
    )


def test_a_repeated_key_fails_unique_combination(first_run, settings, tmp_path):
    """unique_combination groups by a hash of the key first: a row repeated in the conduct
    counts is still reported."""
    _passes_then_fails(
        settings,
        tmp_path,
        "int_conduct_by_agency_lender_prefecture,test_name:unique_combination",
        [
            "insert into int_conduct_by_agency_lender_prefecture select * from "
            f"int_conduct_by_agency_lender_prefecture where period = '{PERIOD}' limit 1"
        ],
        "unique_combination_int_conduct_by_agency_lender_prefecture",
    )
