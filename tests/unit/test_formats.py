"""Reading submissions: every bad input is one exact edit naming its row or field, and nothing
reaches the raw zone; the clean month read from XLSX, GBK / BOM CSV, Parquet and Chinese
headers gives the same raw Parquet as the original CSV. Every file is made by the test."""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
import shutil
import zipfile
from dataclasses import replace

import duckdb
import openpyxl
import pytest

from collectwatch.config import Settings
from collectwatch.contracts import (
    FILE_NAME_PATTERN,
    HEADER_ALIASES_ZH,
    SUBMISSION_TYPES,
    TYPE_NAMES_ZH,
)
from collectwatch.generate import generate_month
from collectwatch.intake import lifecycle
from collectwatch.intake.formats import header_key
from collectwatch.intake.process import check_file, intake_file

PERIOD = "2026-10"
FULL_WIDTH_DIGITS = str.maketrans("0123456789", "０１２３４５６７８９")


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    return generate_month(Settings.from_env(), PERIOD, tmp_path_factory.mktemp("gen"), seed=5)


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env().with_data_dir(tmp_path / "data")


def _source(generated, submission_type):
    return next(p for p in generated.files if p.name.startswith(submission_type + "__"))


def _rows(generated, submission_type) -> tuple[list[str], list[list[str]]]:
    with open(_source(generated, submission_type), newline="", encoding="utf-8") as handle:
        table = list(csv.reader(handle))
    return table[0], table[1:]


def _csv_bytes(header, rows, encoding="utf-8", delimiter=",", line_end="\n") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def _landing_path(settings, generated, submission_type, extension="csv"):
    source = _source(generated, submission_type)
    target = (
        settings.landing_dir / source.parent.name / source.name.replace(".csv", f".{extension}")
    )
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


def _land_bytes(settings, generated, submission_type, data: bytes, extension="csv"):
    target = _landing_path(settings, generated, submission_type, extension)
    target.write_bytes(data)
    return target


def _write_xlsx(path, header, rows, sheet_title="Sheet1", merge=None, before=(), after=()):
    """A workbook whose sheet ``sheet_title`` holds the table, between sheets ``before`` and
    ``after`` (left empty or with a note)."""
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title in before:
        workbook.create_sheet(title)["A1"] = "see the other sheet"
    sheet = workbook.create_sheet(sheet_title)
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    if merge:
        sheet.merge_cells(merge)
    for title in after:
        workbook.create_sheet(title)
    workbook.save(path)
    return path


def _nothing_loaded(settings, result, submission_type):
    """The file was rejected and nothing of it reached the raw zone or the archive."""
    assert result.status == lifecycle.REJECTED
    assert not (settings.raw_dir / submission_type).exists()
    if settings.current_manifest.exists():
        listed = duckdb.connect().execute(f"select * from '{settings.current_manifest}'")
        assert listed.fetchall() == []
    assert not settings.archive_dir.exists() or not any(settings.archive_dir.iterdir())


def _only(result, rule_id):
    """The report's findings are exactly one rule's; return them."""
    assert set(result.report.rule_counts) == {rule_id}, result.report.findings
    return [f for f in result.report.findings if f["rule_id"] == rule_id]


# --- bad inputs: one exact edit each, nothing loaded -----------------------------------------


