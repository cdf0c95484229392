"""The quality gate fails on planted defects and passes a clean publication.

A small, internally consistent publication is built in pandas (national, two provinces,
five prefectures; two buckets for recovery_by_bucket), written as Parquet the way the
publisher writes it (money as DECIMAL(18,2), counts as integers), then each test plants
one defect and runs the real gate: real GX context, suites and checkpoints, no mocks.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectwatch import gate, tables

PERIOD = "2026-10"

# (code, name_zh, name_en, parent province)
PREFECTURES = (
    ("440100", "广州市", "Guangzhou", "440000"),
    ("440300", "深圳市", "Shenzhen", "440000"),
    ("440600", "佛山市", "Foshan", "440000"),
    ("320100", "南京市", "Nanjing", "320000"),
    ("320500", "苏州市", "Suzhou", "320000"),
)
PROVINCES = {"440000": ("广东省", "Guangdong"), "320000": ("江苏省", "Jiangsu")}

# Which additive measures are counts (integers in Parquet); the rest are money.
COUNT_MEASURES = {
    "overdue_accounts",
    "outsourced_accounts",
    "accounts",
    *tables.published_table("submission_coverage").additive,
    "lender_cases",
    "agency_cases",
    *tables.CONDUCT_COUNTS,
    *tables.published_table("complaints_by_region").additive,
}


def _with_regions(base: pd.DataFrame, key: list[str], measures: list[str]) -> pd.DataFrame:
    """Prefecture rows plus their province and national totals (sums, so they reconcile)."""
    prefectures = base.assign(level="prefecture")
    provinces = base.groupby(["parent_region_code", *key], as_index=False)[measures].sum()
    provinces = provinces.rename(columns={"parent_region_code": "region_code"})
    provinces["region_name_zh"] = provinces["region_code"].map(lambda c: PROVINCES[c][0])
    provinces["region_name_en"] = provinces["region_code"].map(lambda c: PROVINCES[c][1])
    provinces = provinces.assign(level="province", parent_region_code=tables.NATIONAL_CODE)
    national = (
        base.groupby(key, as_index=False)[measures]
        .sum()
        .assign(
            level="national",
            region_code=tables.NATIONAL_CODE,
            region_name_zh="全国",
            region_name_en="National",
            parent_region_code=None,
        )
    )
    frame = pd.concat([national, provinces, prefectures], ignore_index=True)
    frame["release_status"] = "preliminary"
    return frame


def _prefecture_base(period: str) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "period": period,
            "region_code": [p[0] for p in PREFECTURES],
            "region_name_zh": [p[1] for p in PREFECTURES],
            "region_name_en": [p[2] for p in PREFECTURES],
            "parent_region_code": [p[3] for p in PREFECTURES],
        }
    )


def outsourcing_frame(period: str = PERIOD) -> pd.DataFrame:
    base = _prefecture_base(period).assign(
        overdue_accounts=[1200, 3400, 560, 780, 910],
        overdue_balance=[1_250_000.55, 4_100_000.10, 730_000.00, 990_000.35, 1_105_000.00],
        outsourced_accounts=[400, 1500, 100, 300, 450],
        outsourced_balance=[420_000.25, 1_800_000.00, 95_000.40, 310_000.00, 500_000.05],
        agency_amount_recovered=[52_000.10, 210_000.00, 9_500.00, 30_000.99, 61_000.00],
        commission_paid=[13_000.03, 52_500.00, 2_375.00, 7_500.25, 15_250.00],
    )
    measures = [m for m in tables.published_table("outsourcing_by_region").additive]
    frame = _with_regions(base, ["period"], measures)
    frame["outsourcing_share"] = frame["outsourced_balance"] / frame["overdue_balance"]
    frame["average_commission_rate"] = frame["commission_paid"] / frame["agency_amount_recovered"]
    return frame


def recovery_frame(period: str = PERIOD) -> pd.DataFrame:
    base = pd.concat(
        [
            _prefecture_base(period).assign(
                bucket="M1",
                accounts=[900, 2000, 300, 500, 600],
                balance=[800_000.00, 2_500_000.50, 400_000.00, 600_000.00, 700_000.25],
                balance_outsourced=[200_000.00, 900_000.00, 50_000.00, 150_000.00, 250_000.00],
                recovered_inhouse=[120_000.00, 300_000.40, 60_000.00, 90_000.00, 80_000.00],
                recovered_outsourced=[30_000.00, 150_000.00, 5_000.00, 20_000.00, 40_000.10],
                written_off=[0.0, 0.0, 0.0, 0.0, 0.0],
                sold_balance=[0.0, 0.0, 0.0, 0.0, 0.0],
            ),
            _prefecture_base(period).assign(
                bucket="M4_6",
                accounts=[300, 1400, 260, 280, 310],
                balance=[450_000.55, 1_599_999.60, 330_000.00, 390_000.35, 404_999.75],
                balance_outsourced=[220_000.25, 900_000.00, 45_000.40, 160_000.00, 250_000.05],
                recovered_inhouse=[10_000.00, 40_000.00, 3_000.00, 8_000.00, 9_000.00],
                recovered_outsourced=[22_000.10, 60_000.00, 4_500.00, 10_000.99, 21_000.00],
                written_off=[5_000.00, 20_000.00, 0.0, 3_000.00, 2_500.00],
                sold_balance=[40_000.00, 100_000.00, 10_000.00, 0.0, 12_000.00],
            ),
        ],
        ignore_index=True,
    )
    measures = list(tables.published_table("recovery_by_bucket").additive)
    frame = _with_regions(base, ["period", "bucket"], measures)
    frame["outsourced_share"] = frame["balance_outsourced"] / frame["balance"]
    frame["write_off_rate"] = frame["written_off"] / frame["balance"]
    frame["sale_rate"] = frame["sold_balance"] / frame["balance"]
    frame["recovery_rate_inhouse"] = frame["recovered_inhouse"] / frame["balance"]
    frame["recovery_rate_outsourced"] = frame["recovered_outsourced"] / frame["balance_outsourced"]
    return frame


def coverage_frame(period: str = PERIOD) -> pd.DataFrame:
    base = _prefecture_base(period).assign(
        expected_institutions=[10, 12, 4, 6, 8],
        reporting_institutions=[9, 11, 4, 5, 8],
        expected_submissions=[20, 24, 8, 12, 16],
        on_time=[17, 21, 8, 10, 15],
        late=[1, 1, 0, 0, 1],
        missing=[1, 1, 0, 1, 0],
        rejected=[1, 0, 0, 1, 0],
        awaiting_verification=[0, 1, 0, 0, 0],
    )
    frame = _with_regions(
        base, ["period"], list(tables.published_table("submission_coverage").additive)
    )
    frame["submission_coverage_share"] = (frame["on_time"] + frame["late"]) / frame[
        "expected_submissions"
    ]
    frame["institution_coverage_share"] = (
        frame["reporting_institutions"] / frame["expected_institutions"]
    )
    return frame


def reconciliation_frame(period: str = PERIOD) -> pd.DataFrame:
    base = _prefecture_base(period).assign(
        lender_uscc="91440300MA5G8XXXXM",
        agency_uscc="91110000MA00000000",
        lender_cases=[10, 20, 30, 40, 50],
        agency_cases=[10, 21, 30, 40, 50],
        lender_balance=[100.0, 200.0, 300.0, 400.0, 500.0],
        agency_balance=[100.0, 220.0, 300.0, 400.0, 500.0],
        lender_recovered=[10.0, 20.0, 30.0, 40.0, 50.0],
        agency_recovered=[10.0, 20.0, 30.0, 40.0, 50.0],
        lender_commission=[2.5, 5.0, 7.5, 10.0, 12.5],
        agency_commission=[2.5, 5.0, 7.5, 10.0, 12.5],
    )
    table = tables.published_table("lender_agency_reconciliation")
    return _with_regions(base, ["period", *table.breakdown], list(table.additive))


def public_cells(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["level"].isin(tables.PUBLIC_LEVELS)].copy()


def expected_regions(period: str = PERIOD) -> pd.DataFrame:
    """The regions the clean frames have: the nation, both provinces, five prefectures."""
    frame = outsourcing_frame(period)
    return frame[["period", "level", "region_code"]].copy()


def write_audit(
    path: Path,
    frames: dict[str, pd.DataFrame],
    small: dict | None = None,
    regions: pd.DataFrame | None = None,
) -> Path:
    """A stand-in candidate warehouse holding only ``disclosure_audit`` and the expected
    regions (``regions``, default: those of the clean frames): every public cell has 5
    contributors, the largest with 30%, except the cells ``small`` names:
    {(table, region_code): (contributors, largest share)}."""
    audits = []
    for table in tables.PUBLISHED_TABLES:
        if table.public and table.name in frames:
            cells = public_cells(frames[table.name])[disclosure_keys(table)]
            cells = cells.assign(
                table_name=table.name, contributors=5, largest_contributor_share=0.3
            )
            for (name, region), (contributors, share) in (small or {}).items():
                mask = (cells["table_name"] == name) & (cells["region_code"] == region)
                cells.loc[mask, ["contributors", "largest_contributor_share"]] = contributors, share
            audits.append(cells)
    disclosure_audit = pd.concat(audits, ignore_index=True)  # noqa: F841 (read by DuckDB)
    expected = expected_regions() if regions is None else regions  # noqa: F841 (DuckDB)
    con = duckdb.connect(str(path))
    con.execute(f"create table {tables.DISCLOSURE_AUDIT} as select * from disclosure_audit")
    con.execute(f"create table {tables.EXPECTED_REGIONS} as select * from expected")
    con.close()
    return path


def disclosure_keys(table: tables.PublishedTable) -> list[str]:
    return ["period", "level", "region_code", *table.breakdown]


def counts_frame(name: str, period: str = PERIOD) -> pd.DataFrame:
    """A consistent frame of a table whose additive measures are all counts: prefecture
    counts that add up to their provinces and the nation, every share one half."""
    table = tables.published_table(name)
    base = _prefecture_base(period).assign(
        **{measure: [10, 20, 30, 40, 50] for measure in table.additive},
        **{column: "x" for column in table.breakdown},
    )
    frame = _with_regions(base, ["period", *table.breakdown], list(table.additive))
    return frame.assign(**{share: 0.5 for share in table.shares})


def watchlist_frame(period: str = PERIOD) -> pd.DataFrame:
    """Two agencies over a threshold: not regional, no levels, nothing to add up."""
    table = tables.published_table("agency_watchlist")
    return pd.DataFrame(
        {
            "period": period,
            "agency_uscc": ["91440300MA5G8XXXXM", "91110000MA00000001"],
            "breached_thresholds": ["out_of_hours_share", "call_bombing_episodes"],
            "release_status": "preliminary",
            **{share: [0.2, 0.01] for share in table.shares},
        }
    )


def write_publication(
    publication_dir: Path,
    frames: dict[str, pd.DataFrame],
    publics: dict[str, pd.DataFrame] | None = None,
) -> Path:
    """Write ``internal/<table>.parquet`` with the publisher's types, and
    ``public/<table>.parquet`` for the public tables: ``publics[table]`` when given, else
    the national and province rows unsuppressed."""
    for name, frame in frames.items():
        _write_scope(publication_dir / "internal", name, frame)
        if tables.published_table(name).public:
            public = (publics or {}).get(name, public_cells(frame))
            _write_scope(publication_dir / "public", name, public)
    return publication_dir


def _write_scope(folder: Path, name: str, frame: pd.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    table = tables.published_table(name)
    arrow = pa.Table.from_pandas(frame, preserve_index=False)
    for measure in table.additive:
        position = arrow.schema.get_field_index(measure)
        if measure in COUNT_MEASURES:
            column = arrow.column(measure).cast(pa.int64())
        else:
            # Exact cents, as dbt's DECIMAL(18,2) writes them; empty when suppressed.
            cents = [None if pd.isna(v) else Decimal(f"{v:.2f}") for v in frame[measure]]
            column = pa.array(cents, type=pa.decimal128(18, 2))
        arrow = arrow.set_column(position, measure, column)
    pq.write_table(arrow, folder / f"{name}.parquet")


@pytest.fixture(scope="module")
def clean_frames() -> dict[str, pd.DataFrame]:
    return {
        "outsourcing_by_region": outsourcing_frame(),
        "recovery_by_bucket": recovery_frame(),
        "submission_coverage": coverage_frame(),
        "lender_agency_reconciliation": reconciliation_frame(),
        "conduct_compliance": counts_frame("conduct_compliance"),
        "complaints_by_region": counts_frame("complaints_by_region"),
        "agency_watchlist": watchlist_frame(),
    }


@pytest.fixture
def frames(clean_frames) -> dict[str, pd.DataFrame]:
    """A private copy each test may plant a defect in."""
    return {name: frame.copy() for name, frame in clean_frames.items()}


def run(
    tmp_path: Path,
    frames: dict[str, pd.DataFrame],
    small: dict | None = None,
    publics: dict[str, pd.DataFrame] | None = None,
    regions: pd.DataFrame | None = None,
    **kwargs,
) -> gate.GateResult:
    staged = write_publication(tmp_path / "staged", frames, publics)
    warehouse = write_audit(tmp_path / "candidate.duckdb", frames, small, regions)
    kwargs = {"warehouse": warehouse, "coverage_floor": 0.8, **kwargs}
    return gate.run_gate(staged, [PERIOD], tmp_path / "report", **kwargs)


def named(failures: list[dict], table: str, rule: str, column: str | None = None) -> list[dict]:
    return [
        failure
        for failure in failures
        if failure["table"] == table
        and failure["rule"] == rule
        and (column is None or column in failure["columns"])
    ]


def _row(frame: pd.DataFrame, region_code: str, bucket: str | None = None) -> pd.Series:
    mask = frame["region_code"] == region_code
    if bucket is not None:
        mask &= frame["bucket"] == bucket
    assert mask.sum() == 1
    return mask


# --- clean publication -----------------------------------------------------------------


def test_clean_publication_passes_and_reports_say_so(tmp_path, frames):
    result = run(tmp_path, frames)

    assert result.blocking_failures == []
    assert result.warnings == []
    assert result.passed is True
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    assert report["passed"] is True
    assert report["blocking_failures"] == result.blocking_failures
    assert report["counts"]["blocking_failures"] == 0
    # Every table and both derived checks were really evaluated, not skipped.
    for table in tables.PUBLISHED_TABLES:
        suites = {outcome["suite"] for outcome in report["tables"][table.name]}
        assert f"{table.name}.blocking" in suites
        assert (gate.RECONCILIATION_SUITE in suites) == table.regional
        assert all(outcome["success"] for outcome in report["tables"][table.name])
    html = result.report_html.read_text(encoding="utf-8")
    assert "PASSED" in html and "通过" in html
    # Self-contained: no scripts or stylesheets fetched from anywhere.
    assert "<script" not in html and "<link" not in html
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"


# --- planted blocking defects ----------------------------------------------------------


def _duplicate_key(frames):
    frame = frames["outsourcing_by_region"]
    frames["outsourcing_by_region"] = pd.concat([frame, frame.iloc[[3]]], ignore_index=True)


def _share_above_one(frames):
    frame = frames["outsourcing_by_region"]
    frame.loc[_row(frame, "440300"), "outsourcing_share"] = 1.2


def _negative_balance(frames):
    frame = frames["recovery_by_bucket"]
    frame.loc[_row(frame, "320500", "M1"), "balance"] = -5.0


def _prefecture_balance_changed(frames):
    frame = frames["recovery_by_bucket"]
    frame.loc[_row(frame, "440300", "M4_6"), "balance"] += 100.0


def _prefecture_accounts_changed(frames):
    frame = frames["outsourcing_by_region"]
    frame.loc[_row(frame, "320100"), "overdue_accounts"] += 1


def _wrong_period(frames):
    frame = frames["outsourcing_by_region"]
    frame.loc[_row(frame, "440600"), "period"] = "2026-09"


def _unknown_release_status(frames):
    frame = frames["recovery_by_bucket"]
    frame.loc[_row(frame, "440000", "M1"), "release_status"] = "draft"


DEFECTS = {
    # defect: (plant, table, rule, column, a value the failure's examples must show)
    "duplicate_key": (_duplicate_key, "outsourcing_by_region", "key_unique", "region_code", None),
    "share_1.2": (
        _share_above_one,
        "outsourcing_by_region",
        "share_in_unit_interval",
        "outsourcing_share",
        1.2,
    ),
    "negative_balance": (_negative_balance, "recovery_by_bucket", "non_negative", "balance", -5.0),
    "province_sum_mismatch": (
        _prefecture_balance_changed,
        "recovery_by_bucket",
        "totals_reconcile_money",
        "difference",
        "440000",
    ),
    "count_off_by_one": (
        _prefecture_accounts_changed,
        "outsourcing_by_region",
        "totals_reconcile_count",
        "difference",
        "320000",
    ),
    "wrong_period": (
        _wrong_period,
        "outsourcing_by_region",
        "period_expected",
        "period",
        "2026-09",
    ),
    "unknown_release_status": (
        _unknown_release_status,
        "recovery_by_bucket",
        "release_status_allowed",
        "release_status",
        "draft",
    ),
}


def _example_values(failure: dict) -> list:
    values = []
    for example in failure["unexpected_examples"]:
        values += list(example.values()) if isinstance(example, dict) else [example]
    return values


@pytest.fixture(scope="module")
def gate_with_defect(clean_frames, tmp_path_factory):
    """The gate's result with one planted defect, run once per defect per module
    (each run costs GX about a second)."""
    results: dict[str, gate.GateResult] = {}

    def run_with(defect: str) -> gate.GateResult:
        if defect not in results:
            frames = {name: frame.copy() for name, frame in clean_frames.items()}
            DEFECTS[defect][0](frames)
            results[defect] = run(tmp_path_factory.mktemp(defect), frames)
        return results[defect]

    return run_with


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_planted_defect_is_a_blocking_failure(gate_with_defect, defect):
    _, table, rule, column, example_value = DEFECTS[defect]

    result = gate_with_defect(defect)

    assert result.passed is False
    failures = named(result.blocking_failures, table, rule, column)
    assert failures, f"{defect} not named in {result.blocking_failures}"
    if example_value is not None:
        assert example_value in _example_values(failures[0])
    assert failures[0]["message"] and failures[0]["expectation_type"].startswith("expect_")
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    assert report["passed"] is False
    assert report["blocking_failures"] == result.blocking_failures


def test_province_mismatch_names_the_province_and_the_check(gate_with_defect):
    result = gate_with_defect("province_sum_mismatch")

    [failure] = named(result.blocking_failures, "recovery_by_bucket", "totals_reconcile_money")
    checks = {(e["check"], e["region_code"], e["measure"]) for e in failure["unexpected_examples"]}
    assert ("province = sum of prefectures", "440000", "balance") in checks
    assert ("national = sum of prefectures", "000000", "balance") in checks
    # Provinces still add up to the national total: only the prefecture checks fail.
    assert failure["unexpected_count"] == 2
    assert {e["difference"] for e in failure["unexpected_examples"]} == {-100.0}


def test_reconciliation_of_national_sized_money_is_exact():
    # 400 prefectures of 123,456,789,012.37 each: a national total near 5e13, where a
    # float64 sum is off by up to 2.3 cents. The gate sums the cents exactly, so a table
    # that adds up shows a difference of exactly zero, and one cent off shows one cent.
    table = tables.published_table("outsourcing_by_region")
    cent = Decimal("123456789012.37")
    codes = [f"{province:02d}{prefecture:02d}00" for province in range(11, 51)
             for prefecture in range(1, 11)]  # fmt: skip
    rows = [("prefecture", code, code[:2] + "0000", cent) for code in codes]
    for province in sorted({code[:2] for code in codes}):
        rows.append(("province", province + "0000", tables.NATIONAL_CODE, cent * 10))
    rows.append(("national", tables.NATIONAL_CODE, None, cent * len(codes)))
    frame = pd.DataFrame(rows, columns=["level", "region_code", "parent_region_code", "v"])
    frame = frame.assign(period=PERIOD, overdue_balance=frame.pop("v").astype("float64"))
    kinds = {"overdue_balance": "money"}

    assert float(cent) * len(codes) != sum([float(cent)] * len(codes))  # floats drift here
    clean = gate.build_reconciliation(frame, table, kinds)
    assert len(clean) == 2 + 40  # two national checks and one per province
    assert (clean["difference"] == 0.0).all()

    national = frame["level"] == "national"
    frame.loc[national, "overdue_balance"] = float(cent * len(codes) + Decimal("0.01"))
    off = gate.build_reconciliation(frame, table, kinds)
    assert set(off.loc[off["region_code"] == tables.NATIONAL_CODE, "difference"]) == {0.01}
    assert (off.loc[off["region_code"] != tables.NATIONAL_CODE, "difference"] == 0.0).all()


def test_missing_table_file_fails_without_masking_the_other_tables(tmp_path, frames):
    staged = write_publication(tmp_path / "staged", frames)
    (staged / "internal" / "recovery_by_bucket.parquet").unlink()

    result = gate.run_gate(staged, [PERIOD], tmp_path / "report")

    assert result.passed is False
    [missing] = named(result.blocking_failures, "recovery_by_bucket", "file_exists")
    assert "recovery_by_bucket.parquet is missing" in missing["message"]
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    assert any(o["success"] for o in report["tables"]["outsourcing_by_region"])


# --- warnings --------------------------------------------------------------------------


def test_recovery_rate_above_one_is_a_warning_only(tmp_path, frames):
    frame = frames["recovery_by_bucket"]
    frame.loc[_row(frame, "440100", "M4_6"), "recovery_rate_inhouse"] = 1.3

    result = run(tmp_path, frames)

    assert result.passed is True
    assert result.blocking_failures == []
    [warning] = named(result.warnings, "recovery_by_bucket", "rate_above_one")
    assert warning["columns"] == ["recovery_rate_inhouse"]
    assert 1.3 in _example_values(warning)
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    assert report["passed"] is True
    assert report["warnings"] == result.warnings


def test_national_jump_against_previous_month_is_a_warning(tmp_path, frames):
    previous = {
        "outsourcing_by_region": outsourcing_frame("2026-09"),
        "recovery_by_bucket": recovery_frame("2026-09"),
    }
    money = previous["outsourcing_by_region"]
    # Last month's national overdue balance was a third of this month's: +200%.
    money["overdue_balance"] = money["overdue_balance"] / 3
    previous_dir = write_publication(tmp_path / "previous", previous)

    result = run(tmp_path, frames, previous_dir=previous_dir)

    assert result.passed is True
    [jump] = named(result.warnings, "outsourcing_by_region", "national_jump")
    [example] = jump["unexpected_examples"]
    assert example["measure"] == "overdue_balance"
    assert example["comparison"] == "previous month"
    assert example["reference_period"] == "2026-09"
    assert example["relative_change"] == pytest.approx(2.0)


# --- the suites themselves -------------------------------------------------------------


def test_checked_in_suites_match_the_table_registry():
    """expectations/*.json are generated from tables.py; regenerate with
    ``python -m collectwatch.gate`` after changing the registry."""
    expected = {
        f"{name}.json": gate.suite_file_text(doc) for name, doc in gate.build_suites().items()
    }
    checked_in = {
        path.name: path.read_text(encoding="utf-8")
        for path in gate.DEFAULT_EXPECTATIONS_DIR.glob("*.json")
    }
    assert checked_in == expected
    assert sorted(gate.build_suites()) == sorted(gate.required_suite_names())


def test_a_suite_rule_gx_cannot_parse_fails_the_gate(tmp_path, frames):
    """GX drops an unparseable expectation with a log line; the gate must not."""
    suites = tmp_path / "expectations"
    shutil.copytree(gate.DEFAULT_EXPECTATIONS_DIR, suites)
    path = suites / "outsourcing_by_region.blocking.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    document["expectations"][-1]["type"] = "expect_column_values_to_be_betwen"
    path.write_text(json.dumps(document), encoding="utf-8")

    result = run(tmp_path, frames, expectations_dir=suites)

    assert result.passed is False
    [broken] = named(result.blocking_failures, "outsourcing_by_region", "suite_file")
    assert "not valid GX expectations" in broken["message"]


# --- disclosure control and coverage floor ---------------------------------------------

SMALL_PROVINCE = "440000"
COMPLEMENT = "320000"


def _withheld(frames: dict[str, pd.DataFrame], regions: set[str]) -> dict[str, pd.DataFrame]:
    """The public files with every numeric column of ``regions``' cells emptied and
    flagged, in every public table (all buckets), as public_<table> writes them."""
    publics = {}
    for name, frame in frames.items():
        if tables.published_table(name).public:
            public = public_cells(frame)
            mask = public["region_code"].isin(regions)
            numeric = public.select_dtypes("number").columns
            public[numeric] = public[numeric].astype("float64")
            public.loc[mask, numeric] = None
            public["disclosure_flag"] = mask.map({True: "x 保密 / suppressed", False: None})
            publics[name] = public
    return publics


# The audit's view of the planted small cells: a province with 2 lenders (frequency rule)
# in outsourcing_by_region and one dominated by one lender (90%) in recovery_by_bucket.
SMALL = {
    ("outsourcing_by_region", SMALL_PROVINCE): (2, 0.7),
    ("recovery_by_bucket", SMALL_PROVINCE): (4, 0.9),
}


def test_small_cells_suppressed_with_their_complement_pass(tmp_path, frames):
    publics = _withheld(frames, {SMALL_PROVINCE, COMPLEMENT})

    result = run(tmp_path, frames, small=SMALL, publics=publics)

    assert result.blocking_failures == []
    report = json.loads(result.report_json.read_text(encoding="utf-8"))
    suites = {o["suite"] for outcomes in report["tables"].values() for o in outcomes}
    assert {gate.DISCLOSURE_CELLS_SUITE, gate.DISCLOSURE_GROUPS_SUITE} <= suites


def test_a_published_small_cell_fails_the_gate(tmp_path, frames):
    """Both small cells published as they are: each is named with its contributors."""
    result = run(tmp_path, frames, small=SMALL)

    assert result.passed is False
    for table, contributors, share in (
        ("outsourcing_by_region", 2, 0.7),
        ("recovery_by_bucket", 4, 0.9),
    ):
        [failure] = named(result.blocking_failures, table, "no_small_cell_published")
        examples = failure["unexpected_examples"]
        assert {e["region_code"] for e in examples} == {SMALL_PROVINCE}
        assert {(e["contributors"], e["largest_contributor_share"]) for e in examples} == {
            (contributors, share)
        }
    # Clean cells were not flagged: exactly the small province's cells (1 + 2 buckets).
    failures = [f for f in result.blocking_failures if f["rule"] == "no_small_cell_published"]
    assert sorted(f["unexpected_count"] for f in failures) == [1, 2]


def test_a_suppressed_cell_without_complement_fails_the_gate(tmp_path, frames):
    """Only the small province withheld: the nation minus the other province gives it."""
    publics = _withheld(frames, {SMALL_PROVINCE})

    result = run(tmp_path, frames, small=SMALL, publics=publics)

    assert result.passed is False
    assert not [f for f in result.blocking_failures if f["rule"] == "no_small_cell_published"]
    [failure] = named(result.blocking_failures, "public", "no_cell_recoverable_by_subtraction")
    # nation and provinces, one suppressed each: outsourcing, each of the two buckets,
    # complaints' one category and conduct
    assert failure["unexpected_count"] == 5
    assert {e["equation"] for e in failure["unexpected_examples"]} == {"nation = sum of provinces"}


def test_prefecture_rows_or_no_audit_fail_the_public_check(tmp_path, frames):
    publics = {"outsourcing_by_region": frames["outsourcing_by_region"]}  # every level

    result = run(tmp_path, frames, publics=publics, warehouse=None)

    assert result.passed is False
    [levels] = named(result.blocking_failures, "outsourcing_by_region", "public_levels_only")
    assert levels["unexpected_count"] == 5
    # Without a disclosure audit no cell is known to be safe: each published one fails.
    [unchecked] = named(
        result.blocking_failures, "recovery_by_bucket", "disclosure_audit_available"
    )
    assert "no disclosure audit" in unchecked["message"]
    [exposed] = named(result.blocking_failures, "recovery_by_bucket", "no_small_cell_published")
    assert exposed["unexpected_count"] == exposed["element_count"] == 6


def test_coverage_below_the_floor_fails_and_at_the_floor_passes(tmp_path, frames):
    coverage = frames["submission_coverage"]
    national = coverage["level"] == "national"
    coverage.loc[national, "institution_coverage_share"] = 0.79

    below = run(tmp_path / "below", frames)
    coverage.loc[national, "institution_coverage_share"] = 0.8
    at = run(tmp_path / "at", frames)

    [failure] = named(below.blocking_failures, "submission_coverage", "coverage_floor")
    assert failure["unexpected_count"] == 1
    [example] = failure["unexpected_examples"]
    assert (example["level"], example["institution_coverage_share"]) == ("national", 0.79)
    assert at.passed is True


# --- expected regions and distribution drift -------------------------------------------


def test_region_check_finds_a_missing_and_an_unexpected_region():
    table = tables.published_table("recovery_by_bucket")
    complete = gate.build_region_check(recovery_frame(), expected_regions(), table)
    assert set(complete["region_status"]) == {gate.REGION_AS_EXPECTED}
    assert len(complete) == 8 * 2  # 8 regions x 2 buckets

    published = recovery_frame()
    # Foshan lost its M1 row; an unknown prefecture appeared.
    published = published[~((published["region_code"] == "440600") & (published["bucket"] == "M1"))]
    stray = published[published["region_code"] == "320500"].assign(region_code="320600")
    checked = gate.build_region_check(pd.concat([published, stray]), expected_regions(), table)
    flagged = checked[checked["region_status"] != gate.REGION_AS_EXPECTED]
    columns = ["region_code", "bucket", "region_status"]
    assert sorted(flagged[columns].itertuples(index=False, name=None)) == [
        ("320600", "M1", "unexpected"),
        ("320600", "M4_6", "unexpected"),
        ("440600", "M1", "missing"),
    ]


def test_an_expected_region_without_rows_fails_the_gate(tmp_path, frames):
    # Beijing has a registered institution (an expected reporter) but no row anywhere.
    regions = pd.concat(
        [
            expected_regions(),
            pd.DataFrame({"period": [PERIOD], "level": ["province"], "region_code": ["110000"]}),
        ]
    )
    result = run(tmp_path, frames, regions=regions)

    assert result.passed is False
    [failure] = named(result.blocking_failures, gate.REGIONS_DATASET, "regions_as_expected")
    # Beijing's missing cells: outsourcing (internal, public), recovery (internal, public;
    # 2 buckets each), conduct (internal, public), complaints (internal, public; 1 category).
    complete = [t for t in tables.PUBLISHED_TABLES if t.every_expected_region]
    assert failure["unexpected_count"] == 2 + 2 * 2 + 2 + 2
    examples = failure["unexpected_examples"]
    assert {(e["region_code"], e["region_status"]) for e in examples} == {("110000", "missing")}
    assert {e["table"] for e in examples} <= {t.name for t in complete}
    # Nothing else is wrong with the publication.
    assert {f["rule"] for f in result.blocking_failures} == {"regions_as_expected"}


def test_a_region_nobody_expects_fails_the_gate_and_no_expected_list_fails_too(tmp_path, frames):
    regions = expected_regions()
    regions = regions[regions["region_code"] != "320500"]
    result = run(tmp_path, frames, regions=regions)
    [failure] = named(result.blocking_failures, gate.REGIONS_DATASET, "regions_as_expected")
    examples = failure["unexpected_examples"]
    assert {(e["region_code"], e["region_status"]) for e in examples} == {("320500", "unexpected")}

    staged = write_publication(tmp_path / "bare", frames)
    bare = write_audit(tmp_path / "bare.duckdb", frames)
    with duckdb.connect(str(bare)) as con:
        con.execute(f"drop table {tables.EXPECTED_REGIONS}")
    result = gate.run_gate(staged, [PERIOD], tmp_path / "bare_report", warehouse=bare)
    assert named(result.blocking_failures, gate.REGIONS_DATASET, "expected_regions_available")


def test_distribution_drift_since_the_last_publication_is_a_warning(tmp_path, frames):
    # The last publication of the same period had a tenth of Jiangsu's overdue balance:
    # the provinces' shares of the nation moved.
    previous = {"outsourcing_by_region": outsourcing_frame()}
    earlier = previous["outsourcing_by_region"]
    jiangsu_codes = ["320000", "320100", "320500"]
    guangdong = 1_250_000.55 + 4_100_000.10 + 730_000.00
    jiangsu_now = 990_000.35 + 1_105_000.00
    jiangsu = earlier["region_code"].isin(jiangsu_codes)
    earlier.loc[jiangsu, "overdue_balance"] = earlier.loc[jiangsu, "overdue_balance"] / 10
    national = earlier["region_code"] == tables.NATIONAL_CODE
    earlier.loc[national, "overdue_balance"] = guangdong + jiangsu_now / 10
    previous_dir = write_publication(tmp_path / "previous", previous)

    result = run(tmp_path, frames, previous_dir=previous_dir)

    assert result.passed is True  # a warning, never blocking
    [drift] = named(result.warnings, "outsourcing_by_region", "distribution_drift")
    [example] = drift["unexpected_examples"]
    moved = jiangsu_now / (guangdong + jiangsu_now) - jiangsu_now / 10 / (
        guangdong + jiangsu_now / 10
    )
    assert example["measure"] == "overdue_balance"
    assert example["drift"] == pytest.approx(moved, abs=1e-6)
    assert example["most_moved_region"] in {"320000", "440000"}
    # Only the measure that moved drifted; an unchanged republication raises nothing.
    assert all(e["measure"] == "overdue_balance" for e in drift["unexpected_examples"])
    same_dir = write_publication(tmp_path / "same", {"outsourcing_by_region": outsourcing_frame()})
    same = run(tmp_path / "again", frames, previous_dir=same_dir)
    assert named(same.warnings, "outsourcing_by_region", "distribution_drift") == []
    report = json.loads(same.report_json.read_text(encoding="utf-8"))
    outcomes = report["tables"]["outsourcing_by_region"]
    assert any(o["suite"] == gate.DISTRIBUTION_DRIFT_SUITE and o["success"] for o in outcomes)


def test_a_derived_check_that_cannot_be_built_fails_the_gate_and_names_why(tmp_path, frames):
    # Without parent_region_code no province can be reconciled with its prefectures: the
    # reconciliation cannot be built, which blocks (never a silent pass), naming the column.
    frames["recovery_by_bucket"] = frames["recovery_by_bucket"].drop(columns="parent_region_code")

    result = run(tmp_path, frames)

    assert result.passed is False
    [failure] = named(result.blocking_failures, "recovery_by_bucket", "build_reconciliation")
    assert "recovery_by_bucket" in failure["message"]
    assert "parent_region_code" in failure["message"]
    # The other tables' derived checks are still built.
    assert not named(result.blocking_failures, "outsourcing_by_region", "build_reconciliation")


# --- periods side by side ----------------------------------------------------------------


def _gate_job(folder: Path, frames: dict[str, pd.DataFrame]) -> gate.GateJob:
    return gate.GateJob(
        staged_dir=write_publication(folder / "staged", frames),
        period=PERIOD,
        report_dir=folder / "report",
        previous_dir=None,
        warehouse=write_audit(folder / "candidate.duckdb", frames),
        coverage_floor=0.8,
    )


def _findings(result: gate.GateResult) -> list[tuple]:
    return sorted(
        (f["table"], f["suite"], f["rule"], f["message"]) for f in result.blocking_failures
    )


def test_periods_gated_side_by_side_find_what_each_gate_finds_alone(tmp_path, clean_frames):
    """Two gates at once, each a `collectwatch gate` process (exit 0 passed, 2 blocked): a
    clean period passes and a period with a planted duplicate key is blocked by it, exactly
    as the same gates run one after the other in this process."""
    defective = {name: frame.copy() for name, frame in clean_frames.items()}
    DEFECTS["duplicate_key"][0](defective)
    jobs = {
        "clean": _gate_job(tmp_path / "clean", clean_frames),
        "defective": _gate_job(tmp_path / "defective", defective),
    }
    side_by_side = gate.run_gates(jobs, side_by_side=2)
    in_turn = gate.run_gates(
        {
            key: replace(job, report_dir=job.report_dir.with_name("in_turn"))
            for key, job in jobs.items()
        },
        side_by_side=1,
    )

    assert side_by_side["clean"].passed and side_by_side["clean"].blocking_failures == []
    assert not side_by_side["defective"].passed
    assert named(side_by_side["defective"].blocking_failures, "outsourcing_by_region", "key_unique")
    for key in jobs:
        assert side_by_side[key].passed == in_turn[key].passed
        assert _findings(side_by_side[key]) == _findings(in_turn[key])
        assert side_by_side[key].report_json == jobs[key].report_dir / "gate_report.json"
        assert side_by_side[key].report_html.exists()


def test_a_gate_process_that_crashes_stops_the_night(tmp_path, clean_frames):
    """A gate process that ends neither passed nor blocked (here: its candidate warehouse
    is not a DuckDB file) raises, naming the period and what the process said; nothing
    counts as passed."""
    not_a_database = tmp_path / "not_a_database.duckdb"
    not_a_database.write_text("not a DuckDB file")
    crashing = _gate_job(tmp_path / "crashing", clean_frames)
    jobs = {
        "clean": _gate_job(tmp_path / "clean", clean_frames),
        "crashing": replace(crashing, period="2026-09", warehouse=not_a_database),
    }

    with pytest.raises(RuntimeError, match=r"the gate of 2026-09 \(.*\) exited 1:(.|\n)*Exception"):
        gate.run_gates(jobs, side_by_side=2)
