"""Quality edits hold a file for the submitter's verification, macro edits flag it; both are
found where planted, compared with the other current submission in the raw zone, and clean
files are not flagged."""

from __future__ import annotations

import json
import os
import shutil
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from collectwatch import pipeline
from collectwatch.config import Settings
from collectwatch.intake import lifecycle
from collectwatch.raw import write_current
from collectwatch.uscc import check_character
from conftest import ON_TIME, Landing, current_ids, read_rows

UNREGISTERED_AGENCY = "91440300MA5G8YYYY" + check_character("91440300MA5G8YYYY")


def _rules(result) -> dict[str, int]:
    return result.report.rule_counts


def _found(result, rule_id):
    return [(f["row"], f["field"]) for f in result.report.findings if f["rule_id"] == rule_id]


def _expected_reconciliation_gaps(month) -> set[tuple[str, str, str]]:
    """(lender, agency, region) where the agency's received balance and the lender's
    assigned balance differ by more than 5% — computed here in pandas from the CSVs."""

    def frame(prefix):
        return pd.concat(
            pd.read_csv(p, dtype=str) for p in month.files if p.name.startswith(prefix)
        )

    assigned = frame("agency_assignment__")
    assigned["amount"] = assigned["balance_assigned"].map(Decimal)
    assigned = assigned.groupby(["lender_uscc", "agency_uscc", "region_code"])["amount"].sum()
    received = frame("agency_caseload__").set_index(["lender_uscc", "agency_uscc", "region_code"])
    received = received["balance_received"].map(Decimal)
    both = pd.concat([assigned.rename("assigned"), received.rename("received")], axis=1)
    both = both.fillna(Decimal(0))
    gap = (both["assigned"] - both["received"]).abs()
    larger = both[["assigned", "received"]].max(axis=1)
    return set(both.index[gap > Decimal("0.05") * larger])


def test_clean_month_passes_and_only_planted_reconciliation_gaps_are_flagged(tmp_path, month):
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    shutil.copytree(month.out_dir, settings.landing_dir, ignore=shutil.ignore_patterns("*.json"))
    for path in settings.landing_dir.rglob("*.csv"):
        os.utime(path, (ON_TIME, ON_TIME))
    batches = pipeline.landing_batches(settings)
    assert all(p.split("/")[-1].startswith("institution_registry") for p in batches[0])
    outcomes = [pipeline.intake_batch(settings, batch) for batch in batches]

    submissions = [s for outcome in outcomes for s in outcome["submissions"]]
    assert len(submissions) == len(month.files)
    # The generator plants exactly one rejected file (negative counts in a caseload) for
    # the coverage figures; every other file is clean.
    coverage = json.loads(month.planted_path.read_text())["coverage"]["planted"]
    planted = coverage["rejected"]
    rejected = [s for s in submissions if s["status"] == lifecycle.REJECTED]
    assert [s["file"].split("__")[:2] for s in rejected] == [["agency_caseload", planted]]
    clean = [s for s in submissions if s["status"] != lifecycle.REJECTED]
    assert {s["status"] for s in clean} == {lifecycle.ACCEPTED}
    flagged = set()
    for submission in clean:
        report = json.loads(Path(submission["report"]).read_text())
        assert report["edit_classes"]["syntactic"] == 0
        assert report["edit_classes"]["validity"] == 0
        assert report["edit_classes"]["quality"] == 0, submission["file"]
        assert {r["rule_id"] for r in report["rules"]} <= {"M001"}, submission["file"]
        flagged |= {
            (f["key"]["lender_uscc"], f["key"]["agency_uscc"], f["key"]["region_code"])
            for f in report["findings"]
        }
    # Gaps against the rejected or missing caseload cannot be seen: neither became current.
    unseen = {coverage["rejected"], coverage["missing"]}
    expected = {gap for gap in _expected_reconciliation_gaps(month) if gap[1] not in unseen}
    assert expected  # the generator plants a few
    assert flagged == expected
    write_current(settings)  # as the night's refresh_current_versions, after every batch
    assert len(current_ids(settings)) == len(month.files) - 1


@pytest.mark.parametrize(
    "submission_type, field, value, rule",
    [
        ("lender_portfolio", "recovered_inhouse", None, "Q001"),
        ("agency_assignment", "commission_rate", "0.75", "Q002"),
    ],
)
def test_quality_edit_holds_the_file_until_verified(
    submission_type, field, value, rule, settings, landing
):
    clean = landing.intake(submission_type)
    assert clean.status == lifecycle.ACCEPTED and _rules(clean) == {}
    rows, _ = read_rows(landing.source(submission_type))
    index = next(i for i, r in enumerate(rows) if r["bucket"] == "M1")

    def plant(rows, fieldnames):
        rows[index][field] = value or str(Decimal(rows[index]["balance"]) + 1)
        return rows, fieldnames

    held = landing.intake(submission_type, plant)
    assert held.status == lifecycle.NEEDS_VERIFICATION
    assert _rules(held) == {rule: 1}
    assert _found(held, rule) == [(index + 2, field)]
    assert current_ids(landing.settings) >= {clean.submission_id}
    assert held.submission_id not in current_ids(landing.settings)


