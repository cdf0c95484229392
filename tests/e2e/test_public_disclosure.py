"""End to end: disclosure control, coverage and reconciliation on the planted month.

Reuses the session's pipeline run (tests/e2e/conftest.py). Expected values come from the
submitted CSV files and planted-<period>.json, computed here in pandas — not from the
product's SQL. The tests after "keep them last" change the published state (a full
refresh, a revised registry, resubmissions, a late earlier month) and run after every other
end-to-end test.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectwatch import pipeline, tables
from collectwatch.config import CHINA_TZ
from collectwatch.generate import generate_month
from collectwatch.orchestration import run_embedded
from collectwatch.publish import (
    data_file_hashes,
    data_files,
    latest_manifest,
    latest_version_dir,
    stage_period,
)

from .conftest import AS_OF, BASE_PERIOD, PERIOD

CENT = Decimal("0.01")

pytestmark = pytest.mark.e2e

# (outsourcing_by_region measure, recovery_by_bucket measure): the region total equals the
# sum over buckets, the equation a reader could subtract with.
LINKED_MEASURES = (
    ("overdue_balance", "balance"),
    ("outsourced_balance", "balance_outsourced"),
    ("overdue_accounts", "accounts"),
)
OUTSOURCING_MEASURES = tables.published_table("outsourcing_by_region").additive
RECOVERY_MEASURES = tables.published_table("recovery_by_bucket").additive


def _published(settings, table: str, scope: str, period: str = PERIOD) -> pd.DataFrame:
    """The latest version's file, money as float (exact enough for cents at these sizes)."""
    path = latest_version_dir(settings, period) / scope / f"{table}.parquet"
    arrow = pq.read_table(path)
    schema = pa.schema(
        pa.field(f.name, pa.float64()) if pa.types.is_decimal(f.type) else f for f in arrow.schema
    )
    return arrow.cast(schema).to_pandas()


def _planted(submitted) -> dict:
    return json.loads(submitted.planted_path.read_text())


def _csvs(submitted, submission_type: str, exclude: set[Path] = frozenset()) -> pd.DataFrame:
    return pd.concat(
        pd.read_csv(path, dtype={"region_code": str, "regulator_ref": str})
        for path in submitted.files
        if path.name.startswith(submission_type + "__") and path not in exclude
    )


def _regions(settings) -> pd.DataFrame:
    regions = pd.read_csv(settings.region_seed, dtype=str)
    regions["prefecture"] = regions["prefecture_code"].fillna(regions["region_code"])
    return regions[["region_code", "province_code", "prefecture"]]


def _provinces_under_thresholds(submitted, settings) -> set[str]:
    """Provinces with fewer than 3 lenders or one lender over 85% of the overdue balance."""
    portfolio = _csvs(submitted, "lender_portfolio").merge(_regions(settings), on="region_code")
    overdue = portfolio[portfolio["bucket"] != "M0"]
    by_lender = overdue.groupby(["province_code", "lender_uscc"])["balance"].sum()
    provinces = by_lender.groupby("province_code").agg(["count", "max", "sum"])
    small = (provinces["count"] < 3) | (provinces["max"] / provinces["sum"] > 0.85)
    return set(provinces.index[small])


def _suppressed(frame: pd.DataFrame) -> pd.Series:
    return frame["disclosure_flag"].notna()


def test_planted_small_cell_and_its_complement_are_suppressed(first_run, settings, submitted):
    small = _planted(submitted)["small_cell"]["province_code"]
    assert _provinces_under_thresholds(submitted, settings) == {small}
    internal = _published(settings, "outsourcing_by_region", "internal").set_index("region_code")
    assert internal.loc[small, "reporting_lenders"] == 1  # the analysts' version is whole

    public = _published(settings, "outsourcing_by_region", "public")
    assert set(public["level"]) == {"national", "province"}
    row = public.set_index("region_code").loc[small]
    assert row[[*OUTSOURCING_MEASURES, "reporting_lenders", "outsourcing_share"]].isna().all()
    assert row["disclosure_flag"] == "x 保密 / suppressed"
    # The complement is the smallest other province with lenders (the documented heuristic;
    # an empty province, a zero row, protects nothing and is never chosen).
    provinces = internal[
        (internal["level"] == "province")
        & (internal.index != small)
        & (internal["reporting_lenders"] > 0)
    ]
    complement = provinces["overdue_balance"].astype(float).idxmin()
    assert set(public.loc[_suppressed(public), "region_code"]) == {small, complement}

    recovery = _published(settings, "recovery_by_bucket", "public")
    for bucket, cells in recovery.groupby("bucket"):
        withheld = set(cells.loc[_suppressed(cells), "region_code"])
        assert small in withheld and len(withheld) >= 2, bucket
        assert cells.loc[_suppressed(cells), list(RECOVERY_MEASURES)].isna().all().all()


