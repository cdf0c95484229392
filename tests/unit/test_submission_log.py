"""The submission log dbt reads for coverage: every decision rewrites it, rejected and
superseded versions included, with only the lifecycle columns (no names, hashes, paths)."""

from __future__ import annotations

import csv
import io
import shutil

import duckdb
import pytest

from collectwatch.config import Settings
from collectwatch.generate import generate_month
from collectwatch.intake import lifecycle
from collectwatch.intake.process import intake_file, verify
from collectwatch.raw import SUBMISSION_LOG_COLUMNS

PERIOD = "2026-10"


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_month(Settings.from_env(), PERIOD, tmp_path_factory.mktemp("gen"), seed=3)


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env().with_data_dir(tmp_path / "data")


def _land(settings, generated, submission_type, first_row_edit=None):
    source = next(p for p in generated.files if p.name.startswith(submission_type + "__"))
    target = settings.landing_dir / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)
    if first_row_edit is not None:
        rows = list(csv.DictReader(io.StringIO(source.read_text())))
        first_row_edit(rows[0])
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        target.write_text(out.getvalue())
    return target


def _log(settings) -> list[tuple]:
    return (
        duckdb.connect()
        .execute(
            f"select submission_id, submission_type, sequence, status, "
            f"received_at is not null, decided_at is not null "
            f"from '{settings.submission_log}' order by submission_id"
        )
        .fetchall()
    )


def test_a_rejection_alone_rewrites_the_log(settings, generated):
    def negative(row):
        row["balance"] = "-5.00"

    rejected = intake_file(_land(settings, generated, "lender_portfolio", negative), settings)
    assert rejected.status == lifecycle.REJECTED
    assert _log(settings) == [
        (rejected.submission_id, "lender_portfolio", 1, "rejected", True, True)
    ]


def test_every_version_and_status_is_logged_without_file_details(settings, generated):
    first = intake_file(_land(settings, generated, "agency_assignment"), settings)

    def high_commission(row):
        row["commission_rate"] = "0.75"

    held = intake_file(_land(settings, generated, "agency_assignment", high_commission), settings)
    assert held.status == lifecycle.NEEDS_VERIFICATION
    assert [row[3] for row in _log(settings)] == ["accepted", "needs_verification"]
    verify(held.submission_id, settings)
    assert _log(settings) == [
        (first.submission_id, "agency_assignment", 1, "superseded", True, True),
        (held.submission_id, "agency_assignment", 2, "accepted", True, True),
    ]
    schema = duckdb.connect().execute(f"describe select * from '{settings.submission_log}'")
    columns = {name: kind for name, kind, *_ in schema.fetchall()}
    assert list(columns) == [name for name, _ in SUBMISSION_LOG_COLUMNS]
    assert columns["received_at"] == "TIMESTAMP WITH TIME ZONE"
