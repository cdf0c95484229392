"""The published regional tables: what identifies a row, which measures add up across
levels and which are shares. Publication (sort order, file names) and the gate
(uniqueness, cross-level totals, ranges) both read this one registry; the columns and
their types are the dbt model contracts in ``dbt_project/models/marts``.
"""

from __future__ import annotations

from dataclasses import dataclass

LEVELS = ("national", "province", "prefecture")
# The public scope is disclosure-controlled and has no prefecture rows (DESIGN Decision 6).
PUBLIC_LEVELS = ("national", "province")
# Warehouse table (never published) with each public cell's contributor count and largest
# contributor's share: the gate checks the public files against it.
DISCLOSURE_AUDIT = "disclosure_audit"
# Warehouse relation listing the regions a complete regional table has rows for in each
# period (dbt model int_expected_regions: the nation, every province, every prefecture with
# an expected reporter or with data); the gate checks the published files against it.
EXPECTED_REGIONS = "int_expected_regions"
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
    # Scopes the table is published in. "public" means disclosure control: the public file
    # comes from the dbt model public_<name> (national and province rows, small cells
    # suppressed), the internal one from <name>.
    scopes: tuple[str, ...] = ("internal",)
    # For a public table with a breakdown: the public table whose cell (same period, level
    # and region) is the total over the breakdown, so suppression must hold across both
    # (outsourcing_by_region's overdue balance = the sum of recovery_by_bucket's buckets).
    breakdown_total: str | None = None
    # Shares that must be at or above Settings.coverage_floor on the national row (blocking).
    floor_columns: tuple[str, ...] = ()

    @property
    def public(self) -> bool:
        return "public" in self.scopes

    # A regional table has a row per level and region that must add up across levels; a
    # list of institutions (agency_watchlist) has neither, and may rightly be empty.
    regional: bool = True
    # A complete regional table has a row for every expected region (EXPECTED_REGIONS) and
    # breakdown value, zeros where nothing was reported, and no other region (blocking).
    # Not complete: coverage (rows by registered region of the expected institutions) and
    # the lender × agency reconciliation (rows for the pairs that exist).
    every_expected_region: bool = False


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
        scopes=("internal", "public"),
        every_expected_region=True,
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
        scopes=("internal", "public"),
        breakdown_total="outsourcing_by_region",
        every_expected_region=True,
    ),
    PublishedTable(
        name="submission_coverage",
        key=("period", "level", "region_code"),
        additive=(
            "expected_institutions",
            "reporting_institutions",
            "expected_submissions",
            "on_time",
            "late",
            "missing",
            "rejected",
            "awaiting_verification",
        ),
        shares=("submission_coverage_share", "institution_coverage_share"),
        floor_columns=("institution_coverage_share",),
    ),
    PublishedTable(
        name="lender_agency_reconciliation",
        key=("period", "level", "region_code", "lender_uscc", "agency_uscc"),
        breakdown=("lender_uscc", "agency_uscc"),
        # Gaps may be negative and are differences of these, so only the sides add up.
        additive=(
            "lender_cases",
            "agency_cases",
            "lender_balance",
            "agency_balance",
            "lender_recovered",
            "agency_recovered",
            "lender_commission",
            "agency_commission",
        ),
        shares=(),
    ),
    PublishedTable(
        name="conduct_compliance",
        key=("period", "level", "region_code"),
        additive=CONDUCT_COUNTS,
        shares=CONDUCT_SHARES,
        scopes=("internal", "public"),
        every_expected_region=True,
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
        scopes=("internal", "public"),
        every_expected_region=True,
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
