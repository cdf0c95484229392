"""End to end: the planted conduct, complaint and outsourcing facts are found exactly, and
no clean institution is flagged. Every expected figure is computed here in pandas from the
submitted CSV files (and the conduct_rules / supervision_thresholds seeds), not by the
product's SQL; the pipeline run is the one shared with test_pipeline.py.
"""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import pytest

from collectwatch.config import Settings

from .conftest import BASE_PERIOD, PERIOD, published

pytestmark = pytest.mark.e2e

TELEPHONY = {"call", "sms", "ai_voice"}


def _seed(settings: Settings, name: str) -> pd.DataFrame:
    return pd.read_csv(settings.dbt_project_dir / "seeds" / f"{name}.csv", dtype=str)


def _csvs(month, submission_type: str) -> pd.DataFrame:
    return pd.concat(
        pd.read_csv(path, dtype={"region_code": str, "regulator_ref": str})
        for path in month.files
        if path.name.startswith(f"{submission_type}__")
    )


def _planted(month) -> dict:
    return json.loads(month.planted_path.read_text())


@pytest.fixture(scope="module")
def rules(settings) -> dict[str, float]:
    conduct = _seed(settings, "conduct_rules").set_index("rule_id")
    thresholds = _seed(settings, "supervision_thresholds").set_index("threshold_id")
    return {
        "window_start_hour": int(conduct.loc["out_of_hours", "window_start"][:2]),
        "window_end_hour": int(conduct.loc["out_of_hours", "window_end"][:2]),
        "max_contacts": int(conduct.loc["over_frequency", "limit_count"]),
        "bombing_calls": int(conduct.loc["call_bombing", "limit_count"]),
        "bombing_minutes": int(conduct.loc["call_bombing", "window_minutes"]),
        **{key: float(value) for key, value in thresholds["threshold"].items()},
    }


@pytest.fixture(scope="module")
def events(settings, submitted) -> pd.DataFrame:
    """This month's contact events in local time, each with its prefecture-equivalent."""
    frame = _csvs(submitted, "contact_events")
    regions = _seed(settings, "regions")
    frame = frame.merge(regions[["region_code", "prefecture_code"]], on="region_code")
    frame["prefecture"] = frame["prefecture_code"].fillna(frame["region_code"])
    # The offset in the file is +08:00 already; parse it to UTC and back so any offset works.
    instants = pd.to_datetime(frame["contact_at"], utc=True)
    frame["instant"] = instants
    frame["local"] = instants.dt.tz_convert("Asia/Shanghai")
    return frame


def _out_of_hours(events: pd.DataFrame, rules: dict) -> pd.Series:
    hour = events["local"].dt.hour
    return (hour < rules["window_start_hour"]) | (hour >= rules["window_end_hour"])


def _bombing_episode_starts(events: pd.DataFrame, rules: dict) -> pd.DataFrame:
    """Calls with at least N calls of the agency to the debtor in the window up to and
    including them, and the first of each run of such calls."""
    calls = events[events["channel"] == "call"].sort_values(
        ["agency_uscc", "debtor_ref", "instant", "event_id"]
    )
    window = pd.Timedelta(minutes=rules["bombing_minutes"])
    in_window = (
        calls.set_index("instant")
        .groupby(["agency_uscc", "debtor_ref"])["event_id"]
        .rolling(window, closed="both")
        .count()
        .to_numpy()
    )
    calls = calls.assign(bombing=in_window >= rules["bombing_calls"])
    previous = calls.groupby(["agency_uscc", "debtor_ref"])["bombing"].shift(fill_value=False)
    return calls[calls["bombing"] & ~previous]


def _deduplicated_complaints(month) -> pd.DataFrame:
    complaints = _csvs(month, "complaints")
    own_key = (
        complaints["period"] + ":" + complaints["source"] + ":"
        + complaints["submitter_uscc"] + ":" + complaints["complaint_id"]
    )  # fmt: skip
    complaints["key"] = complaints["regulator_ref"].fillna(own_key)
    complaints["is_hotline"] = complaints["source"] == "hotline"
    complaints = complaints.sort_values(["key", "is_hotline"], ascending=[True, False])
    return complaints.drop_duplicates("key")


