"""What a night's ``dbt build`` must rebuild for the periods it publishes.

The candidate starts as a copy of the published warehouse (DESIGN Decision 3), so a model
whose inputs have not changed since the periods' last publications already holds the right
rows. A resubmitted contact log needs only what ``stg_contact_events`` feeds — a fraction
of the ~490 nodes — to be rebuilt and tested again. Everything is rebuilt when that cannot
be proven safe: a dbt project (models, macros, seeds, settings) that differs from the one
that built any of the periods' last publications, or no period published before.

A submission type counts as changed when any of its submissions, of any period, was
received or decided after the earliest of those publications' runs started (a period's
marts also read the month before and the year before); the submission log
(``stg_submissions``: coverage and timeliness) changes with every intake and is always
rebuilt. Models whose windows stay within one submitter's rows of one period (the contact
events' flags and their per-agency counts, the lenders' placed portfolio and assignment
rows, the complaint copies) rebuild only the rows of the submitters with a changed
submission of that same period (dbt macro rebuilt_slice): one agency's corrected log
re-sorts its own events, not the month's tens of millions.

The periods of one night are judged one by one. A period never published is rebuilt
whole — every submitter's rows — while the others in the same build keep their partial
slices: the first night of a month that also carries a late correction of the month before
re-sorts the new month's events and the correcting agency's, not the month before's again
(a national month's flags are ~140 s). A period whose release status the new clock changes
(``release_status`` is on every mart, in no slice) has every mart rebuilt, its slices only
for its changed submitters.
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


def _build_start(manifest: dict) -> datetime:
    """When the run behind a publication started."""
    if "run_started_at" in manifest:  # to the microsecond, like intake's decisions
        return datetime.fromisoformat(manifest["run_started_at"])
    return run_started_at(manifest["run_id"])


def changed_submitters(
    settings: Settings, since: datetime, periods: set[str] | None = None
) -> dict[str, list[str]]:
    """Per submission type, the submitters with a submission received or decided at or
    after ``since`` (of ``periods`` only, when given)."""
    store = StateStore(settings.submissions_db)
    try:
        versions = store.all_versions()
    finally:
        store.close()
    changed: dict[str, set[str]] = {}
    for version in versions:
        if periods is not None and version.period not in periods:
            continue
        moments = (version.received_at, version.decided_at)
        if any(moment and datetime.fromisoformat(moment) >= since for moment in moments):
            changed.setdefault(version.submission_type, set()).add(version.submitter_uscc)
    return {
        submission_type: sorted(changed[submission_type]) for submission_type in sorted(changed)
    }


def partial_build(settings: Settings, periods: list[str], as_of: str) -> PartialBuild | None:
    """What a partial build of ``periods`` rebuilds; None: build everything."""
    manifests = {period: latest_manifest(settings, period) for period in periods}
    published = {period: m for period, m in manifests.items() if m is not None}
    if not published or not settings.warehouse_path.exists():
        return None
    fingerprint = dbt_project_fingerprint(settings)
    if any(m.get("dbt_project_sha256") != fingerprint for m in published.values()):
        return None
    since = min(_build_start(manifest) for manifest in published.values())
    # A slice's rows of a period come from that period's submissions only.
    sliced = changed_submitters(settings, since, set(published))
    whole_periods = sorted(set(periods) - set(published))
    # A release status the clock changed is in every mart of the period, in no slice.
    restated = any(
        _is_final(settings, period, manifest["as_of"]) != _is_final(settings, period, as_of)
        for period, manifest in published.items()
    )
    if whole_periods or restated:
        return PartialBuild(None, sliced, whole_periods)
    # Any period's change may be read: a mart reads the month before and the year before,
    # the registry is in effect across months.
    changed = changed_submitters(settings, since)
    # A type's staging model is the only reader of its raw files (the registry's also feeds
    # the registry snapshot, downstream of it).
    selectors = [*ALWAYS_REBUILT, *(f"stg_{submission_type}+" for submission_type in changed)]
    return PartialBuild(selectors, sliced)


def periods_sharing_complaints(settings: Settings, periods: set[str]) -> set[str]:
    """The periods beside ``periods`` whose complaints a change of ``periods`` can move:
    those holding a copy of a complaint (by its regulator_ref) that has a copy in one of
    ``periods``, now (their current raw files) or as last built (the warehouse's
    int_complaint_copies). The hotline's record is kept over a lender's copy filed in
    another month (DESIGN Decision 13): a hotline record filed, or withdrawn, in one month
    moves the complaint out of, or back into, another month's complaint tables."""
    if not periods or not settings.warehouse_path.exists():
        return set()
    store = StateStore(settings.submissions_db)
    try:
        files = [
            str(settings.raw_dir / submission.raw_path)
            for submission in store.current(submission_type="complaints")
            if submission.period in periods
        ]
    finally:
        store.close()
    con = settings.duckdb(settings.warehouse_path, read_only=True)
    try:
        built = "select 1 from information_schema.tables where table_name = 'int_complaint_copies'"
        if con.execute(built).fetchone() is None:  # a warehouse from before the table
            return set()
        current = "select regulator_ref from read_parquet($files) union all" if files else ""
        rows = con.execute(
            f"""
            with refs as (
                {current}
                select regulator_ref from int_complaint_copies
                where period in (select unnest($periods))
            )
            select distinct period from int_complaint_copies
            where regulator_ref in (select regulator_ref from refs)
                and period not in (select unnest($periods))
            """,
            {"periods": sorted(periods), **({"files": files} if files else {})},
        ).fetchall()
    finally:
        con.close()
    return {period for (period,) in rows}
