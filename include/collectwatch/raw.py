"""The raw zone: accepted submissions as typed Parquet, and the list of current versions.

``raw/<type>/period=YYYY-MM/submitter=<USCC>/v<N>.parquet`` is written once per accepted
submission and never changed. ``raw/_current.parquet`` lists the current accepted version
of every (submitter, type, period); dbt reads exactly those files. ``raw/_schemas/`` holds
an empty typed file per type so dbt can build a month in which a type has no submission.
``raw/_submissions.parquet`` is the whole submission lifecycle (every version, rejected ones
included, no personal data) for dbt's coverage and timeliness models: the state store is
SQLite, which DuckDB cannot read here.
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pyarrow as pa

from collectwatch.config import Settings, connect_duckdb
from collectwatch.contracts import SUBMISSION_TYPES, SubmissionType
from collectwatch.files import file_lock, staged
from collectwatch.intake.formats import quote, trimmed
from collectwatch.intake.lifecycle import ACCEPTED, StateStore

# DuckDB's default row groups (122,880 rows): larger ones made the intake's write slower
# here (fewer groups to share between the threads) with no gain for dbt's reads.
PARQUET_OPTIONS = "format parquet, compression zstd"


def raw_path(
    settings: Settings, submission_type: str, period: str, uscc: str, sequence: int
) -> Path:
    return (
        settings.raw_dir
        / submission_type
        / f"period={period}"
        / f"submitter={uscc}"
        / f"v{sequence}.parquet"
    )


def typed_select(
    submission_type: SubmissionType,
    table: str = "submission",
    as_read: tuple[str, ...] = (),
    ascii_only: bool = False,
) -> str:
    """Select the contract's columns with their declared types from a text table, in the
    file's order: a table scan keeps insertion order (DuckDB's preserve_insertion_order),
    so no sort of a 10M-row file is needed. ``as_read``, ``ascii_only``: see
    ``typed_columns``."""
    typed = typed_columns(submission_type, as_read=as_read, ascii_only=ascii_only)
    return f"select\n    {typed}\nfrom {table}"


def typed_columns(
    submission_type: SubmissionType,
    unless: str | None = None,
    as_read: tuple[str, ...] = (),
    ascii_only: bool = False,
) -> str:
    """The contract's columns cast from text to their declared types; with ``unless`` (a
    boolean column), a row where it is true is not cast and its typed cells are null.
    Columns named in ``as_read`` are text cells known to be their typed value already;
    ``ascii_only``: the cells are of a file known to be ASCII (``formats.trimmed``)."""
    columns = []
    for column in submission_type.columns:
        cell = quote(column.name)
        typed = f"cast({trimmed(cell, ascii_only)} as {column.type})"
        cast = cell if column.name in as_read else typed
        if unless is not None:
            cast = f"case when not {unless} then {cast} end"
        columns.append(f"{cast} as {column.name}")
    return ",\n    ".join(columns)


def write_parquet(con: duckdb.DuckDBPyConnection, query: str, path: Path) -> None:
    """Write ``query`` to ``path`` atomically (nothing is left if the query fails)."""
    with staged(path) as temporary:
        con.execute(f"copy ({query}) to '{temporary}' ({PARQUET_OPTIONS})")


# The manifest's columns, from the state store's (decided_at: when it was accepted).
CURRENT_COLUMNS = (
    ("submission_id", "varchar"),
    ("submission_type", "varchar"),
    ("period", "varchar"),
    ("submitter_uscc", "varchar"),
    ("sequence", "integer"),
    ("raw_path", "varchar"),
    ("sha256", "varchar"),
    ("received_at", "varchar"),
    ("decided_at as accepted_at", "varchar"),
    ("row_count", "bigint"),
)


def write_current(settings: Settings) -> Path:
    """Rewrite ``_current.parquet`` (and the empty schema files) from the state store. The
    store is read under the lock: a listing that read it earlier cannot overwrite a later
    one's."""
    with file_lock(settings.raw_dir / ".current.lock"):
        store = StateStore(settings.submissions_db)
        try:
            current = store.rows(tuple(column for column, _ in CURRENT_COLUMNS), status=ACCEPTED)
            versions = store.rows(tuple(name for name, _ in SUBMISSION_LOG_COLUMNS))
        finally:
            store.close()
        con = connect_duckdb()
        try:
            declared = ", ".join(
                f"{column.split(' as ')[-1]} {kind}" for column, kind in CURRENT_COLUMNS
            )
            con.execute(f"create table current_versions ({declared})")
            _insert(con, "current_versions", current)
            _record_columns(con, settings)
            write_parquet(
                con,
                "select v.*, c.raw_columns from current_versions as v"
                " left join raw_columns as c using (raw_path) order by submission_id",
                settings.current_manifest,
            )
            _write_schemas(con, settings.raw_dir / "_schemas")
            write_submission_log(con, versions, settings)
        finally:
            con.close()
    return settings.current_manifest


