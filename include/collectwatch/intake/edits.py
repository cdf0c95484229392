"""Row-level edits as set-based SQL over the whole submission.

The submission sits in a DuckDB table ``submission`` of text columns plus ``_row_no``
(its line number in the file). Every per-cell rule becomes one ``case`` inside a single
list per row, so a file is scanned once however many rules apply; rules that compare
rows (duplicate keys) are separate queries. Findings land in table ``findings``.
"""

from __future__ import annotations

import duckdb

from collectwatch.contracts import COUNT, MONEY, RATE, TEXT, TIMESTAMP, Column, SubmissionType
from collectwatch.uscc import sql_is_valid

# Personal data that must never reach the regulator (DESIGN Decisions 10 and 11), searched
# for in every text cell that is not already a well-formed value of its column (a valid
# USCC, a 64-hex reference, an allowed code, a known region, a number ...):
# - V015: an 11-digit mainland mobile number (1[3-9] + 9 digits, no digit either side) and
#   an 18-digit resident ID number (GB 11643) whose check digit is right;
# - V018: Han characters, i.e. a Chinese personal name, where no name belongs
#   (identifier and reference columns).
# Licence numbers are the issuer's digit runs: only the ID-number pattern applies to them.
MOBILE_PATTERN = r"(^|[^0-9])1[3-9][0-9]{9}([^0-9]|$)"
ID_PATTERN = r"[1-9][0-9]{5}(19|20)[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01])[0-9]{3}[0-9Xx]"
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
HAN_PATTERN = r"\p{Han}"
NO_MOBILE_CHECK_COLUMNS = ("licence_no",)
IDENTIFIER_COLUMNS = ("event_id", "complaint_id", "regulator_ref")
PERSONAL_DATA_RULES = ("V015", "V018")
OFFSET_PATTERN = r"(Z|[+-][0-9]{2}:?[0-9]{2})$"
NUMERIC_TYPES = (MONEY, COUNT, RATE)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _id_number_sql(value: str) -> str:
    """True when ``value`` contains an 18-digit ID number whose check digit is right."""
    candidate = f"regexp_extract({value}, '{ID_PATTERN}')"
    total = " + ".join(
        f"{weight} * substr({candidate}, {i + 1}, 1)::int" for i, weight in enumerate(ID_WEIGHTS)
    )
    return (
        f"(regexp_matches({value}, '{ID_PATTERN}') and "
        f"upper(substr({candidate}, 18, 1)) = substr('10X98765432', (({total}) % 11) + 1, 1))"
    )


def mask(value: str) -> str:
    """SQL expression masking a personal-data value for reports: Han characters (names)
    never shown, otherwise only the first 3 and last 2 characters."""
    hidden = f"regexp_replace({value}, '{HAN_PATTERN}', '*', 'g')"
    return (
        f"left({hidden}, 3) || repeat('*', greatest(length({hidden}) - 5, 0)) || right({hidden}, 2)"
    )


def _allowed(column: Column, cell: str) -> str:
    return f"{cell} in ({', '.join(repr(code) for code in column.allowed)})"


