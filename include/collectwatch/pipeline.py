"""The stages the DAGs run, as plain functions of the settings (testable without Airflow).

collect: intake of landed files in batches -> raw zone
recover: complete an interrupted release; remove what interrupted runs left behind
plan:    which periods tonight rebuilds
build:   candidate warehouse + dbt build
audit:   export each period's publication to staging + the GX gate over those files
release: versions renamed into place, warehouse swapped in, latest.json last

Values passed between stages are small JSON-able dicts (they travel as Airflow XComs).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path

from collectwatch import __version__
from collectwatch.alerts import notify
from collectwatch.config import CHINA_TZ, Settings
from collectwatch.contracts import PERIOD_PATTERN, shift_period
from collectwatch.faults import fault_point
from collectwatch.files import atomic_write_bytes, file_lock, remove_path
from collectwatch.intake.lifecycle import StateStore
from collectwatch.intake.process import IntakeSession, landing_files
from collectwatch.intake.registry import REGISTRY_TYPE
from collectwatch.publish import (
    PreparedVersion,
    json_bytes,
    latest,
    latest_manifest,
    move_into_place,
    point_latest,
    prepare_version,
    stage_period,
)
from collectwatch.raw import write_current
from collectwatch.rebuild import partial_build, periods_sharing_complaints
from collectwatch.warehouse import (
    BUILDING,
    clear_interrupted_build,
    create_candidate,
    new_run_id,
    run_dbt_build,
    run_started_at,
    swap_in,
)

# A mapped intake task takes a batch of files: each task instance costs ~0.1 s under
# dag.test() and seconds under a real executor, and a national month is ~12,000 files.
BATCH_FILES = 300
# A batch's clean files are held typed in memory while it is cut into raw versions (see
# intake.clean.CleanBatch): 1 GiB of CSV is ~1.5 GB there, and two batches run at once.
BATCH_BYTES = 1024**3


# Written beside a candidate the gate blocked: kept for inspection until it ages out.
KEPT_MARKER = "kept.json"


class GateFailed(RuntimeError):
    """The gate blocked publication; the candidate and reports are kept."""

    def __init__(self, message: str, alert_path: Path):
        super().__init__(message)
        self.alert_path = alert_path  # the alert already raised (see alerts.on_task_failure)


def landing_batches(settings: Settings) -> list[list[str]]:
    """Landed files grouped by submission type into batches of bounded count and size;
    the registry's batch comes first, as it decides who may submit the others."""
    by_type: dict[str, list[Path]] = {}
    for path in landing_files(settings):
        by_type.setdefault(path.name.split("__")[0], []).append(path)
    batches: list[list[str]] = []
    for submission_type in sorted(by_type, key=lambda name: name != REGISTRY_TYPE):
        batch: list[str] = []
        size = 0
        for path in by_type[submission_type]:
            if batch and (len(batch) >= BATCH_FILES or size + path.stat().st_size > BATCH_BYTES):
                batches.append(batch)
                batch, size = [], 0
            batch.append(str(path))
            size += path.stat().st_size
        batches.append(batch)
    return batches


def intake_registry(settings: Settings) -> dict:
    """Intake the landed registry files before any other file of the same run (the
    collect DAG runs this before it maps over the other batches, which may run at once)."""
    registry = [
        str(path) for path in landing_files(settings) if path.name.startswith(REGISTRY_TYPE + "__")
    ]
    return intake_batch(settings, registry)


def intake_batch(settings: Settings, paths: list[str]) -> dict:
    """Intake every file of a batch over one connection; each gets its own status and
    report. Batches run side by side (``intake_parallel_batches``), each on
    ``intake_duckdb_threads`` DuckDB threads. A batch does not rewrite the list of current
    versions (``raw.write_current``, which reads the whole state store: ~1 s per 16,000
    submissions, and a night has ~55 batches over a store that grows every month): the
    DAG's refresh_current_versions does once all have run, and every build does first."""
    with IntakeSession(
        settings, threads=settings.intake_duckdb_threads, list_current=False
    ) as session:
        results = session.intake_many([Path(path) for path in paths])
    return {
        "statuses": dict(Counter(result.status for result in results)),
        "submissions": [
            {"file": result.path.name, "status": result.status,
             "submission_id": result.submission_id,
             "report": str(result.report_path) if result.report_path else None}
            for result in results
        ],
    }  # fmt: skip


def previous_month(today: datetime) -> str:
    return shift_period(f"{today.year:04d}-{today.month:02d}", -1)


def periods_between(first: str, last: str) -> list[str]:
    """Every YYYY-MM period from ``first`` to ``last``, both included (a backfill range)."""
    for period in (first, last):
        if not PERIOD_PATTERN.match(period):
            raise ValueError(f"period {period!r} is not YYYY-MM")
    if first > last:
        raise ValueError(f"--from {first} is after --to {last}")
    periods = [first]
    while periods[-1] < last:
        periods.append(shift_period(periods[-1], 1))
    return periods


# A period's figures read the month before (flow rates, month-on-month changes, the previous
# share, whether last month's cell was published) and the same month a year before
# (year-on-year changes): when a period's inputs change, these later periods change too.
DEPENDENT_PERIOD_OFFSETS = (1, 12)