def _record_columns(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Table ``raw_columns``: each current raw file's column signature (its columns' names
    and types in order), for dbt to know whether one type's files share one schema without
    reading every file's footer at every build (~0.25 s per 2,400 files, paid again for
    every month the raw zone keeps). A raw file is written once and never changed, so the
    previous manifest's signatures hold; only files it does not list are read."""
    con.execute(
        "create or replace temporary table raw_columns (raw_path varchar, raw_columns varchar)"
    )
    manifest = settings.current_manifest
    if manifest.exists():
        listed = {row[0] for row in con.execute(f"describe select * from '{manifest}'").fetchall()}
        if "raw_columns" in listed:
            con.execute(
                f"insert into raw_columns select raw_path, raw_columns from '{manifest}'"
                " where raw_columns is not null"
            )
    new_paths = [
        row[0]
        for row in con.execute(
            "select raw_path from current_versions where raw_path not in"
            " (select raw_path from raw_columns) order by raw_path"
        ).fetchall()
    ]
    if not new_paths:
        return
    raw_dir = f"{settings.raw_dir}/"
    con.execute(
        """
        insert into raw_columns
        select
            file_name[length($raw_dir) + 1:] as raw_path,
            string_agg(name || ' ' || duckdb_type, ', ' order by column_id) as raw_columns
        from parquet_schema($files)
        where column_id > 0
        group by file_name
        """,
        {"raw_dir": raw_dir, "files": [raw_dir + path for path in new_paths]},
    )


# The lifecycle columns dbt sees: identifiers, key, status and times. File names, hashes,
# sizes and paths stay in the state store (nothing a coverage model needs).
SUBMISSION_LOG_COLUMNS = (
    ("submission_id", "varchar"),
    ("submitter_uscc", "varchar"),
    ("submission_type", "varchar"),
    ("period", "varchar"),
    ("sequence", "integer"),
    ("status", "varchar"),
    ("received_at", "timestamptz"),
    ("decided_at", "timestamptz"),
)


def write_submission_log(
    con: duckdb.DuckDBPyConnection, versions: list[tuple], settings: Settings
) -> Path:
    """Write every submission version's lifecycle (rows of ``SUBMISSION_LOG_COLUMNS``) to
    ``raw/_submissions.parquet``."""
    names = [name for name, _ in SUBMISSION_LOG_COLUMNS]
    declared = ", ".join(f"{name} varchar" for name in names)
    con.execute(f"create or replace temporary table submission_log ({declared})")
    _insert(con, "submission_log", versions)
    typed = ", ".join(f"{name}::{kind} as {name}" for name, kind in SUBMISSION_LOG_COLUMNS)
    write_parquet(
        con, f"select {typed} from submission_log order by submission_id", settings.submission_log
    )
    return settings.submission_log


def _insert(con: duckdb.DuckDBPyConnection, table: str, rows: list[tuple]) -> None:
    """Insert the state store's rows (submissions, not data) as one Arrow table: DuckDB's
    executemany inserts row by row, ~3 ms a row, and a national month has ~16,000."""
    if not rows:  # an empty store (only rejections) is normal
        return
    columns = [pa.array(values) for values in zip(*rows, strict=True)]
    con.register(
        "inserted_rows", pa.Table.from_arrays(columns, [f"c{i}" for i in range(len(columns))])
    )
    try:
        con.execute(f"insert into {table} select * from inserted_rows")
    finally:
        con.unregister("inserted_rows")


def _write_schemas(con: duckdb.DuckDBPyConnection, folder: Path) -> None:
    for submission_type in SUBMISSION_TYPES.values():
        path = folder / f"{submission_type.name}.parquet"
        columns = ", ".join(
            f"null::{column.type} as {column.name}" for column in submission_type.columns
        )
        write_parquet(con, f"select {columns} where false", path)
