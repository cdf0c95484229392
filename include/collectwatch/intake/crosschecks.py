"""Edits that compare a submission with the registry and with other current submissions.

Each is one set-based query over the whole file (table ``submission``, text columns plus
``_row_no``) joined to the raw-zone Parquet of the other submission, appending to table
``findings`` like the row edits. The other side is whatever is current in the raw zone at
intake time: the second of two related files is the one checked, so a pair is always
compared once both are in. The clean files of a batch get Q005 and M001 from queries over
the whole batch (``CleanBatch``, ``BatchResults``); a file takes the batch's M001 only
while the other side's current submissions are still those the batch compared with, as
another intake process may have accepted one in between.

- Q003 overdue share jump: per region, overdue balance (buckets M1 and later) / balance,
  compared with the submitter's latest earlier accepted lender_portfolio.
- Q004 lender_portfolio.balance_outsourced vs Σ agency_assignment.balance_assigned of the
  same lender, by region and bucket (the grain both files share), ±1%.
- Q005 the counterparty (agency of an assignment, lender of a caseload or contact) is not
  a reporting institution of that role in the registry in effect (a suspended lender's book is
  still collected; a licence revoked before the period is not) — one finding per
  counterparty, at its first row.
- M001 agency_caseload.balance_received vs Σ agency_assignment.balance_assigned for the
  same lender, agency and region, ±5%, against every counterparty that has submitted.
- V019 a complaint's source must fit the submitter's role.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from collectwatch.config import Settings
from collectwatch.intake.checked import CheckedFile
from collectwatch.intake.lifecycle import StateStore
from collectwatch.intake.registry import COUNTERPARTIES, ROLE_COMPLAINT_SOURCES


@dataclass(frozen=True)
class BatchResults:
    """What a clean file's batch computed for the cross-file edits of all its files at
    once (``CleanBatch``), which a check uses instead of querying the file."""

    file: str  # the file's path, as the batch's table names it (column ``_file``)
    counterparties: set[str]  # its distinct counterparty codes
    per_rule: dict[str, int]  # how many Q005 and M001 findings of each rule it has
    # M001: the counterparties' submissions its findings were compared with (USCC ->
    # submission id), None where the type is not reconciled
    compared: dict[str, str] | None
    sources: set[str] | None = None  # a complaints file's distinct sources (V019)
    # Its findings as its report lists them (rule_id, row_no, field, value, key), in that
    # order, up to ``report_rows_per_rule`` of each rule (``collect_row_findings``)
    listed: tuple = ()

    def compared_with(self, current: dict[str, str]) -> bool:
        """Whether ``current`` (USCC -> submission id of the counterparties' submissions
        current now) are the submissions its M001 findings were compared with."""
        return self.compared is not None and current == {
            code: submission_id
            for code, submission_id in self.compared.items()
            if code in self.counterparties
        }


@dataclass(frozen=True)
class Context:
    settings: Settings
    store: StateStore | None  # None in a pre-flight check on a fresh installation
    submission_type: str
    period: str
    submitter_uscc: str
    role: str | None
    registry_in_effect: bool
    checked: CheckedFile  # its ``submission`` and ``findings``
    batch: BatchResults | None = None  # None: the file was not read with a batch


def _money(column: str) -> str:
    return f'try_cast("{column}" as decimal(18, 2))'


def _differs(left: str, right: str, tolerance: float) -> str:
    """More than ``tolerance`` apart relative to the larger of the two (0 vs 0 agrees)."""
    return (
        f"abs(coalesce({left}, 0) - coalesce({right}, 0)) "
        f"> {tolerance} * greatest(abs(coalesce({left}, 0)), abs(coalesce({right}, 0)))"
    )


def _sql_list(values) -> str:
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


def _current(context: Context, submission_type: str, **filters) -> list:
    return context.store.current(submission_type, **filters) if context.store else []


def _raw_paths(raw_dir: Path, submissions) -> str:
    return _sql_list(str(raw_dir / s.raw_path) for s in submissions)


def _distinct(con: duckdb.DuckDBPyConnection, context: Context, column: str) -> set[str]:
    context.checked.open_submission()
    return {row[0] for row in con.execute(f"select distinct {column} from submission").fetchall()}


def overdue_share_jump(con: duckdb.DuckDBPyConnection, context: Context) -> None:
    earlier = [
        s
        for s in _current(context, "lender_portfolio", submitter_uscc=context.submitter_uscc)
        if s.period < context.period
    ]
    if not earlier:
        return
    last = max(earlier, key=lambda s: s.period)
    factor = context.settings.overdue_jump_factor
    context.checked.open_submission()
    context.checked.add_findings(
        f"""
        with this_month as (
            select region_code, min(_row_no) as row_no,
                   (sum({_money("balance")}) filter (where bucket <> 'M0')
                    / nullif(sum({_money("balance")}), 0))::double as share
            from submission group by region_code
        ),
        last_month as (
            select region_code,
                   (sum(balance) filter (where bucket <> 'M0')
                    / nullif(sum(balance), 0))::double as share
            from read_parquet('{context.settings.raw_dir / last.raw_path}')
            group by region_code
        )
        select 'Q003', t.row_no, 'balance',
               printf('overdue share %.4f, %s: %.4f', t.share, '{last.period}', m.share)
        from this_month as t join last_month as m using (region_code)
        where m.share > 0 and t.share > {factor} * m.share
        """
    )


def outsourced_vs_assigned(con: duckdb.DuckDBPyConnection, context: Context) -> None:
    other_type = {
        "lender_portfolio": "agency_assignment",
        "agency_assignment": "lender_portfolio",
    }[context.submission_type]
    other = _current(
        context, other_type, period=context.period, submitter_uscc=context.submitter_uscc
    )
    if not other:
        return
    tolerance = context.settings.outsourced_tolerance
    source = f"read_parquet({_raw_paths(context.settings.raw_dir, other)})"
    if context.submission_type == "lender_portfolio":
        field = "balance_outsourced"
        this = (
            f"select region_code, bucket, _row_no as row_no, {_money(field)} as outsourced "
            "from submission"
        )
        that = (
            "select region_code, bucket, sum(balance_assigned) as assigned "
            f"from {source} group by all"
        )
    else:
        field = "balance_assigned"
        this = (
            "select region_code, bucket, min(_row_no) as row_no, "
            f"sum({_money(field)}) as assigned from submission group by all"
        )
        that = f"select region_code, bucket, balance_outsourced as outsourced from {source}"
    context.checked.open_submission()
    context.checked.add_findings(
        f"""
        select 'Q004', row_no, '{field}',
               printf('balance_outsourced %s, sum of balance_assigned %s',
                      coalesce(outsourced, 0)::varchar, coalesce(assigned, 0)::varchar)
        from ({this}) left join ({that}) using (region_code, bucket)
        where {_differs("outsourced", "assigned", tolerance)}
        """
    )


def counterparty_findings(submission_type: str, source: str, row_no: str, per: str = "") -> str:
    """SQL: the Q005 findings (rule_id, row_no, field, value) of the records of ``source``
    (aliased ``s``): one per counterparty that is not a reporting institution of its role
    in table ``registry_in_effect``, at its first record (``row_no``, an expression over
    ``s``). With ``per`` (a column of ``s``), the findings of each of its values, that
    column first."""
    column, role = COUNTERPARTIES[submission_type]
    first = f"s.{per}, " if per else ""
    return f"""
        select {first}'Q005' as rule_id, min({row_no}) as row_no, '{column}' as field,
               s.{column} || ' (' || coalesce(r.role || ', ' || r.status, 'not registered')
               || '; expected a reporting {role})' as value
        from {source} as s left join registry_in_effect as r on r.uscc = s.{column}
        where s.{column} is not null
          and (r.uscc is null or r.role <> '{role}' or not r.reporting)
        group by {first}s.{column}, r.role, r.status
        """


def unregistered_counterparty(con: duckdb.DuckDBPyConnection, context: Context) -> None:
    if not context.registry_in_effect or context.submission_type not in COUNTERPARTIES:
        return
    if context.batch is not None:
        _insert_from_batch(context, "Q005")
        return
    context.checked.open_submission()
    context.checked.add_findings(
        counterparty_findings(context.submission_type, "submission", "s._row_no")
    )


def _insert_from_batch(context: Context, rule_id: str):
    """Take the file's ``rule_id`` findings its batch computed and listed."""
    batch = context.batch
    if count := batch.per_rule.get(rule_id):
        listed = [finding for finding in batch.listed if finding[0] == rule_id]
        context.checked.take_listed(rule_id, count, listed)


