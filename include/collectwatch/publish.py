"""Publication: versioned, hashed, deterministic files per period, in three scopes.

A night exports each period's tables from the candidate into a hidden staging folder
(``publish/<period>/.staging-<run_id>/``), the gate audits exactly those files, and only
then is the folder renamed to ``v<N>`` and ``latest.json`` replaced — last, atomically.
Nothing published is overwritten: a rerun whose data files are byte-identical to the
latest version publishes nothing new (DESIGN Decision 7).

Scopes (DESIGN Decision 6), each a folder of CSV, XLSX and Parquet files:
``public/`` the disclosure-controlled dbt relations ``public_<table>``; ``internal/`` every
table, all levels; ``province=<code>/`` every internal table cut to one province (its own
row and its prefectures, not the national row).

Release status (DESIGN Decision 5): dbt marks rows preliminary or final from the due
date; a change after a final release is published as ``revised``, and the manifest notes
which input submissions changed since the previous version.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from collectwatch import workbook
from collectwatch.config import Settings, connect_duckdb
from collectwatch.files import atomic_write_bytes, sha256_file
from collectwatch.tables import PUBLISHED_TABLES, PublishedTable
from collectwatch.workbook import ColumnLabel, SheetSpec, workbook_bytes

UTF8_BOM = b"\xef\xbb\xbf"
FORMULA_PREFIXES = "=+-@"
_FORMULA_STARTS = ", ".join(f"'{prefix}'" for prefix in FORMULA_PREFIXES)
DATA_SUFFIXES = (".csv", ".parquet", ".xlsx")
PUBLIC, INTERNAL = "public", "internal"
# "中文 / English": the first slash followed by a space ("GB/T" in a label is no separator).
BILINGUAL_SEPARATOR = re.compile(r"\s*/\s")
FINAL_STATUSES = ("final", "revised")
# Beside the staged files until the release: what each table's CSV and XLSX were rendered
# from (moved into the manifest as "render_keys").
RENDER_KEYS = ".render_keys.json"
# The code that renders a CSV or XLSX from its rows: when it changes, so may every file.
RENDERER_SHA256 = hashlib.sha256(
    Path(__file__).read_bytes() + Path(workbook.__file__).read_bytes()
).hexdigest()
SOURCE_NOTE = (
    "Monthly submissions of lenders and collection agencies to the statistics office, "
    "checked by intake edits, modelled with dbt and audited by the quality gate. "
    "放贷机构与催收机构向统计部门报送的月度数据，经报送校验、dbt 建模及质量门审核。"
)
RELEASE_NOTE = (
    "preliminary 初步: before the due date (15th of the next month, 23:59:59 +08:00); "
    "final 最终: after it; revised 修订: changed after a final release (see manifest.json)."
)
SUPPRESSION_NOTE = (
    "An empty cell in public/ is suppressed (fewer than 3 contributing institutions, the "
    "largest over 85%, or secondary suppression so it cannot be derived from totals). "
    "公开表中的空单元格为抑制值（贡献机构少于 3 家、最大机构占比超过 85%，或为防止由合计反推而"
    "做的二次抑制）。"
)
FORMULA_NOTE = (
    "Text cells beginning with = + - @ carry a leading apostrophe so spreadsheets do not run "
    "them. 以 = + - @ 开头的文本前加了撇号，以免电子表格将其作为公式执行。"
)


@dataclass(frozen=True)
class Published:
    period: str
    version: int | None  # None: nothing changed, no new version
    path: Path | None
    manifest: dict | None


@dataclass(frozen=True)
class Extract:
    """One table's rows of one period in one scope, and the relation they come from."""

    scope: str
    table: PublishedTable
    relation: str
    condition: str = "true"


def province_scope(region_code: str) -> str:
    return f"province={region_code}"


def _relation_columns(con, relation: str) -> list[tuple[str, str]]:
    return [
        (name, column_type)
        for name, column_type, *_ in con.execute(f"describe {relation}").fetchall()
    ]


