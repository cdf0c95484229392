"""Reading a submission file (CSV, XLSX or Parquet) into DuckDB as text, with true row numbers.

Every later edit sees one table, ``submission``: the contract's columns as text (so a type
error becomes an edit showing the offending value, not a reader exception) plus ``_row_no``:

- CSV: the record's number with the header as row 1 (the line number, as long as no quoted
  cell spans lines — itself a V016 edit — and no blank line precedes it: readers skip those).
  UTF-8 (with or without BOM) is read by DuckDB directly; only a file that is not valid UTF-8
  is decoded strictly as GB18030 (a superset of GBK) into a UTF-8 working copy. The encoding
  found is stated in the report; a file that is neither is an edit naming the first bad byte.
- XLSX: the Excel row number (header in row 1). The sheet named after the type (English or
  Chinese) is read, else the first sheet; merged ranges take their top-left value; Excel
  datetimes carry no time zone and are read as Beijing time (+08:00).
- Parquet: the 1-based row index (Parquet has no header row); typed columns are rendered as
  text (timestamps with time zone as ISO 8601 at +08:00, naive timestamps without offset).

Headers match the contract's English names case- and whitespace-insensitively, or the Chinese
aliases in ``contracts.HEADER_ALIASES_ZH``, after NFKC (full-width forms to half-width).
Values are trimmed; code, enum, date and numeric columns get full-width characters folded to
ASCII, numeric columns lose valid thousands separators. Anything ambiguous is left as it is,
for the type edits to reject with the value shown. Rows whose every cell is empty are ignored.
"""

from __future__ import annotations

import codecs
import csv
import re
import unicodedata
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from collectwatch.config import Settings
from collectwatch.contracts import (
    COUNT,
    MONEY,
    RATE,
    TEXT,
    TIMESTAMP,
    TYPE_NAMES_ZH,
    Column,
    SubmissionType,
)

UTF8, UTF8_BOM, GB18030 = "utf-8", "utf-8-bom", "gb18030"
NUMERIC_TYPES = (MONEY, COUNT, RATE)
# Excel has no time zone: a naive datetime in a workbook is Beijing time (documented).
XLSX_DATETIME_OFFSET = "+08:00"
# A fixed-offset zone for rendering instants as Beijing wall time (POSIX names invert the sign).
BEIJING_FIXED_ZONE = "Etc/GMT-8"
TRANSCODE_CHUNK_BYTES = 16 * 1024 * 1024
HEADER_PROBE_BYTES = 1024 * 1024
WRONG_DELIMITERS = {";": "semicolon", "\t": "tab", "|": "vertical bar"}
# C0 and C1 control characters (tab, CR and LF included) and DEL.
CONTROL_CHARACTERS = r"[\x00-\x1F\x7F-\x9F]"
FORMULA_PREFIXES = ("=", "+", "-", "@")
# Full-width ASCII forms (U+FF01–U+FF5E), the ideographic space and the no-break space map
# to ASCII exactly as NFKC maps them.
FULL_WIDTH = "".join(chr(code) for code in range(0xFF01, 0xFF5F)) + "\u3000\u00a0"
HALF_WIDTH = "".join(chr(code) for code in range(0x21, 0x7F)) + "  "
THOUSANDS_PATTERN = r"-?[0-9]{1,3}(,[0-9]{3})+(\.[0-9]+)?"
UNSUPPORTED_PARQUET_TYPES = re.compile(r"STRUCT|MAP|UNION|\[|BLOB|BIT|VARIANT|GEOMETRY")


class UnreadableFile(Exception):
    """The file cannot be read as a table; ``rule_id``, ``field`` and ``value`` go in the report."""

    def __init__(self, rule_id: str, field_name: str, value: str):
        super().__init__(f"{rule_id} {field_name}: {value}")
        self.rule_id = rule_id
        self.field = field_name
        self.value = value


@dataclass(frozen=True)
class HeaderMatch:
    """How the file's header maps onto the contract's columns."""

    columns: dict[str, int]
    missing: list[str]
    unknown: list[str]
    duplicates: dict[str, list[str]]

    @property
    def ok(self) -> bool:
        return not (self.missing or self.unknown or self.duplicates)


@dataclass(frozen=True)
class LoadedFile:
    """What was read: the source description for the report and the header's mapping."""

    source: dict
    header: HeaderMatch