def test_clean_cells_are_published(first_run, settings, submitted):
    small = _planted(submitted)["small_cell"]["province_code"]
    for table, measures in (
        ("outsourcing_by_region", OUTSOURCING_MEASURES),
        ("recovery_by_bucket", RECOVERY_MEASURES),
    ):
        public = _published(settings, table, "public")
        published = public[~_suppressed(public)]
        assert published[list(measures)].notna().all().all(), table
        assert (published["level"] == "national").sum() == public["level"].eq("national").sum()
        # Only the small province and complements: most provinces are published.
        withheld = public.loc[_suppressed(public), "region_code"]
        assert withheld.nunique() <= 3 and small in set(withheld), table
        assert len(published) > 0.8 * len(public), table


def _subtraction_attack(total: pd.DataFrame, parts: pd.DataFrame, by: list[str], pairs) -> list:
    """For every group (a total row and its part rows, matched on ``by``) and measure pair,
    recover a single empty cell by subtraction. Returns what was recovered."""
    recovered = []
    for total_measure, part_measure in pairs:
        totals = total.set_index(by)[total_measure].astype(float)
        part_sums = parts.groupby(by)[part_measure].apply(lambda s: s.astype(float).sum())
        unknown_parts = parts.groupby(by)[part_measure].apply(lambda s: s.isna().sum())
        groups = pd.DataFrame(
            {"total": totals, "part_sum": part_sums, "unknown_parts": unknown_parts}
        ).dropna(subset=["unknown_parts"])
        unknown = groups["unknown_parts"] + groups["total"].isna()
        for key, group in groups[unknown == 1].iterrows():
            value = (
                group["part_sum"] if pd.isna(group["total"]) else group["total"] - group["part_sum"]
            )
            recovered.append((total_measure, key, round(value, 2)))
    return recovered


def _attack_all(outsourcing: pd.DataFrame, recovery: pd.DataFrame) -> list:
    national = outsourcing[outsourcing["level"] == "national"]
    provinces = outsourcing[outsourcing["level"] == "province"]
    found = _subtraction_attack(
        national, provinces, ["period"], [(m, m) for m in OUTSOURCING_MEASURES]
    )
    found += _subtraction_attack(
        recovery[recovery["level"] == "national"],
        recovery[recovery["level"] == "province"],
        ["period", "bucket"],
        [(m, m) for m in RECOVERY_MEASURES],
    )
    # a region's total in outsourcing_by_region against its buckets in recovery_by_bucket
    found += _subtraction_attack(outsourcing, recovery, ["period", "region_code"], LINKED_MEASURES)
    return found


def test_no_suppressed_cell_can_be_recomputed_from_published_totals(first_run, settings, submitted):
    internal_out = _published(settings, "outsourcing_by_region", "internal")
    internal_rec = _published(settings, "recovery_by_bucket", "internal")
    public_out = _published(settings, "outsourcing_by_region", "public")
    public_rec = _published(settings, "recovery_by_bucket", "public")
    # The equations the attack uses really hold in the data: totals = sums of parts.
    by_region = internal_rec.groupby("region_code")["balance"].sum()
    totals = internal_out.set_index("region_code")["overdue_balance"]
    assert (by_region.reindex(totals.index) - totals).abs().max() < 0.01

    assert _attack_all(public_out, public_rec) == []

    # The attack works: with primary suppression only, it recovers the small province.
    small = _planted(submitted)["small_cell"]["province_code"]
    primary_only = []
    for frame in (internal_out, internal_rec):
        frame = frame[frame["level"].isin(["national", "province"])].copy()
        numeric = frame.select_dtypes("number").columns
        frame[numeric] = frame[numeric].astype(float)
        frame.loc[frame["region_code"] == small, numeric] = None
        primary_only.append(frame)
    recovered = {(measure, key): value for measure, key, value in _attack_all(*primary_only)}
    assert recovered[("overdue_balance", PERIOD)] == pytest.approx(totals.loc[small], abs=0.01)


def test_coverage_counts_match_the_planted_facts(first_run, settings, submitted):
    planted = _planted(submitted)["coverage"]
    coverage = _published(settings, "submission_coverage", "internal")
    national = coverage[coverage["level"] == "national"].iloc[0]
    for column in (
        "expected_institutions",
        "reporting_institutions",
        "expected_submissions",
        "on_time",
        "late",
        "missing",
        "rejected",
    ):
        assert national[column] == planted[column], column
    assert (planted["late"], planted["missing"], planted["rejected"]) == (1, 1, 1)
    assert national["awaiting_verification"] == 0
    assert national["institution_coverage_share"] == pytest.approx(
        planted["reporting_institutions"] / planted["expected_institutions"], abs=1e-6
    )
    # The missing agency is counted in its registered province, and only there.
    registry = _csvs(submitted, "institution_registry").merge(_regions(settings), on="region_code")
    missing = planted["planted"]["missing"]
    province = registry.loc[registry["uscc"] == missing, "province_code"].iloc[0]
    rows = coverage[coverage["level"] == "province"].set_index("region_code")
    expected_missing = (
        registry[registry["uscc"].isin([s["uscc"] for s in planted["missing_submissions"]])]
        .groupby("province_code")
        .size()
    )
    assert rows.loc[province, "missing"] == expected_missing.loc[province]
    assert rows["missing"].sum() == planted["missing"]
    # suspended and revoked institutions are not expected
    inactive = {s["uscc"] for s in _planted(submitted)["registry_statuses"]}
    assert len(inactive) == 2
    assert national["expected_institutions"] == registry["uscc"].nunique() - len(inactive)


