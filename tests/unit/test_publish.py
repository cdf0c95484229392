"""Publication files: scopes, deterministic bytes (CSV, Parquet, XLSX), spreadsheet-safe
text, bilingual XLSX headers read back, versions only on change, release status.

The candidate is a small DuckDB file made here; the table registry is fixed here too, so
the tests do not depend on which marts dbt builds today.
"""

from __future__ import annotations

import json
from dataclasses import replace

import openpyxl
import pandas as pd
import pyarrow as pa
import pytest
from python_calamine import CalamineWorkbook

from collectwatch import publish
from collectwatch.config import Settings
from collectwatch.files import sha256_file
from collectwatch.publish import export_period, publish_period, stage_period
from collectwatch.tables import PublishedTable
from collectwatch.workbook import (
    MONEY_FORMAT,
    NOTES_SHEET,
    SHARE_FORMAT,
    ColumnLabel,
    SheetSpec,
)

PERIOD = "2026-10"
INJECTION = '=HYPERLINK("http://x","y")'
TABLES = (
    PublishedTable(
        name="outsourcing_by_region",
        key=("period", "level", "region_code"),
        additive=("balance",),
        shares=("outsourcing_share",),
        scopes=("public", "internal"),
    ),
    PublishedTable(
        name="recovery_by_bucket",
        key=("period", "level", "region_code", "bucket"),
        additive=("balance",),
        shares=(),
        breakdown=("bucket",),
    ),
)
# national, two provinces, two prefectures of Guangdong (one province-administered), one of
# Hubei; and a row of another period that must never appear.
REGIONS = pd.DataFrame(
    {
        "period": [PERIOD] * 6 + ["2026-09"],
        "level": ["national", "province", "prefecture", "prefecture", "province", "prefecture",
                  "national"],
        "region_code": ["000000", "440000", "440300", "449001", "420000", "420100", "000000"],
        "region_name_zh": ["全国", INJECTION, "深圳市", "-省直辖", "湖北省", "武汉市", "全国"],
        "balance": [30.5, 20.25, 10.0, 10.25, 10.25, 10.25, 1.0],
        "outsourcing_share": [0.5, 0.25, 0.125, 0.5, 1.0, 1.0, 0.5],
        "accounts": [6, 4, 2, 2, 2, 2, 1],
    }
)  # fmt: skip
LABELS = {
    "period": "报告期 / Reporting month (YYYY-MM).",
    "region_name_zh": "地区中文名 / Region name in Chinese.",
    "balance": "逾期余额（元）/ Overdue balance, CNY.",
    "outsourcing_share": "委外占比 / Outsourced balance ÷ overdue balance (fraction).",
}


@pytest.fixture(autouse=True)
def fixed_tables(monkeypatch):
    monkeypatch.setattr(publish, "PUBLISHED_TABLES", TABLES)


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env().with_data_dir(tmp_path / "data")


def _candidate(settings, tmp_path, status="preliminary", balance_delta=0.0):
    """Internal marts, the public relation (one suppressed cell), column comments as
    dbt's persist_docs writes them."""
    path = tmp_path / "candidate.duckdb"
    path.unlink(missing_ok=True)
    con = settings.duckdb(path)
    rows = REGIONS.assign(balance=REGIONS["balance"] + balance_delta, release_status=status)
    con.register("rows", rows)
    select = (
        "select period, level, region_code, region_name_zh, balance::decimal(18,2) as balance,"
        " outsourcing_share, accounts::bigint as accounts, release_status from rows"
    )
    con.execute(f"create table outsourcing_by_region as {select}")
    con.execute(
        "create table public_outsourcing_by_region as select * replace ("
        "case when region_code = '420000' then null else balance end as balance) "
        "from outsourcing_by_region where level <> 'prefecture'"
    )
    con.execute(
        "create table recovery_by_bucket as select *, bucket from outsourcing_by_region, "
        "(values ('M1'), ('M2')) as buckets(bucket)"
    )
    for relation in ("outsourcing_by_region", "public_outsourcing_by_region"):
        for column, label in LABELS.items():
            con.execute(f"comment on column {relation}.{column} is '{label}'")
    con.close()
    return path


