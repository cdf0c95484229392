"""The generator's coverage and disclosure plants, checked from the files it writes: a
province served by one lender, a suspended lender and a revoked agency, a missing, a
rejected and a late submission (receipt time = file mtime)."""

from __future__ import annotations

import json
from datetime import datetime

import duckdb
import pytest

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.contracts import file_name
from collectwatch.generate import generate_month
from collectwatch.intake import lifecycle
from collectwatch.intake.process import check_file

PERIOD = "2026-10"
DUE = datetime(2026, 11, 15, 23, 59, 59, tzinfo=CHINA_TZ)


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    return generate_month(Settings.from_env(), PERIOD, tmp_path_factory.mktemp("gen"), seed=7)


@pytest.fixture(scope="module")
def planted(month):
    return json.loads(month.planted_path.read_text())


def _path(month, submission_type, uscc):
    return month.out_dir / uscc / file_name(submission_type, uscc, PERIOD)


def test_the_small_province_has_one_lender(month, planted):
    small = planted["small_cell"]
    seed = Settings.from_env().region_seed
    lenders = (
        duckdb.connect()
        .execute(
            f"""
            select r.province_code, list(distinct p.lender_uscc)
            from read_csv('{month.out_dir}/*/lender_portfolio__*.csv', all_varchar = true) as p
            join read_csv('{seed}', all_varchar = true) as r using (region_code)
            group by all
            """
        )
        .fetchall()
    )
    by_province = dict(lenders)
    assert by_province[small["province_code"]] == [small["lender_uscc"]]


def test_registry_marks_one_lender_suspended_and_one_agency_revoked(month, planted):
    registry = next(p for p in month.files if p.name.startswith("institution_registry__"))
    rows = (
        duckdb.connect()
        .execute(
            f"select uscc, role, status, valid_to from read_csv('{registry}', all_varchar = true) "
            "where status <> 'active' order by role"
        )
        .fetchall()
    )
    assert [(uscc, role, status) for uscc, role, status, _ in rows] == [
        (s["uscc"], s["role"], s["status"]) for s in planted["registry_statuses"]
    ]
    assert [status for _, _, status, _ in rows] == ["revoked", "suspended"]
    assert rows[0][3] == "2026-10-15"  # revoked mid-month


def test_missing_rejected_and_late_submissions(month, planted):
    coverage = planted["coverage"]
    missing, rejected, late = (coverage["planted"][k] for k in ("missing", "rejected", "late"))
    assert not _path(month, "agency_caseload", missing).exists()
    assert _path(month, "contact_events", missing).exists()
    report = check_file(_path(month, "agency_caseload", rejected), Settings.from_env())
    assert report.status == lifecycle.REJECTED
    received = {
        path: datetime.fromtimestamp(path.stat().st_mtime, CHINA_TZ) for path in month.files
    }
    late_path = _path(month, "lender_portfolio", late)
    assert received[late_path] > DUE
    assert all(when <= DUE for path, when in received.items() if path != late_path)
    listed = {k: coverage[f"{k}_submissions"] for k in ("missing", "rejected", "late")}
    assert {"uscc": missing, "submission_type": "agency_caseload"} in listed["missing"]
    # an agency no lender assigned to files nothing at all: also missing, truthfully
    assert not any(
        _path(month, s["submission_type"], s["uscc"]).exists() for s in listed["missing"]
    )
    assert listed["rejected"] == [{"uscc": rejected, "submission_type": "agency_caseload"}]
    assert listed["late"] == [{"uscc": late, "submission_type": "lender_portfolio"}]
    outcomes = sum(coverage[k] for k in ("on_time", "late", "missing", "rejected"))
    assert outcomes == coverage["expected_submissions"]
    assert coverage["missing"] == len(listed["missing"])