@dataclass(frozen=True)
class Relation:
    """What the files of every extract of one relation share: its columns, its
    description and its columns' labels (read once, not once per province)."""

    columns: list[tuple[str, str]]
    description: str
    labels: dict[str, ColumnLabel]

    @classmethod
    def read(cls, con, name: str) -> Relation:
        return cls(
            _relation_columns(con, name), _relation_description(con, name), column_labels(con, name)
        )


def _neutralised_select(
    relation: Relation, extract: Extract, period: str, release_status: str | None = None
) -> str:
    """Text cells starting with = + - @ get a leading apostrophe so spreadsheets do not
    run them as formulas; numbers are left untouched. ``release_status`` overrides the
    column (a revision of a final release)."""
    columns = []
    for name, column_type in relation.columns:
        if name == "release_status" and release_status is not None:
            columns.append(f"'{release_status}' as {name}")
        elif column_type == "VARCHAR":
            columns.append(
                f"case when left({name}, 1) in ('=', '+', '-', '@') then '''' || {name} "
                f"else {name} end as {name}"
            )
        else:
            columns.append(name)
    return (
        f"select {', '.join(columns)} from {extract.relation} "
        f"where period = '{period}' and ({extract.condition}) "
        f"order by {', '.join(extract.table.key)}"
    )


def _split_label(name: str, comment: str | None) -> ColumnLabel:
    """dbt writes each column's description ("中文 / English.") as a DuckDB comment
    (persist_docs): the model YAML is the one source of the bilingual labels."""
    if not comment:
        return ColumnLabel(zh=name, en=name, definition="")
    parts = BILINGUAL_SEPARATOR.split(comment, maxsplit=1)
    if len(parts) == 1:
        return ColumnLabel(zh=comment, en=name, definition=comment)
    zh, en = parts
    return ColumnLabel(zh=zh.strip(), en=en.strip().removesuffix("."), definition=comment)


def column_labels(con, relation: str) -> dict[str, ColumnLabel]:
    rows = con.execute(
        "select column_name, comment from duckdb_columns() "
        "where table_name = ? and schema_name = current_schema()",
        [relation],
    ).fetchall()
    return {name: _split_label(name, comment) for name, comment in rows}


def _relation_description(con, relation: str) -> str:
    row = con.execute(
        "select comment from duckdb_tables() where table_name = ? "
        "union all select comment from duckdb_views() where view_name = ?",
        [relation, relation],
    ).fetchone()
    return " ".join((row[0] or "").split()) if row else ""


def _regional(con, table: PublishedTable) -> bool:
    """Whether the table has rows by region level (a watchlist of agencies may not)."""
    return {"level", "region_code"} <= {name for name, _ in _relation_columns(con, table.name)}


def provinces(con, period: str) -> list[str]:
    """Province codes with a row in any internal table of ``period``."""
    selects = [
        f"select region_code from {table.name} where period = '{period}' and level = 'province'"
        for table in PUBLISHED_TABLES
        if _regional(con, table)
    ]
    if not selects:
        return []
    rows = con.execute(f"select distinct region_code from ({' union '.join(selects)}) order by 1")
    return [code for (code,) in rows.fetchall()]


def extracts(con, period: str) -> list[Extract]:
    """Every (scope, table) file set a period's publication holds."""
    planned = []
    for table in PUBLISHED_TABLES:
        if INTERNAL in table.scopes:
            planned.append(Extract(INTERNAL, table, table.name))
        if PUBLIC in table.scopes:
            planned.append(Extract(PUBLIC, table, f"public_{table.name}"))
    for code in provinces(con, period):
        # Prefecture codes share the province's first two digits (GB/T 2260).
        condition = f"level <> 'national' and left(region_code, 2) = '{code[:2]}'"
        planned.extend(
            Extract(province_scope(code), table, table.name, condition)
            for table in PUBLISHED_TABLES
            if INTERNAL in table.scopes and _regional(con, table)
        )
    return planned