def _read_csv(path):
    return pd.read_csv(path, dtype=str, encoding="utf-8-sig", keep_default_na=False)


def test_export_is_deterministic_and_spreadsheet_safe(settings, tmp_path):
    candidate = _candidate(settings, tmp_path)
    first = export_period(settings, candidate, PERIOD, "run-a")
    second = export_period(settings, candidate, PERIOD, "run-b")
    files = sorted(p for p in first.rglob("*") if p.is_file() and p.name != publish.RENDER_KEYS)
    assert {p.suffix for p in files} == {".csv", ".parquet", ".xlsx"}
    for path in files:
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes(), path
    csv_bytes = (first / "internal" / "outsourcing_by_region.csv").read_bytes()
    assert csv_bytes.startswith(b"\xef\xbb\xbf")
    table = _read_csv(first / "internal" / "outsourcing_by_region.csv")
    names = dict(zip(table["region_code"], table["region_name_zh"], strict=True))
    assert names["440000"] == "'" + INJECTION  # formula-like text neutralised
    assert names["449001"] == "'-省直辖"
    assert names["420000"] == "湖北省"  # plain text untouched
    assert "2026-09" not in csv_bytes.decode("utf-8-sig")  # only the period published
    keys = list(zip(table["level"], table["region_code"], strict=True))
    assert keys == sorted(keys)  # rows in key order


def test_workers_write_the_same_bytes_as_one(settings, tmp_path):
    """The export writes its extracts on ``duckdb_threads`` workers; the files must not
    depend on how many, nor on which worker wrote what."""
    candidate = _candidate(settings, tmp_path)
    alone = export_period(replace(settings, duckdb_threads=1), candidate, PERIOD, "a")
    shared = export_period(replace(settings, duckdb_threads=3), candidate, PERIOD, "b")
    files = sorted(p.relative_to(alone) for p in alone.rglob("*") if p.is_file())
    assert len(files) > 10  # every scope's CSV, Parquet and XLSX, and the render keys
    assert files == sorted(p.relative_to(shared) for p in shared.rglob("*") if p.is_file())
    for path in files:
        assert (alone / path).read_bytes() == (shared / path).read_bytes(), path


def test_scopes_public_internal_and_one_folder_per_province(settings, tmp_path):
    staged = export_period(settings, _candidate(settings, tmp_path), PERIOD, "run-a")
    assert sorted(p.name for p in staged.iterdir() if p.is_dir()) == [
        "internal", "province=420000", "province=440000", "public",
    ]  # fmt: skip
    assert sorted(p.name for p in (staged / "public").iterdir()) == [
        "outsourcing_by_region.csv", "outsourcing_by_region.parquet", "outsourcing_by_region.xlsx",
    ]  # fmt: skip
    public = _read_csv(staged / "public" / "outsourcing_by_region.csv")
    assert list(public["region_code"]) == ["000000", "420000", "440000"]
    assert public.set_index("region_code").loc["420000", "balance"] == ""  # suppressed
    guangdong = _read_csv(staged / "province=440000" / "outsourcing_by_region.csv")
    assert sorted(guangdong["region_code"]) == ["440000", "440300", "449001"]
    hubei = pd.read_parquet(staged / "province=420000" / "recovery_by_bucket.parquet")
    assert sorted(set(hubei["region_code"])) == ["420000", "420100"]
    assert len(hubei) == 4  # two regions x two buckets; no national row


