"""What a night's ``dbt build`` must rebuild for the periods it publishes.

The candidate starts as a copy of the published warehouse (DESIGN Decision 3), so a model
whose inputs have not changed since the periods' last publications already holds the right
rows. A resubmitted contact log needs only what ``stg_contact_events`` feeds — a fraction
of the ~490 nodes — to be rebuilt and tested again. Everything is rebuilt when that cannot
be proven safe: a period never published, a dbt project (models, macros, seeds, settings)
that differs from the one that built the last publication, or a release status that the
new clock changes (``release_status`` is on every mart).

A submission type counts as changed when any of its submissions, of any period, was
received or decided after the earliest of those publications' runs started (a period's
marts also read the month before and the year before); the submission log
(``stg_submissions``: coverage and timeliness) changes with every intake and is always
rebuilt. Models whose windows stay within one submitter's rows (the contact events' flags
and their per-agency counts, the lenders' placed portfolio and assignment rows) rebuild
only the changed submitters' rows of the periods
(dbt macro rebuilt_slice): one agency's corrected log re-sorts its own events, not the
month's tens of millions.
"""

from __future__ import annotations

from datetime import datetime

from collectwatch.config import Settings
from collectwatch.intake.crosschecks import due_at
from collectwatch.intake.lifecycle import StateStore
from collectwatch.publish import latest_manifest
from collectwatch.warehouse import PartialBuild, dbt_project_fingerprint, run_started_at

# Rebuilt every time: the submission log ("+": and everything downstream).
ALWAYS_REBUILT = ("stg_submissions+",)


def _is_final(settings: Settings, period: str, as_of: str) -> bool:
    return datetime.fromisoformat(as_of) > datetime.fromisoformat(due_at(settings, period))


def _last_build_start(
    settings: Settings, period: str, as_of: str, fingerprint: str
) -> datetime | None:
    """When the run behind the period's last publication started, if a partial build may
    start from it (same project, same release status); else None."""
    manifest = latest_manifest(settings, period)
    if manifest is None or not settings.warehouse_path.exists():
        return None
    if manifest.get("dbt_project_sha256") != fingerprint:
        return None
    if _is_final(settings, period, manifest["as_of"]) != _is_final(settings, period, as_of):
        return None
    if "run_started_at" in manifest:  # to the microsecond, like intake's decisions
        return datetime.fromisoformat(manifest["run_started_at"])
    return run_started_at(manifest["run_id"])


def changed_submitters(settings: Settings, since: datetime) -> dict[str, list[str]]:
    """Per submission type, the submitters with a submission received or decided at or
    after ``since``."""
    store = StateStore(settings.submissions_db)
    try:
        versions = store.all_versions()
    finally:
        store.close()
    changed: dict[str, set[str]] = {}
    for version in versions:
        moments = (version.received_at, version.decided_at)
        if any(moment and datetime.fromisoformat(moment) >= since for moment in moments):
            changed.setdefault(version.submission_type, set()).add(version.submitter_uscc)
    return {
        submission_type: sorted(changed[submission_type]) for submission_type in sorted(changed)
    }


def partial_build(settings: Settings, periods: list[str], as_of: str) -> PartialBuild | None:
    """What a partial build of ``periods`` rebuilds; None: build everything."""
    fingerprint = dbt_project_fingerprint(settings)
    starts = [_last_build_start(settings, period, as_of, fingerprint) for period in periods]
    if not starts or None in starts:
        return None
    changed = changed_submitters(settings, min(starts))
    # A type's staging model is the only reader of its raw files (the registry's also feeds
    # the registry snapshot, downstream of it).
    selectors = [*ALWAYS_REBUILT, *(f"stg_{submission_type}+" for submission_type in changed)]
    return PartialBuild(selectors, changed)