def _csv_bytes(rows: pa.Table) -> bytes:
    buffer = io.BytesIO()
    buffer.write(UTF8_BOM)
    pa_csv.write_csv(
        rows, buffer, write_options=pa_csv.WriteOptions(quoting_style="needed", eol="\r\n")
    )
    return buffer.getvalue()


def _parquet_bytes(rows: pa.Table) -> bytes:
    buffer = io.BytesIO()
    # Deterministic Parquet: fixed compression, no statistics of the writer's clock.
    pq.write_table(rows, buffer, compression="zstd", store_schema=True)
    return buffer.getvalue()


def _sheet_spec(
    relation: Relation, extract: Extract, period: str, release_status: str
) -> SheetSpec:
    table = extract.table
    notes = (
        ("table 表", f"{table.name} — {relation.description}"),
        ("period 报告期", period),
        ("scope 范围", extract.scope),
        ("release status 发布状态", release_status),
        ("release statuses 发布状态说明", RELEASE_NOTE),
        ("suppression 抑制符号", SUPPRESSION_NOTE),
        ("formulas 公式", FORMULA_NOTE),
        ("source 来源", SOURCE_NOTE),
    )
    return SheetSpec(
        sheet_name=table.name[:31],
        labels=relation.labels,
        share_columns=frozenset(table.shares + table.rates_warn_above_one),
        notes=notes,
    )


def render_key(parquet: bytes, spec: SheetSpec) -> str:
    """What a table's CSV and XLSX are a function of: its rows (their Parquet, schema
    included), the sheet's labels and notes, and the rendering code."""
    body = {
        "rows": hashlib.sha256(parquet).hexdigest(),
        "sheet": spec.sheet_name,
        "labels": {
            name: [label.zh, label.en, label.definition]
            for name, label in sorted(spec.labels.items())
        },
        "shares": sorted(spec.share_columns),
        "notes": [list(note) for note in spec.notes],
        "code": RENDERER_SHA256,
    }
    return hashlib.sha256(json_bytes(body)).hexdigest()


@dataclass(frozen=True)
class Rendered:
    """The latest version's folder and the render keys of its tables' files."""

    folder: Path
    keys: dict[str, str]  # "<scope>/<table>" -> render_key

    def reusable(self, relative: str, key: str) -> Path | None:
        """The folder holding the CSV and XLSX of ``relative`` rendered from ``key``."""
        if self.keys.get(relative) != key:
            return None
        files = [self.folder / f"{relative}{suffix}" for suffix in (".csv", ".xlsx")]
        return self.folder if all(path.is_file() for path in files) else None