def test_manifest_hashes_every_file_with_scope_and_rows(settings, tmp_path):
    staged = export_period(settings, _candidate(settings, tmp_path), PERIOD, "run-a")
    published = publish_period(settings, PERIOD, staged, {"input_submissions": {"s1": "h1"}})
    files = published.manifest["files"]
    on_disk = {
        p.relative_to(published.path).as_posix()
        for p in published.path.rglob("*")
        if p.is_file() and p.name != "manifest.json"
    }
    # (internal + 2 provinces) x 2 tables, public x 1 table; 3 formats each
    assert set(files) == on_disk and len(on_disk) == (3 * 2 + 1) * 3
    for relative, entry in files.items():
        assert entry["sha256"] == sha256_file(published.path / relative)
        assert entry["scope"] == relative.split("/")[0]
    rows = {relative: entry["rows"] for relative, entry in files.items()}
    assert rows["internal/outsourcing_by_region.xlsx"] == 6
    assert rows["public/outsourcing_by_region.csv"] == 3
    assert rows["province=440000/outsourcing_by_region.parquet"] == 3
    assert rows["province=420000/recovery_by_bucket.csv"] == 4


def test_xlsx_reads_back_with_bilingual_headers_formats_and_notes(settings, tmp_path):
    staged = export_period(settings, _candidate(settings, tmp_path), PERIOD, "run-a")
    path = staged / "internal" / "outsourcing_by_region.xlsx"
    book = openpyxl.load_workbook(path)
    sheet = book["outsourcing_by_region"]
    header_zh = [cell.value for cell in sheet[1]]
    header_en = [cell.value for cell in sheet[2]]
    columns = ["period", "level", "region_code", "region_name_zh", "balance",
               "outsourcing_share", "accounts", "release_status"]  # fmt: skip
    balance, share = columns.index("balance"), columns.index("outsourcing_share")
    assert header_zh[balance] == "逾期余额（元）" and header_en[balance] == "Overdue balance, CNY"
    assert header_zh[0] == "报告期" and header_en[0] == "Reporting month (YYYY-MM)"
    assert header_zh[1] == header_en[1] == "level"  # no description: the column name
    assert sheet.freeze_panes == "A3"
    first_row = sheet[3]
    assert first_row[balance].number_format == MONEY_FORMAT
    assert first_row[share].number_format == SHARE_FORMAT
    guangdong = next(row for row in sheet.iter_rows(min_row=3) if row[2].value == "440000")
    assert guangdong[3].value == "'" + INJECTION and guangdong[3].data_type == "s"
    notes = {row[0]: row[1] for row in book[NOTES_SHEET].iter_rows(values_only=True) if row}
    assert notes["release status 发布状态"] == "preliminary"
    assert "suppressed" in notes["suppression 抑制符号"]
    assert notes["balance"] == "逾期余额（元）"  # column definitions
    # A second reader library agrees, and sees no formula.
    rows = CalamineWorkbook.from_path(str(path)).get_sheet_by_name("outsourcing_by_region")
    values = rows.to_python()
    assert values[0][balance] == "逾期余额（元）" and values[1][balance] == "Overdue balance, CNY"
    assert ["440000", "'" + INJECTION] in [row[2:4] for row in values]
    # Data cells carry no reference: a null (Hubei's suppressed public balance) is an empty
    # cell, and the cells after it stay in their columns, for both readers.
    public = staged / "public" / "outsourcing_by_region.xlsx"
    sheet = openpyxl.load_workbook(public)["outsourcing_by_region"]
    rows = list(sheet.iter_rows(min_row=3, values_only=True))
    hubei = next(row for row in rows if row[2] == "420000")
    assert hubei[balance] is None and hubei[share] == 1.0 and hubei[-1] == "preliminary"
    assert [row[2] for row in rows] == ["000000", "420000", "440000"]  # row order kept
    assert sheet.max_row == 2 + 3 and sheet.max_column == len(columns)
    values = CalamineWorkbook.from_path(str(public)).get_sheet_by_name(sheet.title).to_python()
    hubei = next(row for row in values if row[2] == "420000")
    assert hubei[balance] == "" and hubei[share] == 1.0 and hubei[-1] == "preliminary"


