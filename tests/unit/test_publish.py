"""Publication files: deterministic bytes, spreadsheet-safe CSV, versions only on change,
nothing published ever overwritten."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from collectwatch.config import Settings
from collectwatch.files import sha256_file
from collectwatch.publish import export_period, publish_period
from collectwatch.tables import PUBLISHED_TABLES

PERIOD = "2026-10"


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env().with_data_dir(tmp_path / "data")


def _candidate(settings, tmp_path, region_name='=HYPERLINK("x")', balance=-5.25):
    """A candidate warehouse holding the published tables (few columns suffice)."""
    path = tmp_path / "candidate.duckdb"
    path.unlink(missing_ok=True)
    con = settings.duckdb(path)
    rows = pd.DataFrame(
        {
            "period": [PERIOD, PERIOD, "2026-09"],
            "level": ["province", "national", "national"],
            "region_code": ["440000", "000000", "000000"],
            "region_name_zh": [region_name, "全国", "全国"],
            "bucket": ["M1", "M1", "M1"],
            "balance": [balance, 10.5, 1.0],
            "release_status": ["preliminary"] * 3,
        }
    )
    rows["lender_uscc"] = "91440300MA5G8XXXXM"
    rows["agency_uscc"] = "91110000MA00000000"
    con.register("rows", rows)
    for table in PUBLISHED_TABLES:
        # every published table, and the disclosure-controlled relation of a public one
        for relation in (table.name, f"public_{table.name}")[: 1 + table.public]:
            con.execute(f"create table {relation} as select * from rows")
    con.close()
    return path


def test_export_is_deterministic_and_spreadsheet_safe(settings, tmp_path):
    candidate = _candidate(settings, tmp_path)
    first = export_period(settings, candidate, PERIOD, "run-a")
    second = export_period(settings, candidate, PERIOD, "run-b")
    for path in sorted(first.rglob("*.*")):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes(), path.name
    csv_bytes = (first / "internal" / "outsourcing_by_region.csv").read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    text = csv_bytes.decode("utf-8-sig")
    assert "'=HYPERLINK" in text  # a formula-like text cell is neutralised
    assert ",-5.25" in text  # numbers are untouched, negative ones included
    assert "2026-09" not in text  # only the period being published
    # rows sorted by the table key: national before province
    assert text.index("000000") < text.index("440000")


def test_versions_only_when_bytes_change(settings, tmp_path):
    first = publish_period(
        settings, PERIOD, export_period(settings, _candidate(settings, tmp_path), PERIOD, "r1"), {}
    )
    assert first.version == 1
    v1_digest = {p.name: sha256_file(p) for p in first.path.rglob("*") if p.is_file()}
    same = publish_period(
        settings, PERIOD, export_period(settings, _candidate(settings, tmp_path), PERIOD, "r2"), {}
    )
    assert same.version is None
    assert not list((settings.publish_dir / PERIOD).glob(".staging-*"))
    changed_candidate = _candidate(settings, tmp_path, region_name="广东省")
    changed = publish_period(
        settings, PERIOD, export_period(settings, changed_candidate, PERIOD, "r3"), {}
    )
    assert changed.version == 2
    assert {p.name: sha256_file(p) for p in first.path.rglob("*") if p.is_file()} == v1_digest
    latest = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    assert latest["path"] == "v2"
    assert latest["manifest_sha256"] == sha256_file(changed.path / "manifest.json")