def test_reconciliation_gaps_match_an_independent_computation(first_run, settings, submitted):
    rejected = _planted(submitted)["coverage"]["planted"]["rejected"]
    exclude = {p for p in submitted.files if p.parent.name == rejected and "caseload" in p.name}
    regions = _regions(settings)
    keys = ["lender_uscc", "agency_uscc", "prefecture"]
    assigned = _csvs(submitted, "agency_assignment").merge(regions, on="region_code")
    received = _csvs(submitted, "agency_caseload", exclude).merge(regions, on="region_code")
    lender = assigned.groupby(keys)[["cases_assigned", "balance_assigned"]].sum()
    agency = received.groupby(keys)[["cases_received", "balance_received"]].sum()
    expected = lender.join(agency, how="outer").fillna(0)
    expected["cases_gap"] = expected["cases_received"] - expected["cases_assigned"]
    expected["balance_gap"] = (expected["balance_received"] - expected["balance_assigned"]).round(2)
    relative = expected["balance_gap"] / expected["balance_assigned"].where(
        expected["balance_assigned"] != 0
    )
    expected["balance_flag"] = relative.abs() > 0.05

    published = _published(settings, "lender_agency_reconciliation", "internal")
    published = published[published["level"] == "prefecture"].rename(
        columns={"region_code": "prefecture"}
    )
    published = published.set_index(keys).sort_index()
    expected = expected.sort_index()
    assert list(published.index) == list(expected.index)
    assert (published["cases_gap"] == expected["cases_gap"]).all()
    assert published["balance_gap"].astype(float).round(2).tolist() == pytest.approx(
        expected["balance_gap"].tolist(), abs=0.005
    )
    assert (published["gap_flagged"] | ~expected["balance_flag"]).all()
    # the planted missing and rejected caseloads leave lender-only pairs, flagged
    lender_only = published[~published["agency_reported"]]
    planted = _planted(submitted)["coverage"]["planted"]
    assert set(lender_only.index.get_level_values("agency_uscc")) == {
        planted["missing"],
        planted["rejected"],
    }
    assert lender_only["gap_flagged"].all()
    assert published["gap_flagged"].sum() < len(published) / 2


# --- complaints and conduct ---------------------------------------------------------------

# The public activity tables: the breakdown their nation = sum of provinces holds within.
ACTIVITY_BREAKDOWN = {"complaints_by_region": "category", "conduct_compliance": None}


def _complaint_respondents(submitted, settings) -> pd.DataFrame:
    """One row per complaint (hotline copy preferred, respondents from any copy) with its
    province and the institution it counts for: the lender, else the agency, else the
    submitter."""
    complaints = _csvs(submitted, "complaints")
    own_key = complaints["source"] + ":" + complaints["submitter_uscc"] + ":"
    own_key += complaints["complaint_id"].astype(str)
    complaints["key"] = complaints["regulator_ref"].fillna(own_key)
    complaints["hotline"] = complaints["source"] == "hotline"
    complaints = complaints.sort_values(["key", "hotline"], ascending=[True, False])
    kept = complaints.groupby("key").agg(
        category=("category", "first"),
        region_code=("region_code", "first"),
        submitter_uscc=("submitter_uscc", "first"),
        lender=("respondent_lender_uscc", "first"),  # first non-empty copy
        agency=("respondent_agency_uscc", "first"),
    )
    kept["contributor"] = kept["lender"].fillna(kept["agency"]).fillna(kept["submitter_uscc"])
    return kept.merge(_regions(settings), on="region_code")


def _expected_suppression(contributions: pd.DataFrame, group: list[str]) -> set[tuple]:
    """The documented rule, recomputed: a cell (``group`` + region) is primary when 1 or 2
    institutions contribute or the largest holds over 85% (of ``weight``, else of the
    rows); a group (nation and provinces) with exactly one primary cell also loses its
    smallest non-zero published cell."""
    if "weight" not in contributions.columns:
        contributions = contributions.assign(weight=1)
    per_cell = contributions.groupby([*group, "region_code", "contributor"])["weight"].sum()
    cells = per_cell.groupby(level=[*group, "region_code"]).agg(["count", "max", "sum"])
    cells["primary"] = (cells["count"] < 3) | (cells["max"] / cells["sum"] > 0.85)
    keys = cells.index.to_frame(index=False)
    suppressed = set(map(tuple, keys[cells["primary"].to_numpy()].to_numpy()))
    for _, members in cells.groupby(level=group) if group else [(None, cells)]:
        if members["primary"].sum() == 1:
            candidates = members[~members["primary"]].reset_index()
            smallest = candidates.sort_values(["sum", "region_code"]).iloc[0]
            suppressed.add(tuple(smallest[[*group, "region_code"]]))
    return suppressed