@dataclass
class _RawTable:
    """Table ``submission_raw`` (columns ``c0``…, ``_row_no``) and how to render each as text."""

    header: list[str]
    source: dict
    cell_text: Callable[[int, Column], str] = field(default=lambda index, column: f"c{index}")
    # CSV records are numbered by their order (rowid follows the file; the header is row 1).
    row_no: str = "rowid + 2"


def quote(name: str) -> str:
    """A SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def header_key(name: str) -> str:
    """The form in which header cells are compared: NFKC, trimmed, lower case, runs of
    white space as one underscore."""
    return re.sub(r"\s+", "_", unicodedata.normalize("NFKC", name or "").strip().lower())


def match_header(header: list[str], submission_type: SubmissionType) -> HeaderMatch:
    lookup = {
        header_key(name): column.name
        for column in submission_type.columns
        for name in (column.name, *column.aliases_zh)
    }
    found: dict[str, list[int]] = {}
    unknown: list[str] = []
    for index, name in enumerate(header):
        canonical = lookup.get(header_key(name))
        if canonical is None:
            unknown.append(name if header_key(name) else f"(column {index + 1} has no header)")
        else:
            found.setdefault(canonical, []).append(index)
    return HeaderMatch(
        columns={name: indexes[0] for name, indexes in found.items()},
        missing=[name for name in submission_type.column_names if name not in found],
        unknown=unknown,
        duplicates={
            name: [header[i] for i in indexes]
            for name, indexes in found.items()
            if len(indexes) > 1
        },
    )


# --- CSV -------------------------------------------------------------------------------------


def _csv_options(column_count: int) -> str:
    columns = ", ".join(f"'c{i}': 'VARCHAR'" for i in range(column_count))
    # The header is parsed here, not sniffed: DuckDB reads records only, every cell as text.
    return (
        f"header = false, skip = 1, auto_detect = false, columns = {{{columns}}}, "
        "delim = ',', quote = '\"', escape = '\"', encoding = 'utf-8', "
        "strict_mode = true, null_padding = false"
    )


def _csv_header(head: bytes) -> tuple[list[str], str]:
    """The header's cells and the file's candidate encoding, from the file's first bytes."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff") or head[:4] == b"\x00\x00\xfe\xff":
        raise UnreadableFile("S011", "file", "UTF-16/UTF-32 byte-order mark: save as UTF-8")
    encoding = UTF8_BOM if head.startswith(codecs.BOM_UTF8) else UTF8
    body = head[len(codecs.BOM_UTF8) :] if encoding == UTF8_BOM else head
    if not body.strip():
        raise UnreadableFile("S004", "file", "0 rows and no header")
    line = body.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as utf8_error:
        if encoding == UTF8_BOM:
            raise _encoding_error(line, utf8_error.start, 1, "the UTF-8 byte-order mark") from None
        try:
            text, encoding = line.decode("gb18030"), GB18030
        except UnicodeDecodeError as error:
            raise _encoding_error(line, error.start, 1, "UTF-8 or GB18030") from None
    try:
        cells = next(csv.reader([text], strict=True))
    except csv.Error as error:
        raise UnreadableFile("S007", "header", f"line 1: {error}") from None
    if len(cells) == 1:
        for delimiter, name in WRONG_DELIMITERS.items():
            if delimiter in cells[0]:
                raise UnreadableFile("S012", "header", f"{name}-separated: {cells[0][:80]}")
    return cells, encoding


def _encoding_error(data: bytes, offset: int, line: int, tried: str) -> UnreadableFile:
    return UnreadableFile(
        "S011",
        "file",
        f"not {tried}: byte 0x{data[offset]:02X} at line {line}, byte offset {offset} "
        "cannot be decoded",
    )


def _first_csv_error(con: duckdb.DuckDBPyConnection, path: Path, column_count: int) -> tuple:
    """Re-read a file DuckDB refused, collecting errors instead of stopping, for the report:
    (line, error type, message) of the first one."""
    name = f"csv_rejects_{uuid.uuid4().hex}"
    # Every column is materialised: a projection-pruned scan would not parse the cells.
    con.execute(
        f"create temp table {name}_read as select * from read_csv(?, "
        f"{_csv_options(column_count)}, store_rejects = true, "
        f"rejects_table = '{name}', rejects_scan = '{name}_scan')",
        [str(path)],
    )
    first = con.execute(
        f"select line, error_type, error_message from {name} order by line limit 1"
    ).fetchone()
    for table in (name, f"{name}_scan", f"{name}_read"):
        con.execute(f"drop table {table}")
    return first or (None, None, None)