def _scale_overdue(region: str, factor: int):
    def edit(rows, fieldnames):
        for row in rows:
            if row["region_code"] == region and row["bucket"] != "M0":
                for column in ("balance",):
                    row[column] = str(Decimal(row[column]) * factor)
        return rows, fieldnames

    return edit


def test_overdue_share_jump_against_the_last_accepted_month(settings, landing, previous_month):
    before_its_due_date = ON_TIME - 31 * 86400
    previous = Landing(settings, previous_month).intake(
        "lender_portfolio", received=before_its_due_date
    )
    assert previous.status == lifecycle.ACCEPTED and _rules(previous) == {}
    clean = landing.intake("lender_portfolio")
    assert _rules(clean) == {}  # same shares as last month: not flagged
    rows, _ = read_rows(landing.source("lender_portfolio"))
    region = rows[0]["region_code"]
    jumped = landing.intake("lender_portfolio", _scale_overdue(region, 10))
    assert jumped.status == lifecycle.NEEDS_VERIFICATION
    assert _rules(jumped) == {"Q003": 1}
    first_row = 2 + next(i for i, r in enumerate(rows) if r["region_code"] == region)
    assert _found(jumped, "Q003") == [(first_row, "balance")]
    assert "2026-09" in jumped.report.findings[0]["value"]


def _bump(index: int, field: str, factor: str):
    def edit(rows, fieldnames):
        rows[index][field] = str(
            (Decimal(rows[index][field]) * Decimal(factor)).quantize(Decimal("0.01"))
        )
        return rows, fieldnames

    return edit


def test_outsourced_balance_against_the_current_assignments(settings, landing):
    assert _rules(landing.intake("agency_assignment")) == {}
    rows, _ = read_rows(landing.source("lender_portfolio"))
    index = next(i for i, r in enumerate(rows) if Decimal(r["balance_outsourced"]) > 1000)
    assert _rules(landing.intake("lender_portfolio")) == {}  # the clean pair agrees
    held = landing.intake("lender_portfolio", _bump(index, "balance_outsourced", "0.97"))
    assert held.status == lifecycle.NEEDS_VERIFICATION
    assert _rules(held) == {"Q004": 1}
    assert _found(held, "Q004") == [(index + 2, "balance_outsourced")]


def test_assignments_against_the_current_outsourced_balance(settings, landing):
    assert _rules(landing.intake("lender_portfolio")) == {}
    rows, _ = read_rows(landing.source("agency_assignment"))
    index = next(i for i, r in enumerate(rows) if Decimal(r["balance_assigned"]) > 1000)
    held = landing.intake("agency_assignment", _bump(index, "balance_assigned", "1.5"))
    assert _rules(held) == {"Q004": 1}
    group = (rows[index]["region_code"], rows[index]["bucket"])
    first = next(i for i, r in enumerate(rows) if (r["region_code"], r["bucket"]) == group)
    assert _found(held, "Q004") == [(first + 2, "balance_assigned")]


def test_unregistered_agency_in_assignments(settings, landing):
    rows, _ = read_rows(landing.source("agency_assignment"))
    agency = rows[0]["agency_uscc"]

    def replace_agency(rows, fieldnames):
        for row in rows:
            if row["agency_uscc"] == agency:
                row["agency_uscc"] = UNREGISTERED_AGENCY
        return rows, fieldnames

    held = landing.intake("agency_assignment", replace_agency)
    assert held.status == lifecycle.NEEDS_VERIFICATION
    assert _rules(held) == {"Q005": 1}
    finding = held.report.findings[0]
    assert (finding["row"], finding["field"]) == (2, "agency_uscc")
    assert finding["value"].startswith(UNREGISTERED_AGENCY) and "not registered" in finding["value"]


def test_reconciliation_gap_is_flagged_but_accepted(settings, landing):
    caseload_rows, _ = read_rows(landing.source("agency_caseload"))
    lender = caseload_rows[0]["lender_uscc"]
    assignment = landing.intake("agency_assignment", submitter=lender)
    assert assignment.status == lifecycle.ACCEPTED

    def plant(rows, fieldnames):
        amount = Decimal(rows[0]["balance_received"]) * Decimal("1.2")
        rows[0]["balance_received"] = str(amount.quantize(Decimal("0.01")))
        return rows, fieldnames

    flagged = landing.intake("agency_caseload", plant)
    assert flagged.status == lifecycle.ACCEPTED
    assert _found(flagged, "M001")[:1] == [(2, "balance_received")]
    assert flagged.submission_id in current_ids(settings)
    report = json.loads(flagged.report_path.read_text())
    assert report["edit_classes"]["macro"] == _rules(flagged)["M001"]