def _activity_contributions(submitted, settings) -> dict[str, tuple[pd.DataFrame, list[str]]]:
    """Per public activity table: one row per unit (complaint, contact event) with its
    province, contributor and cell keys, at the nation and at its province."""
    complaints = _complaint_respondents(submitted, settings)
    events = _csvs(submitted, "contact_events").merge(_regions(settings), on="region_code")
    events = events.rename(columns={"agency_uscc": "contributor"})
    found = {}
    for table, units, group in (
        ("complaints_by_region", complaints, ["category"]),
        ("conduct_compliance", events, []),
    ):
        units = units[[*group, "province_code", "contributor"]]
        both_levels = pd.concat(
            [
                units.rename(columns={"province_code": "region_code"}),
                units.drop(columns="province_code").assign(region_code=tables.NATIONAL_CODE),
            ]
        )
        found[table] = (both_levels, group)
    return found


def test_complaints_and_conduct_suppress_exactly_the_small_cells(first_run, settings, submitted):
    small = _planted(submitted)["small_cell"]
    outsourcing = _published(settings, "outsourcing_by_region", "public").set_index("region_code")
    for table, (contributions, group) in _activity_contributions(submitted, settings).items():
        public = _published(settings, table, "public")
        assert set(public["level"]) == {"national", "province"}, table
        withheld = public[_suppressed(public)]
        found = set(map(tuple, withheld[[*group, "region_code"]].to_numpy()))
        assert found == _expected_suppression(contributions, group), table
        measures = list(tables.published_table(table).additive)
        measures = [m for m in measures if m in public.columns]
        assert withheld[measures].isna().all().all(), table
        published = public[~_suppressed(public)]
        assert published[measures].notna().all().all(), table
        # the planted province: one lender, served by one agency, suppressed wherever it has
        # complaints or contacts
        in_small = contributions[contributions["region_code"] == small["province_code"]]
        assert set(in_small["contributor"]) <= {small["lender_uscc"], small["agency_uscc"]}
        cells = public[public["region_code"] == small["province_code"]]
        assert len(cells) > 0 and len(in_small) > 0, table
        counted = set(map(tuple, in_small[group].drop_duplicates().to_numpy()))
        assert counted <= {tuple(row) for row in cells.loc[_suppressed(cells), group].to_numpy()}, (
            table
        )
    conduct = _published(settings, "conduct_compliance", "public").set_index("region_code")
    assert pd.isna(conduct.loc[small["province_code"], "contacts"])
    # The rate per 10,000 overdue accounts would give outsourcing's withheld overdue accounts.
    complaints = _published(settings, "complaints_by_region", "public")
    withheld_regions = set(outsourcing.index[outsourcing["disclosure_flag"].notna()])
    rates = complaints.loc[
        complaints["region_code"].isin(withheld_regions), "complaints_per_10k_overdue_accounts"
    ]
    assert len(rates) > 0 and rates.isna().all()
    assert "overdue_accounts" not in complaints.columns


def _attack_activity(publics: dict[str, pd.DataFrame]) -> list:
    found = []
    for table, breakdown in ACTIVITY_BREAKDOWN.items():
        frame = publics[table]
        by = ["period", *([breakdown] if breakdown else [])]
        pairs = [(m, m) for m in tables.published_table(table).additive if m in frame.columns]
        found += _subtraction_attack(
            frame[frame["level"] == "national"], frame[frame["level"] == "province"], by, pairs
        )
    return found


def test_no_suppressed_complaint_or_conduct_cell_can_be_recomputed(first_run, settings, submitted):
    publics = {table: _published(settings, table, "public") for table in ACTIVITY_BREAKDOWN}
    assert _attack_activity(publics) == []

    # The attack works: with the planted province withheld alone, its contacts come back.
    small = _planted(submitted)["small_cell"]["province_code"]
    internal = _published(settings, "conduct_compliance", "internal")
    primary_only = internal[internal["level"].isin(["national", "province"])].copy()
    numeric = primary_only.select_dtypes("number").columns
    primary_only[numeric] = primary_only[numeric].astype(float)
    truth = primary_only.set_index("region_code").loc[small, "contacts"]
    primary_only.loc[primary_only["region_code"] == small, numeric] = None
    recovered = {
        (measure, key): value
        for measure, key, value in _attack_activity({**publics, "conduct_compliance": primary_only})
    }
    assert recovered[("contacts", PERIOD)] == truth > 0


