"""Portal uploads and the submissions register as a submitter may see it.

An upload is streamed to a hidden folder under the submitter's landing folder
(``landing/<USCC>/.upload-<id>/<name>``: the collect DAG skips hidden names, so it never
races the portal for the file) and counted while it streams: past the size limit the
request is refused before the rest is read. The file then goes through exactly the
intake the landing folder gets, bound to the token's USCC (DESIGN Decision 12).
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from collectwatch.config import Settings
from collectwatch.contracts import FILE_NAME_PATTERN
from collectwatch.files import sha256_file
from collectwatch.intake.lifecycle import REJECTED, Submission
from collectwatch.intake.process import intake_file
from collectwatch.intake.report import EditReport

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


def foreign_name(path: Path, uscc: str) -> EditReport | None:
    """An S003 report when the file's name names another institution than the token's.
    Such a file never reaches intake: registering it would file it in the other
    institution's register, and intake's byte-identical shortcut would reveal the other
    institution's submission."""
    match = FILE_NAME_PATTERN.match(path.name)
    if match is None or match["uscc"] == uscc:
        return None
    report = EditReport(
        path.name, match["type"], match["uscc"], match["period"], sha256_file(path), REJECTED
    )
    report.add_file_finding("S003", "file_name", match["uscc"])
    return report


def take_in(path: Path, settings: Settings, uscc: str) -> tuple[int, dict]:
    """The landing folder's intake for an uploaded file: (HTTP status, body with the edit
    report). 201 registered (accepted or held for verification), 422 rejected, 200 a
    byte-identical resubmission (the first submission's stored report)."""
    refused = foreign_name(path, uscc)
    if refused is not None:
        return 422, {"status": REJECTED, "report": refused.as_dict()}
    result = intake_file(path, settings, uscc)
    if result.duplicate_of_previous:
        stored = result.report_path
        report = (
            json.loads(stored.read_text())
            if stored and stored.exists()
            else result.report.as_dict()
        )
        return 200, {"status": result.status, "report": report, "duplicate_of_previous": True}
    body = {"status": result.status, "report": result.report.as_dict()}
    return (422 if result.status == REJECTED else 201), body


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