class PeriodExport:
    """The extracts of one period read from a candidate: the relations' metadata read once,
    and the files written ``threads`` extracts at a time, each worker with its own cursor of
    the candidate and of one in-memory DuckDB connection that renders the workbooks' rows
    (DuckDB, pyarrow's writers and zlib release the GIL, so two workers keep two cores
    busy).

    Rendering a workbook costs far more than reading its rows, and before a final release
    one resubmission changes few of a period's tables (after it, every row says "revised"):
    a table whose render key equals the one in the latest
    version's manifest gets that version's CSV and XLSX copied, byte for byte what
    rendering them again would give (files are deterministic, DESIGN Decision 7)."""

    def __init__(self, con, period: str, rendered: Rendered | None = None, threads: int = 1):
        self.con, self.period = con, period
        self.extracts = extracts(con, period)
        self.relations: dict[str, Relation] = {}
        self.renderer = connect_duckdb()
        self.rendered = rendered
        self.render_keys: dict[str, str] = {}
        self.threads = max(1, threads)
        self.worker = threading.local()
        self.cursors: list = []
        self.cursors_lock = threading.Lock()

    def close(self) -> None:
        for cursor in self.cursors:
            cursor.close()
        self.renderer.close()

    def _cursors(self) -> tuple:
        """This thread's cursors: of the candidate, and of the workbook renderer."""
        if not hasattr(self.worker, "cursors"):
            self.worker.cursors = (self.con.cursor(), self.renderer.cursor())
            with self.cursors_lock:
                self.cursors.extend(self.worker.cursors)
        return self.worker.cursors

    def relation(self, name: str) -> Relation:
        if name not in self.relations:
            self.relations[name] = Relation.read(self.con, name)
        return self.relations[name]

    def rows(self, extract: Extract, status: str | None) -> pa.Table:
        select = _neutralised_select(self.relation(extract.relation), extract, self.period, status)
        candidate, _ = self._cursors()
        return candidate.sql(select).to_arrow_table()

    def parquet_differs(self, previous_files: dict[str, dict]) -> bool:
        """Whether any extract's Parquet, with dbt's release status, differs from the
        previous version's (or the set of files does): its rows have changed."""
        parquet = {name for name, entry in previous_files.items() if entry["format"] == "parquet"}
        paths = {f"{extract.scope}/{extract.table.name}.parquet" for extract in self.extracts}
        if paths != parquet:
            return True
        for extract in self.extracts:
            digest = hashlib.sha256(_parquet_bytes(self.rows(extract, None))).hexdigest()
            if digest != previous_files[f"{extract.scope}/{extract.table.name}.parquet"]["sha256"]:
                return True
        return False

    def write(self, extract: Extract, staged: Path, status: str | None) -> None:
        """Write the extract's CSV, Parquet and XLSX."""
        rows = self.rows(extract, status)
        has_status = "release_status" in rows.column_names
        statuses = (
            set(pc.unique(rows.column("release_status")).to_pylist()) if has_status else set()
        )
        row_status = status or (statuses.pop() if len(statuses) == 1 else "mixed")
        relative = f"{extract.scope}/{extract.table.name}"
        (staged / extract.scope).mkdir(parents=True, exist_ok=True)
        parquet = _parquet_bytes(rows)
        (staged / f"{relative}.parquet").write_bytes(parquet)
        spec = _sheet_spec(self.relation(extract.relation), extract, self.period, row_status)
        key = self.render_keys[relative] = render_key(parquet, spec)
        source = self.rendered.reusable(relative, key) if self.rendered else None
        if source is not None:
            for suffix in (".csv", ".xlsx"):
                shutil.copyfile(source / f"{relative}{suffix}", staged / f"{relative}{suffix}")
            return
        (staged / f"{relative}.csv").write_bytes(_csv_bytes(rows))
        _, renderer = self._cursors()
        (staged / f"{relative}.xlsx").write_bytes(workbook_bytes(rows, spec, renderer))

    def write_all(self, staged: Path, status: str | None) -> Path:
        if staged.exists():
            shutil.rmtree(staged)
        staged.mkdir(parents=True)
        self.render_keys = {}
        # The metadata first, on this thread: the workers then only read it.
        for extract in self.extracts:
            self.relation(extract.relation)
        with ThreadPoolExecutor(self.threads) as pool:
            # list(): a worker's exception is raised here
            list(pool.map(lambda extract: self.write(extract, staged, status), self.extracts))
        atomic_write_bytes(staged / RENDER_KEYS, json_bytes(self.render_keys))
        return staged


def _latest_rendered(settings: Settings, period: str) -> Rendered | None:
    folder = latest_version_dir(settings, period)
    if folder is None:
        return None
    manifest = json.loads((folder / "manifest.json").read_text())
    return Rendered(folder, manifest.get("render_keys", {}))


@contextmanager
def period_export(settings: Settings, candidate: Path, period: str):
    con = settings.duckdb(candidate, read_only=True)
    try:
        export = PeriodExport(
            con, period, _latest_rendered(settings, period), settings.duckdb_threads
        )
        try:
            yield export
        finally:
            export.close()
    finally:
        con.close()


