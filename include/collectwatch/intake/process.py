"""Intake of one submission file: edits, lifecycle, archive, raw zone, report.

A file is either fully accepted (archived by content hash, typed Parquet in the raw zone,
the previous version superseded) or not loaded at all. ``check_file`` runs the same edits
without touching any state — the submitter's pre-flight.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.contracts import FILE_NAME_PATTERN, PERIOD_PATTERN, SUBMISSION_TYPES
from collectwatch.files import atomic_copy, sha256_file
from collectwatch.intake import lifecycle
from collectwatch.intake.catalogue import BLOCKING_CLASSES, QUALITY, RULES
from collectwatch.intake.edits import run_row_edits
from collectwatch.intake.formats import HeaderMatch, UnreadableFile, load_text_table
from collectwatch.intake.report import EditReport, collect_row_findings, write_report
from collectwatch.raw import raw_path, typed_select, write_current, write_parquet

PERSONAL_DATA_RULE = "V015"


@dataclass(frozen=True)
class IntakeResult:
    path: Path
    status: str
    submission_id: str | None
    report_path: Path | None
    report: EditReport
    duplicate_of_previous: bool = False


def _now() -> str:
    return datetime.now(CHINA_TZ).isoformat(timespec="seconds")


def _check_name(path: Path, report: EditReport, folder_uscc: str | None, settings: Settings):
    """File-level syntactic edits; returns the name's parts when the name is usable."""
    match = FILE_NAME_PATTERN.match(path.name)
    if not match:
        report.add_file_finding("S001", "file_name", path.name)
        return None
    parts = match.groupdict()
    report.submission_type, report.submitter_uscc, report.period = (
        parts["type"],
        parts["uscc"],
        parts["period"],
    )
    if parts["type"] not in SUBMISSION_TYPES:
        report.add_file_finding("S002", "file_name", parts["type"])
    if folder_uscc is not None and parts["uscc"] != folder_uscc:
        report.add_file_finding("S003", "file_name", parts["uscc"])
    if not PERIOD_PATTERN.match(parts["period"]):
        report.add_file_finding("S009", "file_name", parts["period"])
    elif parts["period"] > datetime.now(CHINA_TZ).strftime("%Y-%m"):
        report.add_file_finding("V008", "period", parts["period"])
    if path.is_symlink() or not path.is_file():
        # Never read through a link or a device into a file outside the submitter's folder.
        report.add_file_finding("S018", "file", path.name)
    elif path.stat().st_size > settings.max_file_bytes:
        report.add_file_finding("S008", "size_bytes", str(path.stat().st_size))
    return parts if not report.rule_counts else None


def _check_header(header: HeaderMatch, report: EditReport) -> bool:
    for missing in header.missing:
        report.add_file_finding("S005", missing, "")
    for extra in header.unknown:
        report.add_file_finding("S006", extra, extra)
    for column, names in header.duplicates.items():
        report.add_file_finding("S016", column, " | ".join(names))
    return header.ok


def _connect(settings: Settings) -> duckdb.DuckDBPyConnection:
    con = settings.duckdb()
    con.execute(
        f"create table regions as select region_code from "
        f"read_csv('{settings.region_seed}', all_varchar = true, header = true)"
    )
    return con


def run_edits(path: Path, settings: Settings, folder_uscc: str | None, sha256: str):
    """Every edit over one file. Returns (report, connection holding ``submission``)."""
    report = EditReport(path.name, None, None, None, sha256)
    parts = _check_name(path, report, folder_uscc, settings)
    if parts is None:
        return report, None
    con = _connect(settings)
    submission_type = SUBMISSION_TYPES[parts["type"]]
    try:
        loaded = load_text_table(con, path, submission_type, settings)
    except UnreadableFile as error:
        report.add_file_finding(error.rule_id, error.field, error.value)
        return report, con
    report.source = loaded.source
    if not _check_header(loaded.header, report):
        return report, con
    if con.execute("select count(*) from submission").fetchone()[0] == 0:
        report.add_file_finding("S004", "file", "0 rows")
        return report, con
    run_row_edits(con, submission_type, parts["period"], parts["uscc"])
    con.execute("insert into findings by name select * from format_findings")
    collect_row_findings(con, report, submission_type.key, settings.report_rows_per_rule)
    return report, con


def _outcome(report: EditReport) -> str:
    classes = {RULES[rule_id].edit_class for rule_id in report.rule_counts}
    if classes & set(BLOCKING_CLASSES):
        return lifecycle.REJECTED
    if QUALITY in classes:
        return lifecycle.NEEDS_VERIFICATION
    return lifecycle.ACCEPTED


def check_file(path: Path, settings: Settings) -> EditReport:
    """Run every edit on ``path`` without submitting anything."""
    report, con = run_edits(Path(path), settings, None, sha256_file(path))
    if con is not None:
        con.close()
    report.status = _outcome(report)
    return report


