"""A night rebuilds only what changed since the periods' last publications, and everything
when a partial build cannot be proven safe (tests/e2e proves a partial build publishes what
a full one does)."""

from __future__ import annotations

import json

import pytest

from collectwatch.config import Settings
from collectwatch.intake.lifecycle import ACCEPTED, REJECTED, StateStore
from collectwatch.rebuild import partial_build
from collectwatch.warehouse import dbt_project_fingerprint, project_fingerprint

PERIOD = "2026-10"
RUN_ID = "20261120T020000-0123abcd"  # started 2026-11-20 02:00 Beijing time
BEFORE_DUE = "2026-11-10T02:00:00+08:00"
AFTER_DUE = "2026-11-20T02:00:00+08:00"
SUBMITTER, OTHER_AGENCY = "91440300MA5G8XXXXM", "91110000MA01ABCDEF"


@pytest.fixture
def settings(tmp_path):
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    settings.warehouse_path.parent.mkdir(parents=True)
    settings.warehouse_path.write_bytes(b"")
    return settings


def _publish(settings, as_of=AFTER_DUE, fingerprint=None, period=PERIOD, started_at=None):
    folder = settings.publish_dir / period / "v1"
    folder.mkdir(parents=True)
    manifest = {
        "run_id": RUN_ID,
        "as_of": as_of,
        "dbt_project_sha256": fingerprint or dbt_project_fingerprint(settings),
    }
    if started_at:
        manifest["run_started_at"] = started_at
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (settings.publish_dir / period / "latest.json").write_text(json.dumps({"path": "v1"}))


def _decide(
    settings, submission_type, decided_at, status=ACCEPTED, period=PERIOD, submitter=SUBMITTER
):
    store = StateStore(settings.submissions_db)
    submission = store.register(
        submitter, submission_type, period, "0" * 64, "f.csv", 1, decided_at
    )
    store.decide(submission.submission_id, status, decided_at)
    store.close()


def test_only_the_types_changed_since_the_last_publication_are_rebuilt(settings):
    _publish(settings)
    _decide(settings, "lender_portfolio", "2026-11-19T10:00:00+08:00")  # before that run
    _decide(settings, "contact_events", "2026-11-21T10:00:00+08:00")
    # a rejection changes no data, but the month before (read for flow rates) is an input
    _decide(settings, "complaints", "2026-11-21T11:00:00+08:00", REJECTED)
    _decide(settings, "agency_caseload", "2026-11-22T10:00:00+08:00", period="2026-09")

    _decide(settings, "contact_events", "2026-11-21T12:00:00+08:00", submitter=OTHER_AGENCY)

    partial = partial_build(settings, [PERIOD], AFTER_DUE)

    assert partial.selectors == [
        "stg_submissions+",
        "stg_agency_caseload+",
        "stg_complaints+",
        "stg_contact_events+",
    ]
    # the per-agency models rebuild the rows of these submitters only
    assert partial.changed_submitters["contact_events"] == sorted([SUBMITTER, OTHER_AGENCY])
    assert partial.changed_submitters["complaints"] == [SUBMITTER]
    assert "lender_portfolio" not in partial.changed_submitters


def test_nothing_changed_rebuilds_only_the_submission_log(settings):
    _publish(settings)
    _decide(settings, "contact_events", "2026-11-19T10:00:00+08:00")
    assert partial_build(settings, [PERIOD], AFTER_DUE).selectors == ["stg_submissions+"]


def test_everything_is_rebuilt_when_a_partial_build_is_not_safe(settings):
    _decide(settings, "contact_events", "2026-11-21T10:00:00+08:00")
    assert partial_build(settings, [PERIOD], AFTER_DUE) is None  # never published
    _publish(settings, fingerprint="an older dbt project")
    assert partial_build(settings, [PERIOD], AFTER_DUE) is None


def test_a_release_status_the_clock_changes_rebuilds_every_mart_not_every_slice(settings):
    _publish(settings, as_of=BEFORE_DUE)  # preliminary then, final now
    _decide(settings, "contact_events", "2026-11-21T10:00:00+08:00")
    restated = partial_build(settings, [PERIOD], AFTER_DUE)
    assert restated.selectors is None  # every node: every mart carries release_status
    assert restated.whole_periods == []
    assert restated.changed_submitters == {"contact_events": [SUBMITTER]}
    before_due = partial_build(settings, [PERIOD], "2026-11-12T02:00:00+08:00")
    assert before_due.selectors == ["stg_submissions+", "stg_contact_events+"]


def test_a_period_never_published_is_rebuilt_whole_beside_the_others_slices(settings):
    """The first night of 2026-11 carries a late correction of 2026-10: every node is
    built, 2026-11 for every submitter, 2026-10's per-submitter rows for the correcting
    agency only (not for the agencies that sent their first 2026-11 logs)."""
    _publish(settings)
    _decide(settings, "contact_events", "2026-11-21T10:00:00+08:00")  # the correction
    _decide(settings, "contact_events", "2026-12-03T10:00:00+08:00", period="2026-11")
    _decide(
        settings, "contact_events", "2026-12-03T11:00:00+08:00", period="2026-11",
        submitter=OTHER_AGENCY,
    )  # fmt: skip
    partial = partial_build(settings, [PERIOD, "2026-11"], AFTER_DUE)
    assert partial.selectors is None  # every node
    assert partial.whole_periods == ["2026-11"]
    assert partial.changed_submitters == {"contact_events": [SUBMITTER]}
    # Every period new: a full build.
    assert partial_build(settings, ["2026-11", "2026-12"], AFTER_DUE) is None
    # A period built by another project: everything, whatever the others.
    _publish(settings, period="2026-09", fingerprint="an older dbt project")
    assert partial_build(settings, [PERIOD, "2026-09"], AFTER_DUE) is None


def test_per_submitter_rows_are_rebuilt_for_changes_of_the_runs_periods_only(settings):
    """A later month's logs change no row of this month's slices (a slice's rows of a
    period come from that period's submissions), though its type is still selected."""
    _publish(settings)
    _decide(settings, "contact_events", "2026-12-03T10:00:00+08:00", period="2026-11")
    partial = partial_build(settings, [PERIOD], AFTER_DUE)
    assert "stg_contact_events+" in partial.selectors
    assert partial.changed_submitters == {}
    assert partial.whole_periods == []


def test_the_fingerprint_follows_the_models_and_settings_not_dbt_output(tmp_path):
    project = tmp_path / "project"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text("name: x\n")
    (project / "models" / "a.sql").write_text("select 1 as a")
    before = project_fingerprint(project, "due_day=15")
    (project / "target").mkdir()
    (project / "target" / "run_results.json").write_text("{}")
    assert project_fingerprint(project, "due_day=15") == before
    assert project_fingerprint(project, "due_day=20") != before
    (project / "models" / "a.sql").write_text("select 2 as a")
    assert project_fingerprint(project, "due_day=15") != before


def test_a_decision_in_the_same_second_as_the_last_build_start_is_placed_by_microseconds(
    settings,
):
    _publish(settings, started_at="2026-11-20T02:00:00.500000+08:00")
    _decide(settings, "contact_events", "2026-11-20T02:00:00.250000+08:00")  # before it
    _decide(settings, "complaints", "2026-11-20T02:00:00.750000+08:00", submitter=OTHER_AGENCY)
    partial = partial_build(settings, [PERIOD], AFTER_DUE)
    assert partial.changed_submitters == {"complaints": [OTHER_AGENCY]}
