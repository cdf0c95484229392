"""The DuckDB objects the edits of one file read and write: ``submission`` (its records)
and ``findings`` (rule_id, row_no, field, value), made when an edit first needs them.

On the full path both exist before any cross-file edit runs (``submission`` holds the
rows, ``findings`` the row findings). On the clean path a file has no row findings, and
its records are its typed Parquet: view ``submission`` and table ``findings`` each cost a
statement to create and another to drop (~0.5 ms each, most of what the intake of a small
clean file costs besides its reports), and a file whose batch answered every cross-file
edit needs neither.
"""

from __future__ import annotations

from pathlib import Path

import duckdb

from collectwatch.intake.formats import drop_submission

FINDINGS_COLUMNS = "(rule_id varchar, row_no bigint, field varchar, value varchar)"


class CheckedFile:
    """``submission`` and ``findings`` of the file being checked; ``typed_path`` is a clean
    file's typed Parquet, None when the full path has made both already."""

    def __init__(self, con: duckdb.DuckDBPyConnection, typed_path: Path | None = None):
        self.con = con
        self.typed_path = typed_path
        self.view_open = False  # view ``submission`` over ``typed_path`` exists
        self.findings_open = typed_path is None
        # Findings added so far; None on the full path, whose row findings are uncounted.
        self.added: int | None = 0 if typed_path is not None else None
        # Findings its batch already counted and listed, not in ``findings``: rule_id ->
        # (count, listed rows as ``report.collect_row_findings`` lists them)
        self.listed: dict[str, tuple[int, list[tuple]]] = {}

    def open_submission(self) -> None:
        """Make ``submission`` readable: on the clean path, a view over the typed Parquet."""
        if self.typed_path is None or self.view_open:
            return
        # Records are numbered from 2 (the header is row 1), as the full path numbers them.
        view = (
            "create or replace view submission as select * exclude (file_row_number), "
            "file_row_number + 2 as _row_no "
            f"from read_parquet('{self.typed_path}', file_row_number = true)"
        )
        try:  # replaces a previous file's view (a drop first costs a statement)
            self.con.execute(view)
        except duckdb.CatalogException:  # the name is a full path's table
            drop_submission(self.con)
            self.con.execute(view)
        self.view_open = True

    def add_findings(self, sql: str, parameters: list | None = None) -> None:
        """Append the rows of ``sql`` (rule_id, row_no, field, value) to ``findings``."""
        if not self.findings_open:
            self.con.execute(f"create or replace table findings {FINDINGS_COLUMNS}")
            self.findings_open = True
        # fetchall: DuckDB 2.0 holds the connection until a result is read to its end
        [(added,)] = self.con.execute(f"insert into findings {sql}", parameters).fetchall()
        if self.added is not None:
            self.added += added

    def take_listed(self, rule_id: str, count: int, listed: list[tuple]) -> None:
        """Take ``count`` findings of ``rule_id`` that its batch listed (``listed``) instead
        of adding them to ``findings``, which would cost a file ~8 ms of statements to
        insert, count and list them again."""
        self.listed[rule_id] = (count, listed)

    @property
    def may_have_findings(self) -> bool:
        """False when ``findings`` is certainly empty (nothing to count or list)."""
        return self.added is None or self.added > 0

    def close_view(self) -> None:
        """Drop the clean path's view, which reads the typed Parquet (before it is moved or
        deleted)."""
        if self.view_open:
            drop_submission(self.con)
            self.view_open = False
