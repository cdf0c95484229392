"""Publication: versioned, hashed, deterministic files per period.

A night exports each period's tables from the candidate into a hidden staging folder
(``publish/<period>/.staging-<run_id>/``), the gate audits exactly those files, and only
then is the folder renamed to ``v<N>`` and ``latest.json`` replaced — last, atomically.
Nothing published is overwritten: a rerun whose data files are byte-identical to the
latest version publishes nothing new (DESIGN Decision 7).
"""

from __future__ import annotations

import io
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from collectwatch.config import Settings
from collectwatch.files import atomic_write_bytes, sha256_file
from collectwatch.tables import PUBLISHED_TABLES, PublishedTable

UTF8_BOM = b"\xef\xbb\xbf"
FORMULA_PREFIXES = "=+-@"
DATA_SUFFIXES = (".csv", ".parquet")


@dataclass(frozen=True)
class Published:
    period: str
    version: int | None  # None: nothing changed, no new version
    path: Path | None
    manifest: dict | None


def _neutralised_select(con, table: str, period: str, order: tuple[str, ...]) -> str:
    """Text cells starting with = + - @ get a leading apostrophe so spreadsheets do not
    run them as formulas; numbers are left untouched."""
    columns = con.execute(f"describe {table}").fetchall()
    select = ", ".join(
        f"case when left({name}, 1) in ('=', '+', '-', '@') then '''' || {name} else {name} end"
        f" as {name}"
        if column_type == "VARCHAR"
        else name
        for name, column_type, *_ in columns
    )
    return f"select {select} from {table} where period = '{period}' order by {', '.join(order)}"


def _write_table_files(table: pa.Table, folder: Path, name: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    buffer.write(UTF8_BOM)
    pa_csv.write_csv(
        table,
        buffer,
        write_options=pa_csv.WriteOptions(quoting_style="needed", eol="\r\n"),
    )
    (folder / f"{name}.csv").write_bytes(buffer.getvalue())
    # Deterministic Parquet: fixed compression, no statistics of the writer's clock.
    pq.write_table(table, folder / f"{name}.parquet", compression="zstd", store_schema=True)


def export_period(settings: Settings, candidate: Path, period: str, run_id: str) -> Path:
    """Write every published table's rows for ``period`` into a staging folder."""
    staged = settings.publish_dir / period / f".staging-{run_id}"
    if staged.exists():
        shutil.rmtree(staged)
    con = settings.duckdb(candidate, read_only=True)
    try:
        for table in PUBLISHED_TABLES:
            for scope in table.scopes:
                # The public scope is disclosure-controlled: it comes from public_<table>.
                model = f"public_{table.name}" if scope == "public" else table.name
                arrow = con.sql(_neutralised_select(con, model, period, table.key)).to_arrow_table()
                _write_table_files(arrow, staged / scope, table.name)
    finally:
        con.close()
    return staged


def data_files(folder: Path) -> dict[str, dict]:
    """SHA-256 and row count of every data file under ``folder``, by relative path."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix in DATA_SUFFIXES:
            files[str(path.relative_to(folder))] = {
                "sha256": sha256_file(path),
                "bytes": path.stat().st_size,
                "rows": pq.ParquetFile(path).metadata.num_rows
                if path.suffix == ".parquet"
                else None,
            }
    for relative, entry in files.items():
        if entry["rows"] is None:  # a CSV has the rows of its Parquet sibling
            entry["rows"] = files[relative.removesuffix(".csv") + ".parquet"]["rows"]
    return files


def latest(settings: Settings, period: str) -> dict | None:
    pointer = settings.publish_dir / period / "latest.json"
    return json.loads(pointer.read_text()) if pointer.exists() else None


def latest_version_dir(settings: Settings, period: str) -> Path | None:
    pointer = latest(settings, period)
    return settings.publish_dir / period / pointer["path"] if pointer else None


def publish_period(settings: Settings, period: str, staged: Path, metadata: dict) -> Published:
    """Turn a staged, audited folder into ``v<N>`` unless its data equals the latest."""
    files = data_files(staged)
    previous_dir = latest_version_dir(settings, period)
    if previous_dir is not None:
        previous = json.loads((previous_dir / "manifest.json").read_text())
        if {k: v["sha256"] for k, v in previous["files"].items()} == {
            k: v["sha256"] for k, v in files.items()
        }:
            shutil.rmtree(staged)
            return Published(period, None, None, None)
        version = previous["version"] + 1
    else:
        version = 1
    manifest = {
        "period": period,
        "version": version,
        "release_status": _release_status(staged),
        "files": files,
        "tables": {table.name: _table_entry(table) for table in PUBLISHED_TABLES},
        **metadata,
    }
    atomic_write_bytes(staged / "manifest.json", _json_bytes(manifest))
    final = settings.publish_dir / period / f"v{version}"
    staged.rename(final)  # atomic: the version appears complete or not at all
    atomic_write_bytes(
        settings.publish_dir / period / "latest.json",
        _json_bytes(
            {
                "period": period,
                "version": version,
                "path": f"v{version}",
                "release_status": manifest["release_status"],
                "manifest_sha256": sha256_file(final / "manifest.json"),
            }
        ),
    )
    return Published(period, version, final, manifest)


def _table_entry(table: PublishedTable) -> dict:
    return {"key": list(table.key), "scopes": list(table.scopes)}


def _release_status(staged: Path) -> str:
    statuses = set()
    for path in staged.rglob("*.parquet"):
        statuses |= set(pq.read_table(path, columns=["release_status"]).column(0).to_pylist())
    return sorted(statuses)[0] if len(statuses) == 1 else "mixed"


def _json_bytes(body: dict) -> bytes:
    return (json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