def test_flow_rates_are_published_only_where_last_months_source_cell_was(
    first_run, settings, months
):
    """A flow rate gives last month's balance of the bucket it flows from: published only
    where that cell passed disclosure control (M2, M3: last month's public file; M1: the
    unpublished M0 cell, recomputed here from last month's portfolios)."""
    public = _published(settings, "recovery_by_bucket", "public")
    internal = _published(settings, "recovery_by_bucket", "internal")
    before = _published(settings, "recovery_by_bucket", "public", BASE_PERIOD)
    portfolio = _csvs(months[BASE_PERIOD], "lender_portfolio").merge(
        _regions(settings), on="region_code"
    )
    current = portfolio[portfolio["bucket"] == "M0"].rename(
        columns={"lender_uscc": "contributor", "balance": "weight"}
    )[["province_code", "contributor", "weight"]]
    both_levels = pd.concat(
        [
            current.rename(columns={"province_code": "region_code"}),
            current.drop(columns="province_code").assign(region_code=tables.NATIONAL_CODE),
        ]
    )
    withheld_m0 = {region for (region,) in _expected_suppression(both_levels, [])}
    assert _planted(months[BASE_PERIOD])["small_cell"]["province_code"] in withheld_m0

    flows_from = {"M1": "M0", "M2": "M1", "M3": "M2"}
    regions = public[["region_code"]].drop_duplicates()
    sources = pd.concat(
        [
            before[["bucket", "region_code"]].assign(withheld=_suppressed(before).to_numpy()),
            regions.assign(bucket="M0", withheld=regions["region_code"].isin(withheld_m0)),
        ]
    ).rename(columns={"bucket": "source"})
    internal = internal[["region_code", "bucket", "flow_rate"]].rename(
        columns={"flow_rate": "internal_flow_rate"}
    )
    rows = (
        public.assign(source=public["bucket"].map(flows_from))
        .merge(sources, on=["source", "region_code"], how="left")
        .merge(internal, on=["region_code", "bucket"])
    )
    # a source cell missing last month was never checked: withheld
    publishable = (
        rows["source"].notna()
        & ~_suppressed(rows)
        & ~rows["withheld"].astype("boolean").fillna(True)
    )
    assert rows.loc[~publishable, "flow_rate"].isna().all()
    shown = rows[publishable]
    same = (shown["flow_rate"] - shown["internal_flow_rate"]).abs() < 1e-9
    assert (same | (shown["flow_rate"].isna() & shown["internal_flow_rate"].isna())).all()
    national = public[public["level"] == "national"].set_index("bucket")["flow_rate"]
    assert national[list(flows_from)].notna().all()
    # most published cells with data have their flow rate: the rule withholds only the small
    # cells (an expected region without reporters is an empty row, with nothing to flow)
    flowing = public[
        public["bucket"].isin(list(flows_from))
        & ~_suppressed(public)
        & (public["reporting_lenders"] > 0)
    ]
    assert flowing["flow_rate"].notna().mean() > 0.8


def test_a_build_from_another_project_folder_parses_the_project_again(
    first_run, settings, tmp_path
):
    """A release deployed to a new folder: dbt's parse of the old folder keeps absolute
    paths (each seed's CSV). Started from it, a full build read the old folder's seeds
    while that folder was there, and failed every seed once it was gone ("No files found
    that match the pattern .../seeds/buckets.csv"). It must parse the new folder."""
    moved = replace(settings, project_dir=tmp_path / "release-2")
    shutil.copytree(settings.dbt_project_dir, moved.dbt_project_dir)

    build = pipeline.build(moved, [PERIOD], AS_OF, full_refresh=True)

    run = settings.state_dir / "dbt" / build["run_id"]
    assert "Partial parsing enabled" not in (run / "logs" / "dbt.log").read_text()
    seeds = [
        result
        for result in json.loads((run / "target" / "run_results.json").read_text())["results"]
        if result["unique_id"].startswith("seed.")
    ]
    assert seeds and all(result["status"] == "success" for result in seeds)
    Path(build["candidate"]).unlink()  # never published


# --- these change the published state: keep them last ------------------------------------


def _version_dirs(settings, periods: list[str]) -> dict[str, list[str]]:
    return {
        period: sorted(p.name for p in (settings.publish_dir / period).iterdir())
        for period in periods
    }


def _assert_a_full_build_publishes_the_same_files(
    settings, periods=(PERIOD,), as_of: str = AS_OF
) -> None:
    """A full build from the raw zone stages byte-identical data files, so a night would
    publish no new version: release's own test (publish.prepare_version) on the pipeline's
    own build and export, without the DAGs and the gate around them (~11 s of each of
    these nights; test_full_refresh_gives_the_same_publication runs that night through the
    DAGs). The build leaves out the unit tests (~5 s): they test the project's code on
    fixtures, which the session's first run tested, not the data compared here."""
    build = pipeline.build(
        replace(settings, dbt_unit_tests=False), list(periods), as_of, full_refresh=True
    )
    try:
        for period in periods:
            staged = stage_period(settings, Path(build["candidate"]), period, build["run_id"])
            published = latest_manifest(settings, period)["files"]
            assert data_file_hashes(data_files(staged)) == data_file_hashes(published)
            shutil.rmtree(staged)
    finally:
        Path(build["candidate"]).unlink()  # never published


def _executed_sql_dir(settings, manifest: dict) -> Path:
    """The folder of the SQL dbt ran in the build of a publication's ``manifest``."""
    return settings.state_dir / "dbt" / manifest["run_id"] / "target" / "run" / "collectwatch"


def test_full_refresh_gives_the_same_publication(first_run, settings):
    before = _version_dirs(settings, [PERIOD])
    outcome = run_embedded(settings, [PERIOD], full_refresh=True, as_of=AS_OF)
    assert outcome["state"] == "success", outcome
    assert _version_dirs(settings, [PERIOD]) == before


