"""What the portal serves: the latest published version of each period, file by file, as
the manifest lists it (``publish/<period>/latest.json`` → ``v<N>/manifest.json``).

Only files named in the manifest exist for the portal, so no request path can reach
anything else on disk; each file's scope is the manifest's ``scope`` (or, for manifests
written before scopes were recorded, its top folder: ``internal``, ``public``,
``province=<code>``).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath

from collectwatch.config import Settings
from collectwatch.contracts import PERIOD_PATTERN
from collectwatch.files import sha256_file
from collectwatch.portal.auth import Scope, normalise_file_scope

FORMATS = {
    ".csv": "text/csv; charset=utf-8",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".parquet": "application/vnd.apache.parquet",
}

# Bilingual titles of the published tables (others are shown by their name).
TABLE_TITLES = {
    "outsourcing_by_region": ("催收外包（按地区）", "Outsourcing by region"),
    "recovery_by_bucket": ("按逾期阶段的回收", "Recovery by bucket"),
    "complaints_by_region": ("催收投诉（按地区）", "Complaints by region"),
    "conduct_compliance": ("催收行为合规", "Conduct compliance"),
    "agency_watchlist": ("催收机构关注名单", "Agency watchlist"),
    "submission_coverage": ("报送覆盖情况", "Submission coverage"),
    "lender_agency_reconciliation": ("贷款机构与催收机构对账", "Lender–agency reconciliation"),
}


class ManifestMismatch(RuntimeError):
    """latest.json names a manifest whose bytes are not the ones it hashed."""


@dataclass(frozen=True)
class PublishedFile:
    period: str
    version: int
    relative: str  # path inside v<N>/, as the manifest lists it
    scope: str  # normalised: internal | public | province=<code>
    table: str
    suffix: str  # .csv | .xlsx | .parquet
    sha256: str
    bytes: int | None
    rows: int | None
    path: Path

    @property
    def content_type(self) -> str:
        return FORMATS[self.suffix]

    def download_name(self, lang: str = "zh") -> tuple[str, str]:
        """(UTF-8 name, ASCII fallback) for Content-Disposition."""
        ascii_name = f"{self.table}_{self.period}_v{self.version}_{self.scope}{self.suffix}"
        title = TABLE_TITLES.get(self.table, (self.table, self.table))[0 if lang == "zh" else 1]
        return f"{title}_{ascii_name}", ascii_name

    def as_dict(self) -> dict:
        return {
            "path": self.relative,
            "scope": self.scope,
            "table": self.table,
            "format": self.suffix.lstrip("."),
            "sha256": self.sha256,
            "bytes": self.bytes,
            "rows": self.rows,
            "url": f"/files/{self.period}/{self.relative}",
        }


@dataclass(frozen=True)
class Release:
    period: str
    version: int
    release_status: str
    manifest: dict
    files: tuple[PublishedFile, ...]

    def entitled(self, scope: Scope) -> list[PublishedFile]:
        return [file for file in self.files if scope.may_read(file.scope)]

    @cached_property
    def _by_relative(self) -> dict[str, PublishedFile]:
        return {file.relative: file for file in self.files}

    def file(self, relative: str) -> PublishedFile | None:
        return self._by_relative.get(relative)

    def dataset(self, folder: str, table: str) -> PublishedFile | None:
        """The Parquet file of ``table`` in a scope folder (what previews and charts read)."""
        return self.file(f"{folder}/{table}.parquet")

    def summary(self, scope: Scope) -> dict:
        return {
            "period": self.period,
            "version": self.version,
            "release_status": self.release_status,
            "files": [file.as_dict() for file in self.entitled(scope)],
        }


def periods(settings: Settings) -> list[str]:
    """Periods with a publication, newest first."""
    if not settings.publish_dir.exists():
        return []
    return sorted(
        (
            folder.name
            for folder in settings.publish_dir.iterdir()
            if PERIOD_PATTERN.match(folder.name) and (folder / "latest.json").exists()
        ),
        reverse=True,
    )


def _file(period: str, version: int, folder: Path, relative: str, entry: dict):
    parts = PurePosixPath(relative)
    suffix = parts.suffix
    if suffix not in FORMATS or ".." in parts.parts:
        return None
    return PublishedFile(
        period=period,
        version=version,
        relative=relative,
        scope=normalise_file_scope(entry.get("scope") or parts.parts[0]),
        table=entry.get("table") or parts.stem,
        suffix=suffix,
        sha256=entry["sha256"],
        bytes=entry.get("bytes"),
        rows=entry.get("rows"),
        path=folder / relative,
    )


# A publication has hundreds of files (every province's folder in three formats), and every
# request needs its release: the parsed, hash-checked manifest is kept while latest.json's
# bytes and the manifest file's identity (inode, size, mtime) stay the same.
_RELEASES: dict[Path, tuple[tuple, Release]] = {}
_RELEASES_LOCK = threading.Lock()


def release(settings: Settings, period: str) -> Release | None:
    """The latest release of ``period``; the manifest's hash is checked against latest.json."""
    if not PERIOD_PATTERN.match(period):
        return None
    pointer_path = settings.publish_dir / period / "latest.json"
    try:
        pointer_bytes = pointer_path.read_bytes()
    except FileNotFoundError:
        return None
    pointer = json.loads(pointer_bytes)
    manifest_path = settings.publish_dir / period / pointer["path"] / "manifest.json"
    stat = manifest_path.stat()
    key = (pointer_bytes, stat.st_ino, stat.st_size, stat.st_mtime_ns)
    with _RELEASES_LOCK:
        cached = _RELEASES.get(pointer_path)
    if cached is not None and cached[0] == key:
        return cached[1]
    found = _read_release(period, pointer, manifest_path)
    with _RELEASES_LOCK:
        _RELEASES[pointer_path] = (key, found)
    return found


def _read_release(period: str, pointer: dict, manifest_path: Path) -> Release:
    folder = manifest_path.parent
    expected = pointer.get("manifest_sha256")
    if expected and sha256_file(manifest_path) != expected:
        raise ManifestMismatch(f"{manifest_path} does not match latest.json's hash")
    manifest = json.loads(manifest_path.read_text())
    version = manifest["version"]
    files = (
        _file(period, version, folder, relative, entry)
        for relative, entry in sorted(manifest["files"].items())
    )
    return Release(
        period,
        version,
        manifest.get("release_status", pointer.get("release_status", "")),
        manifest,
        tuple(file for file in files if file is not None),
    )