def _read_records(con: duckdb.DuckDBPyConnection, path: Path, column_count: int) -> str | None:
    """Load the records into ``submission_raw``. A file that is not UTF-8 returns where
    that was found ("line N"); any other refusal raises its edit, naming the line."""
    try:
        con.execute(
            f"create or replace table submission_raw as "
            f"select * from read_csv(?, {_csv_options(column_count)})",
            [str(path)],
        )
        return None
    except (duckdb.InvalidInputException, duckdb.ConversionException) as error:
        line, error_type, message = _first_csv_error(con, path, column_count)
        if error_type == "INVALID ENCODING":
            return f"line {line}"
        if error_type in ("TOO MANY COLUMNS", "MISSING COLUMNS"):
            raise UnreadableFile("S013", f"line {line}", message) from None
        detail = f"line {line}: {message}" if line else str(error).splitlines()[0]
        raise UnreadableFile("S007", "file", detail) from None


def _transcode_gb18030(path: Path, target: Path) -> None:
    """Decode ``path`` strictly as GB18030 into UTF-8 ``target``, in large chunks."""
    decoder = codecs.getincrementaldecoder("gb18030")("strict")
    offset = 0
    with open(path, "rb") as source, open(target, "w", encoding="utf-8", newline="") as out:
        while chunk := source.read(TRANSCODE_CHUNK_BYTES):
            pending = len(decoder.getstate()[0])
            try:
                out.write(decoder.decode(chunk))
            except UnicodeDecodeError as error:
                raise _gb18030_error(path, offset - pending + error.start) from None
            offset += len(chunk)
        try:
            out.write(decoder.decode(b"", final=True))
        except UnicodeDecodeError:
            raise _gb18030_error(path, offset - len(decoder.getstate()[0])) from None


def _gb18030_error(path: Path, offset: int) -> UnreadableFile:
    """Name the line and byte offset of the first byte GB18030 cannot decode (failure path
    only: the prefix is read again to count its lines)."""
    lines = 1
    with open(path, "rb") as source:
        remaining = offset
        while remaining > 0 and (chunk := source.read(min(remaining, TRANSCODE_CHUNK_BYTES))):
            lines += chunk.count(b"\n")
            remaining -= len(chunk)
        bad = source.read(1)
    return UnreadableFile(
        "S011",
        "file",
        f"neither UTF-8 nor GB18030: byte 0x{bad.hex().upper()} at line {lines}, "
        f"byte offset {offset} cannot be decoded",
    )


def _read_csv(con, path: Path, submission_type: SubmissionType, settings: Settings) -> _RawTable:
    with open(path, "rb") as handle:
        head = handle.read(HEADER_PROBE_BYTES)
    header, encoding = _csv_header(head)
    if encoding != GB18030:
        utf8_failure = _read_records(con, path, len(header))
        if utf8_failure is None:
            return _RawTable(header, {"format": "csv", "encoding": encoding})
        if encoding == UTF8_BOM:
            raise UnreadableFile(
                "S011", "file", f"not UTF-8 despite its byte-order mark, from {utf8_failure}"
            )
    work = settings.intake_work_dir / f"{uuid.uuid4().hex}.csv"
    work.parent.mkdir(parents=True, exist_ok=True)
    try:
        _transcode_gb18030(path, work)
        if _read_records(con, work, len(header)) is not None:  # cannot happen: it is UTF-8 now
            raise UnreadableFile("S011", "file", "the GB18030 text did not re-encode as UTF-8")
    finally:
        work.unlink(missing_ok=True)
    return _RawTable(header, {"format": "csv", "encoding": GB18030})


# --- XLSX ------------------------------------------------------------------------------------