@dataclass(frozen=True)
class ReconciledSides:
    """How M001 pairs a file of one side with the other side's submissions."""

    mine: str  # the column naming the submitter
    theirs: str  # the column naming the counterparty
    other_type: str  # the counterparty's submission type
    this_amount: str
    that_amount: str


RECONCILED = {
    "agency_caseload": ReconciledSides(
        "agency_uscc", "lender_uscc", "agency_assignment", "balance_received", "balance_assigned"
    ),
    "agency_assignment": ReconciledSides(
        "lender_uscc", "agency_uscc", "agency_caseload", "balance_assigned", "balance_received"
    ),
}


def reconciliation_findings(
    submission_type: str,
    tolerance: float,
    source: str,
    submitter: str,
    others: list,
    raw_dir: Path,
    row_no: str = "_row_no",
    per: str = "",
) -> str:
    """SQL: the M001 findings (rule_id, row_no, field, value) of the records of ``source``
    against ``others``, the current submissions of the other side; ``submitter`` is the
    submitter's USCC as SQL over ``source`` and ``row_no`` its records' line number. With
    ``per`` (a column of ``source``), the findings of each of its values, that column
    first. Only counterparties in ``others`` are compared (the rest have not submitted)."""
    sides = RECONCILED[submission_type]
    theirs, first = sides.theirs, f"{per}, " if per else ""
    paths = _raw_paths(raw_dir, others)
    return f"""
        with this_side as (
            select {first}{submitter} as _submitter, {theirs}, region_code,
                   min({row_no}) as row_no, sum({_money(sides.this_amount)}) as this_amount
            from {source} group by all
        ),
        that_side as (
            select {sides.mine} as _submitter, {theirs}, region_code,
                   sum({sides.that_amount}) as that_amount
            from read_parquet({paths})
            where {sides.mine} in (select _submitter from this_side)
            group by all
        )
        select {first}'M001' as rule_id, row_no, '{sides.this_amount}' as field,
               printf('%s %s, counterparty %s: %s',
                      {theirs}, coalesce(this_amount, 0)::varchar, '{sides.that_amount}',
                      coalesce(that_amount, 0)::varchar) as value
        from this_side left join that_side using (_submitter, {theirs}, region_code)
        where {theirs} in {_sql_list(other.submitter_uscc for other in others)}
          and {_differs("this_amount", "that_amount", tolerance)}
        """


