"""End to end: the real DAGs (dag.test() on SQLite metadata), the real dbt build, the
real GX gate, real files. Published figures are checked against an independent
computation from the submitted CSV files, written here in pandas — not the product's SQL.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from collectwatch import pipeline, tables
from collectwatch.config import Settings
from collectwatch.files import sha256_file
from collectwatch.orchestration import run_embedded

from .conftest import AS_OF, BASE_PERIOD, PERIOD, hash_table_sides, published

pytestmark = pytest.mark.e2e


def _published(settings: Settings, table: str) -> pd.DataFrame:
    return published(settings, table, PERIOD)


def _expected_by_region(submitted, settings) -> pd.DataFrame:
    """Overdue and outsourced balances per prefecture, province and nation, from the CSVs."""
    portfolio = pd.concat(
        pd.read_csv(p, dtype={"region_code": str}, converters={"balance": Decimal,
                    "balance_outsourced": Decimal})
        for p in submitted.files if p.name.startswith("lender_portfolio__")
    )  # fmt: skip
    regions = pd.read_csv(settings.region_seed, dtype=str)
    portfolio = portfolio.merge(regions, on="region_code")
    portfolio["prefecture"] = portfolio["prefecture_code"].fillna(portfolio["region_code"])
    overdue = portfolio[portfolio["bucket"] != "M0"]
    frames = []
    for level, column in (("prefecture", "prefecture"), ("province", "province_code")):
        grouped = overdue.groupby(column).agg(
            overdue_balance=("balance", "sum"),
            outsourced_balance=("balance_outsourced", "sum"),
            reporting_lenders=("lender_uscc", "nunique"),
        )
        frames.append(grouped.rename_axis("region_code").reset_index().assign(level=level))
    frames.append(
        pd.DataFrame(
            {
                "region_code": ["000000"],
                "level": ["national"],
                "overdue_balance": [overdue["balance"].sum()],
                "outsourced_balance": [overdue["balance_outsourced"].sum()],
                "reporting_lenders": [overdue["lender_uscc"].nunique()],
            }
        )
    )
    return pd.concat(frames, ignore_index=True)


def test_the_dags_succeed_and_publish(first_run, settings):
    assert first_run["state"] == "success", first_run
    assert first_run["dag_runs"] == {
        "collect_submissions": "success",
        "nightly_supervision": "success",
    } or all(s.endswith("success") for s in first_run["dag_runs"].values())
    assert settings.warehouse_path.exists()
    assert not list(settings.landing_dir.glob("*/*.csv")), "every landed file was taken in"


def test_manifest_hashes_match_the_files(first_run, settings, submitted):
    pointer = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    version_dir = settings.publish_dir / PERIOD / pointer["path"]
    manifest = json.loads((version_dir / "manifest.json").read_text())
    assert manifest["version"] == pointer["version"] == 1
    assert manifest["release_status"] == "preliminary"
    assert manifest["gate"]["passed"] is True
    assert manifest["dbt_invocation_id"]
    # Every generated file is an input except the one the generator plants to be rejected.
    assert len(manifest["input_submissions"]) == len(submitted.files) - 1
    assert {
        f"internal/{t.name}.{ext}" for t in tables.PUBLISHED_TABLES
        for ext in ("csv", "parquet", "xlsx")
    } <= set(manifest["files"])  # fmt: skip
    on_disk = {
        p.relative_to(version_dir).as_posix()
        for p in version_dir.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    assert set(manifest["files"]) == on_disk
    assert {
        f"{scope}/{t.name}.{ext}" for t in tables.PUBLISHED_TABLES for scope in t.scopes
        for ext in ("csv", "parquet", "xlsx")
    } <= set(manifest["files"])  # fmt: skip
    for relative, entry in manifest["files"].items():
        assert sha256_file(version_dir / relative) == entry["sha256"], relative
        assert entry["scope"] == relative.split("/")[0]
    csv_rows = len(pd.read_csv(version_dir / "internal/outsourcing_by_region.csv"))
    assert csv_rows == manifest["files"]["internal/outsourcing_by_region.csv"]["rows"] > 20


def test_province_scopes_cut_the_internal_tables(first_run, settings):
    version_dir = settings.publish_dir / PERIOD / "v1"
    internal = pd.read_parquet(version_dir / "internal" / "outsourcing_by_region.parquet")
    provinces = sorted(internal.loc[internal["level"] == "province", "region_code"])
    scopes = sorted(p.name for p in version_dir.glob("province=*"))
    assert scopes == [f"province={code}" for code in provinces] and len(scopes) > 3
    for code in provinces:
        cut = pd.read_parquet(version_dir / f"province={code}" / "outsourcing_by_region.parquet")
        expected = internal[(internal["level"] != "national") &
                            (internal["region_code"].str[:2] == code[:2])]  # fmt: skip
        assert sorted(cut["region_code"]) == sorted(expected["region_code"]), code
        assert code in set(cut["region_code"]) and "000000" not in set(cut["region_code"])


def test_xlsx_headers_come_from_the_dbt_descriptions(first_run, settings):
    import openpyxl

    path = settings.publish_dir / PERIOD / "v1" / "internal" / "outsourcing_by_region.xlsx"
    sheet = openpyxl.load_workbook(path)["outsourcing_by_region"]
    header = {zh.value: en.value for zh, en in zip(sheet[1], sheet[2], strict=True)}
    assert header["逾期余额（元）"] == "Overdue balance, CNY"
    assert header["报告期"] == "Reporting month (YYYY-MM)"
    parquet_rows = len(_published(settings, "outsourcing_by_region"))
    assert sheet.max_row == parquet_rows + 2 and sheet.freeze_panes == "A3"


def test_published_figures_match_an_independent_computation(first_run, settings, submitted):
    every_region = _published(settings, "outsourcing_by_region").set_index("region_code")
    expected = _expected_by_region(submitted, settings).set_index("region_code")
    # Expected regions without a reporting lender are published as empty rows.
    published = every_region[every_region["reporting_lenders"] > 0]
    assert sorted(published.index) == sorted(expected.index)
    empty = every_region[every_region["reporting_lenders"] == 0]
    assert not empty.empty and (empty["overdue_balance"].fillna(0) == 0).all()
    for code, row in expected.iterrows():
        got = published.loc[code]
        assert got["level"] == row["level"], code
        assert Decimal(str(got["overdue_balance"])) == row["overdue_balance"], code
        assert Decimal(str(got["outsourced_balance"])) == row["outsourced_balance"], code
        assert got["reporting_lenders"] == row["reporting_lenders"], code
        share = float(row["outsourced_balance"] / row["overdue_balance"])
        assert got["outsourcing_share"] == pytest.approx(share, abs=1e-6), code
    assert set(published["release_status"]) == {"preliminary"}


def test_recovery_rates_match_an_independent_computation(first_run, settings, submitted):
    portfolio = pd.concat(
        pd.read_csv(p) for p in submitted.files if p.name.startswith("lender_portfolio__")
    )
    national = portfolio[portfolio["bucket"] != "M0"].groupby("bucket").sum(numeric_only=True)
    published = _published(settings, "recovery_by_bucket")
    published = published[published["level"] == "national"].set_index("bucket")
    for bucket, row in national.iterrows():
        kept = row["balance"] - row["balance_outsourced"]
        assert published.loc[bucket, "recovery_rate_inhouse"] == pytest.approx(
            row["recovered_inhouse"] / kept, abs=1e-6
        )
        assert published.loc[bucket, "accounts"] == row["accounts"]


def test_planted_single_lender_prefecture_is_visible(first_run, settings, submitted):
    planted = json.loads(submitted.planted_path.read_text())
    published = _published(settings, "outsourcing_by_region").set_index("region_code")
    for cell in planted["single_lender_prefectures"]:
        assert published.loc[cell["prefecture_code"], "reporting_lenders"] == 1
    assert (published["reporting_lenders"] > 1).any()


def test_analysts_read_the_warehouse_read_only(first_run, settings):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    rows = con.execute(
        "select count(*) from outsourcing_by_region where period = ?", [PERIOD]
    ).fetchone()[0]
    comment = con.execute(
        "select comment from duckdb_tables() where table_name = 'outsourcing_by_region'"
    ).fetchone()[0]
    con.close()
    assert rows > 20 and "Outsourcing" in comment


@pytest.mark.parametrize("period", [BASE_PERIOD, PERIOD])
def test_a_periods_events_are_never_the_hash_table_of_a_join(first_run, settings, period):
    """A staging view lists every period's raw files (raw/<type>/period=<P>/...). With
    DuckDB's hive partitioning, a period filter was estimated from the first listed file:
    ~1 row for every later period, so the month's rows became the hash table of their join
    to a small dimension, and the next national month's build ran out of memory
    (int_contact_events_flagged, 58M events, at 4 and at 8 GB). Every period must keep the
    dimension (3,217 regions; ~9,000 events a month here) as the hash table."""
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        sides = hash_table_sides(
            con,
            "select count(*) from stg_contact_events join regions using (region_code) "
            f"where period = '{period}'",
        )
    finally:
        con.close()
    assert sides == ["SEQ_SCAN"]  # table regions, not READ_PARQUET


def test_rerun_on_the_same_inputs_publishes_nothing_new(first_run, settings):
    """No new version means every data file (CSV, XLSX, Parquet, every scope) hashed the
    same as the published one (publish.prepare_version compares them all)."""
    before = sorted(p.name for p in (settings.publish_dir / PERIOD).iterdir())
    outcome = run_embedded(settings, [PERIOD], as_of=AS_OF)
    assert outcome["state"] == "success"
    after = sorted(p.name for p in (settings.publish_dir / PERIOD).iterdir())
    assert after == before == ["latest.json", "v1"]


def _tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): sha256_file(p) for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_a_planted_defect_fails_the_gate_and_changes_nothing(first_run, settings):
    """Build a real candidate, plant a defect the dbt tests cannot see (a prefecture no
    longer adds up to its province), and prove the gate blocks it: the published warehouse
    and publication stay byte-identical, an alert is written, the candidate is kept."""
    publication_before = _tree_digest(settings.publish_dir)
    warehouse_before = sha256_file(settings.warehouse_path)
    build = pipeline.build(settings, [PERIOD], as_of=AS_OF)
    con = duckdb.connect(build["candidate"])
    con.execute(
        "update outsourcing_by_region set overdue_balance = overdue_balance + 1000 "
        "where level = 'prefecture' and region_code = "
        "(select min(region_code) from outsourcing_by_region where level = 'prefecture')"
    )
    con.close()
    with pytest.raises(pipeline.GateFailed, match="gate blocked publication"):
        pipeline.audit(settings, build)
    assert _tree_digest(settings.publish_dir) == publication_before
    assert sha256_file(settings.warehouse_path) == warehouse_before
    assert Path(build["candidate"]).exists()
    alerts = list(settings.alerts_dir.glob("*-gate_failed.json"))
    assert len(alerts) == 1
    report = json.loads(
        Path(json.loads(alerts[0].read_text())["gate"][PERIOD]["report"]).read_text()
    )
    assert report["passed"] is False
    # Kept for inspection beside the candidate: the audited files and the HTML report.
    run_folder = Path(build["candidate"]).with_suffix("")
    assert (run_folder / pipeline.KEPT_MARKER).exists()
    assert (run_folder / PERIOD / "gate_report.html").read_text().startswith("<!DOCTYPE html>")
    assert (run_folder / PERIOD / "publication" / "internal").is_dir()