def intake_file(path: Path, settings: Settings, folder_uscc: str | None = None) -> IntakeResult:
    """Take one landed file through the submission lifecycle."""
    path = Path(path)
    settings.ensure_dirs()
    folder_uscc = folder_uscc or path.parent.name
    sha256 = sha256_file(path)
    store = lifecycle.StateStore(settings.submissions_db)
    match = FILE_NAME_PATTERN.match(path.name)
    if match:
        identical = store.find_identical(match["uscc"], match["type"], match["period"], sha256)
        if identical is not None:
            # A byte-identical resubmission is a no-op: same id, same report.
            path.unlink()
            report = EditReport(
                path.name,
                match["type"],
                match["uscc"],
                match["period"],
                sha256,
                identical.status,
                identical.submission_id,
            )
            report_path = Path(identical.report_path) if identical.report_path else None
            return IntakeResult(
                path,
                identical.status,
                identical.submission_id,
                report_path,
                report,
                duplicate_of_previous=True,
            )
    received_at = datetime.fromtimestamp(path.stat().st_mtime, CHINA_TZ).isoformat(
        timespec="seconds"
    )
    report, con = run_edits(path, settings, folder_uscc, sha256)
    try:
        return _decide(path, settings, store, report, con, received_at)
    finally:
        if con is not None:
            con.close()


def _decide(path, settings, store, report, con, received_at) -> IntakeResult:
    status = _outcome(report)
    report.status = status
    if report.submission_type not in SUBMISSION_TYPES or report.submitter_uscc is None:
        # Unnamed files cannot be registered under a key: quarantine with a report only.
        report_path = write_report(report, settings.reports_dir, f"unregistered-{report.sha256}")
        _quarantine(path, settings, report)
        return IntakeResult(path, status, None, report_path, report)
    submission = store.register(
        report.submitter_uscc,
        report.submission_type,
        report.period,
        report.sha256,
        path.name,
        path.stat().st_size,
        received_at,
    )
    report.submission_id = submission.submission_id
    report_path = write_report(report, settings.reports_dir, submission.submission_id)
    paths: dict[str, object] = {"report_path": str(report_path)}
    if status == lifecycle.REJECTED:
        _quarantine(path, settings, report)
    else:
        paths |= _load(path, settings, con, submission)
        path.unlink()
    store.decide(submission.submission_id, status, _now(), **paths)
    if status == lifecycle.ACCEPTED:
        write_current(settings)
    return IntakeResult(path, status, submission.submission_id, report_path, report)


def _load(path: Path, settings: Settings, con, submission: lifecycle.Submission) -> dict:
    """Archive the original and write the typed raw version (both atomic)."""
    archive = settings.archive_dir / f"{submission.sha256}{path.suffix}"
    if not archive.exists():
        atomic_copy(path, archive)
    target = raw_path(
        settings,
        submission.submission_type,
        submission.period,
        submission.submitter_uscc,
        submission.sequence,
    )
    write_parquet(con, typed_select(SUBMISSION_TYPES[submission.submission_type]), target)
    row_count = con.execute("select count(*) from submission").fetchone()[0]
    return {
        "archive_path": str(archive),
        "raw_path": str(target.relative_to(settings.raw_dir)),
        "row_count": row_count,
    }


def _quarantine(path: Path, settings: Settings, report: EditReport) -> None:
    """Keep a rejected file for the submitter's and regulator's follow-up, except one
    that holds personal data: PIPL says it is not kept (DESIGN Decision 11); its hash and
    masked report remain."""
    if PERSONAL_DATA_RULE in report.rule_counts:
        path.unlink()
        return
    settings.quarantine_dir.mkdir(parents=True, exist_ok=True)
    shutil.move(path, settings.quarantine_dir / f"{report.sha256}-{path.name}")


def verify(submission_id: str, settings: Settings) -> lifecycle.Submission:
    """The submitter confirms a file held by quality edits: it becomes the current version."""
    store = lifecycle.StateStore(settings.submissions_db)
    submission = store.get(submission_id)
    if submission.status != lifecycle.NEEDS_VERIFICATION:
        raise ValueError(
            f"{submission_id} is {submission.status}; only a submission that needs "
            "verification can be verified"
        )
    store.decide(submission_id, lifecycle.ACCEPTED, _now())
    write_current(settings)
    return store.get(submission_id)


def landing_files(settings: Settings) -> list[Path]:
    """Files waiting in ``landing/<USCC>/`` (hidden and partial uploads excluded)."""
    if not settings.landing_dir.exists():
        return []
    return sorted(
        path
        for path in settings.landing_dir.glob("*/*")
        if path.is_file() and not path.name.startswith(".")
    )
