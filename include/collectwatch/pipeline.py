"""The stages the DAGs run, as plain functions of the settings (testable without Airflow).

collect: intake of landed files in batches -> raw zone
plan:    which periods tonight rebuilds
build:   candidate warehouse + dbt build
audit:   export each period's publication to staging + the GX gate over those files
release: swap the warehouse in, publish each period's version, latest.json last

Values passed between stages are small JSON-able dicts (they travel as Airflow XComs).
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

from collectwatch import __version__
from collectwatch.config import CHINA_TZ, Settings
from collectwatch.files import atomic_write_bytes, file_lock
from collectwatch.intake.lifecycle import StateStore
from collectwatch.intake.process import IntakeSession, landing_files
from collectwatch.intake.registry import REGISTRY_TYPE
from collectwatch.publish import export_period, latest, latest_version_dir, publish_period
from collectwatch.warehouse import create_candidate, new_run_id, run_dbt_build, swap_in

# A mapped intake task takes a batch of files: each task instance costs ~0.1 s under
# dag.test() and seconds under a real executor, and a national month is ~12,000 files.
BATCH_FILES = 300
BATCH_BYTES = 2 * 1024**3


class GateFailed(RuntimeError):
    """The gate blocked publication; the candidate and reports are kept."""


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
    report."""
    with IntakeSession(settings) as session:
        results = [session.intake(Path(path)) for path in paths if Path(path).exists()]
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
    year, month = today.year, today.month - 1
    if month == 0:
        year, month = year - 1, 12
    return f"{year:04d}-{month:02d}"


def current_inputs(settings: Settings) -> dict[str, dict[str, str]]:
    """Current accepted submissions by period: submission id -> file hash."""
    by_period: dict[str, dict[str, str]] = {}
    for submission in StateStore(settings.submissions_db).current():
        by_period.setdefault(submission.period, {})[submission.submission_id] = submission.sha256
    return by_period


def input_hashes(settings: Settings, period: str) -> dict[str, str]:
    """The current accepted submissions of a period: submission id -> file hash."""
    return current_inputs(settings).get(period, {})


def plan_periods(settings: Settings, requested: list[str] | None, now: datetime) -> list[str]:
    """The requested periods, or: the previous month plus every period whose current
    submissions changed since its latest publication, oldest first."""
    if requested:
        return sorted(set(requested))
    periods = {previous_month(now)}
    for period, inputs in current_inputs(settings).items():
        published = latest_version_dir(settings, period)
        if published is None:
            periods.add(period)
            continue
        manifest = json.loads((published / "manifest.json").read_text())
        if manifest.get("input_submissions") != inputs:
            periods.add(period)
    return sorted(periods)


def build(
    settings: Settings, periods: list[str], as_of: str | None = None, full_refresh: bool = False
) -> dict:
    run_id = new_run_id()
    as_of = as_of or datetime.now(CHINA_TZ).isoformat(timespec="seconds")
    candidate = create_candidate(settings, run_id)
    result = run_dbt_build(settings, candidate, periods, as_of, run_id, full_refresh)
    return asdict(result)


def audit(settings: Settings, build_result: dict) -> dict:
    """Export each period to staging and run the gate over exactly those files."""
    from collectwatch.gate import run_gate

    candidate = Path(build_result["candidate"])
    report_dir = candidate.with_suffix("")  # candidates/<run_id>/ beside the candidate
    staged = {
        period: str(export_period(settings, candidate, period, build_result["run_id"]))
        for period in build_result["periods"]
    }
    outcomes = {}
    for period, folder in staged.items():
        previous = latest_version_dir(settings, period)
        result = run_gate(Path(folder), [period], report_dir / period, previous)
        outcomes[period] = {
            "passed": result.passed,
            "blocking_failures": len(result.blocking_failures),
            "warnings": len(result.warnings),
            "report": str(result.report_json),
        }
    audit_result = {**build_result, "staged": staged, "gate": outcomes}
    failed = [period for period, outcome in outcomes.items() if not outcome["passed"]]
    if failed:
        # Keep what was audited for inspection beside the candidate, out of publish/.
        for period, folder in staged.items():
            kept = report_dir / period / "publication"
            shutil.move(folder, kept)
            audit_result["staged"][period] = str(kept)
        alert(settings, "gate_failed", audit_result)
        raise GateFailed(
            f"gate blocked publication of {failed}; reports: "
            + ", ".join(outcomes[p]["report"] for p in failed)
            + f"; candidate kept at {candidate}"
        )
    return audit_result


def release(settings: Settings, audit_result: dict) -> dict:
    """Swap the audited candidate in, then publish each period (latest.json last)."""
    with file_lock(settings.warehouse_path.parent / ".release.lock"):
        swap_in(settings, Path(audit_result["candidate"]))
        published = {}
        for period, staged in audit_result["staged"].items():
            metadata = {
                "run_id": audit_result["run_id"],
                "as_of": audit_result["as_of"],
                "dbt_invocation_id": audit_result["invocation_id"],
                "gate": audit_result["gate"][period],
                "code_version": __version__,
                "input_submissions": input_hashes(settings, period),
            }
            result = publish_period(settings, period, Path(staged), metadata)
            published[period] = {
                "version": result.version,
                "path": str(result.path) if result.path else None,
                "latest": latest(settings, period),
            }
    return {"warehouse": str(settings.warehouse_path), "published": published}


def alert(settings: Settings, kind: str, details: dict) -> Path:
    """A local alert file operators (and monitoring) pick up."""
    stamp = datetime.now(CHINA_TZ).strftime("%Y%m%dT%H%M%S%f")
    path = settings.alerts_dir / f"{stamp}-{kind}.json"
    atomic_write_bytes(path, json.dumps({"kind": kind, **details}, indent=2, default=str).encode())
    return path