def lender_agency_reconciliation(con: duckdb.DuckDBPyConnection, context: Context) -> None:
    """M001 from either side, against the counterparties that have submitted. A file cut
    from a batch takes the findings the batch computed, if the counterparties' current
    submissions are still those the batch compared with (another process may have taken
    one since)."""
    sides = RECONCILED[context.submission_type]
    batch = context.batch
    counterparties = batch.counterparties if batch else _distinct(con, context, sides.theirs)
    other = _current(
        context, sides.other_type, period=context.period, submitters=sorted(counterparties)
    )
    if not other:
        return
    current = {s.submitter_uscc: s.submission_id for s in other}
    if batch and batch.compared_with(current):
        _insert_from_batch(context, "M001")
        return
    context.checked.open_submission()
    sql = reconciliation_findings(
        context.submission_type,
        context.settings.reconciliation_tolerance,
        "submission",
        f"'{context.submitter_uscc}'",
        other,
        context.settings.raw_dir,
    )
    context.checked.add_findings(sql)


def complaint_source_fits_role(con: duckdb.DuckDBPyConnection, context: Context) -> None:
    # Without a registry the role is unknown, but only the regulator forwards the
    # hotline's and the association's complaints.
    sources = ROLE_COMPLAINT_SOURCES.get(context.role, ("lender", "agency"))
    batch = context.batch
    if batch is not None and batch.sources is not None and batch.sources <= set(sources):
        return  # its batch listed every source the file names: all fit
    allowed = _sql_list(sources)
    context.checked.open_submission()
    context.checked.add_findings(
        f"""
        select 'V019', _row_no, 'source', source || ' (submitter: {context.role or "role unknown"})'
        from submission
        where source is not null and not list_contains({allowed}, source)
        """
    )


CHECKS = {
    "lender_portfolio": (overdue_share_jump, outsourced_vs_assigned),
    "agency_assignment": (
        outsourced_vs_assigned,
        unregistered_counterparty,
        lender_agency_reconciliation,
    ),
    "agency_caseload": (unregistered_counterparty, lender_agency_reconciliation),
    "contact_events": (unregistered_counterparty,),
    "complaints": (complaint_source_fits_role,),
}


def run_cross_edits(con: duckdb.DuckDBPyConnection, context: Context) -> None:
    for check in CHECKS.get(context.submission_type, ()):
        check(con, context)


def due_at(settings: Settings, period: str) -> str:
    """The period's due date: day N of the next month, 23:59:59 +08:00 (ISO 8601)."""
    year, month = int(period[:4]), int(period[5:7]) + 1
    if month == 13:
        year, month = year + 1, 1
    return f"{year:04d}-{month:02d}-{settings.due_day_of_next_month:02d}T23:59:59+08:00"
