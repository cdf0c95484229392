"""Intake of one submission file: edits, lifecycle, archive, raw zone, report.

A file is either fully accepted (archived by content hash, typed Parquet in the raw zone,
the previous version superseded) or not loaded at all. ``check_file`` runs the same edits
without touching any state — the submitter's pre-flight.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.contracts import FILE_NAME_PATTERN, PERIOD_PATTERN, SUBMISSION_TYPES
from collectwatch.files import FileDigest, atomic_move, digest_file
from collectwatch.intake import lifecycle
from collectwatch.intake.catalogue import BLOCKING_CLASSES, QUALITY, RULES
from collectwatch.intake.checked import CheckedFile
from collectwatch.intake.clean import CleanBatch, CleanFile, clean_pass
from collectwatch.intake.crosschecks import Context, due_at, run_cross_edits
from collectwatch.intake.edits import PERSONAL_DATA_RULES, run_row_edits
from collectwatch.intake.formats import (
    CsvLayout,
    HeaderMatch,
    UnreadableFile,
    csv_layout,
    load_text_table,
)
from collectwatch.intake.registry import REGISTRY_TYPE, Registry
from collectwatch.intake.report import (
    EditReport,
    add_listed_findings,
    collect_row_findings,
    write_report,
)
from collectwatch.raw import raw_path, typed_select, write_current, write_parquet


@dataclass(frozen=True)
class IntakeResult:
    path: Path
    status: str
    submission_id: str | None
    report_path: Path | None
    report: EditReport
    duplicate_of_previous: bool = False


def _now() -> str:
    """A decision's time, to the microsecond: a night's partial build rebuilds what was
    decided after the last build started (collectwatch.rebuild), often the same second."""
    return datetime.now(CHINA_TZ).isoformat(timespec="microseconds")


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


def _outcome(report: EditReport) -> str:
    classes = {RULES[rule_id].edit_class for rule_id in report.rule_counts}
    if classes & set(BLOCKING_CLASSES):
        return lifecycle.REJECTED
    if QUALITY in classes:
        return lifecycle.NEEDS_VERIFICATION
    return lifecycle.ACCEPTED


def _identity(path: Path) -> tuple:
    status = path.stat()
    return status.st_ino, status.st_size, status.st_mtime_ns


def _received_at(path: Path) -> str:
    return datetime.fromtimestamp(path.stat().st_mtime, CHINA_TZ).isoformat(timespec="seconds")


class IntakeSession:
    """Intake of many files over one DuckDB connection: the region seed and the registry
    are loaded once, not per file (a batch of small files costs little more than its
    reads). Each file still gets its own status, report and raw version; the list of
    current versions is rewritten once when the session closes (unless ``list_current`` is
    false).

    ``record=False`` is the pre-flight check: nothing is created, moved or registered.
    ``threads``: DuckDB's threads, ``duckdb_threads`` unless given (a session alone, as
    the CLI's, uses them all; the pipeline's batches run side by side with fewer each).
    ``list_current=False``: the caller lists the current versions once after all its
    sessions (``pipeline.intake_batch``).
    """

    def __init__(
        self,
        settings: Settings,
        record: bool = True,
        threads: int | None = None,
        list_current: bool = True,
    ):
        self.settings = settings
        self.record = record
        self.list_current = list_current
        if record:
            settings.ensure_dirs()
        exists = record or settings.submissions_db.exists()
        self.store = lifecycle.StateStore(settings.submissions_db) if exists else None
        self.con = settings.duckdb(threads=threads)
        self.con.execute(
            f"create table regions as select region_code from "
            f"read_csv('{settings.region_seed}', all_varchar = true, header = true)"
        )
        self.registry = Registry(self.con, settings, self.store)
        self.decided_any = False
        self.clean: CleanFile | None = None
        self.checked: CheckedFile | None = None  # the current file's DuckDB objects
        # Clean-path batches (see ``intake_many``): a planned file's group, each group's
        # files and layout, and the batches read so far.
        self.planned: dict[str, tuple] = {}
        self.groups: dict[tuple, tuple[dict[str, int], CsvLayout]] = {}
        # path -> (its digest, identity of the file read while planning)
        self.digests: dict[str, tuple[FileDigest, tuple]] = {}
        self.batches: dict[tuple, CleanBatch] = {}

    def __enter__(self) -> IntakeSession:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._discard_clean_file()
        self._forget_batches()
        self.con.close()
        if self.store is not None:
            self.store.close()
        if self.decided_any and self.list_current:
            # Every decision changes the submission log (coverage counts rejections too),
            # not only the accepted ones that change the current versions.
            write_current(self.settings)
            self.decided_any = False

    def run_edits(self, path: Path, folder_uscc: str | None, digest: FileDigest, received_at: str):
        """Every edit over one file; True when it was read as records of the contract."""
        report = EditReport(path.name, None, None, None, digest.sha256)
        parts = _check_name(path, report, folder_uscc, self.settings)
        if parts is None or not self._permitted(parts, report, received_at):
            return report, False
        submission_type = SUBMISSION_TYPES[parts["type"]]
        self._discard_clean_file()
        self.clean = self._clean_file(path, submission_type, parts, digest.ascii_only)
        if self.clean is not None:
            report.source = self.clean.source
            self.checked = CheckedFile(self.con, self.clean.typed_path)
        elif self._full_row_edits(path, submission_type, parts, report):
            self.checked = CheckedFile(self.con)
        else:
            return report, False
        run_cross_edits(self.con, self._context(parts))
        first_row_finding = len(report.findings)
        if self.checked.may_have_findings:
            self.checked.open_submission()  # the listing shows each finding's key
            collect_row_findings(
                self.con, report, submission_type.key, self.settings.report_rows_per_rule
            )
        if self.checked.listed:
            add_listed_findings(report, self.checked.listed, first_row_finding)
        return report, True

    def _full_row_edits(self, path: Path, submission_type, parts: dict, report: EditReport):
        """Read the file into table ``submission`` and list every row finding; False when
        the file cannot be read as rows of the contract."""
        try:
            loaded = load_text_table(self.con, path, submission_type, self.settings)
        except UnreadableFile as error:
            report.add_file_finding(error.rule_id, error.field, error.value)
            return False
        report.source = loaded.source
        if not _check_header(loaded.header, report):
            return False
        if self.con.execute("select count(*) from submission").fetchone()[0] == 0:
            report.add_file_finding("S004", "file", "0 rows")
            return False
        run_row_edits(self.con, submission_type, parts["period"], parts["uscc"])
        self.con.execute("insert into findings by name select * from format_findings")
        return True

    def _clean_file(
        self, path: Path, submission_type, parts: dict, ascii_only: bool
    ) -> CleanFile | None:
        """The clean path's typed file: cut from the file's batch when it has one, else
        read alone."""
        batch = self._batch_of(path, parts["period"])
        if batch is not None:
            return batch.take(path)
        return clean_pass(
            self.con,
            path,
            submission_type,
            parts["period"],
            parts["uscc"],
            self.settings,
            ascii_only,
        )

    def _batch_of(self, path: Path, period: str) -> CleanBatch | None:
        """The read batch with a verdict on ``path`` (read at the first file that asks)."""
        key = self.planned.get(str(path))
        if key is None or self._planned_digest(path) is None:
            return None
        if key not in self.batches:
            lines, layout = self.groups[key]
            self.registry.fill_in_effect(period)
            self.batches[key] = CleanBatch(
                self.con,
                lines,
                layout,
                SUBMISSION_TYPES[key[0]],
                period,
                self.settings,
                self.store,
            )
        batch = self.batches[key]
        return batch if batch.covers(path) else None

    def _plan_batches(self, paths: list[Path]) -> None:
        """Group the CSV files that may take the clean path by type, period and layout;
        groups of two or more files are read as one batch. A file whose name or place
        is wrong is left out (its own edits report it), as is the registry, which changes
        what the other files are checked against."""
        for path in paths:
            # The file-level edits on a report of their own: a file any of them refuses
            # is read alone, and its own intake reports it.
            parts = _check_name(
                path, EditReport(path.name, None, None, None, None), path.parent.name, self.settings
            )
            if (
                parts is None
                or parts["type"] == REGISTRY_TYPE
                or path.suffix.lower() != ".csv"
                or path.stat().st_size == 0
            ):
                continue
            layout = csv_layout(path, SUBMISSION_TYPES[parts["type"]])
            if layout is None:
                continue
            identity = _identity(path)
            digest = digest_file(path, count_lines=True)
            self.digests[str(path)] = (digest, identity)
            # ASCII files and the others are read apart: only the others need the
            # full-width and Unicode white-space guards (formats._normalised).
            layout = replace(layout, ascii_only=digest.ascii_only)
            key = (parts["type"], parts["period"], layout.cells, layout.encoding, digest.ascii_only)
            self.groups.setdefault(key, ({}, layout))[0][str(path)] = digest.lines
        for key, (grouped, _) in list(self.groups.items()):
            if len(grouped) < 2:
                del self.groups[key]
                continue
            self.planned |= {str(path): key for path in grouped}

    def _planned_digest(self, path: Path) -> FileDigest | None:
        """The digest read while planning, unless the file has been replaced or changed
        since (then neither it nor the batch's verdict is used)."""
        digest, identity = self.digests.get(str(path), (None, None))
        return digest if identity is not None and identity == _identity(path) else None

    def _forget_batches(self) -> None:
        for batch in self.batches.values():
            batch.close(self.con)
        self.planned, self.groups, self.batches, self.digests = {}, {}, {}, {}

    def _discard_clean_file(self) -> None:
        """Delete the clean path's typed Parquet of the previous file unless it was moved
        into the raw zone (a pre-flight check or a file that was not accepted)."""
        if self.clean is not None:
            self.checked.close_view()
            self.clean.typed_path.unlink(missing_ok=True)
            self.clean = None

    def _permitted(self, parts: dict, report: EditReport, received_at: str) -> bool:
        """S010 from the registry in effect; flags M003 (no registry) and M002 (late)."""
        self.permission = self.registry.permission(parts["uscc"], parts["type"], parts["period"])
        if self.permission.refusal:
            report.add_file_finding("S010", "submitter_uscc", self.permission.refusal)
            return False
        if self.permission.role is None:
            report.add_file_finding("M003", "submitter_uscc", parts["uscc"])
        due = due_at(self.settings, parts["period"])
        if received_at > due:
            report.add_file_finding("M002", "received_at", f"{received_at} (due {due})")
        return True

    def _context(self, parts: dict) -> Context:
        return Context(
            self.settings,
            self.store,
            parts["type"],
            parts["period"],
            parts["uscc"],
            self.permission.role,
            self.permission.registry_period is not None,
            self.checked,
            self.clean.batch if self.clean is not None else None,
        )

    def check(self, path: Path) -> EditReport:
        """Run every edit on ``path`` without submitting anything."""
        path = Path(path)
        now = datetime.now(CHINA_TZ).isoformat(timespec="seconds")
        report, _ = self.run_edits(path, None, digest_file(path), now)
        report.status = _outcome(report)
        return report

    def intake(self, path: Path, folder_uscc: str | None = None) -> IntakeResult:
        """Take one landed file through the submission lifecycle."""
        path = Path(path)
        folder_uscc = folder_uscc or path.parent.name
        digest = self._planned_digest(path) or digest_file(path)
        repeat = self._identical(path, digest.sha256, folder_uscc)
        if repeat is not None:
            return repeat
        received_at = _received_at(path)
        report, _ = self.run_edits(path, folder_uscc, digest, received_at)
        result = self._decide(path, report, received_at)
        if result.status == lifecycle.ACCEPTED and report.submission_type == REGISTRY_TYPE:
            self.registry.load()
            self._forget_batches()  # their verdicts used the registry before this one
        return result

    def intake_many(self, paths: list[Path]) -> list[IntakeResult]:
        """Take many landed files through the lifecycle, one after the other, as ``intake``
        does; the clean CSV files of one type, period and layout are read by one query
        (``CleanBatch``) instead of one each. Every file gets its own status and report."""
        paths = [Path(path) for path in paths]
        self._plan_batches(paths)
        try:
            return [self.intake(path) for path in paths if path.exists()]
        finally:
            self._forget_batches()

    def _identical(self, path: Path, sha256: str, folder_uscc: str) -> IntakeResult | None:
        """A byte-identical resubmission is a no-op: same id, same report. Only for the
        submitter's own names: a file named after another institution must never be
        answered with that institution's submission (it gets S003 instead)."""
        match = FILE_NAME_PATTERN.match(path.name)
        if not match or match["uscc"] != folder_uscc:
            return None
        identical = self.store.find_identical(match["uscc"], match["type"], match["period"], sha256)
        if identical is None:
            return None
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

    def _decide(self, path: Path, report: EditReport, received_at: str) -> IntakeResult:
        status = _outcome(report)
        report.status = status
        settings, store = self.settings, self.store
        if report.submission_type not in SUBMISSION_TYPES or report.submitter_uscc is None:
            # Unnamed files cannot be registered under a key: quarantine with a report only.
            report_path = write_report(
                report, settings.reports_dir, f"unregistered-{report.sha256}"
            )
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
            if self.clean is not None:
                self.checked.close_view()  # the view reads the file being moved
            paths |= _load(path, settings, self.con, submission, self.clean)
            path.unlink(missing_ok=True)  # already archived under this content hash
        store.decide(submission.submission_id, status, _now(), **paths)
        self.decided_any = True
        return IntakeResult(path, status, submission.submission_id, report_path, report)


def check_file(path: Path, settings: Settings) -> EditReport:
    """Run every edit on ``path`` without submitting anything."""
    with IntakeSession(settings, record=False) as session:
        return session.check(path)


def intake_file(path: Path, settings: Settings, folder_uscc: str | None = None) -> IntakeResult:
    """Take one landed file through the submission lifecycle."""
    with IntakeSession(settings) as session:
        return session.intake(path, folder_uscc)


def _load(
    path: Path,
    settings: Settings,
    con,
    submission: lifecycle.Submission,
    clean: CleanFile | None,
) -> dict:
    """Write the typed raw version and archive the original (both atomic): the clean
    path's Parquet is moved into place, otherwise table ``submission`` is written. The
    landed file itself becomes the archived original (a rename, not a copy of gigabytes),
    last, so a failure before it leaves the file in the landing folder for a retry."""
    target = raw_path(
        settings,
        submission.submission_type,
        submission.period,
        submission.submitter_uscc,
        submission.sequence,
    )
    if clean is not None:
        row_count = clean.row_count
        atomic_move(clean.typed_path, target)
    else:
        row_count = con.execute("select count(*) from submission").fetchone()[0]
        write_parquet(con, typed_select(SUBMISSION_TYPES[submission.submission_type]), target)
    archive = settings.archive_dir / f"{submission.sha256}{path.suffix}"
    if not archive.exists():
        atomic_move(path, archive)
    return {
        "archive_path": str(archive),
        "raw_path": str(target.relative_to(settings.raw_dir)),
        "row_count": row_count,
    }


def _quarantine(path: Path, settings: Settings, report: EditReport) -> None:
    """Keep a rejected file for the submitter's and regulator's follow-up, except one
    that holds personal data: PIPL says it is not kept (DESIGN Decision 11); its hash and
    masked report remain."""
    if set(PERSONAL_DATA_RULES) & set(report.rule_counts):
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