def _check_zip(path: Path, settings: Settings) -> None:
    """Refuse a decompression bomb before any XML is parsed: limits on the declared total
    uncompressed size and on the overall compression ratio."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise UnreadableFile("S007", "file", f"not an XLSX workbook: {error}") from None
    unpacked = sum(member.file_size for member in members)
    packed = max(sum(member.compress_size for member in members), 1)
    if unpacked > settings.xlsx_max_uncompressed_bytes:
        raise UnreadableFile(
            "S014",
            "uncompressed_bytes",
            f"{unpacked} > limit {settings.xlsx_max_uncompressed_bytes}",
        )
    if unpacked / packed > settings.xlsx_max_compression_ratio:
        raise UnreadableFile(
            "S014",
            "compression_ratio",
            f"{unpacked / packed:.0f} > limit {settings.xlsx_max_compression_ratio}",
        )


def _choose_sheet(workbook, submission_type: SubmissionType):
    from python_calamine import SheetTypeEnum

    worksheets = [m.name for m in workbook.sheets_metadata if m.typ == SheetTypeEnum.WorkSheet]
    if not worksheets:
        raise UnreadableFile("S015", "sheet", "the workbook has no worksheet")
    wanted = {header_key(submission_type.name), header_key(TYPE_NAMES_ZH[submission_type.name])}
    named = [name for name in worksheets if header_key(name) in wanted]
    return workbook.get_sheet_by_name((named or worksheets)[0])


def _fill_merged(columns: list[list], merged_ranges: list, row_count: int) -> None:
    """Give every cell of a merged range its top-left value (the rest are blank in the file).
    Ranges reaching past the data are cut at its last row."""
    for (top, left), (bottom, right) in merged_ranges:
        if top >= row_count or left >= len(columns):
            continue
        bottom = min(bottom, row_count - 1)
        value = columns[left][top]
        for column in columns[left : right + 1]:
            column[top : bottom + 1] = [value] * (bottom + 1 - top)


# Cell types calamine returns, the Arrow type each is loaded as, and the part's suffix.
def _cell_parts() -> dict[type, tuple[str, pa.DataType]]:
    import datetime as dt

    return {
        str: ("text", pa.string()),
        float: ("number", pa.float64()),
        int: ("integer", pa.int64()),
        bool: ("boolean", pa.bool_()),
        dt.datetime: ("datetime", pa.timestamp("us")),
        dt.date: ("date", pa.date32()),
        dt.time: ("time", pa.time64("us")),
        dt.timedelta: ("duration", pa.duration("us")),
    }


def _typed_parts(index: int, values: list, parts: dict) -> dict[str, pa.Array]:
    """Split one column of mixed Python values into typed Arrow arrays, one per cell type
    present (C-level: ``map(type)`` and numpy masks, no Python loop over the cells).
    Cells of any other type (none expected) are kept as their ``str``."""
    cells = np.empty(len(values), dtype=object)
    cells[:] = values
    kinds = np.fromiter(map(type, values), dtype=object, count=len(values))
    unknown = np.ones(len(values), dtype=bool)
    arrays = {}
    for kind in set(kinds.tolist()) & set(parts):
        mask = kinds == kind
        unknown &= ~mask
        suffix, arrow_type = parts[kind]
        arrays[f"c{index}__{suffix}"] = pa.array(
            np.where(mask, cells, None), type=arrow_type, from_pandas=True
        )
    if unknown.any():
        as_text = np.array(list(map(str, values)), dtype=object)
        arrays[f"c{index}__other"] = pa.array(np.where(unknown, as_text, None), type=pa.string())
    return arrays


def _number_text(value: str) -> str:
    """A double as text: integral values without the spurious '.0', others shortest exact."""
    return (
        f"case when isfinite({value}) and {value} = trunc({value}) and abs({value}) < 1e15 "
        f"then ({value}::bigint)::varchar else {value}::varchar end"
    )


def _instant_text(local: str, offset: str) -> str:
    """A naive wall-clock timestamp as ISO 8601 with ``offset`` (fraction only when present)."""
    fraction = f"epoch_us({local}) % 1000000"
    return (
        f"strftime({local}, '%Y-%m-%dT%H:%M:%S') || case when {fraction} <> 0 "
        f"then '.' || lpad(({fraction})::varchar, 6, '0') else '' end || '{offset}'"
    )


def _xlsx_datetime_text(value: str, column: Column) -> str:
    if column.type == TIMESTAMP:
        return _instant_text(value, XLSX_DATETIME_OFFSET)
    return _instant_text(value, "")


def _xlsx_date_text(value: str, column: Column) -> str:
    if column.type == TIMESTAMP:
        return f"strftime({value}, '%Y-%m-%d') || 'T00:00:00{XLSX_DATETIME_OFFSET}'"
    if column.kind == "period":
        # Excel turns a typed "2026-10" into the date 2026-10-01: read that back as the month.
        return (
            f"case when day({value}) = 1 then strftime({value}, '%Y-%m') "
            f"else strftime({value}, '%Y-%m-%d') end"
        )
    return f"strftime({value}, '%Y-%m-%d')"


def _xlsx_cell_text(present: dict[int, list[str]]) -> Callable[[int, Column], str]:
    renderers = {
        "text": lambda value, column: f"nullif({value}, '')",
        "number": lambda value, column: _number_text(value),
        "datetime": _xlsx_datetime_text,
        "date": _xlsx_date_text,
    }

    def cell_text(index: int, column: Column) -> str:
        pieces = [
            renderers.get(suffix, lambda value, column: f"{value}::varchar")(
                f"c{index}__{suffix}", column
            )
            for suffix in present.get(index, [])
        ]
        return f"coalesce({', '.join(pieces)})" if pieces else "null::varchar"

    return cell_text


def _read_xlsx(con, path: Path, submission_type: SubmissionType, settings: Settings) -> _RawTable:
    from python_calamine import CalamineError, CalamineWorkbook

    _check_zip(path, settings)
    try:
        workbook = CalamineWorkbook.from_path(str(path))
        sheet = _choose_sheet(workbook, submission_type)
        # Not skipping the empty area keeps list index = Excel row - 1, column index = column.
        rows = sheet.to_python(skip_empty_area=False)
        merged = sheet.merged_cell_ranges or []
    except CalamineError as error:
        raise UnreadableFile("S007", "file", f"not a readable XLSX workbook: {error}") from None
    if not rows or not any(cell != "" for cell in rows[0]):
        raise UnreadableFile("S015", "sheet", f"sheet {sheet.name!r} has no header in row 1")
    columns = [list(column) for column in zip(*rows, strict=True)]
    _fill_merged(columns, merged, len(rows))
    # Formatted but empty columns without a header are part of the sheet's range, not data.
    columns = [c for c in columns if c[0] != "" or c.count("") + c.count(None) < len(c)]
    header = [str(column[0]) for column in columns]
    parts = _cell_parts()
    arrays: dict[str, pa.Array] = {"_row_no": pa.array(np.arange(2, len(rows) + 1, dtype=np.int64))}
    present: dict[int, list[str]] = {}
    for index, column in enumerate(columns):
        typed = _typed_parts(index, column[1:], parts)
        arrays |= typed
        present[index] = [name.split("__", 1)[1] for name in typed]
    con.register("workbook_cells", pa.table(arrays))
    con.execute("create or replace table submission_raw as select * from workbook_cells")
    con.unregister("workbook_cells")
    return _RawTable(
        header,
        {"format": "xlsx", "sheet": sheet.name, "naive_datetimes_read_as": XLSX_DATETIME_OFFSET},
        _xlsx_cell_text(present),
        row_no="_row_no",
    )


# --- Parquet ---------------------------------------------------------------------------------


def _parquet_text(value: str, duckdb_type: str) -> str:
    if duckdb_type == "VARCHAR":
        return value
    if duckdb_type in ("FLOAT", "DOUBLE"):
        return _number_text(value)
    if duckdb_type == "TIMESTAMP WITH TIME ZONE":
        return _instant_text(f"timezone('{BEIJING_FIXED_ZONE}', {value})", "+08:00")
    if duckdb_type.startswith("TIMESTAMP"):
        # No zone in the file: rendered without offset, so the timestamp edit rejects it.
        return _instant_text(f"{value}::timestamp", "")
    return f"{value}::varchar"


def _read_parquet(con, path: Path, submission_type: SubmissionType, settings: Settings):
    try:
        described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
    except (duckdb.Error, OSError) as error:
        raise UnreadableFile("S007", "file", f"not a readable Parquet file: {error}") from None
    header = [row[0] for row in described]
    types = [row[1] for row in described]
    for name, duckdb_type in zip(header, types, strict=True):
        if UNSUPPORTED_PARQUET_TYPES.search(duckdb_type):
            raise UnreadableFile("S017", name, duckdb_type)
    columns = ", ".join(f"{quote(name)} as c{i}" for i, name in enumerate(header))
    try:
        con.execute(
            f"create or replace table submission_raw as select {columns}, "
            "file_row_number + 1 as _row_no from read_parquet(?, file_row_number = true)",
            [str(path)],
        )
    except duckdb.Error as error:
        raise UnreadableFile("S007", "file", f"not a readable Parquet file: {error}") from None
    return _RawTable(
        header,
        {"format": "parquet"},
        lambda index, column: _parquet_text(f"c{index}", types[index]),
        row_no="_row_no",
    )


# --- the ``submission`` table ----------------------------------------------------------------


def _normalised(text: str, column: Column, ascii_only: bool = False) -> str:
    """Fold full-width forms in code, enum, date and numeric columns; trim spaces; drop
    thousands separators in numeric columns only where the grouping is valid. Each step is
    guarded by a cheap test, so an ordinary ASCII cell is copied, not rewritten. In a file
    known to be ASCII (``ascii_only``) there is nothing full-width to fold, and no cell is
    tested for it (a character count of every cell: ~6% of a clean contact log's pass)."""
    value = text
    if not ascii_only and (column.type != TEXT or column.kind or column.allowed):
        folded = f"translate({value}, {_literal(FULL_WIDTH)}, {_literal(HALF_WIDTH)})"
        value = f"(case when strlen({value}) <> length({value}) then {folded} else {value} end)"
    value = (
        f"(case when prefix({value}, ' ') or suffix({value}, ' ') "
        f"then trim({value}, ' ') else {value} end)"
    )
    if column.type in NUMERIC_TYPES:
        value = (
            f"(case when contains({value}, ',') and regexp_full_match({value}, "
            f"'{THOUSANDS_PATTERN}') then replace({value}, ',', '') else {value} end)"
        )
    return f"nullif({value}, '')"


def trimmed(cell: str, ascii_only: bool = False) -> str:
    """``nullif(trim(cell), '')`` for a cell of table ``submission``, cheaply: normalisation
    already removed spaces at either end and turned '' into NULL, so ``trim`` (which also
    strips Unicode white space such as a no-break space) can only change a cell holding
    non-ASCII characters; an ASCII cell (as many bytes as characters), or any cell of a file
    known to be ASCII (``ascii_only``), is returned as it is."""
    if ascii_only:
        return cell
    ascii_cell = f"strlen({cell}) = length({cell})"
    return f"nullif(case when {ascii_cell} then {cell} else trim({cell}) end, '')"


def _normalised_columns(
    cell_text: Callable[[int, Column], str],
    header: HeaderMatch,
    submission_type: SubmissionType,
    ascii_only: bool = False,
) -> str:
    return ",\n    ".join(
        f"{_normalised(cell_text(header.columns[c.name], c), c, ascii_only)} as {quote(c.name)}"
        for c in submission_type.columns
    )


def drop_submission(con: duckdb.DuckDBPyConnection) -> None:
    """Drop ``submission``, the previous file's table (full path) or view (clean path)."""
    # Cheaper than asking the catalogue which it is (three times per file).
    try:
        con.execute("drop view if exists submission")
    except duckdb.CatalogException:  # it is the full path's table
        con.execute("drop table submission")


def _build_submission(con, raw: _RawTable, header: HeaderMatch, submission_type: SubmissionType):
    selects = _normalised_columns(raw.cell_text, header, submission_type)
    any_value = " or ".join(f"{quote(name)} is not null" for name in submission_type.column_names)
    drop_submission(con)
    con.execute(
        f"create or replace table submission as select * from (select\n    {selects},\n"
        f"    {raw.row_no} as _row_no from submission_raw) where {any_value}"
    )
    con.execute("drop table submission_raw")


def _finding(rule_id: str, column: Column, condition: str, value: str) -> str:
    return (
        f"case when {condition} then {{'rule_id': '{rule_id}', 'field': '{column.name}', "
        f"'value': {value}}} end"
    )


def _formula_like(cell: str) -> str:
    prefixes = ", ".join(_literal(prefix) for prefix in FORMULA_PREFIXES)
    return f"left({cell}, 1) in ({prefixes})"


def safety_suspect(submission_type: SubmissionType, skip: tuple[str, ...] = ()) -> str:
    """True for a row of ``submission`` that may hold a V016 or V017 finding in a column
    not named in ``skip``."""
    columns = [c for c in submission_type.columns if c.name not in skip]
    every_cell = ", ".join(quote(c.name) for c in columns)
    suspicious = [f"regexp_matches(concat({every_cell}), '{CONTROL_CHARACTERS}')"]
    suspicious += [_formula_like(quote(c.name)) for c in columns if c.type == TEXT]
    return " or ".join(suspicious)


def safety_findings(con: duckdb.DuckDBPyConnection, submission_type: SubmissionType) -> None:
    """Fill ``format_findings(rule_id, row_no, field, value)``: control characters in any
    cell (V016) and formula-like text in text cells (V017). One regular expression per row
    finds the rows to look at; only those are checked cell by cell."""
    cases = []
    for column in submission_type.columns:
        cell = quote(column.name)
        control = f"regexp_extract({cell}, '{CONTROL_CHARACTERS}')"
        cases.append(
            _finding(
                "V016",
                column,
                f"regexp_matches({cell}, '{CONTROL_CHARACTERS}')",
                f"'U+' || lpad(upper(to_hex(unicode({control}))), 4, '0') || ' in: ' || "
                f"regexp_replace({cell}, '{CONTROL_CHARACTERS}', '\ufffd', 'g')",
            )
        )
        if column.type == TEXT:
            cases.append(_finding("V017", column, _formula_like(cell), cell))
    con.execute(
        f"""
        create or replace table format_findings as
        with per_row as (
            select _row_no, list_filter([{", ".join(cases)}], lambda f: f is not null) as found
            from submission
            where {safety_suspect(submission_type)}
        )
        select finding.rule_id, _row_no as row_no, finding.field, finding.value::varchar as value
        from (select _row_no, unnest(found) as finding from per_row)
        """
    )


@dataclass(frozen=True)
class CsvLayout:
    """The header of a UTF-8 CSV that matches the contract: files of one layout (same
    cells, same encoding) are read by one query."""

    cells: tuple[str, ...]
    encoding: str
    match: HeaderMatch
    # Every byte of the file is ASCII (``files.digest_file``): read without the full-width
    # and Unicode white-space guards. False where it is not known.
    ascii_only: bool = False

    @property
    def source(self) -> dict:
        return {"format": "csv", "encoding": self.encoding}


def csv_layout(path: Path, submission_type: SubmissionType) -> CsvLayout | None:
    """The layout of a UTF-8 CSV whose header matches the contract; None for anything else:
    the full path reads that file and reports what is wrong with it."""
    with open(path, "rb") as handle:
        head = handle.read(HEADER_PROBE_BYTES)
    try:
        header, encoding = _csv_header(head)
    except UnreadableFile:
        return None
    match = match_header(header, submission_type)
    if encoding == GB18030 or not match.ok:
        return None
    return CsvLayout(tuple(header), encoding, match)


def csv_records_query(
    paths: list[Path], layout: CsvLayout, submission_type: SubmissionType, filename: bool = False
) -> str:
    """A query reading the records of CSV files of one layout as normalised text columns
    named as in the contract (as in table ``submission``, without ``_row_no``), in file
    order and then record order; with ``filename``, also each record's file path."""
    selects = _normalised_columns(
        lambda index, column: f"c{index}", layout.match, submission_type, layout.ascii_only
    )
    files = "[" + ", ".join(_literal(str(path)) for path in paths) + "]"
    options = _csv_options(len(layout.cells)) + (", filename = true" if filename else "")
    extra = ", filename" if filename else ""
    return f"select\n    {selects}{extra}\nfrom read_csv({files}, {options})"


READERS = {".csv": _read_csv, ".xlsx": _read_xlsx, ".parquet": _read_parquet}


def load_text_table(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    submission_type: SubmissionType,
    settings: Settings,
) -> LoadedFile:
    """Read ``path`` into table ``submission`` (text columns named as in the contract, plus
    ``_row_no``) when its header matches the contract, and fill ``format_findings``."""
    path = Path(path)
    if path.stat().st_size == 0:
        raise UnreadableFile("S004", "file", "0 bytes")
    raw = READERS[path.suffix.lower()](con, path, submission_type, settings)
    header = match_header(raw.header, submission_type)
    if header.ok:
        _build_submission(con, raw, header, submission_type)
        safety_findings(con, submission_type)
    return LoadedFile(raw.source, header)