def test_a_registry_change_is_kept_in_the_snapshot_history(first_run, settings, submitted):
    registry_file = next(p for p in submitted.files if p.name.startswith("institution_registry"))
    registry = pd.read_csv(registry_file, dtype=str, keep_default_na=False)
    lenders = registry[(registry["role"] == "lender") & (registry["status"] == "active")]
    changed = lenders["uscc"].min()
    registry.loc[registry["uscc"] == changed, "status"] = "suspended"
    landed = settings.landing_dir / registry_file.parent.name / registry_file.name
    landed.parent.mkdir(parents=True, exist_ok=True)
    registry.to_csv(landed, index=False)

    outcome = run_embedded(settings, [PERIOD], as_of=AS_OF)

    assert outcome["state"] == "success", outcome
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    history = con.execute(
        "select uscc, status, dbt_valid_to is null as current "
        "from institution_registry_history order by uscc, dbt_valid_from"
    ).df()
    con.close()
    versions = history[history["uscc"] == changed]
    assert versions[["status", "current"]].values.tolist() == [
        ["active", False],
        ["suspended", True],
    ]
    others = history[history["uscc"] != changed]
    assert others["current"].all() and others["uscc"].is_unique
    coverage = _published(settings, "submission_coverage", "internal")
    planted = _planted(submitted)["coverage"]
    national = coverage[coverage["level"] == "national"].iloc[0]
    assert national["expected_institutions"] == planted["expected_institutions"] - 1


def _corrected_contact_log(settings, submitted) -> str:
    """The largest agency's contact log again, corrected: the contacts it had recorded as
    to an emergency contact were to the debtor (fewer third-party contacts)."""
    log = max(
        (p for p in submitted.files if p.name.startswith("contact_events__")),
        key=lambda p: p.stat().st_size,
    )
    events = pd.read_csv(log, dtype=str, keep_default_na=False)
    corrected = events["target"] == "emergency_contact"
    assert corrected.any()
    events.loc[corrected, "target"] = "debtor"
    return _land_again(settings, log, events)


def _land_again(settings, original: Path, corrected: pd.DataFrame) -> str:
    """``corrected`` landed under ``original``'s name by its submitter; the submitter."""
    landed = settings.landing_dir / original.parent.name / original.name
    landed.parent.mkdir(parents=True, exist_ok=True)
    corrected.to_csv(landed, index=False)
    return original.parent.name


def _republished(settings, resubmitted: str) -> dict:
    """The night after a resubmission by ``resubmitted`` (a submitter): its new version's
    manifest."""
    before = latest_manifest(settings, PERIOD)
    outcome = run_embedded(settings, [PERIOD], as_of=AS_OF)
    assert outcome["state"] == "success", outcome
    after = latest_manifest(settings, PERIOD)
    assert after["version"] == before["version"] + 1, resubmitted
    return after


def _agencies_with_contact_logs(submitted) -> int:
    return len({p.parent.name for p in submitted.files if p.name.startswith("contact_events__")})


def test_a_corrected_contact_log_rebuilds_what_it_feeds_as_a_full_build_would(
    first_run, settings, submitted
):
    before = latest_manifest(settings, PERIOD)
    agency = _corrected_contact_log(settings, submitted)
    after = _republished(settings, agency)
    # a partial build (other tests of the session may have submitted other types since)
    assert after["dbt_selection"][:1] == ["stg_submissions+"]
    assert "stg_contact_events+" in after["dbt_selection"]
    changed = after["previous"]["submissions"]
    assert [s.split("-")[0] for s in changed["added"]] == [agency]
    # the contact events' per-agency models re-sorted this agency's events, not the month's
    rebuilt = after["dbt_changed_submitters"]["contact_events"]
    assert agency in rebuilt and len(rebuilt) < _agencies_with_contact_logs(submitted)
    # dbt started from the first build's parse instead of parsing the project again
    dbt_log = (settings.state_dir / "dbt" / after["run_id"] / "logs" / "dbt.log").read_text()
    assert "Partial parsing enabled" in dbt_log and "Unable to do partial parsing" not in dbt_log
    executed = _executed_sql_dir(settings, after)
    flagged = (executed / "models/intermediate/int_contact_events_flagged.sql").read_text()
    assert "delete from" in flagged and f"'{agency}'" in flagged
    # and the data tests of those models test the rebuilt agencies' rows
    (uniqueness,) = (executed / "models/staging/stg_contact_events.yml").glob("unique_*.sql")
    tested = uniqueness.read_text()
    assert "and agency_uscc in (" in tested and f"'{agency}'" in tested
    internal = {path for path in after["files"] if path.startswith("internal/")}
    differing = {
        p
        for p in internal
        if after["files"][p]["sha256"] != before["files"].get(p, {}).get("sha256")
    }
    assert any("conduct_compliance" in path for path in differing)
    assert not any("outsourcing_by_region" in path for path in differing)
    _assert_a_full_build_publishes_the_same_files(settings)


