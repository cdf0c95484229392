"""Submission contracts: the six file types, their columns, types, keys and enums.

Defined once here; the generator writes these columns, intake checks them, the raw zone
stores them with these DuckDB types, and dbt's staging models read them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

BUCKETS = ("M0", "M1", "M2", "M3", "M4_6", "M7_12", "M12P")
OVERDUE_BUCKETS = BUCKETS[1:]

MONEY = "DECIMAL(18,2)"
COUNT = "BIGINT"
RATE = "DOUBLE"
TEXT = "VARCHAR"
TIMESTAMP = "TIMESTAMPTZ"
DATE = "DATE"

PERIOD_PATTERN = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


@dataclass(frozen=True)
class Column:
    name: str
    type: str = TEXT
    required: bool = True
    allowed: tuple[str, ...] = ()
    # USCC check character, GB/T 2260 region code, HMAC reference: validated by rule.
    kind: str = ""
    description: str = ""


@dataclass(frozen=True)
class SubmissionType:
    name: str
    submitter_role: str
    # Column naming the submitting institution; must equal the USCC in the file name.
    submitter_column: str | None
    key: tuple[str, ...]
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(column.name for column in self.columns)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


def _money(name: str) -> Column:
    return Column(name, MONEY)


def _count(name: str) -> Column:
    return Column(name, COUNT)


PERIOD = Column("period", kind="period")


def _uscc(name: str, required: bool = True) -> Column:
    return Column(name, required=required, kind="uscc")


REGION = Column("region_code", kind="region")
BUCKET = Column("bucket", allowed=BUCKETS)

SUBMISSION_TYPES: dict[str, SubmissionType] = {
    t.name: t
    for t in (
        SubmissionType(
            name="lender_portfolio",
            submitter_role="lender",
            submitter_column="lender_uscc",
            key=("period", "lender_uscc", "region_code", "bucket"),
            columns=(
                PERIOD,
                _uscc("lender_uscc"),
                REGION,
                BUCKET,
                _count("accounts"),
                _money("balance"),
                _count("accounts_outsourced"),
                _money("balance_outsourced"),
                _money("recovered_inhouse"),
                _money("recovered_outsourced"),
                _money("written_off"),
                _money("sold_balance"),
                _count("litigated_accounts"),
            ),
        ),
        SubmissionType(
            name="agency_assignment",
            submitter_role="lender",
            submitter_column="lender_uscc",
            key=("period", "lender_uscc", "agency_uscc", "region_code", "bucket"),
            columns=(
                PERIOD,
                _uscc("lender_uscc"),
                _uscc("agency_uscc"),
                REGION,
                BUCKET,
                _count("cases_assigned"),
                _money("balance_assigned"),
                _money("amount_recovered"),
                _money("commission_paid"),
                Column("commission_rate", RATE),
            ),
        ),
        SubmissionType(
            name="agency_caseload",
            submitter_role="agency",
            submitter_column="agency_uscc",
            key=("period", "agency_uscc", "lender_uscc", "region_code"),
            columns=(
                PERIOD,
                _uscc("agency_uscc"),
                _uscc("lender_uscc"),
                REGION,
                _count("cases_received"),
                _money("balance_received"),
                _money("amount_recovered"),
                _money("commission_received"),
                _count("collectors"),
            ),
        ),
        SubmissionType(
            name="contact_events",
            submitter_role="agency",
            submitter_column="agency_uscc",
            key=("period", "agency_uscc", "event_id"),
            columns=(
                PERIOD,
                _uscc("agency_uscc"),
                Column("event_id"),
                _uscc("lender_uscc"),
                Column("case_ref", kind="hmac_ref"),
                Column("debtor_ref", kind="hmac_ref"),
                Column("contact_at", TIMESTAMP, kind="timestamp_in_period"),
                Column(
                    "channel",
                    allowed=("call", "sms", "ai_voice", "letter", "postcard", "visit", "app_push"),
                ),
                Column(
                    "target",
                    allowed=("debtor", "guarantor", "emergency_contact", "family", "third_party"),
                ),
                Column("number_type", allowed=("registered", "virtual", "none")),
                REGION,
                Column("duration_s", COUNT, required=False),
                Column(
                    "outcome",
                    allowed=(
                        "no_answer",
                        "contacted",
                        "promise_to_pay",
                        "paid",
                        "refused",
                        "wrong_party",
                    ),
                ),
                Column("location_type", allowed=("home", "workplace", "campus", "other", "none")),
            ),
        ),
        SubmissionType(
            name="complaints",
            submitter_role="any",
            submitter_column="submitter_uscc",
            key=("period", "source", "submitter_uscc", "complaint_id"),
            columns=(
                PERIOD,
                Column("source", allowed=("lender", "agency", "hotline", "association")),
                _uscc("submitter_uscc"),
                Column("complaint_id"),
                Column("regulator_ref", required=False),
                _uscc("respondent_lender_uscc", required=False),
                _uscc("respondent_agency_uscc", required=False),
                REGION,
                Column(
                    "category",
                    allowed=(
                        "threat_violence",
                        "harassment",
                        "third_party_contact",
                        "out_of_hours",
                        "virtual_number",
                        "privacy_breach",
                        "impersonation",
                        "excessive_fees",
                        "campus",
                        "other",
                    ),
                ),
                Column("channel", allowed=("phone", "web", "letter", "in_person")),
                Column("received_at", TIMESTAMP, kind="timestamp_in_period"),
                Column("resolved_at", TIMESTAMP, required=False),
                Column("status", allowed=("open", "resolved", "escalated", "withdrawn")),
            ),
        ),
        SubmissionType(
            name="institution_registry",
            submitter_role="regulator",
            submitter_column=None,
            key=("period", "uscc"),
            columns=(
                PERIOD,
                _uscc("uscc"),
                Column("name_zh"),
                Column("name_en"),
                Column(
                    "kind",
                    allowed=(
                        "bank_card_centre",
                        "consumer_finance",
                        "online_small_loan",
                        "small_loan",
                        "lending_platform",
                        "collection_agency",
                        "law_firm",
                        "amc",
                    ),
                ),
                Column("role", allowed=("lender", "agency")),
                REGION,
                Column("licence_no"),
                Column("status", allowed=("active", "suspended", "revoked")),
                Column("valid_from", DATE),
                Column("valid_to", DATE, required=False),
            ),
        ),
    )
}


def file_name(submission_type: str, uscc: str, period: str, extension: str = "csv") -> str:
    return f"{submission_type}__{uscc}__{period}.{extension}"


FILE_NAME_PATTERN = re.compile(
    r"^(?P<type>[a-z_]+)__(?P<uscc>[0-9A-Z]{18})__(?P<period>\d{4}-\d{2})\.(?P<ext>csv|xlsx|parquet)$"
)
