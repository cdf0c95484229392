"""Reading a submission file into DuckDB as text, with its line numbers.

Every cell is read as text so that type errors become edits with the offending value
rather than a reader exception. Only CSV in UTF-8 (with or without BOM) for now; other
encodings and XLSX / Parquet come with the full intake (issue 4).
"""

from __future__ import annotations

from pathlib import Path

import duckdb


class UnreadableFile(Exception):
    """The file cannot be parsed at all; the message says why, for the report."""


def load_text_table(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    """Create table ``submission`` (text columns + ``_row_no``); return the header."""
    try:
        con.execute(
            f"""
            create or replace table submission_raw as
            select * from read_csv('{path}', header = true, all_varchar = true,
                                   delim = ',', quote = '"', escape = '"',
                                   encoding = 'utf-8', strict_mode = true,
                                   null_padding = false)
            """
        )
    except (duckdb.InvalidInputException, duckdb.ConversionException) as error:
        raise UnreadableFile(str(error).splitlines()[0]) from error
    header = [row[0] for row in con.execute("describe submission_raw").fetchall()]
    # rowid follows the file's order (insertion order is preserved); line 1 is the header.
    con.execute(
        "create or replace table submission as select *, rowid + 2 as _row_no from submission_raw"
    )
    con.execute("drop table submission_raw")
    return header