def _outsourcing_share(month) -> pd.Series:
    portfolio = _csvs(month, "lender_portfolio")
    overdue = portfolio[portfolio["bucket"] != "M0"].groupby("lender_uscc")
    return overdue["balance_outsourced"].sum() / overdue["balance"].sum()


def _warehouse(settings: Settings, query: str, parameters: list) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(query, parameters).fetchall()
    finally:
        con.close()


# --- conduct -----------------------------------------------------------------------------


def test_out_of_hours_agency_is_found_in_its_prefecture(
    first_run, settings, submitted, events, rules
):
    planted = _planted(submitted)["out_of_hours_agency"]
    night = events[_out_of_hours(events, rules)]
    by_cell = night.groupby(["agency_uscc", "prefecture"]).size()
    assert by_cell.idxmax() == (planted["agency_uscc"], planted["prefecture_code"])
    assert by_cell.max() == planted["out_of_hours_contacts"]

    conduct = published(settings, "conduct_compliance").set_index("region_code")
    cell = conduct.loc[planted["prefecture_code"]]
    prefecture_events = events[events["prefecture"] == planted["prefecture_code"]]
    assert cell["out_of_hours_contacts"] == _out_of_hours(prefecture_events, rules).sum()
    assert cell["contacts"] == len(prefecture_events)
    assert conduct.loc["000000", "out_of_hours_contacts"] == len(night)
    assert conduct.loc["000000", "out_of_hours_share"] == pytest.approx(
        len(night) / len(events), abs=1e-6
    )
    [(found,)] = _warehouse(
        settings,
        "select out_of_hours_contacts from int_conduct_by_agency_lender_prefecture "
        "where period = ? and agency_uscc = ? and prefecture_code = ?",
        [PERIOD, planted["agency_uscc"], planted["prefecture_code"]],
    )
    assert found == planted["out_of_hours_contacts"]


def test_call_bombing_is_the_planted_debtor_only(first_run, settings, submitted, events, rules):
    planted = _planted(submitted)["call_bombing"]
    starts = _bombing_episode_starts(events, rules)
    assert list(zip(starts["agency_uscc"], starts["debtor_ref"], strict=True)) == [
        (planted["agency_uscc"], planted["debtor_ref"])
    ]
    national = published(settings, "conduct_compliance").set_index("region_code").loc["000000"]
    assert national["call_bombing_episodes"] == 1
    assert national["call_bombing_debtors"] == 1
    debtors = _warehouse(
        settings,
        "select distinct agency_uscc, debtor_ref from int_contact_events_flagged "
        "where period = ? and is_call_bombing",
        [PERIOD],
    )
    assert debtors == [(planted["agency_uscc"], planted["debtor_ref"])]


def test_over_frequency_debtor_days_match_an_independent_count(first_run, settings, events, rules):
    telephony = events[events["channel"].isin(TELEPHONY)]
    per_day = telephony.groupby(["agency_uscc", "debtor_ref", telephony["local"].dt.date]).size()
    national = published(settings, "conduct_compliance").set_index("region_code").loc["000000"]
    assert national["contacted_debtor_days"] == len(per_day)
    assert national["over_frequency_debtor_days"] == (per_day > rules["max_contacts"]).sum() >= 1
    assert (
        national["over_frequency_contacts"]
        == (per_day[per_day > rules["max_contacts"]] - rules["max_contacts"]).sum()
    )
    assert national["virtual_number_contacts"] == (telephony["number_type"] == "virtual").sum()
    is_third_party = events["target"].isin(["emergency_contact", "family", "third_party"])
    assert national["third_party_contacts"] == is_third_party.sum()


# --- complaints --------------------------------------------------------------------------