def test_bytes_in_neither_encoding_name_the_line_and_offset(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    data = _csv_bytes(header, rows)
    first_line_end = data.index(b"\n", data.index(b"\n") + 1) + 1  # end of line 2
    bad = data[:first_line_end] + b"\xff\xfe" + data[first_line_end:]
    result = intake_file(_land_bytes(settings, generated, "agency_caseload", bad), settings)
    [finding] = _only(result, "S011")
    assert "line 3" in finding["value"] and f"byte offset {first_line_end}" in finding["value"]
    assert "0xFF" in finding["value"]
    _nothing_loaded(settings, result, "agency_caseload")


def test_a_bom_declares_utf8_so_gbk_bytes_are_not_guessed(settings, generated):
    header, rows = _rows(generated, "institution_registry")
    data = b"\xef\xbb\xbf" + _csv_bytes(header, rows, encoding="gbk")
    result = intake_file(_land_bytes(settings, generated, "institution_registry", data), settings)
    [finding] = _only(result, "S011")
    assert "byte-order mark" in finding["value"] and "line 2" in finding["value"]
    _nothing_loaded(settings, result, "institution_registry")


def test_utf16_is_refused_with_advice(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    data = _csv_bytes(header, rows, encoding="utf-16")
    result = intake_file(_land_bytes(settings, generated, "agency_caseload", data), settings)
    [finding] = _only(result, "S011")
    assert "UTF-16" in finding["value"]
    _nothing_loaded(settings, result, "agency_caseload")


@pytest.mark.parametrize(
    ("delimiter", "name"), [(";", "semicolon"), ("\t", "tab"), ("|", "vertical bar")]
)
def test_wrong_delimiter(settings, generated, delimiter, name):
    header, rows = _rows(generated, "lender_portfolio")
    data = _csv_bytes(header, rows, delimiter=delimiter)
    result = intake_file(_land_bytes(settings, generated, "lender_portfolio", data), settings)
    [finding] = _only(result, "S012")
    assert finding["field"] == "header" and finding["value"].startswith(name)
    _nothing_loaded(settings, result, "lender_portfolio")


@pytest.mark.parametrize(("extra", "words"), [(["surplus"], "Found: 14"), (None, "Found: 12")])
def test_ragged_row_names_the_line(settings, generated, extra, words):
    header, rows = _rows(generated, "lender_portfolio")
    rows[2] = rows[2] + extra if extra else rows[2][:-1]  # line 4
    data = _csv_bytes(header, rows)
    result = intake_file(_land_bytes(settings, generated, "lender_portfolio", data), settings)
    [finding] = _only(result, "S013")
    assert finding["field"] == "line 4" and words in finding["value"]
    _nothing_loaded(settings, result, "lender_portfolio")


def test_unclosed_quote_names_the_line(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    data = _csv_bytes(header, rows).decode()
    lines = data.split("\n")
    lines[3] = lines[3].replace(",", ',"', 1)  # line 4 opens a quote that never closes
    path = _land_bytes(settings, generated, "agency_caseload", "\n".join(lines).encode())
    result = intake_file(path, settings)
    [finding] = _only(result, "S007")
    assert finding["value"].startswith("line 4") and "quote" in finding["value"]
    _nothing_loaded(settings, result, "agency_caseload")


@pytest.mark.parametrize(("data", "value"), [(b"", "0 bytes"), (b"\xef\xbb\xbf\n", "0 rows")])
def test_empty_file(settings, generated, data, value):
    result = intake_file(_land_bytes(settings, generated, "complaints", data), settings)
    [finding] = _only(result, "S004")
    assert value in finding["value"]
    _nothing_loaded(settings, result, "complaints")


def test_header_only_xlsx(settings, generated, tmp_path):
    header, _ = _rows(generated, "complaints")
    path = _write_xlsx(_landing_path(settings, generated, "complaints", "xlsx"), header, [])
    result = intake_file(path, settings)
    assert _only(result, "S004")
    _nothing_loaded(settings, result, "complaints")


def test_oversized_file(settings, generated):
    small = replace(settings, max_file_bytes=1000)
    header, rows = _rows(generated, "agency_caseload")
    data = _csv_bytes(header, rows)
    result = intake_file(_land_bytes(settings, generated, "agency_caseload", data), small)
    [finding] = _only(result, "S008")
    assert finding["field"] == "size_bytes" and finding["value"] == str(len(data))
    _nothing_loaded(settings, result, "agency_caseload")


def test_zip_bomb_is_refused_before_parsing(settings, generated):
    path = _landing_path(settings, generated, "agency_caseload", "xlsx")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/worksheets/sheet1.xml", b"0" * 50_000_000)
    result = intake_file(path, settings)
    [finding] = _only(result, "S014")
    assert finding["field"] == "compression_ratio"
    _nothing_loaded(settings, result, "agency_caseload")


def test_workbook_over_the_uncompressed_limit(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    path = _write_xlsx(_landing_path(settings, generated, "agency_caseload", "xlsx"), header, rows)
    result = intake_file(path, replace(settings, xlsx_max_uncompressed_bytes=10_000))
    [finding] = _only(result, "S014")
    assert finding["field"] == "uncompressed_bytes" and "limit 10000" in finding["value"]
    _nothing_loaded(settings, result, "agency_caseload")


def test_the_sheet_named_after_the_type_is_read_and_must_not_be_empty(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    path = _landing_path(settings, generated, "agency_caseload", "xlsx")
    _write_xlsx(path, header, rows, after=[TYPE_NAMES_ZH["agency_caseload"]])
    result = intake_file(path, settings)
    [finding] = _only(result, "S015")
    assert TYPE_NAMES_ZH["agency_caseload"] in finding["value"]
    _nothing_loaded(settings, result, "agency_caseload")


@pytest.mark.parametrize("extension", ["xlsx", "parquet"])
def test_corrupt_binary_formats(settings, generated, extension):
    path = _land_bytes(settings, generated, "complaints", b"PK\x03\x04 not really", extension)
    result = intake_file(path, settings)
    [finding] = _only(result, "S007")
    assert extension.upper() in finding["value"].upper()
    _nothing_loaded(settings, result, "complaints")


def test_two_headers_for_one_column(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    data = _csv_bytes([*header, "报送期间"], [[*row, row[0]] for row in rows])
    result = intake_file(_land_bytes(settings, generated, "agency_caseload", data), settings)
    [finding] = _only(result, "S016")
    assert finding["field"] == "period" and finding["value"] == "period | 报送期间"
    _nothing_loaded(settings, result, "agency_caseload")


def test_nested_parquet_column(settings, generated):
    path = _landing_path(settings, generated, "agency_caseload", "parquet")
    duckdb.connect().execute(f"copy (select [1, 2] as period) to '{path}' (format parquet)")
    result = intake_file(path, settings)
    [finding] = _only(result, "S017")
    assert finding["field"] == "period" and "[]" in finding["value"]
    _nothing_loaded(settings, result, "agency_caseload")


def test_a_symbolic_link_is_not_followed(settings, generated, tmp_path):
    outside = tmp_path / "outside.csv"
    shutil.copy(_source(generated, "agency_caseload"), outside)
    link = _landing_path(settings, generated, "agency_caseload")
    link.symlink_to(outside)
    result = intake_file(link, settings)
    [finding] = _only(result, "S018")
    assert finding["value"] == link.name
    _nothing_loaded(settings, result, "agency_caseload")
    assert outside.exists()  # the target outside landing is neither moved nor deleted


@pytest.mark.parametrize(
    "name",
    [
        ".contact_events__91440300MA5G8XXXXM__2026-10.csv",
        "...csv",
        "a\\b.csv",
        "x\n.csv",
        "contact_events__91440300MA5G8XXXXM__2026-10..csv",
        "contact_events__91440300MA5G8XXXXM__2026-10.csv\n",  # `$` would match before it
        "contact_events__91440300MA5G8XXXXM__２０２６-１０.csv",  # `\d` would match these
    ],
)
def test_odd_names_stay_inside_the_quarantine(settings, generated, name):
    folder = settings.landing_dir / "91440300MA5G8XXXXM"
    folder.mkdir(parents=True)
    path = folder / name
    path.write_bytes(_source(generated, "agency_caseload").read_bytes())
    result = intake_file(path, settings)
    assert [f["rule_id"] for f in result.report.findings] == ["S001"]
    _nothing_loaded(settings, result, "contact_events")
    [kept] = list(settings.quarantine_dir.iterdir())
    assert kept.resolve().parent == settings.quarantine_dir.resolve()
    assert result.report_path.resolve().parent == settings.reports_dir.resolve()


@pytest.mark.parametrize(
    "name",
    [
        "../contact_events__91440300MA5G8XXXXM__2026-10.csv",
        "contact_events__91440300MA5G8XXXXM__2026-10.csv\x00.sh",
        "contact_events__91440300MA5G8XXXXM/../__2026-10.csv",
        "contact_events__91440300MA5G8XXXXM__2026-10.csv/..",
    ],
)
def test_names_that_cannot_exist_on_disk_fail_the_name_rule(name):
    """Names arriving through an API (portal uploads) with separators or NUL never match."""
    assert FILE_NAME_PATTERN.match(name) is None


def test_control_characters_name_row_and_field(settings, generated):
    header, rows = _rows(generated, "institution_registry")
    name_en = header.index("name_en")
    rows[1][name_en] = "Tab\tFinance"  # row 3
    rows[3][name_en] = "Two\nlines"  # row 5 (a quoted cell spanning lines)
    data = _csv_bytes(header, rows)
    result = intake_file(_land_bytes(settings, generated, "institution_registry", data), settings)
    found = _only(result, "V016")
    assert [(f["row"], f["field"]) for f in found] == [(3, "name_en"), (5, "name_en")]
    assert found[0]["value"] == "U+0009 in: Tab\ufffdFinance"
    _nothing_loaded(settings, result, "institution_registry")


def test_formula_like_text_names_row_and_field(settings, generated):
    header, rows = _rows(generated, "contact_events")
    rows[4][header.index("event_id")] = '=HYPERLINK("http://x.example","click")'  # row 6
    data = _csv_bytes(header, rows)
    result = intake_file(_land_bytes(settings, generated, "contact_events", data), settings)
    [finding] = _only(result, "V017")
    assert (finding["row"], finding["field"]) == (6, "event_id")
    assert finding["value"].startswith("=HYPERLINK")
    _nothing_loaded(settings, result, "contact_events")


def test_xlsx_findings_carry_excel_row_numbers(settings, generated):
    header, rows = _rows(generated, "contact_events")
    rows = [
        [_excel_value(name, value) for name, value in zip(header, row, strict=True)] for row in rows
    ]
    rows.insert(2, [None] * len(header))  # Excel row 4 left empty: skipped, still counted
    rows[5][header.index("channel")] = "fax"  # Excel row 7
    path = _write_xlsx(_landing_path(settings, generated, "contact_events", "xlsx"), header, rows)
    result = intake_file(path, settings)
    [finding] = _only(result, "V003")
    assert (finding["row"], finding["field"], finding["value"]) == (7, "channel", "fax")
    _nothing_loaded(settings, result, "contact_events")


def test_gbk_file_with_a_ragged_row_names_the_line(settings, generated):
    header, rows = _rows(generated, "institution_registry")
    rows[1] = rows[1][:-2]  # line 3
    data = _csv_bytes(header, rows, encoding="gbk")
    result = intake_file(_land_bytes(settings, generated, "institution_registry", data), settings)
    [finding] = _only(result, "S013")
    assert finding["field"] == "line 3"
    _nothing_loaded(settings, result, "institution_registry")


def test_invalid_thousands_grouping_is_left_for_the_type_edit(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    rows[0][header.index("balance_received")] = "12,34,567.00"  # Indian grouping: ambiguous
    data = _csv_bytes(header, rows)
    result = intake_file(_land_bytes(settings, generated, "agency_caseload", data), settings)
    [finding] = _only(result, "V001")
    assert (finding["row"], finding["field"], finding["value"]) == (
        2,
        "balance_received",
        "12,34,567.00",
    )
    _nothing_loaded(settings, result, "agency_caseload")


def test_parquet_timestamps_without_zone_are_not_guessed(settings, generated):
    source = _source(generated, "complaints")
    path = _landing_path(settings, generated, "complaints", "parquet")
    duckdb.connect().execute(
        f"copy (select * replace (timestamp '2026-10-01 00:00:00' as received_at) "
        f"from read_csv('{source}', all_varchar = true)) to '{path}' (format parquet)"
    )
    result = intake_file(path, settings)
    found = _only(result, "V009")
    assert found[0]["row"] == 1 and found[0]["value"] == "2026-10-01T00:00:00"
    _nothing_loaded(settings, result, "complaints")


def test_unknown_header_is_named(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    header[header.index("collectors")] = "催收员人数"
    data = _csv_bytes(header, rows)
    result = intake_file(_land_bytes(settings, generated, "agency_caseload", data), settings)
    assert [(f["rule_id"], f["field"]) for f in result.report.findings] == [
        ("S005", "collectors"),
        ("S006", "催收员人数"),
    ]
    _nothing_loaded(settings, result, "agency_caseload")


# --- clean inputs in every format: zero findings, the same raw Parquet ------------------------


def _raw_rows(settings, result):
    store = lifecycle.StateStore(settings.submissions_db)
    raw = settings.raw_dir / store.get(result.submission_id).raw_path
    return duckdb.connect().execute(f"select * from '{raw}'").fetchall()


def _accepted(path, settings):
    result = intake_file(path, settings)
    assert result.report.findings == [], result.report.findings
    assert result.status == lifecycle.ACCEPTED
    return result


def _baseline(tmp_path, generated, submission_type):
    settings = Settings.from_env().with_data_dir(tmp_path / "baseline")
    path = _landing_path(settings, generated, submission_type)
    shutil.copy(_source(generated, submission_type), path)
    result = _accepted(path, settings)
    assert result.report.source == {"format": "csv", "encoding": "utf-8"}
    return _raw_rows(settings, result)


def _excel_value(name, value):
    if value == "":
        return None
    if name == "contact_at":  # Excel keeps no zone: write Beijing wall time
        return dt.datetime.fromisoformat(value).replace(tzinfo=None)
    if name == "duration_s":
        return int(value)
    return value


def test_xlsx_with_merged_cells_and_excel_datetimes(settings, generated, tmp_path):
    header, rows = _rows(generated, "contact_events")
    cells = [
        [_excel_value(name, value) for name, value in zip(header, row, strict=True)] for row in rows
    ]
    for row in cells[1:4]:
        row[0] = None  # A2:A5 merged: only the top-left cell keeps "2026-10"
    path = _landing_path(settings, generated, "contact_events", "xlsx")
    # The sheet named after the type (in Chinese) is read, not the first one.
    _write_xlsx(path, header, cells, "催收联系记录", merge="A2:A5", before=["notes"])
    result = _accepted(path, settings)
    assert result.report.source == {
        "format": "xlsx",
        "sheet": "催收联系记录",
        "naive_datetimes_read_as": "+08:00",
    }
    assert _raw_rows(settings, result) == _baseline(tmp_path, generated, "contact_events")


def test_xlsx_dates_in_the_sheet_named_in_english(settings, generated, tmp_path):
    header, rows = _rows(generated, "institution_registry")
    for row in rows:
        for name in ("valid_from", "valid_to"):
            value = row[header.index(name)]
            row[header.index(name)] = dt.datetime.fromisoformat(value).date() if value else None
    path = _landing_path(settings, generated, "institution_registry", "xlsx")
    _write_xlsx(path, header, rows, "Institution_Registry", before=["封面"])
    result = _accepted(path, settings)
    assert result.report.source["sheet"] == "Institution_Registry"
    assert _raw_rows(settings, result) == _baseline(tmp_path, generated, "institution_registry")


def test_gbk_csv(settings, generated, tmp_path):
    header, rows = _rows(generated, "institution_registry")
    assert any(ord(char) > 127 for row in rows for char in row[2])  # Chinese names to decode
    data = _csv_bytes(header, rows, encoding="gbk")
    result = _accepted(_land_bytes(settings, generated, "institution_registry", data), settings)
    assert result.report.source == {"format": "csv", "encoding": "gb18030"}
    assert _raw_rows(settings, result) == _baseline(tmp_path, generated, "institution_registry")
    assert not any(settings.intake_work_dir.iterdir())  # the UTF-8 working copy is gone


def test_utf8_bom_csv(settings, generated, tmp_path):
    header, rows = _rows(generated, "agency_assignment")
    data = b"\xef\xbb\xbf" + _csv_bytes(header, rows, line_end="\r\n")  # as Excel saves it
    result = _accepted(_land_bytes(settings, generated, "agency_assignment", data), settings)
    assert result.report.source == {"format": "csv", "encoding": "utf-8-bom"}
    assert _raw_rows(settings, result) == _baseline(tmp_path, generated, "agency_assignment")


def test_typed_parquet(settings, generated, tmp_path):
    source = _source(generated, "complaints")
    path = _landing_path(settings, generated, "complaints", "parquet")
    duckdb.connect().execute(
        f"copy (select * replace (received_at::timestamptz as received_at, "
        f"resolved_at::timestamptz as resolved_at) from read_csv('{source}')) "
        f"to '{path}' (format parquet)"
    )
    result = _accepted(path, settings)
    assert result.report.source == {"format": "parquet"}
    assert _raw_rows(settings, result) == _baseline(tmp_path, generated, "complaints")


def test_chinese_headers_full_width_digits_and_thousands_separators(settings, generated, tmp_path):
    header, rows = _rows(generated, "lender_portfolio")
    chinese = [f"  {HEADER_ALIASES_ZH[name][0]} " for name in header]
    for row in rows:
        for name in ("region_code", "accounts", "period"):
            index = header.index(name)
            row[index] = row[index].translate(FULL_WIDTH_DIGITS)
        index = header.index("balance")
        row[index] = f"{float(row[index]):,.2f}"
    assert any("," in row[header.index("balance")] for row in rows)
    data = _csv_bytes(chinese, rows)
    result = _accepted(_land_bytes(settings, generated, "lender_portfolio", data), settings)
    assert _raw_rows(settings, result) == _baseline(tmp_path, generated, "lender_portfolio")


def test_check_reads_xlsx_without_touching_state(settings, generated):
    header, rows = _rows(generated, "agency_caseload")
    path = _write_xlsx(_landing_path(settings, generated, "agency_caseload", "xlsx"), header, rows)
    report = check_file(path, settings)
    assert report.status == lifecycle.ACCEPTED and report.findings == []
    assert path.exists() and not settings.submissions_db.exists()


# --- the alias table ---------------------------------------------------------------------------


def test_every_column_has_a_chinese_alias_and_no_alias_is_ambiguous():
    names = {c.name for t in SUBMISSION_TYPES.values() for c in t.columns}
    assert names == set(HEADER_ALIASES_ZH)
    keys = [header_key(alias) for aliases in HEADER_ALIASES_ZH.values() for alias in aliases]
    assert len(keys) == len(set(keys)) and not set(keys) & {header_key(n) for n in names}
    assert set(TYPE_NAMES_ZH) == set(SUBMISSION_TYPES)


def test_environment_overrides_the_xlsx_limits(monkeypatch):
    monkeypatch.setenv("COLLECTWATCH_XLSX_MAX_UNCOMPRESSED_BYTES", "12345")
    monkeypatch.setenv("COLLECTWATCH_XLSX_MAX_COMPRESSION_RATIO", "7")
    settings = Settings.from_env()
    assert (settings.xlsx_max_uncompressed_bytes, settings.xlsx_max_compression_ratio) == (12345, 7)
    assert os.environ["COLLECTWATCH_XLSX_MAX_COMPRESSION_RATIO"] == "7"
