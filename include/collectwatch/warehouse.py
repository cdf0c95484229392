"""The candidate warehouse: copied from the published one, built by dbt, swapped in.

Write-audit-publish: a night never writes the published file. It copies it (history of
incremental models included) to ``warehouse/candidates/<run_id>.duckdb``, runs ``dbt build``
there as its own process (dbtRunner keeps file locks, dbt-core #11980), and only after the
gate passes is the candidate renamed over the published file — an atomic swap, so analysts
reading the old file keep reading it and new readers open the new one.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from collectwatch.config import CHINA_TZ, NO_TELEMETRY_ENV, Settings
from collectwatch.faults import fault_point
from collectwatch.files import atomic_copy, commit_file, file_lock, remove_path

RUN_ID_CLOCK = "%Y%m%dT%H%M%S"


class DbtBuildFailed(RuntimeError):
    """dbt build returned non-zero; the message carries the failing nodes."""


@dataclass(frozen=True)
class PartialBuild:
    """What a partial build rebuilds (collectwatch.rebuild): dbt node selectors (None: every
    node), per submission type the submitters with a new submission of the run's periods —
    per-submitter models rebuild only their rows (dbt macro rebuilt_slice) — and the periods
    rebuilt whole, every submitter's rows, beside those."""

    selectors: list[str] | None
    changed_submitters: dict[str, list[str]]
    whole_periods: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Build:
    run_id: str
    candidate: str
    periods: list[str]
    as_of: str
    invocation_id: str
    dbt_log: str
    dbt_project_sha256: str
    # The nodes built: None for all of them, else dbt selectors (see collectwatch.rebuild);
    # the submitters whose rows of per-submitter models were rebuilt (None: all), but in
    # the periods rebuilt whole.
    selection: list[str] | None = None
    changed_submitters: dict[str, list[str]] | None = None
    whole_periods: list[str] | None = None


# The project files whose change can change a built row.
PROJECT_PARTS = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "snapshots")


def dbt_project_fingerprint(settings: Settings) -> str:
    """SHA-256 over the project's model-defining files and the settings dbt reads."""
    return project_fingerprint(
        settings.dbt_project_dir, f"due_day={settings.due_day_of_next_month}"
    )


