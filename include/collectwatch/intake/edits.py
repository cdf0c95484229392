"""Row-level edits as set-based SQL over the whole submission.

The submission sits in a DuckDB table ``submission`` of text columns plus ``_row_no``
(its line number in the file). Every per-cell rule becomes one ``case`` inside a single
list per row, so a file is scanned once however many rules apply; rules that compare
rows (duplicate keys) are separate queries. Findings land in table ``findings``.
"""

from __future__ import annotations

import duckdb

from collectwatch.contracts import COUNT, MONEY, RATE, TEXT, TIMESTAMP, Column, SubmissionType
from collectwatch.intake.formats import trimmed
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
# Every personal-data pattern above needs 11 digits in a row or a non-ASCII character: one
# cheap test of a free-text cell before the three patterns.
PERSONAL_DATA_HINT = r"[0-9]{11}|[^\x00-\x7F]"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _id_number_sql(value: str) -> str:
    """True when ``value`` contains an 18-digit ID number whose check digit is right."""
    # NULL, not '', when nothing matches: the digit casts below then stay NULL
    candidate = f"nullif(regexp_extract({value}, '{ID_PATTERN}'), '')"
    total = " + ".join(
        f"{weight} * substr({candidate}, {i + 1}, 1)::int" for i, weight in enumerate(ID_WEIGHTS)
    )
    # A case, not an and: the check digit is computed only where the pattern matched.
    return (
        f"(case when regexp_matches({value}, '{ID_PATTERN}') then "
        f"upper(substr({candidate}, 18, 1)) = substr('10X98765432', (({total}) % 11) + 1, 1) "
        "else false end)"
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


# The rule a malformed cell breaks, by the column's check (type, code list or kind).
MALFORMED_RULE = {"uscc": "V004", "region": "V005", "period": "V007", "hmac_ref": "V012"}


def _struct(rule_id: str, column: Column, value: str) -> str:
    return f"{{'rule_id': '{rule_id}', 'field': '{column.name}', 'value': {value}}}"


def exact_values(column: Column) -> bool:
    """True when a well-formed value of ``column`` is one of a known set of printable
    strings (a code, an allowed value, a 64-hex reference, the period): such a cell with a
    control character or a formula prefix is malformed, and so already a finding."""
    return column.type == TEXT and bool(
        column.allowed or column.kind in ("uscc", "hmac_ref", "region", "period")
    )


class _CellRules:
    """Builds, per contract, one list expression of findings per row.

    Clean rows must cost little: every cell is tested once for being a well-formed value
    of its column (type, code list, valid USCC, known region, 64-hex reference ...). Only
    a malformed cell is then told which rule it breaks and searched for personal data;
    the few rules that apply to well-formed values (missing, negative, timestamps,
    submitter) are tested on every row.
    """

    def __init__(
        self,
        period: str,
        submitter: str,
        valid_codes: str | None = None,
        ascii_only: bool = False,
    ):
        self.period = period
        # The rows are of a file known to be ASCII (see ``formats.trimmed``).
        self.ascii_only = ascii_only
        # The submitter's USCC as SQL: a literal for one file; for a batch of files, an
        # expression over the record's file name.
        self.submitter = submitter
        # How a USCC cell is known valid: not among the file's invalid codes (table
        # ``invalid_codes``), or, where the file's codes are not known beforehand, among
        # the table ``valid_codes`` names, else by its check character.
        self.valid_codes = valid_codes
        self.cases: list[str] = []
        self.lists: list[str] = []
        # For every case and list above, a condition true at least where it lists a
        # finding (``any_finding``): its own, or a cheaper one true where it is.
        self.conditions: list[str] = []

    def add(
        self,
        rule_id: str,
        column: Column,
        condition: str,
        value: str | None = None,
        suspect: str | None = None,
    ) -> None:
        """A finding of ``rule_id`` where ``condition``; ``suspect``, if given, is true
        wherever ``condition`` is, and cheaper."""
        reported = value or _quote(column.name)
        self.conditions.append(suspect or condition)
        self.cases.append(f"case when {condition} then {_struct(rule_id, column, reported)} end")

    def column(self, column: Column, submitter_column: str | None) -> None:
        cell = _quote(column.name)
        present = f"{trimmed(cell, self.ascii_only)} is not null"
        if column.required:
            # A code's well-formed values are ASCII without spaces, so a code cell of white
            # space only is malformed too (``_malformed``): only a null is left to suspect.
            # (A number or a timestamp of white space only is left to the cast to judge.)
            loose = f"{cell} is null" if exact_values(column) else None
            self.add("V002", column, f"not ({present})", suspect=loose)
        if column.type in NUMERIC_TYPES:
            self.add("V006", column, f"try_cast({cell} as {column.type}) < 0")
        if column.type == TIMESTAMP:
            self._timestamp(column, cell, present)
        if column.name == submitter_column:
            self.add("V013", column, f"{cell} <> {self.submitter}")
        self._malformed(column, cell, present)

    def _malformed(self, column: Column, cell: str, present: str) -> None:
        """The column's own rule and the personal-data rules, on malformed cells only."""
        rule_id = (
            "V001"
            if column.type != TEXT
            else "V003"
            if column.allowed
            else MALFORMED_RULE.get(column.kind)
        )
        personal_data = [_id_number_sql(cell)]
        if column.name not in NO_MOBILE_CHECK_COLUMNS:
            personal_data.append(f"regexp_matches({cell}, '{MOBILE_PATTERN}')")
        found = [
            f"case when {' or '.join(personal_data)} then {_struct('V015', column, mask(cell))} end"
        ]
        if column.name in IDENTIFIER_COLUMNS or column.kind in ("uscc", "hmac_ref"):
            name = f"regexp_matches({cell}, '{HAN_PATTERN}')"
            personal_data.append(name)
            found.append(f"case when {name} then {_struct('V018', column, mask(cell))} end")
        # For ``any_finding``, ``cell is not null`` where the finding tests ``present``:
        # true wherever it is, without the character count trimming costs on every cell.
        if rule_id:
            found.insert(0, _struct(rule_id, column, cell))
            malformed = f"not coalesce({self._well_formed(column, cell)}, false)"
        else:  # free text is never well-formed: only personal data makes it suspect
            malformed = (
                f"case when regexp_matches({cell}, '{PERSONAL_DATA_HINT}') "
                f"then {' or '.join(personal_data)} else false end"
            )
        if column.type != TIMESTAMP:  # a timestamp's V009 suspect covers it (``_timestamp``)
            self.conditions.append(f"{cell} is not null and {malformed}")
        self.lists.append(f"case when {present} and {malformed} then [{', '.join(found)}] end")

    def _well_formed(self, column: Column, cell: str) -> str:
        """True when the cell is a valid value of its column (and so cannot hold personal
        data). USCCs are checked once per distinct code
        (table ``invalid_codes``), not once per row."""
        if column.type != TEXT:
            return f"try_cast({cell} as {column.type}) is not null"
        if column.allowed:
            return _allowed(column, cell)
        uscc = (
            f"{cell} not in (select code from invalid_codes)"
            if self.valid_codes is None
            else f"case when {cell} in (select code from {self.valid_codes}) then true "
            f"else {sql_is_valid(cell)} end"
        )
        return {
            "uscc": uscc,
            # 64 bytes, all lowercase hex: as '[0-9a-f]{64}', but unhex (which takes hex
            # digits of either case) and a lowercase test cost ~half the regular expression
            "hmac_ref": (
                f"(strlen({cell}) = 64 and try(unhex({cell})) is not null "
                f"and lower({cell}) = {cell})"
            ),
            "region": f"{cell} in (select region_code from regions)",
            "period": f"{cell} = '{self.period}'",
        }[column.kind]

    def _timestamp(self, column: Column, cell: str, present: str) -> None:
        typed = f"try_cast({cell} as timestamptz)"
        month = f"timestamptz '{self.period}-01 00:00:00+08'"
        in_period = column.kind == "timestamp_in_period"
        # the month's last microsecond included
        within = f"{typed} between {month} and {month} + interval 1 month - interval 1 microsecond"
        # A timestamp with an offset is wrong only outside the period; one without an
        # offset is wrong whenever it parses.
        with_offset = f"not coalesce({within}, true)" if in_period else "false"
        wrong = (
            f"case when regexp_matches({cell}, '{OFFSET_PATTERN}') "
            f"then {with_offset} else {typed} is not null end"
        )
        # The suspect covers V001 too: a cell without an offset is a finding either way
        # (V009 if it parses, V001 if not), one with an offset only where it does not parse
        # or (in period) falls outside the period. So a clean cell is parsed once, and the
        # usual offset, Beijing's, is found without the regular expression.
        in_range = within if in_period else f"{typed} is not null"
        offset = f"suffix({cell}, '+08:00') or regexp_matches({cell}, '{OFFSET_PATTERN}')"
        loose = (
            f"{cell} is not null and not coalesce(case when {offset} then {in_range} end, false)"
        )
        self.add("V009", column, f"{present} and {wrong}", suspect=loose)

    def any_finding(self) -> str:
        """True when the row has any finding (a cheap test: no lists, no values)."""
        return " or ".join(f"({condition})" for condition in self.conditions)

    def expression(self) -> str:
        """All findings of a row as one list (NULL entries dropped)."""
        always = "[\n                " + ",\n                ".join(self.cases) + "]"
        lists = ",\n            ".join([*self.lists, always])
        return (
            f"list_filter(list_concat(\n            {lists}), lambda finding: finding is not null)"
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


def _invalid_codes(con: duckdb.DuckDBPyConnection, submission_type: SubmissionType) -> None:
    """Table ``invalid_codes``: the distinct USCC values of the file whose check
    character is wrong (a file names few institutions however many rows it has)."""
    columns = [_quote(c.name) for c in submission_type.columns if c.kind == "uscc"]
    values = " union ".join(f"select distinct {c} as code from submission" for c in columns)
    con.execute(
        "create or replace temp table invalid_codes as "
        + (
            f"select code from ({values}) where code is not null and not {sql_is_valid('code')}"
            if columns
            else "select null::varchar as code where false"
        )
    )


def _row_rules(
    submission_type: SubmissionType,
    period: str,
    submitter: str,
    valid_codes: str | None = None,
    ascii_only: bool = False,
) -> _CellRules:
    rules = _CellRules(period, submitter, valid_codes, ascii_only)
    for column in submission_type.columns:
        rules.column(column, submission_type.submitter_column)
    _cross_field_rules(submission_type, rules)
    return rules


def any_row_finding(
    submission_type: SubmissionType,
    period: str,
    submitter: str,
    valid_codes: str,
    ascii_only: bool = False,
) -> str:
    """A boolean SQL expression over a row of normalised text cells: true exactly when
    ``run_row_edits`` would list a finding for it (duplicate keys aside). ``submitter`` is
    the submitter's USCC as SQL (a literal, or an expression per record). USCC cells found
    in table ``valid_codes`` are valid; others are checked one by one. ``ascii_only``: the
    rows are of a file known to be ASCII."""
    rules = _row_rules(submission_type, period, submitter, valid_codes, ascii_only)
    return rules.any_finding()


def run_row_edits(
    con: duckdb.DuckDBPyConnection,
    submission_type: SubmissionType,
    period: str,
    submitter_uscc: str,
) -> None:
    """Fill table ``findings(rule_id, row_no, field, value)`` for table ``submission``."""
    _invalid_codes(con, submission_type)
    rules = _row_rules(submission_type, period, f"'{submitter_uscc}'")
    con.execute(
        f"""
        create or replace table findings as
        with per_row as (
            select _row_no, {rules.expression()} as found
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
