"""Portal uploads and the submissions register as a submitter may see it.

An upload is streamed to a hidden folder under the submitter's landing folder
(``landing/<USCC>/.upload-<id>/<name>``: the collect DAG skips hidden names, so it never
races the portal for the file) and counted while it streams: past the size limit the
request is refused before the rest is read. The file then goes through exactly the
intake the landing folder gets, bound to the token's USCC (DESIGN Decision 12).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from collectwatch.config import Settings
from collectwatch.intake.lifecycle import Submission

SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")


class TooLarge(Exception):
    def __init__(self, received: int, limit: int):
        super().__init__(f"the upload exceeds the limit of {limit} bytes")
        self.received = received
        self.limit = limit


@dataclass(frozen=True)
class Upload:
    path: Path
    bytes: int

    def discard(self) -> None:
        shutil.rmtree(self.path.parent, ignore_errors=True)


def upload_folder(settings: Settings, uscc: str) -> Path:
    return settings.landing_dir / uscc / f".upload-{uuid.uuid4().hex}"


async def receive(chunks: AsyncIterator[bytes], settings: Settings, uscc: str, name: str) -> Upload:
    """Write the streamed body to disk, refusing it as soon as it passes the limit."""
    folder = upload_folder(settings, uscc)
    folder.mkdir(parents=True)
    path = folder / name
    received = 0
    try:
        with open(path, "wb") as handle:
            async for chunk in chunks:
                received += len(chunk)
                if received > settings.max_file_bytes:
                    raise TooLarge(received, settings.max_file_bytes)
                handle.write(chunk)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return Upload(path, received)


def _rows(settings: Settings, sql: str, parameters: tuple) -> list[Submission]:
    if not settings.submissions_db.exists():
        return []
    con = sqlite3.connect(f"file:{settings.submissions_db}?mode=ro", uri=True, timeout=30)
    try:
        con.row_factory = sqlite3.Row
        return [Submission(**row) for row in con.execute(sql, parameters).fetchall()]
    finally:
        con.close()


def listed(settings: Settings, uscc: str | None) -> list[Submission]:
    """Submissions of one submitter (or all, for ``uscc=None``), newest first."""
    if uscc is None:
        return _rows(settings, "select * from submissions order by received_at desc", ())
    return _rows(
        settings,
        "select * from submissions where submitter_uscc = ? order by received_at desc, "
        "submission_id",
        (uscc,),
    )


def find(settings: Settings, submission_id: str, uscc: str | None) -> Submission | None:
    """One submission, only if it belongs to ``uscc`` (any, for ``uscc=None``)."""
    rows = _rows(settings, "select * from submissions where submission_id = ?", (submission_id,))
    if not rows or (uscc is not None and rows[0].submitter_uscc != uscc):
        return None
    return rows[0]


def summary(submission: Submission) -> dict:
    """What the API shows of a submission (no server paths)."""
    return {
        "submission_id": submission.submission_id,
        "submitter_uscc": submission.submitter_uscc,
        "submission_type": submission.submission_type,
        "period": submission.period,
        "sequence": submission.sequence,
        "status": submission.status,
        "sha256": submission.sha256,
        "file_name": submission.file_name,
        "size_bytes": submission.size_bytes,
        "received_at": submission.received_at,
        "decided_at": submission.decided_at,
        "row_count": submission.row_count,
        "report_url": f"/api/submissions/{submission.submission_id}/report",
    }