def _corrected_portfolio(settings, submitted) -> str:
    """A lender's portfolio again, corrected: one row's in-house recoveries a cent lower."""
    report = min(p for p in submitted.files if p.name.startswith("lender_portfolio__"))
    rows = pd.read_csv(report, dtype=str, keep_default_na=False)
    row = rows.index[rows["recovered_inhouse"].map(Decimal) > 0][0]
    rows.loc[row, "recovered_inhouse"] = str(Decimal(rows.loc[row, "recovered_inhouse"]) - CENT)
    return _land_again(settings, report, rows)


def test_a_corrected_portfolio_rebuilds_its_lenders_rows_as_a_full_build_would(
    first_run, settings, submitted
):
    """The lenders' placed rows (int_portfolio_by_prefecture, materialization
    replace_slice) are rebuilt for the lender that resubmitted only, and what is published
    is what a full build from the raw zone publishes."""
    lender = _corrected_portfolio(settings, submitted)
    after = _republished(settings, lender)
    assert "stg_lender_portfolio+" in after["dbt_selection"]
    assert after["dbt_changed_submitters"]["lender_portfolio"] == [lender]
    executed = _executed_sql_dir(settings, after)
    placed = (executed / "models/intermediate/int_portfolio_by_prefecture.sql").read_text()
    assert "delete from" in placed and f"lender_uscc in ('{lender}')" in placed
    _assert_a_full_build_publishes_the_same_files(settings)


def _corrected_complaints(settings, submitted) -> str:
    """A lender's complaints again, corrected: one complaint of its own and its copy of one
    the hotline forwarded are withdrawn."""
    regulator = settings.regulator_uscc
    for report in sorted(p for p in submitted.files if p.name.startswith("complaints__")):
        rows = pd.read_csv(report, dtype=str, keep_default_na=False)
        copies, own = (
            rows.index[rows["regulator_ref"] != ""],
            rows.index[rows["regulator_ref"] == ""],
        )
        if report.parent.name != regulator and len(copies) and len(own) > 1:
            return _land_again(settings, report, rows.drop([copies[0], own[0]]))
    raise AssertionError("no lender filed both its own complaints and a forwarded copy")


def test_a_corrected_complaints_file_rebuilds_its_complaints_as_a_full_build_would(
    first_run, settings, submitted
):
    """The complaint copies (int_complaint_copies) are rebuilt for the submitter that
    resubmitted only, the deduplicated complaints by key (those with a copy in the night's
    month, from their copies of every month), and what is published is what a full build
    from the raw zone publishes."""
    submitter = _corrected_complaints(settings, submitted)
    after = _republished(settings, submitter)
    assert "stg_complaints+" in after["dbt_selection"]
    assert after["dbt_changed_submitters"]["complaints"] == [submitter]
    executed = _executed_sql_dir(settings, after)
    copies = (executed / "models/intermediate/int_complaint_copies.sql").read_text()
    assert "delete from" in copies and f"submitter_uscc in ('{submitter}')" in copies
    kept = (executed / "models/intermediate/int_complaints_deduplicated.sql").read_text()
    assert f"list_has_any(\"copy_periods\", ['{PERIOD}'])" in kept
    _assert_a_full_build_publishes_the_same_files(settings)


# A month before the first: a lender's or agency's late first submissions of an earlier month.
EARLIER_PERIOD = "2026-08"


def test_a_new_month_is_built_whole_beside_a_corrected_months_slices_as_a_full_build_would(
    first_run, settings, submitted, tmp_path
):
    """One night takes in a month never published and one agency's corrected log of a
    published month: the new month is built whole (every submitter's rows), the corrected
    month's per-agency rows for that agency only (not for the new month's agencies), and
    what is published for both is what a full build from the raw zone publishes."""
    earlier = generate_month(settings, EARLIER_PERIOD, tmp_path / "earlier", seed=11)
    shutil.copytree(
        earlier.out_dir,
        settings.landing_dir,
        ignore=shutil.ignore_patterns("*.json"),
        dirs_exist_ok=True,
    )
    log = min(
        (p for p in submitted.files if p.name.startswith("contact_events__")),
        key=lambda p: p.stat().st_size,
    )
    events = pd.read_csv(log, dtype=str, keep_default_na=False)
    agency = _land_again(settings, log, events.iloc[1:])  # its first event withdrawn

    outcome = run_embedded(settings, [EARLIER_PERIOD, PERIOD], as_of=AS_OF)

    assert outcome["state"] == "success", outcome
    after = latest_manifest(settings, PERIOD)
    assert after["dbt_selection"] is None  # every node: the new month has every type
    assert after["dbt_whole_periods"] == [EARLIER_PERIOD]
    assert after["dbt_changed_submitters"] == {"contact_events": [agency]}
    new_agencies = {p.parent.name for p in earlier.files if p.name.startswith("contact_events__")}
    assert new_agencies - {agency}  # agencies whose 2026-10 rows were not rebuilt
    executed = _executed_sql_dir(settings, after)
    flagged = (executed / "models/intermediate/int_contact_events_flagged.sql").read_text()
    assert "delete from" in flagged
    assert f"period in ('{EARLIER_PERIOD}') or" in flagged
    assert f"agency_uscc in ('{agency}')" in flagged
    assert latest_manifest(settings, EARLIER_PERIOD)["version"] == 1
    _assert_a_full_build_publishes_the_same_files(settings, [EARLIER_PERIOD, PERIOD])


