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

# [0-9], not \d (which matches full-width digits too); \Z, not $ (which allows a final "\n").
PERIOD_PATTERN = re.compile(r"^[0-9]{4}-(0[1-9]|1[0-2])\Z")


def shift_period(period: str, months: int) -> str:
    """The YYYY-MM period ``months`` after ``period`` (before it when negative)."""
    year, month = map(int, period.split("-"))
    index = year * 12 + month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@dataclass(frozen=True)
class Column:
    name: str
    type: str = TEXT
    required: bool = True
    allowed: tuple[str, ...] = ()
    # USCC check character, GB/T 2260 region code, HMAC reference: validated by rule.
    kind: str = ""
    description: str = ""

    @property
    def aliases_zh(self) -> tuple[str, ...]:
        """Chinese header names accepted for this column (see ``HEADER_ALIASES_ZH``)."""
        return HEADER_ALIASES_ZH.get(self.name, ())


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
    r"^(?P<type>[a-z_]+)__(?P<uscc>[0-9A-Z]{18})__(?P<period>[0-9]{4}-[0-9]{2})\.(?P<ext>csv|xlsx|parquet)\Z"
)


# Chinese header names accepted for each column, by column name (one meaning per name across
# types). Compared after NFKC, trimming and lower-casing, so full-width brackets match too.
HEADER_ALIASES_ZH: dict[str, tuple[str, ...]] = {
    "period": ("报送期间",),
    "lender_uscc": ("贷款机构统一社会信用代码",),
    "agency_uscc": ("催收机构统一社会信用代码",),
    "submitter_uscc": ("报送机构统一社会信用代码",),
    "respondent_lender_uscc": ("被投诉贷款机构统一社会信用代码",),
    "respondent_agency_uscc": ("被投诉催收机构统一社会信用代码",),
    "uscc": ("统一社会信用代码",),
    "region_code": ("地区代码", "行政区划代码"),
    "bucket": ("逾期阶段", "账龄段"),
    "accounts": ("账户数",),
    "balance": ("余额",),
    "accounts_outsourced": ("委外账户数",),
    "balance_outsourced": ("委外余额",),
    "recovered_inhouse": ("自催回收金额",),
    "recovered_outsourced": ("委外回收金额",),
    "written_off": ("核销金额",),
    "sold_balance": ("转让余额",),
    "litigated_accounts": ("诉讼账户数",),
    "cases_assigned": ("委托案件数",),
    "balance_assigned": ("委托金额",),
    "amount_recovered": ("回收金额",),
    "commission_paid": ("支付佣金",),
    "commission_rate": ("佣金费率",),
    "cases_received": ("受托案件数",),
    "balance_received": ("受托金额",),
    "commission_received": ("收取佣金",),
    "collectors": ("催收人员数",),
    "event_id": ("事件编号",),
    "case_ref": ("案件假名",),
    "debtor_ref": ("债务人假名",),
    "contact_at": ("联系时间",),
    "channel": ("渠道",),
    "target": ("联系对象",),
    "number_type": ("号码类型",),
    "duration_s": ("时长(秒)",),
    "outcome": ("联系结果",),
    "location_type": ("地点类型",),
    "source": ("来源",),
    "complaint_id": ("投诉编号",),
    "regulator_ref": ("监管转办编号",),
    "category": ("投诉类别",),
    "received_at": ("受理时间",),
    "resolved_at": ("办结时间",),
    "status": ("状态",),
    "name_zh": ("中文名称",),
    "name_en": ("英文名称",),
    "kind": ("机构类型",),
    "role": ("角色",),
    "licence_no": ("许可证编号",),
    "valid_from": ("生效日期",),
    "valid_to": ("失效日期",),
}

# Chinese names of the submission types: an XLSX sheet so named (or named in English) is read.
TYPE_NAMES_ZH: dict[str, str] = {
    "lender_portfolio": "贷款机构逾期资产",
    "agency_assignment": "委外催收委托",
    "agency_caseload": "催收机构受托业务",
    "contact_events": "催收联系记录",
    "complaints": "投诉",
    "institution_registry": "机构名录",
}