def test_versions_only_when_bytes_change(settings, tmp_path):
    first = publish_period(
        settings, PERIOD, export_period(settings, _candidate(settings, tmp_path), PERIOD, "r1"), {}
    )
    assert first.version == 1
    v1_digest = {p.name: sha256_file(p) for p in first.path.rglob("*") if p.is_file()}
    same = publish_period(
        settings, PERIOD, export_period(settings, _candidate(settings, tmp_path), PERIOD, "r2"), {}
    )
    assert same.version is None
    assert not list((settings.publish_dir / PERIOD).glob(".staging-*"))
    changed_candidate = _candidate(settings, tmp_path, balance_delta=1.0)
    changed = publish_period(
        settings, PERIOD, export_period(settings, changed_candidate, PERIOD, "r3"), {}
    )
    assert changed.version == 2
    assert {p.name: sha256_file(p) for p in first.path.rglob("*") if p.is_file()} == v1_digest
    latest = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    assert latest["path"] == "v2"
    assert latest["manifest_sha256"] == sha256_file(changed.path / "manifest.json")


def _night(settings, tmp_path, run_id, status, delta, inputs):
    candidate = _candidate(settings, tmp_path, status=status, balance_delta=delta)
    staged = stage_period(settings, candidate, PERIOD, run_id)
    return publish_period(settings, PERIOD, staged, {"input_submissions": inputs})


def test_release_status_preliminary_final_then_revised_with_changed_submissions(settings, tmp_path):
    v1 = _night(settings, tmp_path, "r1", "preliminary", 0.0, {"a-001": "h1", "b-001": "h2"})
    assert (v1.version, v1.manifest["release_status"]) == (1, "preliminary")
    # The due date passes: dbt marks the rows final, a new version says so.
    v2 = _night(settings, tmp_path, "r2", "final", 0.0, {"a-001": "h1", "b-001": "h2"})
    assert (v2.version, v2.manifest["release_status"]) == (2, "final")
    assert (
        _night(settings, tmp_path, "r3", "final", 0.0, {"a-001": "h1", "b-001": "h2"}).version
        is None
    )
    # A lender resubmits after the final release: a revision, noting what changed.
    inputs = {"a-001": "h1", "b-002": "h3", "c-001": "h4"}
    v3 = _night(settings, tmp_path, "r4", "final", 1.0, inputs)
    assert (v3.version, v3.manifest["release_status"]) == (3, "revised")
    assert v3.manifest["previous"] == {
        "version": 2,
        "release_status": "final",
        "submissions": {"added": ["b-002", "c-001"], "removed": ["b-001"], "changed": []},
    }
    rows = pd.read_parquet(v3.path / "internal" / "outsourcing_by_region.parquet")
    assert set(rows["release_status"]) == {"revised"}
    # The same inputs again: still revised, byte-identical, nothing new.
    assert _night(settings, tmp_path, "r5", "final", 1.0, inputs).version is None
    latest = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    assert (latest["version"], latest["release_status"]) == (3, "revised")


@pytest.fixture
def exports_written(monkeypatch):
    """How many times a whole period's files were written, and with which status."""
    written = []
    write_all = publish.PeriodExport.write_all

    def counted(self, staged, status):
        written.append(status)
        return write_all(self, staged, status)

    monkeypatch.setattr(publish.PeriodExport, "write_all", counted)
    return written


def test_a_revision_is_written_once(settings, tmp_path, exports_written):
    _night(settings, tmp_path, "r1", "final", 0.0, {})
    exports_written.clear()
    unchanged = _night(settings, tmp_path, "r2", "final", 0.0, {})
    assert unchanged.version is None and exports_written == [None]
    exports_written.clear()
    revised = _night(settings, tmp_path, "r3", "final", 1.0, {})
    assert (revised.version, revised.manifest["release_status"]) == (2, "revised")
    assert exports_written == ["revised"]  # not first as final, then again as revised
    # The revised files are those a revised export of the same candidate writes.
    again = export_period(settings, tmp_path / "candidate.duckdb", PERIOD, "r4", "revised")
    assert publish.data_file_hashes(publish.data_files(again)) == publish.data_file_hashes(
        revised.manifest["files"]
    )


