"""The clean-file path of intake: one streaming pass over a CSV writes its typed raw Parquet
while it proves that no row has a finding.

Most files are clean. For them, reading the CSV into a text table, listing findings row by
row and copying the table once more into typed Parquet cost three passes and the whole file
in memory. Here one ``COPY (SELECT ...) TO`` reads the CSV, normalises and casts each cell
and stops at the first row for which any row edit, V016 or V017 would list a finding — the
very conditions ``edits`` and ``formats`` list findings for. Duplicate keys are then
counted over the new Parquet. Only a file that passes all of it stays on this path: its
rows are table ``submission`` for the cross-file edits (a view over the Parquet, the
record's line number as ``_row_no``), and the Parquet becomes the raw version if the file
is accepted. Anything else (a refused record, a file that is not UTF-8, a header that does
not match, a row with a finding, a duplicate key) leaves nothing behind, and the full path
reads the file again and reports every finding exactly as before.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

import duckdb

from collectwatch.config import Settings
from collectwatch.contracts import SubmissionType
from collectwatch.intake.edits import any_row_finding, exact_values
from collectwatch.intake.formats import csv_text_query, drop_submission, quote, safety_suspect
from collectwatch.raw import PARQUET_OPTIONS, typed_select
from collectwatch.uscc import sql_is_valid

STOP = "collectwatch: a row has findings"


@dataclass(frozen=True)
class CleanFile:
    """A file without row findings: its typed Parquet (in the intake work folder until it
    is moved into the raw zone or deleted), row count and source description."""

    typed_path: Path
    row_count: int
    source: dict


def _valid_codes(con: duckdb.DuckDBPyConnection, submitter_uscc: str) -> None:
    """Table ``valid_codes``: the valid USCCs a file is expected to name (the submitter and
    the registry in effect), so most cells need no check-character arithmetic."""
    con.execute(
        "create or replace temp table valid_codes as select code from "
        "(select ? as code union select uscc from registry_in_effect) "
        f"where {sql_is_valid('code')}",
        [submitter_uscc],
    )


def _has_duplicate_keys(
    con: duckdb.DuckDBPyConnection, path: Path, submission_type: SubmissionType
) -> bool:
    """True when two rows may share a key: distinct key hashes fewer than rows (a hash
    collision only sends the file to the full path, which compares the keys themselves)."""
    key = ", ".join(quote(name) for name in submission_type.key)
    (duplicates,) = con.execute(
        f"select count(*) <> count(distinct hash({key})) from read_parquet('{path}')"
    ).fetchone()
    return duplicates


def clean_pass(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    submission_type: SubmissionType,
    period: str,
    submitter_uscc: str,
    settings: Settings,
) -> CleanFile | None:
    """Read a CSV without row findings into typed Parquet and view ``submission``; None
    (nothing kept) when the file needs the full path."""
    if path.suffix.lower() != ".csv" or path.stat().st_size == 0:
        return None
    found = csv_text_query(path, submission_type)
    if found is None:
        return None
    text, source = found
    _valid_codes(con, submitter_uscc)
    # Columns of exact values need no V016/V017 test: a control character or a formula
    # prefix there makes the cell malformed, which the row edits already catch.
    exact = tuple(c.name for c in submission_type.columns if exact_values(c))
    suspect = (
        f"({any_row_finding(submission_type, period, submitter_uscc, 'valid_codes')}) "
        f"or {safety_suspect(submission_type, skip=exact)}"
    )
    rows = f"(select * from ({text}) where case when {suspect} then error('{STOP}') else true end)"
    settings.intake_work_dir.mkdir(parents=True, exist_ok=True)
    target = settings.intake_work_dir / f"{uuid.uuid4().hex}.parquet"
    try:
        (row_count,) = con.execute(
            f"copy ({typed_select(submission_type, rows)}) to '{target}' ({PARQUET_OPTIONS})"
        ).fetchone()
        if row_count == 0 or _has_duplicate_keys(con, target, submission_type):
            target.unlink()
            return None
    except duckdb.Error:
        target.unlink(missing_ok=True)
        return None
    drop_submission(con)
    # Records are numbered from 2 (the header is row 1), as the full path numbers them.
    con.execute(
        f"create view submission as select * exclude (file_row_number), "
        f"file_row_number + 2 as _row_no "
        f"from read_parquet('{target}', file_row_number = true)"
    )
    return CleanFile(target, row_count, source)