def current_inputs(settings: Settings) -> dict[str, dict[str, str]]:
    """Current accepted submissions by period: submission id -> file hash."""
    by_period: dict[str, dict[str, str]] = {}
    for submission in StateStore(settings.submissions_db).current():
        by_period.setdefault(submission.period, {})[submission.submission_id] = submission.sha256
    return by_period


def plan_periods(settings: Settings, requested: list[str] | None, now: datetime) -> list[str]:
    """The requested periods, or: the previous month, every period whose current
    submissions changed since its latest publication, every published period holding a
    copy of a complaint with a copy in a changed one (collectwatch.rebuild), and every
    published period whose figures read one of those (the month after, the same month a
    year after), oldest first."""
    if requested:
        return sorted(set(requested))
    changed = {
        period
        for period, inputs in current_inputs(settings).items()
        if (manifest := latest_manifest(settings, period)) is None
        or manifest.get("input_submissions") != inputs
    }
    changed |= periods_sharing_complaints(settings, changed)
    dependents = {
        later
        for period in changed
        for later in (shift_period(period, months) for months in DEPENDENT_PERIOD_OFFSETS)
        if latest(settings, later) is not None
    }
    return sorted({previous_month(now)} | changed | dependents)


# --- recovery and housekeeping -----------------------------------------------------------


def apply_release(settings: Settings, journal: dict) -> None:
    """Rename the versions into place, swap the warehouse in, point latest.json at the new
    versions, then drop the journal. Every step is idempotent: a release interrupted at
    any point is completed by running this again from the journal."""
    versions = [PreparedVersion.from_dict(body) for body in journal["versions"]]
    for prepared in versions:
        move_into_place(prepared)
    fault_point("release.between_renames")
    candidate = Path(journal["candidate"])
    if candidate.exists():  # not yet renamed over the published warehouse
        swap_in(settings, candidate)
    for prepared in versions:
        point_latest(settings, prepared)
    settings.release_journal.unlink()


def _run_id_of(path: Path) -> str:
    """candidates/<run_id>.duckdb, <run_id>.duckdb.wal, <run_id>/, .<run_id>.duckdb.<x>.tmp"""
    return path.name.lstrip(".").split(".")[0]


def _is_older(run_id: str, path: Path, cutoff: datetime) -> bool:
    started = run_started_at(run_id)
    if started is None:
        started = datetime.fromtimestamp(path.stat().st_mtime, CHINA_TZ)
    return started < cutoff


def clean_candidates(settings: Settings, now: datetime, keep: set[str]) -> list[Path]:
    """Remove candidate databases of interrupted runs at once, and every run's folder
    (gate reports; a blocked candidate kept for inspection) once older than the retention.
    Runs in ``keep`` (the current run, a pending release) are never touched."""
    if not settings.candidates_dir.exists():
        return []
    cutoff = now - timedelta(days=settings.candidate_retention_days)
    removed = []
    for path in sorted(settings.candidates_dir.iterdir()):
        run_id = _run_id_of(path)
        if run_id in keep or path.name.startswith(BUILDING):  # see clear_interrupted_build
            continue
        kept = (settings.candidates_dir / run_id / KEPT_MARKER).exists()
        interrupted_database = not path.is_dir() and not kept
        if interrupted_database or _is_older(run_id, path, cutoff):
            remove_path(path)
            removed.append(path)
    return removed


def clean_stale_files(settings: Settings, now: datetime) -> list[Path]:
    """Staging folders and temporary files of interrupted runs (no run is in flight when
    this runs: nightly_supervision has max_active_runs=1), and dbt state past retention."""
    stale = [
        *settings.publish_dir.glob("*/.staging-*"),
        *settings.publish_dir.glob("*/.*.tmp"),
        *settings.warehouse_path.parent.glob(".*.tmp"),
    ]
    cutoff = now - timedelta(days=settings.candidate_retention_days)
    dbt_state = settings.state_dir / "dbt"
    if dbt_state.exists():
        stale += [p for p in dbt_state.iterdir() if _is_older(p.name, p, cutoff)]
    for path in stale:
        remove_path(path)
    return stale


def recover(settings: Settings, now: datetime | None = None) -> dict:
    """Before a night builds: finish a release a crash interrupted (it had passed the
    gate), then clear what interrupted runs left behind and what aged out."""
    now = now or datetime.now(CHINA_TZ)
    settings.ensure_dirs()
    completed = None
    with file_lock(settings.warehouse_path.parent / ".release.lock"):
        if settings.release_journal.exists():
            journal = json.loads(settings.release_journal.read_text())
            apply_release(settings, journal)
            completed = journal["run_id"]
    removed = (
        clear_interrupted_build(settings)
        + clean_stale_files(settings, now)
        + clean_candidates(settings, now, keep=set())
    )
    return {"completed_release": completed, "removed": sorted(str(p) for p in removed)}


# --- the night -------------------------------------------------------------------------