class _CellRules:
    """Collects (rule id, field, failing condition, reported value) for one contract."""

    def __init__(self, period: str, submitter_uscc: str):
        self.period = period
        self.submitter_uscc = submitter_uscc
        self.cases: list[str] = []

    def add(self, rule_id: str, column: Column, condition: str, value: str | None = None) -> None:
        reported = value or _quote(column.name)
        self.cases.append(
            f"case when {condition} then {{'rule_id': '{rule_id}', 'field': '{column.name}', "
            f"'value': {reported}}} end"
        )

    def column(self, column: Column, submitter_column: str | None) -> None:
        cell = _quote(column.name)
        present = f"nullif(trim({cell}), '') is not null"
        if column.required:
            self.add("V002", column, f"not ({present})")
        if column.type != TEXT:
            self.add("V001", column, f"{present} and try_cast({cell} as {column.type}) is null")
        if column.type in NUMERIC_TYPES:
            self.add("V006", column, f"try_cast({cell} as {column.type}) < 0")
        if column.allowed:
            self.add("V003", column, f"{present} and not {_allowed(column, cell)}")
        self._kind(column, cell, present)
        if column.name == submitter_column:
            self.add("V013", column, f"{cell} <> '{self.submitter_uscc}'")
        self._personal_data(column, cell, present)

    def _personal_data(self, column: Column, cell: str, present: str) -> None:
        """V015 / V018 on every cell that is not a well-formed value of its column."""
        suspect = f"{present} and not coalesce({self._well_formed(column, cell)}, false)"
        patterns = [_id_number_sql(cell)]
        if column.name not in NO_MOBILE_CHECK_COLUMNS:
            patterns.append(f"regexp_matches({cell}, '{MOBILE_PATTERN}')")
        self.add("V015", column, f"{suspect} and ({' or '.join(patterns)})", mask(cell))
        if column.name in IDENTIFIER_COLUMNS or column.kind in ("uscc", "hmac_ref"):
            self.add(
                "V018", column, f"{suspect} and regexp_matches({cell}, '{HAN_PATTERN}')", mask(cell)
            )

    def _well_formed(self, column: Column, cell: str) -> str:
        """A condition true when the cell is a valid value of its column, so cannot hold
        personal data; free text is never well-formed."""
        if column.type != TEXT:
            return f"try_cast({cell} as {column.type}) is not null"
        if column.allowed:
            return _allowed(column, cell)
        return {
            "uscc": sql_is_valid(cell),
            "hmac_ref": f"regexp_full_match({cell}, '[0-9a-f]{{64}}')",
            "region": f"{cell} in (select region_code from regions)",
            "period": f"{cell} = '{self.period}'",
        }.get(column.kind, "false")

    def _kind(self, column: Column, cell: str, present: str) -> None:
        if column.kind == "uscc":
            self.add("V004", column, f"{present} and not {sql_is_valid(cell)}")
        elif column.kind == "region":
            self.add(
                "V005", column, f"{present} and {cell} not in (select region_code from regions)"
            )
        elif column.kind == "period":
            self.add("V007", column, f"{present} and {cell} <> '{self.period}'")
        elif column.kind == "hmac_ref":
            self.add(
                "V012", column, f"{present} and not regexp_full_match({cell}, '[0-9a-f]{{64}}')"
            )
        if column.type == TIMESTAMP:
            typed = f"try_cast({cell} as timestamptz)"
            month = f"timestamptz '{self.period}-01 00:00:00+08'"
            outside = (
                f"({typed} < {month} or {typed} >= {month} + interval 1 month)"
                if column.kind == "timestamp_in_period"
                else "false"
            )
            self.add(
                "V009",
                column,
                f"{present} and {typed} is not null and "
                f"(not regexp_matches({cell}, '{OFFSET_PATTERN}') or {outside})",
            )


def _cross_field_rules(submission_type: SubmissionType, rules: _CellRules) -> None:
    """Rules over several cells of one row."""
    if submission_type.name == "lender_portfolio":
        balance = "try_cast(balance as decimal(18, 2))"
        rules.add(
            "V011",
            submission_type.column("balance_outsourced"),
            f"try_cast(balance_outsourced as decimal(18, 2)) > {balance}",
        )
        recovered = (
            "try_cast(recovered_inhouse as decimal(18, 2)) "
            "+ try_cast(recovered_outsourced as decimal(18, 2))"
        )
        rules.add("Q001", submission_type.column("recovered_inhouse"), f"{recovered} > {balance}")
    elif submission_type.name == "agency_assignment":
        rate = "try_cast(commission_rate as double)"
        rules.add(
            "Q002", submission_type.column("commission_rate"), f"{rate} not between 0 and 0.6"
        )
    elif submission_type.name == "complaints":
        rules.add(
            "V014",
            submission_type.column("resolved_at"),
            "try_cast(resolved_at as timestamptz) < try_cast(received_at as timestamptz)",
        )


def run_row_edits(
    con: duckdb.DuckDBPyConnection,
    submission_type: SubmissionType,
    period: str,
    submitter_uscc: str,
) -> None:
    """Fill table ``findings(rule_id, row_no, field, value)`` for table ``submission``."""
    rules = _CellRules(period, submitter_uscc)
    for column in submission_type.columns:
        rules.column(column, submission_type.submitter_column)
    _cross_field_rules(submission_type, rules)
    checks = ",\n        ".join(rules.cases)
    con.execute(
        f"""
        create or replace table findings as
        with per_row as (
            select _row_no, list_filter([
                {checks}
            ], lambda finding: finding is not null) as found
            from submission
        )
        select finding.rule_id, _row_no as row_no, finding.field, finding.value::varchar as value
        from (select _row_no, unnest(found) as finding from per_row)
        """
    )
    key = ", ".join(_quote(name) for name in submission_type.key)
    con.execute(
        f"""
        insert into findings
        select 'V010', _row_no, '{"+".join(submission_type.key)}', concat_ws('|', {key})
        from submission
        qualify count(*) over (partition by {key}) > 1
        """
    )
