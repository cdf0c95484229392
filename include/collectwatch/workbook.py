"""Byte-deterministic XLSX for one published table: a data sheet with a Chinese and an
English header row (frozen), number formats by column type, and a notes sheet.

The workbook is written here, part by part, rather than by openpyxl: a national month's
``lender_agency_reconciliation`` has ~570,000 rows, and openpyxl, which builds and writes
one Python object per cell, took minutes per file and gigabytes of memory. The data
sheet's rows are rendered as XML by DuckDB, vectorised, and streamed into the zip entry;
the header rows, the notes sheet and the styles are a few hundred cells and are written
from Python. Every zip entry carries the same date and nothing records the save time, so
the same rows give the same bytes (DESIGN Decision 7: no timestamps inside data files).
Text cells arrive already neutralised (a leading apostrophe before = + - @) and are
written as inline strings, never as formulas.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape

import duckdb
import numpy as np
import pyarrow as pa
from openpyxl.utils import get_column_letter

from collectwatch.config import connect_duckdb

# Zip's earliest representable date; also what the workbook properties claim.
FIXED_TIMESTAMP = datetime(1980, 1, 1)
MONEY_FORMAT = "#,##0.00"
SHARE_FORMAT = "0.00%"
COUNT_FORMAT = "#,##0"
DECIMAL_FORMAT = "#,##0.00##"
HEADER_ROWS = 2
NOTES_SHEET = "notes 说明"
# Cell styles (cellXfs): 0 plain, 1 bold, then one per number format, in this order.
NUMBER_FORMATS = (MONEY_FORMAT, SHARE_FORMAT, COUNT_FORMAT, DECIMAL_FORMAT)
PLAIN, BOLD = 0, 1
# Deflate level of the data sheet: level 1 is ~3× faster than the default on these highly
# repetitive XML rows for a file ~20% larger.
SHEET_COMPRESSION = 1
ROWS_PER_CHUNK = 100_000

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
RELATIONSHIPS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PACKAGE_RELATIONSHIPS = "http://schemas.openxmlformats.org/package/2006/relationships"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


@dataclass(frozen=True)
class ColumnLabel:
    zh: str
    en: str
    definition: str


@dataclass(frozen=True)
class SheetSpec:
    """What a workbook needs besides the rows: labels, which columns are shares, notes."""

    sheet_name: str
    labels: dict[str, ColumnLabel]
    share_columns: frozenset[str]
    notes: tuple[tuple[str, str], ...]  # (heading, text) rows of the notes sheet


def number_format(field: pa.Field, share_columns: frozenset[str]) -> str | None:
    if field.name in share_columns:
        return SHARE_FORMAT
    if pa.types.is_decimal(field.type):
        return MONEY_FORMAT if field.type.scale == 2 else DECIMAL_FORMAT
    if pa.types.is_integer(field.type):
        return COUNT_FORMAT
    if pa.types.is_floating(field.type):
        return DECIMAL_FORMAT
    return None


def _style_of(field: pa.Field, share_columns: frozenset[str]) -> int:
    fmt = number_format(field, share_columns)
    return PLAIN if fmt is None else 2 + NUMBER_FORMATS.index(fmt)


def _text_cell(reference: str, text: str, style: int = PLAIN) -> str:
    styled = f' s="{style}"' if style else ""
    return (
        f'<c r="{reference}"{styled} t="inlineStr"><is>'
        f'<t xml:space="preserve">{escape(text)}</t></is></c>'
    )


def _text_row(row: int, texts: list[str | None], style: int = PLAIN) -> str:
    cells = "".join(
        _text_cell(f"{get_column_letter(index)}{row}", text, style)
        for index, text in enumerate(texts, start=1)
        if text is not None
    )
    return f'<row r="{row}">{cells}</row>'


def _cell_sql(name: str, field: pa.Field, style: int) -> str:
    """SQL rendering one cell of the data sheet as XML (an empty ``<c/>`` for a null).

    Data cells and rows carry no reference (``r="AB1234"``): it is optional (ECMA-376
    §18.3.1.4, §18.3.1.73) and readers place cells and rows in document order, so a null
    is written as an empty cell to keep the next cells in their columns. The references
    were a third of the sheet's XML and, ever-changing numbers, most of what the zip had to
    store: for the national ``lender_agency_reconciliation`` 817 → 513 MB of XML, a 90 →
    39 MB file, and 5.3 → 3.0 s to render and compress."""
    column = '"' + name.replace('"', '""') + '"'
    styled = f' s="{style}"' if style else ""
    if pa.types.is_boolean(field.type):
        value = f"'<c t=\"b\"><v>' || {column}::int || '</v></c>'"
    elif pa.types.is_floating(field.type):  # NaN and infinities are no number: no value
        finite = f"case when isfinite({column}) then {column} end"
        value = f"'<c{styled}><v>' || {finite}::varchar || '</v></c>'"
    elif pa.types.is_integer(field.type) or pa.types.is_decimal(field.type):
        value = f"'<c{styled}><v>' || {column}::varchar || '</v></c>'"
    else:
        text = f"{column}::varchar"
        for character, entity in (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;")):
            text = f"replace({text}, '{character}', '{entity}')"
        value = f"'<c t=\"inlineStr\"><is><t xml:space=\"preserve\">' || {text} || '</t></is></c>'"
    return f"coalesce({value}, '<c/>')"


def _data_rows_xml(rows: pa.Table, share_columns: frozenset[str], con: duckdb.DuckDBPyConnection):
    """The data rows' XML in chunks of bytes, in the table's order, rendered by DuckDB."""
    numbered = rows.append_column("__row", pa.array(np.arange(rows.num_rows)))
    cells = ", ".join(
        _cell_sql(field.name, field, _style_of(field, share_columns)) for field in rows.schema
    )
    con.register("sheet_rows", numbered)
    try:
        reader = con.sql(
            f"select '<row>' || concat({cells}) || '</row>' as xml from sheet_rows order by __row"
        ).to_arrow_reader(ROWS_PER_CHUNK)
        for batch in reader:
            yield _values_buffer(batch.column(0))
    finally:
        con.unregister("sheet_rows")


def _values_buffer(strings: pa.Array) -> memoryview:
    """A string array's values back to back — its data buffer between its first and last
    offsets — without a Python string per row."""
    width = np.int64 if pa.types.is_large_string(strings.type) else np.int32
    offsets = np.frombuffer(strings.buffers()[1], dtype=width)
    start, end = offsets[strings.offset], offsets[strings.offset + len(strings)]
    return memoryview(strings.buffers()[2])[start:end]


def _sheet_head(last_cell: str, frozen: bool, widths: dict[int, int]) -> str:
    pane = (
        f'<pane ySplit="{HEADER_ROWS}" topLeftCell="A{HEADER_ROWS + 1}" '
        'activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft"/>'
        if frozen
        else ""
    )
    cols = "".join(
        f'<col min="{index}" max="{index}" width="{width}" customWidth="1"/>'
        for index, width in widths.items()
    )
    return (
        f'{XML_HEAD}<worksheet xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}">'
        f'<dimension ref="A1:{last_cell}"/>'
        f'<sheetViews><sheetView workbookViewId="0">{pane}</sheetView></sheetViews>'
        '<sheetFormatPr defaultRowHeight="15"/>'
        + (f"<cols>{cols}</cols>" if cols else "")
        + "<sheetData>"
    )


SHEET_TAIL = "</sheetData></worksheet>"


def _notes_rows(rows: pa.Table, spec: SheetSpec) -> list[str]:
    lines = [(heading, text) for heading, text in spec.notes]
    xml = [
        f'<row r="{number}">{_text_cell(f"A{number}", heading, BOLD)}'
        f"{_text_cell(f'B{number}', text)}</row>"
        for number, (heading, text) in enumerate(lines, start=1)
    ]
    header = len(lines) + 2  # an empty row between
    xml.append(_text_row(header, ["column 字段", "中文名", "English", "definition 定义"], BOLD))
    for number, name in enumerate(rows.column_names, start=header + 1):
        label = spec.labels[name]
        xml.append(_text_row(number, [name, label.zh, label.en, label.definition]))
    return xml


def _styles() -> str:
    formats = "".join(
        f'<numFmt numFmtId="{164 + index}" formatCode="{escape(code)}"/>'
        for index, code in enumerate(NUMBER_FORMATS)
    )
    number_xfs = "".join(
        f'<xf numFmtId="{164 + index}" fontId="0" fillId="0" borderId="0" xfId="0" '
        'applyNumberFormat="1"/>'
        for index in range(len(NUMBER_FORMATS))
    )
    return (
        f'{XML_HEAD}<styleSheet xmlns="{MAIN}">'
        f'<numFmts count="{len(NUMBER_FORMATS)}">{formats}</numFmts>'
        '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
        '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="2"><fill><patternFill patternType="none"/></fill>'
        '<fill><patternFill patternType="gray125"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border>'
        "</borders>"
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/>'
        "</cellStyleXfs>"
        f'<cellXfs count="{2 + len(NUMBER_FORMATS)}">'
        '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
        f"{number_xfs}</cellXfs>"
        '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
        "</styleSheet>"
    )


OFFICE = "application/vnd.openxmlformats-officedocument"
PACKAGE = "http://schemas.openxmlformats.org/package/2006"
CORE_NAMESPACES = (
    f'xmlns:cp="{PACKAGE}/metadata/core-properties" '
    'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
EXTENDED = "http://schemas.openxmlformats.org/officeDocument/2006/extended-properties"


def _override(part: str, content_type: str) -> str:
    return f'<Override PartName="{part}" ContentType="{content_type}"/>'


def _relationship(number: int, kind: str, target: str) -> str:
    return f'<Relationship Id="rId{number}" Type="{kind}" Target="{target}"/>'


def _content_types(sheet_count: int) -> str:
    sheets = "".join(
        _override(f"/xl/worksheets/sheet{n}.xml", f"{OFFICE}.spreadsheetml.worksheet+xml")
        for n in range(1, sheet_count + 1)
    )
    return (
        f'{XML_HEAD}<Types xmlns="{PACKAGE}/content-types">'
        '<Default Extension="rels" '
        'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        + _override("/xl/workbook.xml", f"{OFFICE}.spreadsheetml.sheet.main+xml")
        + sheets
        + _override("/xl/styles.xml", f"{OFFICE}.spreadsheetml.styles+xml")
        + _override(
            "/docProps/core.xml", "application/vnd.openxmlformats-package.core-properties+xml"
        )
        + _override("/docProps/app.xml", f"{OFFICE}.extended-properties+xml")
        + "</Types>"
    )


def _package_parts(sheet_names: list[str]) -> dict[str, str]:
    """Every part but the worksheets: content types, relationships, workbook, styles and
    the document properties (created and modified at the fixed date)."""
    stamp = FIXED_TIMESTAMP.strftime("%Y-%m-%dT%H:%M:%SZ")
    sheets = "".join(
        f'<sheet name="{escape(name)}" sheetId="{n}" r:id="rId{n}"/>'
        for n, name in enumerate(sheet_names, start=1)
    )
    sheet_relationships = "".join(
        _relationship(n, f"{RELATIONSHIPS}/worksheet", f"worksheets/sheet{n}.xml")
        for n in range(1, len(sheet_names) + 1)
    )
    styles = _relationship(len(sheet_names) + 1, f"{RELATIONSHIPS}/styles", "styles.xml")
    return {
        "[Content_Types].xml": _content_types(len(sheet_names)),
        "_rels/.rels": (
            f'{XML_HEAD}<Relationships xmlns="{PACKAGE_RELATIONSHIPS}">'
            + _relationship(1, f"{RELATIONSHIPS}/officeDocument", "xl/workbook.xml")
            + _relationship(
                2, f"{PACKAGE_RELATIONSHIPS}/metadata/core-properties", "docProps/core.xml"
            )
            + _relationship(3, f"{RELATIONSHIPS}/extended-properties", "docProps/app.xml")
            + "</Relationships>"
        ),
        "docProps/core.xml": (
            f"{XML_HEAD}<cp:coreProperties {CORE_NAMESPACES}>"
            "<dc:creator>collectwatch</dc:creator>"
            f'<dcterms:created xsi:type="dcterms:W3CDTF">{stamp}</dcterms:created>'
            f'<dcterms:modified xsi:type="dcterms:W3CDTF">{stamp}</dcterms:modified>'
            "</cp:coreProperties>"
        ),
        "docProps/app.xml": (
            f'{XML_HEAD}<Properties xmlns="{EXTENDED}">'
            "<Application>collectwatch</Application></Properties>"
        ),
        "xl/workbook.xml": (
            f'{XML_HEAD}<workbook xmlns="{MAIN}" xmlns:r="{RELATIONSHIPS}">'
            f"<sheets>{sheets}</sheets></workbook>"
        ),
        "xl/_rels/workbook.xml.rels": (
            f'{XML_HEAD}<Relationships xmlns="{PACKAGE_RELATIONSHIPS}">'
            f"{sheet_relationships}{styles}</Relationships>"
        ),
        "xl/styles.xml": _styles(),
    }


def _entry(name: str, compresslevel: int | None = None) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=FIXED_TIMESTAMP.timetuple()[:6])
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o600 << 16
    if compresslevel is not None:
        info._compresslevel = compresslevel  # zipfile's own per-entry level (3.7+)
    return info


def workbook_bytes(
    rows: pa.Table, spec: SheetSpec, renderer: duckdb.DuckDBPyConnection | None = None
) -> bytes:
    """The workbook's bytes; ``renderer``, an in-memory DuckDB connection to render the data
    rows with, can be shared by many workbooks (a new connection costs ~10 ms)."""
    if renderer is None:
        with connect_duckdb() as own:
            return workbook_bytes(rows, spec, own)
    names = rows.column_names
    last_row = HEADER_ROWS + rows.num_rows
    last_cell = f"{get_column_letter(max(len(names), 1))}{last_row}"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in _package_parts([spec.sheet_name, NOTES_SHEET]).items():
            archive.writestr(_entry(name), text.encode())
        data_sheet = _entry("xl/worksheets/sheet1.xml", SHEET_COMPRESSION)
        with archive.open(data_sheet, "w", force_zip64=True) as sheet:
            sheet.write(_sheet_head(last_cell, frozen=True, widths={}).encode())
            sheet.write(_text_row(1, [spec.labels[n].zh for n in names], BOLD).encode())
            sheet.write(_text_row(2, [spec.labels[n].en for n in names], BOLD).encode())
            for chunk in _data_rows_xml(rows, spec.share_columns, renderer):
                sheet.write(chunk)
            sheet.write(SHEET_TAIL.encode())
        notes = _notes_rows(rows, spec)
        notes_head = _sheet_head(f"D{len(notes) + 2}", frozen=False, widths={1: 28, 2: 40})
        archive.writestr(
            _entry("xl/worksheets/sheet2.xml"), (notes_head + "".join(notes) + SHEET_TAIL).encode()
        )
    return buffer.getvalue()