def project_fingerprint(root: Path, settings_text: str) -> str:
    digest = hashlib.sha256(f"{settings_text}\n".encode())
    files = sorted(
        path
        for part in PROJECT_PARTS
        for path in ([root / part] if (root / part).is_file() else (root / part).rglob("*"))
        if path.is_file()
    )
    for path in files:
        digest.update(f"{path.relative_to(root)}\n".encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def new_run_id() -> str:
    """Sortable by start time (Beijing), unique by its random tail."""
    return datetime.now(CHINA_TZ).strftime(RUN_ID_CLOCK) + "-" + uuid.uuid4().hex[:8]


def run_started_at(run_id: str) -> datetime | None:
    """When a run started, read back from its id (None for a name that is not a run id)."""
    try:
        return datetime.strptime(run_id.split("-")[0], RUN_ID_CLOCK).replace(tzinfo=CHINA_TZ)
    except ValueError:
        return None


def create_candidate(settings: Settings, run_id: str) -> Path:
    """A private copy of the published warehouse (or a new empty file on the first run)."""
    candidate = settings.candidates_dir / f"{run_id}.duckdb"
    candidate.parent.mkdir(parents=True, exist_ok=True)
    if settings.warehouse_path.exists():
        # Not flushed to disk here (a second or more for a national warehouse): a crash
        # loses only a candidate that recover() deletes, and swap_in flushes the whole
        # file before it is renamed over the published one.
        atomic_copy(settings.warehouse_path, candidate, durable=False)
    return candidate


def dbt_environment(settings: Settings, candidate: Path) -> dict[str, str]:
    return {
        **os.environ,
        **NO_TELEMETRY_ENV,
        "COLLECTWATCH_WAREHOUSE_PATH": str(candidate),
        "COLLECTWATCH_RAW_DIR": str(settings.raw_dir),
        "COLLECTWATCH_DUCKDB_MEMORY_LIMIT": settings.dbt_memory_limit,
        "COLLECTWATCH_DUCKDB_THREADS": str(settings.duckdb_threads),
    }


# dbt builds every candidate under this one name: its parse of the project is reused only
# while the profile's values (the database path among them) stay the same.
BUILDING = "building.duckdb"


def _build_lock(settings: Settings):
    return file_lock(settings.warehouse_path.parent / ".build.lock")


def _remove_building(settings: Settings) -> list[Path]:
    """The build name's file, write-ahead log and spill folder (DuckDB's default beside a
    database file, which it removes itself unless killed)."""
    removed = [
        path
        for suffix in ("", ".wal", ".tmp")
        if (path := settings.candidates_dir / (BUILDING + suffix)).exists()
    ]
    for path in removed:
        remove_path(path)
    return removed


def clear_interrupted_build(settings: Settings) -> list[Path]:
    """The candidate of a build that was killed while dbt ran (still under the build name);
    a build in progress holds the lock, so its candidate is never touched."""
    with _build_lock(settings):
        return _remove_building(settings)


@contextmanager
def building_name(settings: Settings, candidate: Path) -> Iterator[Path]:
    """``candidate`` renamed to BUILDING while dbt builds it, and back afterwards; one build
    at a time. A write-ahead log dbt left is folded into the file before it is renamed
    back (the log is found by the file's name)."""
    building = settings.candidates_dir / BUILDING
    with _build_lock(settings):
        _remove_building(settings)  # an interrupted build's leftovers
        if candidate.exists():  # else the first build: dbt creates the file
            os.replace(candidate, building)
        try:
            yield building
            if building.with_name(BUILDING + ".wal").exists():
                con = settings.duckdb(building)
                con.execute("checkpoint")
                con.close()
        finally:
            if building.exists():
                os.replace(building, candidate)
            _remove_building(settings)  # the log of a failed build, whose candidate is dropped


# Read by dbt macro run_var.
RUN_VALUES_ENV = "COLLECTWATCH_DBT_RUN"
# dbt's parse of the project, which it reuses when the project and --vars are unchanged.
PARSE_FILE = "partial_parse.msgpack"
# Beside it: the dbt project folder the build parsed.
PARSED_PROJECT_FILE = "parsed_project_dir.txt"


def reuse_last_parse(settings: Settings, target_path: Path) -> Path | None:
    """Start a build's target folder with the latest earlier build's parse of this same
    project folder, so dbt parses only the files that changed since (~0.4 s, not a full
    ~4.5 s parse). dbt checks the parse itself (its version, --vars, and every file's
    checksum) and parses in full if it does not fit, so an old parse costs time, never a
    wrong build. It does not check the folder: a parse keeps absolute paths (a seed's CSV),
    so one made from another checkout (an earlier release's folder) read that folder's
    seeds, and failed every seed once it was deleted. So each build records the project
    folder it parsed, and only a parse of the same one is taken."""
    project = str(settings.dbt_project_dir.resolve())
    target_path.mkdir(parents=True, exist_ok=True)
    (target_path / PARSED_PROJECT_FILE).write_text(project)
    runs = settings.state_dir / "dbt"
    latest = next(
        (
            path
            for path in sorted(runs.glob(f"*/target/{PARSE_FILE}"), reverse=True)
            if path.parent != target_path and _parsed_project(path.parent) == project
        ),
        None,
    )
    if latest is None:
        return None
    copy = target_path / PARSE_FILE
    shutil.copyfile(latest, copy)
    return copy


def _parsed_project(target_path: Path) -> str | None:
    marker = target_path / PARSED_PROJECT_FILE
    return marker.read_text() if marker.is_file() else None


def dbt_command(settings: Settings, verb: str, target_dir: Path) -> list[str]:
    """``dbt <verb>`` on the project, its target and logs in ``target_dir``."""
    return [
        sys.executable, "-m", "dbt.cli.main", verb,
        "--project-dir", str(settings.dbt_project_dir),
        "--profiles-dir", str(settings.dbt_project_dir),
        "--target-path", str(target_dir / "target"),
        "--log-path", str(target_dir / "logs"),
        "--vars", json.dumps({"due_day_of_next_month": settings.due_day_of_next_month}),
    ]  # fmt: skip


def dbt_run_dir(settings: Settings, run_id: str) -> Path:
    """Where a night's ``dbt build`` keeps its target, logs and output."""
    return settings.state_dir / "dbt" / run_id


def run_results_path(settings: Settings, run_id: str) -> Path:
    """dbt's ``run_results.json`` of a night's build: each node's status and time."""
    return dbt_run_dir(settings, run_id) / "target" / "run_results.json"


def run_dbt_build(
    settings: Settings,
    candidate: Path,
    periods: list[str],
    as_of: str,
    run_id: str,
    full_refresh: bool = False,
    partial: PartialBuild | None = None,
) -> Build:
    """``dbt build`` of every model and test (or of a ``partial`` build's) against
    ``candidate``, for ``periods``."""

    target_dir = dbt_run_dir(settings, run_id)
    # The run's own values travel in an env var, not --vars (see macro run_var): dbt
    # parses the whole project again whenever --vars change.
    run_values = {
        "periods": periods,
        "as_of": as_of,
        "changed_submitters": partial.changed_submitters if partial else None,
        "whole_periods": partial.whole_periods if partial else [],
    }
    reuse_last_parse(settings, target_dir / "target")
    command = dbt_command(settings, "build", target_dir)
    if full_refresh:
        command.append("--full-refresh")
    if partial is not None and partial.selectors is not None:
        command += ["--select", *partial.selectors]
    # Unit tests test the project's code on fixtures, not the data. A partial build runs
    # only on the project that built the last publication, whose build ran them (~25 s of
    # a national resubmission's build).
    if not settings.dbt_unit_tests or partial is not None:
        command += ["--exclude-resource-type", "unit_test"]
    with building_name(settings, candidate) as building:
        dbt = subprocess.Popen(
            command,
            env={**dbt_environment(settings, building), RUN_VALUES_ENV: json.dumps(run_values)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        fault_point("build.dbt")
        stdout, stderr = dbt.communicate()
    log_path = target_dir / "dbt_build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log_path.write_text(stdout + stderr)
    if dbt.returncode != 0:
        failures = [line for line in stdout.splitlines() if "ERROR" in line or "FAIL" in line]
        raise DbtBuildFailed(
            f"dbt build failed for {periods} (log: {log_path}):\n" + "\n".join(failures[-20:])
        )
    run_results = json.loads(run_results_path(settings, run_id).read_text())
    return Build(
        run_id=run_id,
        candidate=str(candidate),
        periods=periods,
        as_of=as_of,
        invocation_id=run_results["metadata"]["invocation_id"],
        dbt_log=str(log_path),
        dbt_project_sha256=dbt_project_fingerprint(settings),
        selection=partial.selectors if partial else None,
        changed_submitters=partial.changed_submitters if partial else None,
        whole_periods=partial.whole_periods if partial else None,
    )


def swap_in(settings: Settings, candidate: Path) -> None:
    """Make ``candidate`` the published warehouse in one rename. A checkpoint first folds
    any write-ahead log into the file, since only the file itself is renamed."""
    candidate = Path(candidate)
    con = settings.duckdb(candidate)
    try:
        con.execute("checkpoint")
    finally:
        con.close()
    wal = candidate.with_name(candidate.name + ".wal")
    if wal.exists():
        raise RuntimeError(f"{wal} remains after a checkpoint; not swapping a partial file")
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    commit_file(candidate, settings.warehouse_path)