def test_unchanged_rows_with_a_changed_label_after_a_final_release_are_revised(
    settings, tmp_path, monkeypatch, exports_written
):
    _night(settings, tmp_path, "r1", "final", 0.0, {})
    monkeypatch.setitem(LABELS, "balance", "逾期余额（人民币元）/ Overdue balance, CNY.")
    exports_written.clear()
    relabelled = _night(settings, tmp_path, "r2", "final", 0.0, {})
    # Parquet files are the same rows, so only the second write knows it is a revision.
    assert (relabelled.version, relabelled.manifest["release_status"]) == (2, "revised")
    assert exports_written == [None, "revised"]
    book = openpyxl.load_workbook(relabelled.path / "internal" / "outsourcing_by_region.xlsx")
    assert "逾期余额（人民币元）" in [cell.value for cell in book.worksheets[0][1]]


def test_a_table_whose_rows_and_sheet_are_unchanged_reuses_the_latest_files(
    settings, tmp_path, monkeypatch
):
    v1 = publish_period(
        settings, PERIOD, export_period(settings, _candidate(settings, tmp_path), PERIOD, "r1"), {}
    )
    stems = {relative.rsplit(".", 1)[0] for relative in v1.manifest["files"]}
    assert set(v1.manifest["render_keys"]) == stems
    assert not (v1.path / publish.RENDER_KEYS).exists()  # moved into the manifest
    # Hubei's Wuhan recovers more: two recovery_by_bucket files change (internal, 420000).
    candidate = _candidate(settings, tmp_path)
    con = settings.duckdb(candidate)
    con.execute("update recovery_by_bucket set balance = balance + 1 where region_code = '420100'")
    con.close()
    rendered = []
    render = publish.workbook_bytes

    def counted(rows, spec, renderer=None):
        rendered.append(spec.sheet_name)
        return render(rows, spec, renderer)

    monkeypatch.setattr(publish, "workbook_bytes", counted)
    staged = export_period(settings, candidate, PERIOD, "r2")
    assert rendered == ["recovery_by_bucket", "recovery_by_bucket"]
    changed = {
        relative
        for relative, entry in publish.data_files(staged).items()
        if entry["sha256"] != v1.manifest["files"][relative]["sha256"]
    }
    assert changed == {
        f"{scope}/recovery_by_bucket.{suffix}"
        for scope in ("internal", "province=420000")
        for suffix in ("csv", "parquet", "xlsx")
    }
    # Copied files are byte for byte what rendering them again gives.
    fresh = export_period(settings.with_data_dir(tmp_path / "elsewhere"), candidate, PERIOD, "r3")
    assert publish.data_file_hashes(publish.data_files(fresh)) == publish.data_file_hashes(
        publish.data_files(staged)
    )


def test_the_render_key_changes_with_the_rows_the_labels_and_the_notes():
    rows = pa.table({"period": [PERIOD], "balance": [1.0]})
    label = ColumnLabel("余额", "Balance", "余额")
    spec = SheetSpec("t", {"balance": label}, frozenset(), (("period 报告期", PERIOD),))
    key = publish.render_key(publish._parquet_bytes(rows), spec)
    assert key == publish.render_key(publish._parquet_bytes(rows), spec)
    others = [
        (pa.table({"period": [PERIOD], "balance": [2.0]}), spec),
        (rows, replace(spec, labels={"balance": ColumnLabel("余额", "Balance, CNY", "余额")})),
        (rows, replace(spec, notes=(("period 报告期", "2026-11"),))),
        (rows, replace(spec, share_columns=frozenset({"balance"}))),
    ]
    keys = {publish.render_key(publish._parquet_bytes(r), s) for r, s in others}
    assert key not in keys and len(keys) == len(others)
