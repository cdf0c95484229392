"""Intake: planted violations are rejected with file, row, field, value and rule; clean
files are accepted untouched; the lifecycle supersedes, verifies and ignores repeats."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from datetime import datetime

import duckdb
import pytest

from collectwatch.config import Settings
from collectwatch.generate import generate_month
from collectwatch.intake import lifecycle
from collectwatch.intake.process import check_file, intake_file, verify
from collectwatch.raw import write_current

PERIOD = "2026-10"
# Received before the period's due date (15 November), so no late-submission flag.
ON_TIME = datetime.fromisoformat("2026-11-05T10:00:00+08:00").timestamp()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_month(Settings.from_env(), PERIOD, tmp_path_factory.mktemp("gen"), seed=3)


@pytest.fixture
def settings(tmp_path, generated):
    """A data root whose registry (the regulator's, generated with the month) is in effect."""
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    registry = intake_file(_land(settings, generated, "institution_registry"), settings)
    assert registry.status == lifecycle.ACCEPTED, registry.report.rule_counts
    return settings


def _land(settings, generated, submission_type, edit=None):
    """Copy one generated file into landing, optionally rewriting its rows."""
    source = next(p for p in generated.files if p.name.startswith(submission_type + "__"))
    target = settings.landing_dir / source.parent.name / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    if edit is None:
        shutil.copy(source, target)
        os.utime(target, (ON_TIME, ON_TIME))
        return target
    rows = list(csv.DictReader(io.StringIO(source.read_text())))
    fieldnames = list(rows[0])
    rows, fieldnames = edit(rows, fieldnames)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    target.write_text(out.getvalue())
    os.utime(target, (ON_TIME, ON_TIME))
    return target


def _findings(result, rule_id):
    return [f for f in result.report.findings if f["rule_id"] == rule_id]


def test_clean_files_are_accepted_into_the_raw_zone(settings, generated):
    for submission_type in (
        "lender_portfolio",
        "agency_assignment",
        "contact_events",
        "complaints",
    ):
        path = _land(settings, generated, submission_type)
        result = intake_file(path, settings)
        assert result.status == lifecycle.ACCEPTED, result.report.rule_counts
        assert result.report.rule_counts == {}
        assert not path.exists()
    current = (
        duckdb.connect()
        .execute(f"select submission_type, raw_path from '{settings.current_manifest}'")
        .fetchall()
    )
    assert len(current) == 5  # the registry and the four files
    for _, raw in current:
        assert (settings.raw_dir / raw).exists()
    assert len(list(settings.archive_dir.iterdir())) == 5


def _recorded_columns(settings) -> dict[str, str]:
    with duckdb.connect() as con:
        rows = con.execute(
            f"select submission_type, raw_columns from '{settings.current_manifest}'"
        ).fetchall()
    return dict(rows)


def test_the_manifest_records_each_raw_files_columns_reading_each_file_once(settings, generated):
    """Each current version's column signature (names and types in order) is in the
    manifest, as its raw file declares them; a later decision keeps the signatures already
    recorded without opening those files again (a raw file never changes): here one made
    unreadable after its intake."""
    intake_file(_land(settings, generated, "contact_events"), settings)
    recorded = _recorded_columns(settings)
    raw_file = settings.raw_dir / _current_raw_path(settings, "contact_events")
    with duckdb.connect() as con:
        declared = con.execute(
            f"describe select * from read_parquet('{raw_file}', hive_partitioning = false)"
        ).fetchall()
    assert recorded["contact_events"] == ", ".join(f"{name} {kind}" for name, kind, *_ in declared)
    assert recorded["contact_events"] != recorded["institution_registry"]

    raw_file.write_bytes(b"not parquet")
    accepted = intake_file(_land(settings, generated, "complaints"), settings)
    assert accepted.status == lifecycle.ACCEPTED, accepted.report.rule_counts
    again = _recorded_columns(settings)
    assert again["contact_events"] == recorded["contact_events"]
    assert again["complaints"].startswith("period VARCHAR, ")


def test_a_manifest_from_before_the_signatures_is_rewritten_with_them(settings, generated):
    """A raw zone whose manifest was written before the column signatures were recorded
    (an upgrade) gets them the next time the versions are listed (every build lists them
    first)."""
    intake_file(_land(settings, generated, "contact_events"), settings)
    manifest = settings.current_manifest
    with duckdb.connect() as con:
        con.execute(
            f"copy (select * exclude (raw_columns) from '{manifest}') to '{manifest}.old' "
            "(format parquet)"
        )
    (manifest.parent / f"{manifest.name}.old").replace(manifest)

    write_current(settings)
    recorded = _recorded_columns(settings)
    assert set(recorded) == {"institution_registry", "contact_events"}
    assert all(signature.startswith("period VARCHAR, ") for signature in recorded.values())


def _current_raw_path(settings, submission_type: str) -> str:
    with duckdb.connect() as con:
        [(raw_path,)] = con.execute(
            f"select raw_path from '{settings.current_manifest}' where submission_type = ?",
            [submission_type],
        ).fetchall()
    return raw_path


def _plant_portfolio_defects(rows, fieldnames):
    rows[0]["lender_uscc"] = rows[0]["lender_uscc"][:-1] + (
        "A" if rows[0]["lender_uscc"][-1] != "A" else "B"
    )  # V004 (and V013: no longer the submitter)
    rows[1]["balance"] = "-5.00"  # V006
    rows[2]["region_code"] = "999999"  # V005
    rows[3]["accounts"] = "12,x"  # V001
    rows[4]["bucket"] = "M99"  # V003
    rows[5]["balance_outsourced"] = str(float(rows[5]["balance"]) + 100)  # V011
    rows.append(dict(rows[6]))  # V010: duplicate key
    return rows, fieldnames


def test_planted_validity_defects_are_each_found(settings, generated):
    path = _land(settings, generated, "lender_portfolio", _plant_portfolio_defects)
    result = intake_file(path, settings)
    assert result.status == lifecycle.REJECTED
    expected = {
        "V004": (2, "lender_uscc"),
        "V006": (3, "balance"),
        "V005": (4, "region_code"),
        "V001": (5, "accounts"),
        "V003": (6, "bucket"),
        "V011": (7, "balance_outsourced"),
    }
    for rule_id, (row, field) in expected.items():
        found = _findings(result, rule_id)
        assert (row, field) in [(f["row"], f["field"]) for f in found], rule_id
        assert found[0]["key"]["period"] == PERIOD
    # a clean row is not flagged
    assert 10 not in {f["row"] for f in result.report.findings}
    duplicates = _findings(result, "V010")
    assert len(duplicates) == 2 and duplicates[0]["row"] == 8  # the original and its copy
    # nothing reached the raw zone, the file is quarantined with a report beside it
    assert not settings.current_manifest.exists() or "lender_portfolio" not in str(
        duckdb.connect().execute(f"select * from '{settings.current_manifest}'").fetchall()
    )
    assert len(list(settings.quarantine_dir.iterdir())) == 1
    report = json.loads(result.report_path.read_text())
    assert report["status"] == "rejected"
    assert {r["rule_id"] for r in report["rules"]} >= set(expected) | {"V010"}
    assert (result.report_path.with_suffix(".csv")).read_bytes().startswith(b"\xef\xbb\xbf")


def test_personal_data_is_rejected_masked_and_the_file_not_kept(settings, generated):
    def plant(rows, fieldnames):
        rows[0]["event_id"] = "13812345678"
        rows[1]["event_id"] = "id 11010519491231002X"
        return rows, fieldnames

    path = _land(settings, generated, "contact_events", plant)
    result = intake_file(path, settings)
    assert result.status == lifecycle.REJECTED
    found = _findings(result, "V015")
    assert [f["row"] for f in found] == [2, 3]
    assert all("12345678" not in f["value"] and "*" in f["value"] for f in found)
    assert "13812345678" not in result.report_path.read_text()
    assert not path.exists() and not any(settings.quarantine_dir.iterdir())


def test_header_and_name_defects(settings, generated):
    def drop_column(rows, fieldnames):
        for row in rows:
            del row["sold_balance"]
        return rows, [f for f in fieldnames if f != "sold_balance"]

    result = intake_file(_land(settings, generated, "lender_portfolio", drop_column), settings)
    assert [(f["rule_id"], f["field"]) for f in result.report.findings] == [
        ("S005", "sold_balance")
    ]
    stray = settings.landing_dir / "91440300MA5G8XXXXM" / "portfolio-october.csv"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("a,b\n1,2\n")
    result = intake_file(stray, settings)
    assert result.status == lifecycle.REJECTED
    assert [f["rule_id"] for f in result.report.findings] == ["S001"]


def test_lifecycle_supersede_repeat_and_verify(settings, generated):
    first = intake_file(_land(settings, generated, "agency_assignment"), settings)
    repeat = intake_file(_land(settings, generated, "agency_assignment"), settings)
    assert repeat.duplicate_of_previous and repeat.submission_id == first.submission_id

    def high_commission(rows, fieldnames):
        rows[0]["commission_rate"] = "0.75"  # Q002: plausible only after the lender confirms
        return rows, fieldnames

    held = intake_file(_land(settings, generated, "agency_assignment", high_commission), settings)
    assert held.status == lifecycle.NEEDS_VERIFICATION
    store = lifecycle.StateStore(settings.submissions_db)
    assert store.get(first.submission_id).status == lifecycle.ACCEPTED  # still in effect
    verify(held.submission_id, settings)
    assert store.get(first.submission_id).status == lifecycle.SUPERSEDED
    assert store.get(held.submission_id).status == lifecycle.ACCEPTED
    assert held.submission_id.endswith("-002")
    current = (
        duckdb.connect()
        .execute(f"select submission_id from '{settings.current_manifest}'")
        .fetchall()
    )
    assert held.submission_id in {row[0] for row in current}
    assert first.submission_id not in {row[0] for row in current}


def _tree(folder):
    return {
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def test_check_touches_nothing(settings, generated):
    path = _land(settings, generated, "complaints")
    before = _tree(settings.data_dir)
    submissions_before = lifecycle.StateStore(settings.submissions_db).current()
    report = check_file(path, settings)
    assert report.status == lifecycle.ACCEPTED
    assert _tree(settings.data_dir) == before
    assert lifecycle.StateStore(settings.submissions_db).current() == submissions_before


def test_check_on_a_fresh_installation_creates_no_state(tmp_path, generated):
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    path = _land(settings, generated, "complaints")
    report = check_file(path, settings)
    assert report.status == lifecycle.ACCEPTED
    # no registry in effect yet, checked after the due date: flagged only
    assert set(report.rule_counts) <= {"M002", "M003"}
    assert [p for p in settings.data_dir.rglob("*") if p.is_file()] == [path]
