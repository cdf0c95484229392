"""A publication with all three scopes for the portal tests.

It is built by the real pipeline (generate → intake → dbt build → gate → release). Until
the publication writes ``public/`` and ``province=<code>/`` itself (DESIGN Decision 6),
``complete_scopes`` adds them by the documented layout — public: national and province
rows; province=<code>: that province's own rows — plus XLSX files, and records each file
with its scope in the manifest. Once the publication has them, it changes nothing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import openpyxl
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from collectwatch.config import Settings
from collectwatch.files import atomic_write_bytes, sha256_file

UTF8_BOM = b"\xef\xbb\xbf"
PERIOD = "2026-10"
AS_OF = "2026-11-10T09:00:00+08:00"
# A province with no data in the generated month: its token must see nothing at all.
EMPTY_PROVINCE = "650000"
# Uploads larger than this are refused while streaming (the generated files are smaller).
UPLOAD_LIMIT = 1_000_000


def _write(table, folder: Path, name: str, formats: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if "csv" in formats:
        buffer = io.BytesIO()
        buffer.write(UTF8_BOM)
        pa_csv.write_csv(table, buffer, pa_csv.WriteOptions(quoting_style="needed"))
        (folder / f"{name}.csv").write_bytes(buffer.getvalue())
    if "parquet" in formats:
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")
    if "xlsx" in formats:
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append(table.column_names)
        for row in table.to_pylist():  # a few dozen rows of a test fixture
            sheet.append([None if v is None else str(v) for v in row.values()])
        book.save(folder / f"{name}.xlsx")


def _cut(settings: Settings, parquet: Path, where: str):
    con = settings.duckdb()
    try:
        return con.sql(
            f"select * from read_parquet(?, hive_partitioning = false) where {where} order by all",
            params=[str(parquet)],
        ).to_arrow_table()
    finally:
        con.close()


def _provinces(settings: Settings, parquet: Path) -> list[str]:
    con = settings.duckdb()
    try:
        rows = con.execute(
            "select distinct region_code from read_parquet(?, hive_partitioning = false) "
            "where level = 'province' order by 1",
            [str(parquet)],
        ).fetchall()
    finally:
        con.close()
    return [code for (code,) in rows]


def complete_scopes(settings: Settings, period: str) -> dict:
    """Add the missing scopes and XLSX files; return the (possibly updated) manifest."""
    pointer_path = settings.publish_dir / period / "latest.json"
    pointer = json.loads(pointer_path.read_text())
    version_dir = settings.publish_dir / period / pointer["path"]
    manifest = json.loads((version_dir / "manifest.json").read_text())
    folders = {relative.split("/")[0] for relative in manifest["files"]}
    tables = sorted(
        Path(relative).stem
        for relative in manifest["files"]
        if relative.startswith("internal/") and relative.endswith(".parquet")
    )
    for table in tables:
        internal = version_dir / "internal" / f"{table}.parquet"
        if not (version_dir / "internal" / f"{table}.xlsx").exists():
            _write(pq.read_table(internal), version_dir / "internal", table, ("xlsx",))
        if "public" not in folders:
            cut = _cut(settings, internal, "level in ('national', 'province')")
            _write(cut, version_dir / "public", table, ("csv", "parquet", "xlsx"))
        if not any(folder.startswith("province=") for folder in folders):
            for code in _provinces(settings, internal):
                cut = _cut(settings, internal, f"left(region_code, 2) = '{code[:2]}'")
                _write(cut, version_dir / f"province={code}", table, ("csv", "parquet", "xlsx"))
    files = {}
    for path in sorted(version_dir.rglob("*.*")):
        if path.suffix in (".csv", ".parquet", ".xlsx"):
            relative = str(path.relative_to(version_dir))
            files[relative] = {
                **manifest["files"].get(relative, {}),
                "scope": relative.split("/")[0],
                "table": path.stem,
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "rows": pq.ParquetFile(path.with_suffix(".parquet")).metadata.num_rows,
            }
    manifest["files"] = files
    body = (json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
    atomic_write_bytes(version_dir / "manifest.json", body)
    pointer["manifest_sha256"] = sha256_file(version_dir / "manifest.json")
    atomic_write_bytes(pointer_path, json.dumps(pointer, indent=2, sort_keys=True).encode())
    return manifest


AUDIT_PAGE = 10_000  # the audit API's largest page


def audit_entries(http, after: int = 0) -> list[dict]:
    """Every audit entry above ``after``, oldest first, a page at a time. A short page is
    the last: each page request is itself audited, so "until empty" would never end."""
    entries: list[dict] = []
    while True:
        page = http.get("/api/audit", params={"after": after, "limit": AUDIT_PAGE}).json()
        entries += page
        if len(page) < AUDIT_PAGE:
            return entries
        after = page[-1]["entry_id"]
