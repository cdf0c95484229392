"""The published regional tables: what identifies a row, which measures add up across
levels and which are shares. Publication (sort order, file names) and the gate
(uniqueness, cross-level totals, ranges) both read this one registry; the columns and
their types are the dbt model contracts in ``dbt_project/models/marts``.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("national", "province", "prefecture")
NATIONAL_CODE = "000000"
RELEASE_STATUSES = ("preliminary", "final", "revised")
REGION_COLUMNS = (
    "period",
    "level",
    "region_code",
    "region_name_zh",
    "region_name_en",
    "parent_region_code",
)


@dataclass(frozen=True)
class PublishedTable:
    name: str
    # Columns that identify a row (unique within the table).
    key: tuple[str, ...]
    # Measures that must add up: national = sum of provinces = sum of prefectures,
    # within each combination of ``breakdown`` columns.
    additive: tuple[str, ...]
    # Fractions that must lie in [0, 1] (blocking).
    shares: tuple[str, ...]
    # Rates that may exceed 1 in real data (e.g. recovery of older debt): a warning.
    rates_warn_above_one: tuple[str, ...] = ()
    breakdown: tuple[str, ...] = ()
    # Scopes the table is published in (public needs disclosure control: issue 5).
    scopes: tuple[str, ...] = ("internal",)
    # A regional table has a row per level and region that must add up across levels; a
    # list of institutions (agency_watchlist) has neither, and may rightly be empty.
    regional: bool = True


# The conduct rules' counts and shares (dbt macros conduct_count_columns, conduct_shares).
CONDUCT_COUNTS = (
    "contacts",
    "calls",
    "telephony_contacts",
    "visits",
    "contacted_debtor_days",
    "out_of_hours_contacts",
    "over_frequency_contacts",
    "over_frequency_debtor_days",
    "third_party_contacts",
    "emergency_contact_contacts",
    "family_contacts",
    "other_third_party_contacts",
    "virtual_number_contacts",
    "postcard_contacts",
    "campus_visits",
    "call_bombing_calls",
    "call_bombing_episodes",
    "call_bombing_debtors",
)
CONDUCT_SHARES = (
    "out_of_hours_share",
    "over_frequency_share",
    "third_party_share",
    "virtual_number_share",
    "postcard_share",
    "campus_visit_share",
    "call_bombing_share",
)

PUBLISHED_TABLES: tuple[PublishedTable, ...] = (
    PublishedTable(
        name="outsourcing_by_region",
        key=("period", "level", "region_code"),
        additive=(
            "overdue_accounts",
            "overdue_balance",
            "outsourced_accounts",
            "outsourced_balance",
            "agency_amount_recovered",
            "commission_paid",
        ),
        shares=("outsourcing_share", "average_commission_rate"),
    ),
    PublishedTable(
        name="recovery_by_bucket",
        key=("period", "level", "region_code", "bucket"),
        breakdown=("bucket",),
        additive=(
            "accounts",
            "balance",
            "balance_outsourced",
            "recovered_inhouse",
            "recovered_outsourced",
            "written_off",
            "sold_balance",
        ),
        shares=("outsourced_share", "write_off_rate", "sale_rate"),
        rates_warn_above_one=("recovery_rate_inhouse", "recovery_rate_outsourced"),
    ),
    PublishedTable(
        name="conduct_compliance",
        key=("period", "level", "region_code"),
        additive=CONDUCT_COUNTS,
        shares=CONDUCT_SHARES,
    ),
    PublishedTable(
        name="complaints_by_region",
        key=("period", "level", "region_code", "category"),
        breakdown=("category",),
        additive=(
            "complaints",
            "attributed_to_lender",
            "attributed_to_agency",
            "attributed_to_both",
            "overdue_accounts",
            "complaints_not_withdrawn",
            "resolved_in_time",
        ),
        shares=("timely_resolution_share",),
    ),
    PublishedTable(
        name="agency_watchlist",
        key=("period", "agency_uscc"),
        additive=(),
        shares=tuple(share for share in CONDUCT_SHARES if share != "call_bombing_share"),
        regional=False,
    ),
)


def published_table(name: str) -> PublishedTable:
    for table in PUBLISHED_TABLES:
        if table.name == name:
            return table
    raise KeyError(f"no published table named {name!r}")
