"""Retention (DESIGN Decision 11): rejected files leave quarantine after a configurable
number of days (default 90), archived originals after a configurable number of years
(default 10) — except an original that is still a current accepted version. Every removal
is logged to ``state/purge.log`` (JSON lines) and returned to the caller.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.intake.lifecycle import StateStore


def _older_than(path: Path, cutoff: datetime) -> bool:
    # ctime: a quarantined file keeps the submitter's mtime when moved; ctime is when it
    # arrived in the folder.
    stat = path.stat()
    return datetime.fromtimestamp(max(stat.st_mtime, stat.st_ctime), CHINA_TZ) < cutoff


def purge(settings: Settings, now: datetime | None = None) -> list[dict]:
    """Remove what is past retention; return (and log) one record per removed file."""
    now = now or datetime.now(CHINA_TZ)
    quarantine_cutoff = now - timedelta(days=settings.quarantine_days)
    archive_cutoff = now - timedelta(days=365 * settings.archive_retention_years)
    current = set()
    if settings.submissions_db.exists():
        current = {s.sha256 for s in StateStore(settings.submissions_db).current()}
    removed = []
    for folder, cutoff, reason in (
        (settings.quarantine_dir, quarantine_cutoff, f"quarantine > {settings.quarantine_days} d"),
        (
            settings.archive_dir,
            archive_cutoff,
            f"archive > {settings.archive_retention_years} y",
        ),
    ):
        if not folder.exists():
            continue
        for path in sorted(folder.iterdir()):
            if not path.is_file() or not _older_than(path, cutoff):
                continue
            if folder == settings.archive_dir and path.name.split(".")[0] in current:
                continue
            removed.append({"path": str(path), "bytes": path.stat().st_size, "reason": reason})
            path.unlink()
    if removed:
        log = settings.submissions_db.parent / "purge.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        stamp = now.isoformat(timespec="seconds")
        with open(log, "a") as handle:
            for record in removed:
                handle.write(json.dumps({"purged_at": stamp, **record}) + "\n")
    return removed