def _staging(settings: Settings, period: str, run_id: str) -> Path:
    return settings.publish_dir / period / f".staging-{run_id}"


def export_period(
    settings: Settings,
    candidate: Path,
    period: str,
    run_id: str,
    release_status: str | None = None,
) -> Path:
    """Write every scope's files of ``period`` into a staging folder; ``release_status``
    overrides the status dbt computed (a revision)."""
    with period_export(settings, candidate, period) as export:
        return export.write_all(_staging(settings, period, run_id), release_status)


def stage_period(settings: Settings, candidate: Path, period: str, run_id: str) -> Path:
    """Export ``period``; once a final version is out, any change is published as revised.

    Whether the rows changed is known before the export from the Parquet files alone (the
    cheapest format to render), so a revision is written once, not first as final and
    again as revised. Only when the rows are unchanged but another file differs (a new
    column label, say) is the export written a second time, as revised."""
    staged = _staging(settings, period, run_id)
    previous = latest_manifest(settings, period)
    with period_export(settings, candidate, period) as export:
        after_final = previous is not None and previous["release_status"] in FINAL_STATUSES
        if not after_final or _dbt_release_status(export) != "final":
            return export.write_all(staged, None)
        if previous["release_status"] == "revised" or export.parquet_differs(previous["files"]):
            return export.write_all(staged, "revised")
        export.write_all(staged, None)
        if data_file_hashes(data_files(staged)) != data_file_hashes(previous["files"]):
            return export.write_all(staged, "revised")
        return staged


def _dbt_release_status(export: PeriodExport) -> str:
    """The one release status dbt gave the period's rows in every extracted relation, or
    "mixed"."""
    selects = [
        f"select distinct release_status from {name} where period = '{export.period}'"
        for name in sorted({extract.relation for extract in export.extracts})
        if "release_status" in dict(export.relation(name).columns)
    ]
    if not selects:
        return "mixed"
    statuses = export.con.sql(" union ".join(selects)).fetchall()
    return statuses[0][0] if len(statuses) == 1 else "mixed"


def data_files(folder: Path) -> dict[str, dict]:
    """Scope, table, SHA-256 and row count of every data file under ``folder``."""
    files = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix not in DATA_SUFFIXES:
            continue
        relative = path.relative_to(folder)
        parquet = path.with_suffix(".parquet")
        files[relative.as_posix()] = {
            "scope": relative.parts[0],
            "table": path.stem,
            "format": path.suffix.removeprefix("."),
            "sha256": sha256_file(path),
            "bytes": path.stat().st_size,
            # every format of a table holds the rows of its Parquet sibling
            "rows": pq.ParquetFile(parquet).metadata.num_rows,
        }
    return files


def data_file_hashes(files: dict[str, dict]) -> dict[str, str]:
    """Each data file's SHA-256 by its path (``data_files`` or a manifest's ``files``):
    two publications with equal hashes hold the same bytes."""
    return {relative: entry["sha256"] for relative, entry in files.items()}


def latest(settings: Settings, period: str) -> dict | None:
    pointer = settings.publish_dir / period / "latest.json"
    return json.loads(pointer.read_text()) if pointer.exists() else None


def latest_version_dir(settings: Settings, period: str) -> Path | None:
    pointer = latest(settings, period)
    return settings.publish_dir / period / pointer["path"] if pointer else None


def latest_manifest(settings: Settings, period: str) -> dict | None:
    folder = latest_version_dir(settings, period)
    return json.loads((folder / "manifest.json").read_text()) if folder else None


def submission_changes(previous: dict[str, str], current: dict[str, str]) -> dict:
    """Input submissions (id -> file hash) added, removed or changed between versions."""
    return {
        "added": sorted(set(current) - set(previous)),
        "removed": sorted(set(previous) - set(current)),
        "changed": sorted(k for k in set(current) & set(previous) if current[k] != previous[k]),
    }