def build(
    settings: Settings, periods: list[str], as_of: str | None = None, full_refresh: bool = False
) -> dict:
    started_at = datetime.now(CHINA_TZ)
    run_id = new_run_id()
    as_of = as_of or started_at.isoformat(timespec="seconds")
    # The intake batches do not list their files (intake_batch): list every decision so far.
    write_current(settings)
    # The inputs dbt is about to read: the manifest records exactly these.
    inputs = current_inputs(settings)
    partial = None if full_refresh else partial_build(settings, periods, as_of)
    candidate = create_candidate(settings, run_id)
    result = run_dbt_build(settings, candidate, periods, as_of, run_id, full_refresh, partial)
    return {
        **asdict(result),
        "started_at": started_at.isoformat(timespec="microseconds"),
        "input_submissions": {period: inputs.get(period, {}) for period in periods},
    }


def _keep_for_inspection(
    settings: Settings, audit_result: dict, report_dir: Path, failed: list[str]
) -> Path:
    """Move what was audited beside the candidate, out of publish/, and alert."""
    for period, folder in audit_result["staged"].items():
        kept = report_dir / period / "publication"
        shutil.move(folder, kept)
        audit_result["staged"][period] = str(kept)
    atomic_write_bytes(report_dir / KEPT_MARKER, json_bytes({"run_id": audit_result["run_id"]}))
    details = {key: value for key, value in audit_result.items() if key != "input_submissions"}
    return notify(settings, "gate_failed", {"summary": f"gate blocked {failed}", **details})


def export(settings: Settings, build_result: dict) -> dict:
    """Export each period's publication from the candidate into a staging folder."""
    candidate = Path(build_result["candidate"])
    staged = {
        period: str(stage_period(settings, candidate, period, build_result["run_id"]))
        for period in build_result["periods"]
    }
    return {**build_result, "staged": staged}


def audit(settings: Settings, build_result: dict) -> dict:
    """Export each period to staging and run the gate over exactly those files."""
    return gate(settings, export(settings, build_result))


def gate(settings: Settings, export_result: dict) -> dict:
    """The GX gate over each staged period; a blocked period keeps the candidate and
    alerts (GateFailed)."""
    from collectwatch.gate import GateJob, run_gates

    candidate = Path(export_result["candidate"])
    report_dir = candidate.with_suffix("")  # candidates/<run_id>/ beside the candidate
    fault_point("audit.gate")
    jobs = {}
    for period, folder in export_result["staged"].items():
        previous = latest(settings, period)
        jobs[period] = GateJob(
            staged_dir=Path(folder),
            period=period,
            report_dir=report_dir / period,
            previous_dir=settings.publish_dir / period / previous["path"] if previous else None,
            warehouse=candidate,
            coverage_floor=settings.coverage_floor,
        )
    outcomes = {
        period: {
            "passed": result.passed,
            "blocking_failures": len(result.blocking_failures),
            "warnings": len(result.warnings),
            "report": str(result.report_json),
            "report_html": str(result.report_html),
        }
        for period, result in run_gates(jobs, settings.gate_parallel_periods).items()
    }
    audit_result = {**export_result, "gate": outcomes}
    failed = [period for period, outcome in outcomes.items() if not outcome["passed"]]
    if failed:
        alert_path = _keep_for_inspection(settings, audit_result, report_dir, failed)
        raise GateFailed(
            f"gate blocked publication of {failed}; reports: "
            + ", ".join(outcomes[p]["report_html"] for p in failed)
            + f"; candidate kept at {candidate}; alert {alert_path}",
            alert_path,
        )
    return audit_result


def release(settings: Settings, audit_result: dict) -> dict:
    """Prepare each period's version, journal the release, then apply it: versions renamed
    into place, the warehouse swapped in, latest.json last."""
    with file_lock(settings.warehouse_path.parent / ".release.lock"):
        versions = []
        for period, staged in audit_result["staged"].items():
            metadata = {
                "run_id": audit_result["run_id"],
                "as_of": audit_result["as_of"],
                "dbt_invocation_id": audit_result["invocation_id"],
                "dbt_project_sha256": audit_result["dbt_project_sha256"],
                "dbt_selection": audit_result["selection"],
                "dbt_changed_submitters": audit_result["changed_submitters"],
                "dbt_whole_periods": audit_result["whole_periods"],
                "run_started_at": audit_result["started_at"],
                "gate": audit_result["gate"][period],
                "code_version": __version__,
                "input_submissions": audit_result["input_submissions"].get(period, {}),
            }
            prepared = prepare_version(settings, period, Path(staged), metadata)
            if prepared is not None:
                versions.append(prepared)
        fault_point("release.publish")
        journal = {
            "run_id": audit_result["run_id"],
            "candidate": audit_result["candidate"],
            "versions": [prepared.as_dict() for prepared in versions],
        }
        atomic_write_bytes(settings.release_journal, json_bytes(journal))
        apply_release(settings, journal)
    return {
        "warehouse": str(settings.warehouse_path),
        "published": {
            period: {"new_version": any(v.period == period for v in versions),
                     "latest": latest(settings, period)}
            for period in audit_result["staged"]
        },
    }  # fmt: skip
