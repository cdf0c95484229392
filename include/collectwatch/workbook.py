"""Byte-deterministic XLSX for one published table: a data sheet with a Chinese and an
English header row (frozen), number formats by column type, and a notes sheet.

openpyxl stamps the save time into ``docProps/core.xml`` and every zip entry; both are
fixed here, so the same rows give the same bytes (DESIGN Decision 7: no timestamps inside
data files). Text cells arrive already neutralised (a leading apostrophe before = + - @).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.writer.excel import ExcelWriter

# Zip's earliest representable date; also what the workbook properties claim.
FIXED_TIMESTAMP = datetime(1980, 1, 1)
MONEY_FORMAT = "#,##0.00"
SHARE_FORMAT = "0.00%"
COUNT_FORMAT = "#,##0"
DECIMAL_FORMAT = "#,##0.00##"
HEADER_ROWS = 2
NOTES_SHEET = "notes 说明"


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


class _FixedDateZip(zipfile.ZipFile):
    """A zip whose entries all carry the same date and compression (openpyxl adds the
    worksheets from temporary files, whose modification time would leak in)."""

    def write(self, filename, arcname=None, compress_type=None, compresslevel=None):
        with open(filename, "rb") as handle:
            self.writestr(arcname or str(filename), handle.read())

    def writestr(self, zinfo_or_arcname, data, compress_type=None, compresslevel=None):
        if isinstance(zinfo_or_arcname, str):
            zinfo_or_arcname = zipfile.ZipInfo(
                zinfo_or_arcname, date_time=FIXED_TIMESTAMP.timetuple()[:6]
            )
            zinfo_or_arcname.compress_type = zipfile.ZIP_DEFLATED
            zinfo_or_arcname.external_attr = 0o600 << 16
        super().writestr(zinfo_or_arcname, data, compress_type, compresslevel)


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


def _data_sheet(workbook: Workbook, rows: pa.Table, spec: SheetSpec) -> None:
    sheet = workbook.active
    sheet.title = spec.sheet_name
    names = rows.column_names
    bold = Font(bold=True)
    sheet.append([spec.labels[name].zh for name in names])
    sheet.append([spec.labels[name].en for name in names])
    for cell in (*sheet[1], *sheet[2]):
        cell.font = bold
    # A published table has hundreds of rows; openpyxl writes cell by cell.
    for row in rows.to_pylist():
        sheet.append([row[name] for name in names])
    formats = [number_format(field, spec.share_columns) for field in rows.schema]
    for index, fmt in enumerate(formats, start=1):
        if fmt is None:
            continue
        for (cell,) in sheet.iter_rows(
            min_row=HEADER_ROWS + 1, min_col=index, max_col=index, max_row=sheet.max_row
        ):
            cell.number_format = fmt
    sheet.freeze_panes = sheet.cell(row=HEADER_ROWS + 1, column=1)


def _notes_sheet(workbook: Workbook, rows: pa.Table, spec: SheetSpec) -> None:
    notes = workbook.create_sheet(NOTES_SHEET)
    bold = Font(bold=True)
    for heading, text in spec.notes:
        notes.append([heading, text])
        notes.cell(row=notes.max_row, column=1).font = bold
    notes.append([])
    notes.append(["column 字段", "中文名", "English", "definition 定义"])
    for cell in notes[notes.max_row]:
        cell.font = bold
    for name in rows.column_names:
        label = spec.labels[name]
        notes.append([name, label.zh, label.en, label.definition])
    notes.column_dimensions["A"].width = 28
    notes.column_dimensions["B"].width = 40


def workbook_bytes(rows: pa.Table, spec: SheetSpec) -> bytes:
    workbook = Workbook()
    workbook.properties.creator = "collectwatch"
    workbook.properties.created = FIXED_TIMESTAMP
    workbook.properties.modified = FIXED_TIMESTAMP
    _data_sheet(workbook, rows, spec)
    _notes_sheet(workbook, rows, spec)
    buffer = io.BytesIO()
    # ExcelWriter directly: openpyxl's save_workbook would stamp the current time.
    with _FixedDateZip(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        ExcelWriter(workbook, archive).write_data()
    return buffer.getvalue()