def test_complaints_are_deduplicated_and_compared_with_last_month(first_run, settings, months):
    current = _deduplicated_complaints(months[PERIOD]).groupby("category").size()
    previous = _deduplicated_complaints(months[BASE_PERIOD]).groupby("category").size()
    table = published(settings, "complaints_by_region")
    national = table[table["level"] == "national"].set_index("category")
    for category, count in current.items():
        assert national.loc[category, "complaints"] == count, category
        assert national.loc[category, "complaints_previous_month"] == previous.get(category, 0)
    assert national["complaints_previous_year"].isna().all()
    first = published(settings, "complaints_by_region", BASE_PERIOD)
    assert first["complaints_previous_month"].isna().all()


def test_complaint_spike_agency_has_the_highest_rate(first_run, settings, submitted, rules):
    planted = _planted(submitted)["complaint_spike_agency"]
    complaints = _deduplicated_complaints(submitted).groupby("respondent_agency_uscc").size()
    cases = _csvs(submitted, "agency_caseload").groupby("agency_uscc")["cases_received"].sum()
    rate = (complaints.reindex(cases.index, fill_value=0) * 10_000 / cases).sort_values()
    assert rate.index[-1] == planted["agency_uscc"]
    assert rate.iloc[-1] >= rules["complaints_per_10k_cases"] > rate.iloc[-2]
    watchlist = published(settings, "agency_watchlist").set_index("agency_uscc")
    assert watchlist.loc[planted["agency_uscc"], "complaints_per_10k_cases"] == pytest.approx(
        rate.iloc[-1], abs=1e-6
    )


# --- the watchlist and the lenders -------------------------------------------------------


@pytest.mark.parametrize("period", [BASE_PERIOD, PERIOD])
def test_watchlist_holds_exactly_the_planted_agencies(first_run, settings, months, period):
    planted = _planted(months[period])
    watchlist = published(settings, "agency_watchlist", period).set_index("agency_uscc")
    night = planted["out_of_hours_agency"]["agency_uscc"]
    bombing = planted["call_bombing"]["agency_uscc"]
    assert sorted(watchlist.index) == sorted({night, bombing})
    assert not set(watchlist.index) & set(planted["clean_agencies"])
    assert watchlist.loc[night, "breached_thresholds"] == "out_of_hours_share"
    assert watchlist.loc[bombing, "breached_thresholds"] == (
        "call_bombing_episodes;complaints_per_10k_cases"
    )


def test_outsourcing_jump_flags_the_planted_lender_only(first_run, settings, months, rules):
    clean_lenders = _planted(months[PERIOD])["clean_lenders"]
    planted = _planted(months[PERIOD])["outsourcing_share_jump"]
    assert planted["jumps_in_this_period"] and planted["base_period"] == BASE_PERIOD
    change = _outsourcing_share(months[PERIOD]) - _outsourcing_share(months[BASE_PERIOD])
    assert change.idxmax() == planted["lender_uscc"]
    assert change.max() >= rules["outsourcing_share_jump"] > change.drop(change.idxmax()).max()
    flagged = _warehouse(
        settings,
        "select lender_uscc, outsourcing_share_change from lender_supervision "
        "where period = ? and outsourcing_share_jumped",
        [PERIOD],
    )
    [(lender, found_change)] = flagged
    assert lender == planted["lender_uscc"] not in clean_lenders
    assert found_change == pytest.approx(change.max(), abs=2e-6)
    assert not _warehouse(
        settings,
        "select lender_uscc from lender_supervision where period = ? and outsourcing_share_jumped",
        [BASE_PERIOD],
    )


def test_flow_rates_compare_with_the_previous_month(first_run, settings, months):
    def national_balance(month) -> pd.Series:
        return _csvs(month, "lender_portfolio").groupby("bucket")["balance"].sum()

    now, before = national_balance(months[PERIOD]), national_balance(months[BASE_PERIOD])
    recovery = published(settings, "recovery_by_bucket")
    national = recovery[recovery["level"] == "national"].set_index("bucket")
    for bucket, source in (("M1", "M0"), ("M2", "M1"), ("M3", "M2")):
        assert national.loc[bucket, "flow_rate"] == pytest.approx(
            now[bucket] / before[source], abs=1e-6
        )
    assert national.loc[["M4_6", "M7_12", "M12P"], "flow_rate"].isna().all()
    assert published(settings, "recovery_by_bucket", BASE_PERIOD)["flow_rate"].isna().all()
