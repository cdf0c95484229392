"""The clean-file path of intake: one streaming pass over a CSV writes its typed raw Parquet
while it proves that no row has a finding.

Most files are clean. For them, reading the CSV into a text table, listing findings row by
row and copying the table once more into typed Parquet cost three passes and the whole file
in memory. Here one ``COPY (SELECT ...) TO`` reads the CSV, normalises and casts each cell
and stops at the first row for which any row edit, V016 or V017 would list a finding — the
very conditions ``edits`` and ``formats`` list findings for. Duplicate keys are then
counted over the new Parquet. Only a file that passes all of it stays on this path: its
rows are view ``submission`` for the cross-file edits that read them (over the Parquet,
the record's line number as ``_row_no``: ``checked.CheckedFile``), and the Parquet becomes
the raw version if the file is accepted. Anything else (a refused record, a file that is
not UTF-8, a header that does not match, a row with a finding, a duplicate key) leaves
nothing behind, and the full path reads the file again and reports every finding exactly
as before.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from collectwatch.config import Settings
from collectwatch.contracts import FILE_NAME_PATTERN, SubmissionType
from collectwatch.intake.crosschecks import (
    RECONCILED,
    BatchResults,
    counterparty_findings,
    reconciliation_findings,
)
from collectwatch.intake.edits import any_row_finding, exact_values
from collectwatch.intake.formats import (
    CsvLayout,
    csv_layout,
    csv_records_query,
    quote,
    safety_suspect,
)
from collectwatch.intake.lifecycle import StateStore
from collectwatch.intake.registry import COUNTERPARTIES
from collectwatch.raw import PARQUET_OPTIONS, typed_columns, typed_select
from collectwatch.uscc import sql_is_valid

STOP = "collectwatch: a row has findings"


@dataclass(frozen=True)
class CleanFile:
    """A file without row findings: its typed Parquet (in the intake work folder until it
    is moved into the raw zone or deleted), row count and source description."""

    typed_path: Path
    row_count: int
    source: dict
    batch: BatchResults | None = None  # for the cross-file edits (Context.batch)


def _valid_codes(con: duckdb.DuckDBPyConnection, submitters: list[str]) -> None:
    """Table ``valid_codes``: the valid USCCs the files are expected to name (their
    submitters and the registry in effect), so most cells need no check-character
    arithmetic."""
    con.execute(
        "create or replace temp table valid_codes as select code from "
        "(select unnest(?::varchar[]) as code union select uscc from registry_in_effect) "
        f"where {sql_is_valid('code')}",
        [submitters],
    )


def _has_duplicate_keys(
    con: duckdb.DuckDBPyConnection, path: Path, submission_type: SubmissionType
) -> bool:
    """True when two rows may share a key: distinct key hashes fewer than rows (a hash
    collision only sends the file to the full path, which compares the keys themselves)."""
    # fetchall: DuckDB 2.0 holds the connection until a result is read to its end
    [(duplicates,)] = con.execute(
        f"select count(*) <> {_distinct_keys(submission_type)} from read_parquet('{path}')"
    ).fetchall()
    return duplicates


def _distinct_keys(submission_type: SubmissionType) -> str:
    """SQL: the number of distinct key hashes among the rows."""
    key = ", ".join(quote(name) for name in submission_type.key)
    return f"count(distinct hash({key}))"


def _as_read(submission_type: SubmissionType) -> tuple[str, ...]:
    """The columns whose text cell in a record without findings is already its typed
    value: a required column of exact values holds a well-formed one there (ASCII, no
    space at either end), which trimming cannot change. Saves a byte and a character
    count of each such cell (~5% of a contact log's clean pass)."""
    return tuple(c.name for c in submission_type.columns if exact_values(c) and c.required)


def _suspect(
    submission_type: SubmissionType, period: str, submitter: str, layout: CsvLayout
) -> str:
    """SQL: true for a record of a file of ``layout`` any row edit, V016 or V017 would list
    a finding for; ``submitter`` is the submitter's USCC as SQL."""
    # Columns of exact values need no V016/V017 test: a control character or a formula
    # prefix there makes the cell malformed, which the row edits already catch.
    exact = tuple(c.name for c in submission_type.columns if exact_values(c))
    ascii_only = layout.ascii_only
    return (
        f"({any_row_finding(submission_type, period, submitter, 'valid_codes', ascii_only)}) "
        f"or {safety_suspect(submission_type, skip=exact)}"
    )


def clean_pass(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    submission_type: SubmissionType,
    period: str,
    submitter_uscc: str,
    settings: Settings,
    ascii_only: bool = False,
) -> CleanFile | None:
    """Read a CSV without row findings into typed Parquet; None (nothing kept) when the
    file needs the full path."""
    if path.suffix.lower() != ".csv" or path.stat().st_size == 0:
        return None
    layout = csv_layout(path, submission_type)
    if layout is None:
        return None
    layout = replace(layout, ascii_only=ascii_only)
    text, source = csv_records_query([path], layout, submission_type), layout.source
    _valid_codes(con, [submitter_uscc])
    suspect = _suspect(submission_type, period, f"'{submitter_uscc}'", layout)
    rows = f"(select * from ({text}) where case when {suspect} then error('{STOP}') else true end)"
    settings.intake_work_dir.mkdir(parents=True, exist_ok=True)
    target = settings.intake_work_dir / f"{uuid.uuid4().hex}.parquet"
    as_read = _as_read(submission_type)
    try:
        [(row_count,)] = con.execute(
            f"copy ({typed_select(submission_type, rows, as_read, ascii_only)}) "
            f"to '{target}' ({PARQUET_OPTIONS})"
        ).fetchall()
        if row_count == 0 or _has_duplicate_keys(con, target, submission_type):
            target.unlink()
            return None
    except duckdb.Error:
        target.unlink(missing_ok=True)
        return None
    return CleanFile(target, row_count, source)


def _folder_of(path: str) -> str:
    """SQL: the name of the folder of the file at ``path`` (an SQL expression)."""
    return f"string_split({path}, '/')[-2]"


# The submitter of a record read by a batch: its file's folder, which a batch only holds
# when it is the USCC in the file's name (IntakeSession._plan_batches).
BATCH_SUBMITTER = _folder_of("filename")


class CleanBatch:
    """The clean path over many CSV files of one type, period and layout at once.

    A file read alone costs ~20 ms of DuckDB set-up before its first row (more than a
    small file's rows), and a national month has ~16,000 files. Here one streaming query
    reads every file of the batch, normalises, tests and casts each record as the
    single-file pass does, and writes one typed table in file and record order, with
    each record's file and whether any row edit, V016 or V017 would list a finding for it
    (a record with a finding is not cast: its typed cells are null). One scan of that
    table then counts, per file, its records, those with findings, and its distinct key
    hashes. Every file without findings or duplicate keys is then cut out of the batch as
    its typed Parquet, ``threads`` files at a time (a small file's Parquet is written by
    one thread); ``take`` hands a file its cut. Any other file takes the full path,
    exactly as if it had been read alone. If the batch itself cannot be read (a malformed
    record in some file), nothing is kept and every file is read alone.
    """

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        lines: dict[str, int],
        layout: CsvLayout,
        submission_type: SubmissionType,
        period: str,
        settings: Settings,
        store: StateStore | None = None,
    ):
        self.submission_type = submission_type
        self.period, self.settings, self.store = period, settings, store
        self.layout = layout
        self.lines = lines  # path -> number of lines (``files.digest_file``)
        self.paths = set(lines)
        self.work_dir = settings.intake_work_dir
        self.work_dir.mkdir(parents=True, exist_ok=True)
        # A table of the session's in-memory database, not a Parquet file: the rows are
        # written compressed once, as each file's raw version (DuckDB spills the table to
        # its temp folder if need be). Not a temporary table: the cuts read it from
        # cursors of their own.
        self.table = f"clean_batch_{uuid.uuid4().hex}"
        # Per file: its first row in the table, its counterparty codes; and the clean
        # files' Q005 and M001 findings (``_cross_file``).
        self.files_table, self.findings_table = f"{self.table}_files", f"{self.table}_findings"
        [(self.threads,)] = con.execute("select current_setting('threads')").fetchall()
        self.clean_rows: dict[str, int] = {}
        # path -> its typed Parquet, cut and not yet taken
        self.cuts: dict[str, Path] = {}
        self.results: dict[str, BatchResults] = {}  # path -> a clean file's cross-file results
        self.read = self._read(con, sorted(Path(path) for path in lines), period)

    def _read(self, con: duckdb.DuckDBPyConnection, paths: list[Path], period: str) -> bool:
        submission_type = self.submission_type
        _valid_codes(con, sorted({FILE_NAME_PATTERN.match(p.name)["uscc"] for p in paths}))
        suspect = _suspect(submission_type, period, BATCH_SUBMITTER, self.layout)
        text = csv_records_query(paths, self.layout, submission_type, filename=True)
        flagged = f"(select *, coalesce({suspect}, false) as _finding from ({text}))"
        typed = typed_columns(
            submission_type, "_finding", _as_read(submission_type), self.layout.ascii_only
        )
        try:
            con.execute(
                f"create table {self.table} as "
                f"select {typed}, filename as _file, _finding from {flagged}"
            )
            per_file = con.execute(
                f"select _file, count(*), count(*) filter (where _finding), "
                f"{_distinct_keys(submission_type)}, min(rowid), max(rowid) "
                f"from {self.table} group by _file"
            ).fetchall()
        except duckdb.Error:
            self.close(con)
            return False
        # A file's records must also be its lines less the header: DuckDB 2.0 reading many
        # files has been seen to drop a last record with an unterminated quote without an
        # error (it fails when the file is read alone). A quoted line break also differs:
        # such a file is simply read alone.
        self.clean_rows = {
            file: rows
            for file, rows, findings, keys, _, _ in per_file
            if not findings and keys == rows and rows == self.lines[file] - 1
        }
        # Each file's records are one run of the table (read in file and record order):
        # cut by rowid, which skips the other files' row groups, not by comparing every
        # record's file name (a scan of the whole batch per file).
        ranges = {
            file: ("rowid between ? and ?", [first, last])
            if last - first + 1 == rows
            else ("_file = ?", [file])
            for file, rows, _, _, first, last in per_file
            if file in self.clean_rows
        }
        self.results = self._cross_file(con, per_file)
        self._cut_all(con, ranges)
        return True

    def _cross_file(self, con: duckdb.DuckDBPyConnection, per_file: list) -> dict:
        """What the cross-file edits ask of each clean file whose records are one run of
        the table, from a few queries over the batch instead of a few per file (~4 ms
        each, and ~20 ms for a caseload reading its counterparties' raw files): its
        distinct counterparty codes, and its Q005 and M001 findings in table
        ``findings_table`` with their line numbers in the file. Q005 is against
        ``registry_in_effect`` as it is now, which the batch's files are checked against
        (the batch is dropped when a registry is accepted); M001 against the
        counterparties' current submissions, which ``lender_agency_reconciliation`` checks
        are still the current ones before using them."""
        name = self.submission_type.name
        contiguous = {
            file
            for file, rows, _, _, first, last in per_file
            if file in self.clean_rows and last - first + 1 == rows
        }
        if name == "complaints":
            return self._complaint_sources(con)
        if name not in COUNTERPARTIES or not contiguous:
            return {}
        column, _ = COUNTERPARTIES[name]
        con.execute(
            f"create temp table {self.files_table} as select _file, min(rowid) as first_rowid, "
            f"list(distinct {quote(column)}) as codes from {self.table} group by _file"
        )
        codes = {
            file: set(codes)
            for file, codes in con.execute(
                f"select _file, codes from {self.files_table}"
            ).fetchall()
            if file in contiguous
        }
        sql = counterparty_findings(name, self.table, "s.rowid", per="_file")
        con.execute(f"create temp table {self.findings_table} as {self._in_file(sql)}")
        compared = self._reconciled(con, set().union(*codes.values()))
        per_rule: dict[str, dict[str, int]] = {}
        for file, rule_id, count in con.execute(
            f"select _file, rule_id, count(*) from {self.findings_table} group by all"
        ).fetchall():
            per_rule.setdefault(file, {})[rule_id] = count
        listed = self._listed(con) if per_rule else {}
        return {
            file: BatchResults(
                file,
                counterparties,
                per_rule.get(file, {}),
                compared,
                listed=tuple(listed.get(file, ())),
            )
            for file, counterparties in codes.items()
        }

    def _listed(self, con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
        """Each file's findings in ``findings_table`` as its report lists them
        (``report.collect_row_findings``: in rule, row and field order, up to
        ``report_rows_per_rule`` of each rule, with the key of the record each names),
        from one query over the batch: a caseload file listing its own M001 findings
        costs ~8 ms, and most caseloads have some."""
        key = ", ".join(f"'{name}': s.{quote(name)}" for name in self.submission_type.key)
        listed: dict[str, list[tuple]] = {}
        for file, *finding in con.execute(
            f"""
            select f._file, f.rule_id, f.row_no, f.field, f.value, {{{key}}}
            from {self.findings_table} as f
            join {self.files_table} as b using (_file)
            join {self.table} as s on s.rowid = b.first_rowid + f.row_no - 2
            qualify row_number() over (
                partition by f._file, f.rule_id order by f.row_no, f.field
            ) <= {self.settings.report_rows_per_rule}
            order by f._file, f.rule_id, f.row_no, f.field
            """
        ).fetchall():
            listed.setdefault(file, []).append(tuple(finding))
        return listed

    def _complaint_sources(self, con: duckdb.DuckDBPyConnection) -> dict[str, BatchResults]:
        """Each clean complaints file's distinct sources, which V019 compares with its
        submitter's role instead of querying the file."""
        sources = con.execute(
            "select _file, list(distinct source) filter (where source is not null) "
            f"from {self.table} group by _file"
        ).fetchall()
        return {
            file: BatchResults(file, set(), {}, None, set(named))
            for file, named in sources
            if file in self.clean_rows
        }

    def _in_file(self, sql: str) -> str:
        """The batch's findings of ``sql`` with line numbers in their file."""
        return (
            "select _file, rule_id, row_no - first_rowid + 2 as row_no, field, value "
            f"from ({sql}) join {self.files_table} using (_file)"
        )

    def _reconciled(self, con: duckdb.DuckDBPyConnection, codes: set) -> dict[str, str] | None:
        """Add the batch's M001 findings to ``findings_table``; the counterparties'
        submissions they were compared with (USCC -> submission id), or None when the
        type is not reconciled."""
        name = self.submission_type.name
        if name not in RECONCILED or self.store is None:
            return None
        others = self.store.current(
            RECONCILED[name].other_type, period=self.period, submitters=sorted(codes - {None})
        )
        if others:
            sql = reconciliation_findings(
                name,
                self.settings.reconciliation_tolerance,
                self.table,
                _folder_of("_file"),  # the submitter (see BATCH_SUBMITTER)
                others,
                self.settings.raw_dir,
                row_no="rowid",
                per="_file",
            )
            con.execute(f"insert into {self.findings_table} {self._in_file(sql)}")
        return {other.submitter_uscc: other.submission_id for other in others}

    def _cut_all(self, con: duckdb.DuckDBPyConnection, ranges: dict[str, tuple]) -> None:
        """Write every clean file's typed Parquet, ``threads`` at a time."""
        columns = ", ".join(quote(c.name) for c in self.submission_type.columns)
        planned = {file: self.work_dir / f"{uuid.uuid4().hex}.parquet" for file in ranges}

        def cut(files: list[str]) -> None:
            cursor = con.cursor()
            try:
                for file in files:
                    rows_of_file, parameters = ranges[file]
                    cursor.execute(
                        f"copy (select {columns} from {self.table} where {rows_of_file}) "
                        f"to '{planned[file]}' ({PARQUET_OPTIONS})",
                        parameters,
                    )
            finally:
                cursor.close()

        files = sorted(planned)
        shares = [files[worker :: self.threads] for worker in range(self.threads)]
        try:
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(cut, shares))
        except BaseException:
            for target in planned.values():
                target.unlink(missing_ok=True)
            raise
        self.cuts = planned

    def covers(self, path: Path) -> bool:
        """True when the batch has a verdict for ``path``: clean (``take``) or not."""
        return self.read and str(path) in self.paths

    def take(self, path: Path) -> CleanFile | None:
        """The typed Parquet of a clean file of the batch, or None when the file needs the
        full path."""
        target = self.cuts.pop(str(path), None)
        if target is None:
            return None
        return CleanFile(
            target, self.clean_rows[str(path)], self.layout.source, self.results.get(str(path))
        )

    def close(self, con: duckdb.DuckDBPyConnection) -> None:
        """Drop the batch's table and the cuts no file took."""
        for target in self.cuts.values():
            target.unlink(missing_ok=True)
        self.cuts = {}
        for table in (self.table, self.files_table, self.findings_table):
            con.execute(f"drop table if exists {table}")