# After 2026-10's due date (15 November, 23:59:59 +08:00): 2026-10 turns final.
AFTER_DUE = "2026-11-20T09:00:00+08:00"


def test_a_correction_after_the_due_date_restates_every_mart_but_one_agencys_slice(
    first_run, settings, submitted
):
    """An agency corrects its 2026-10 log after the due date, and 2026-10 was published
    preliminary: every mart is rebuilt (release_status turns final), the per-agency rows
    for that agency only, and what is published is what a full build publishes."""
    logs = sorted(
        (p for p in submitted.files if p.name.startswith("contact_events__")),
        key=lambda p: p.stat().st_size,
    )
    log = logs[1]  # not one an earlier test corrected (the smallest, the largest)
    events = pd.read_csv(log, dtype=str, keep_default_na=False)
    agency = _land_again(settings, log, events.iloc[:-1])  # its last event withdrawn

    outcome = run_embedded(settings, [PERIOD], as_of=AFTER_DUE)

    assert outcome["state"] == "success", outcome
    after = latest_manifest(settings, PERIOD)
    assert after["as_of"] == AFTER_DUE
    assert after["dbt_selection"] is None and after["dbt_whole_periods"] == []
    assert after["dbt_changed_submitters"] == {"contact_events": [agency]}
    assert set(_published(settings, "outsourcing_by_region", "internal")["release_status"]) == {
        "final"
    }
    executed = _executed_sql_dir(settings, after)
    flagged = (executed / "models/intermediate/int_contact_events_flagged.sql").read_text()
    assert "delete from" in flagged and f"agency_uscc in ('{agency}')" in flagged
    _assert_a_full_build_publishes_the_same_files(settings, as_of=AFTER_DUE)


def _hotline_file(settings, month) -> Path:
    (path,) = (
        p
        for p in month.files
        if p.name.startswith("complaints__") and p.parent.name == settings.regulator_uscc
    )
    return path


def _complaints_total(settings, period: str) -> int:
    published = _published(settings, "complaints_by_region", "internal", period)
    return int(published.loc[published["level"] == "national", "complaints"].sum())


def test_a_hotline_record_filed_a_month_late_moves_its_complaint_out_of_the_earlier_month(
    first_run, settings, months
):
    """The hotline's record of a complaint a lender reported in 2026-09 is filed with
    2026-10 instead (one night takes it out of 2026-09's file, the next adds it to
    2026-10's): the hotline's record is kept (DESIGN Decision 13), so the complaint leaves
    2026-09's tables. The planned night rebuilds 2026-09 though only 2026-10's inputs
    changed, and publishes what a full build publishes."""
    base_file = _hotline_file(settings, months[BASE_PERIOD])
    base = pd.read_csv(base_file, dtype=str, keep_default_na=False)
    moved = base.iloc[0].copy()
    # Every generated hotline record has a lender's or agency's copy with the same fields, so
    # dropping one alone changes no published byte. Another complaint's category is changed
    # too, so night 1 publishes a new 2026-09 version for certain: night 2 then finds
    # 2026-09's inputs as that version lists them, and only the complaint link replans it.
    recategorised = base.iloc[1:].copy()
    first = recategorised.index[0]
    recategorised.loc[first, "category"] = next(
        c for c in sorted(set(base["category"])) if c != recategorised.loc[first, "category"]
    )
    _land_again(settings, base_file, recategorised)
    before_night_1 = latest_manifest(settings, BASE_PERIOD)
    assert run_embedded(settings, [BASE_PERIOD], as_of=AFTER_DUE)["state"] == "success"
    before = latest_manifest(settings, BASE_PERIOD)
    assert before["version"] == before_night_1["version"] + 1
    assert before["input_submissions"] == pipeline.current_inputs(settings)[BASE_PERIOD]
    complaints_before = _complaints_total(settings, BASE_PERIOD)

    later_file = _hotline_file(settings, months[PERIOD])
    later = pd.read_csv(later_file, dtype=str, keep_default_na=False)
    moved["period"] = PERIOD
    moved["complaint_id"] = "LATE-" + moved["complaint_id"]
    for moment in ("received_at", "resolved_at"):
        moved[moment] = later.iloc[0][moment]
    _land_again(settings, later_file, pd.concat([later, moved.to_frame().T]))
    # Planned as the night after 2026-10 closes: 2026-10 is the only period with new inputs.
    night = datetime(2026, 11, 20, 2, 0, tzinfo=CHINA_TZ)
    outcome = run_embedded(settings, [], as_of=AFTER_DUE, run_after=night)

    assert outcome["state"] == "success", outcome
    after = latest_manifest(settings, BASE_PERIOD)
    assert after["version"] == before["version"] + 1
    assert after["input_submissions"] == before["input_submissions"]  # none changed in night 2
    assert _complaints_total(settings, BASE_PERIOD) == complaints_before - 1
    _assert_a_full_build_publishes_the_same_files(settings, [BASE_PERIOD, PERIOD], as_of=AFTER_DUE)