@dataclass(frozen=True)
class PreparedVersion:
    """A staged folder with its manifest, ready to become ``v<N>``."""

    period: str
    version: int
    staged: Path
    final: Path
    pointer: dict

    def as_dict(self) -> dict:
        return {
            "period": self.period,
            "version": self.version,
            "staged": str(self.staged),
            "final": str(self.final),
            "pointer": self.pointer,
        }

    @classmethod
    def from_dict(cls, body: dict) -> PreparedVersion:
        return cls(
            body["period"], body["version"], Path(body["staged"]), Path(body["final"]),
            body["pointer"],
        )  # fmt: skip


def prepare_version(
    settings: Settings, period: str, staged: Path, metadata: dict
) -> PreparedVersion | None:
    """Write the manifest into the staged folder, or drop the folder when its data files
    equal the latest version's (nothing new to publish)."""
    files = data_files(staged)
    previous = latest_manifest(settings, period)
    if previous is not None and data_file_hashes(previous["files"]) == data_file_hashes(files):
        shutil.rmtree(staged)
        return None
    version = previous["version"] + 1 if previous else 1
    render_keys = staged / RENDER_KEYS
    manifest = {
        "period": period,
        "version": version,
        "release_status": _release_status(staged),
        "files": files,
        "render_keys": json.loads(render_keys.read_text()) if render_keys.exists() else {},
        "tables": {table.name: _table_entry(table) for table in PUBLISHED_TABLES},
        **metadata,
    }
    if previous is not None:
        manifest["previous"] = {
            "version": previous["version"],
            "release_status": previous["release_status"],
            "submissions": submission_changes(
                previous.get("input_submissions", {}), metadata.get("input_submissions", {})
            ),
        }
    atomic_write_bytes(staged / "manifest.json", json_bytes(manifest))
    render_keys.unlink(missing_ok=True)  # in the manifest now
    pointer = {
        "period": period,
        "version": version,
        "path": f"v{version}",
        "release_status": manifest["release_status"],
        "manifest_sha256": sha256_file(staged / "manifest.json"),
    }
    return PreparedVersion(period, version, staged, settings.publish_dir / period / f"v{version}",
                           pointer)  # fmt: skip


def move_into_place(prepared: PreparedVersion) -> None:
    """Rename the staged folder to ``v<N>``: the version appears complete or not at all.
    Idempotent, so an interrupted release can be completed."""
    if not prepared.final.exists():
        prepared.staged.rename(prepared.final)


def point_latest(settings: Settings, prepared: PreparedVersion) -> None:
    atomic_write_bytes(
        settings.publish_dir / prepared.period / "latest.json", json_bytes(prepared.pointer)
    )


def publish_period(settings: Settings, period: str, staged: Path, metadata: dict) -> Published:
    """Turn a staged, audited folder into ``v<N>`` unless its data equals the latest."""
    prepared = prepare_version(settings, period, staged, metadata)
    if prepared is None:
        return Published(period, None, None, None)
    move_into_place(prepared)
    point_latest(settings, prepared)
    manifest = json.loads((prepared.final / "manifest.json").read_text())
    return Published(period, prepared.version, prepared.final, manifest)


def _table_entry(table: PublishedTable) -> dict:
    return {"key": list(table.key), "scopes": list(table.scopes)}


def _release_status(staged: Path) -> str:
    statuses = set()
    for path in staged.rglob("*.parquet"):
        if "release_status" in pq.read_schema(path).names:
            column = pq.read_table(path, columns=["release_status"]).column(0)
            statuses |= set(pc.unique(column).to_pylist())  # not one Python object a row
    return sorted(statuses)[0] if len(statuses) == 1 else "mixed"


def json_bytes(body: dict) -> bytes:
    return (json.dumps(body, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode()
