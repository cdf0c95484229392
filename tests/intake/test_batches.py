"""Batches: the registry goes first and is in effect for the rest of the same batch; the
generator's registry covers every submitter it writes."""

from __future__ import annotations

from collectwatch import pipeline
from collectwatch.intake import lifecycle
from collectwatch.intake.registry import ROLE_TYPES
from conftest import read_rows


def test_generated_registry_covers_every_submitter(month, settings):
    registry_file = next(p for p in month.files if p.name.startswith("institution_registry__"))
    rows, _ = read_rows(registry_file)
    # Institutions that still report for the month: all but a licence revoked before it.
    period_start = f"{month.period}-01"
    roles = {
        row["uscc"]: row["role"]
        for row in rows
        if row["status"] != "revoked" or (row["valid_to"] or "")[:10] >= period_start
    }
    for path in month.files:
        submission_type, submitter = path.name.split("__")[:2]
        role = "regulator" if submitter == settings.regulator_uscc else roles.get(submitter)
        assert role is not None, path.name
        assert submission_type in ROLE_TYPES[role], path.name


def test_a_registry_accepted_mid_batch_governs_the_rest_of_it(settings, landing):
    agency = landing.source("contact_events").parent.name

    def revoke(rows, fieldnames):
        for row in rows:
            if row["uscc"] == agency:
                row["status"] = "revoked"
        return rows, fieldnames

    registry = landing.put("institution_registry", revoke, submitter=settings.regulator_uscc)
    events = landing.put("contact_events")
    caseload = landing.put("agency_caseload")
    batches = pipeline.landing_batches(settings)
    assert batches[0] == [str(registry)]
    outcome = pipeline.intake_batch(settings, [str(registry), str(events), str(caseload)])
    statuses = {s["file"]: s["status"] for s in outcome["submissions"]}
    assert statuses == {
        registry.name: lifecycle.ACCEPTED,
        events.name: lifecycle.REJECTED,
        caseload.name: lifecycle.REJECTED,
    }
    assert outcome["statuses"] == {lifecycle.ACCEPTED: 1, lifecycle.REJECTED: 2}


def test_intake_registry_takes_only_registry_files(settings, landing):
    registry = landing.put(
        "institution_registry",
        lambda rows, names: ([*rows[:-1], {**rows[-1], "name_en": "Renamed Co."}], names),
        submitter=settings.regulator_uscc,
    )
    events = landing.put("contact_events")
    outcome = pipeline.intake_registry(settings)
    assert [s["file"] for s in outcome["submissions"]] == [registry.name]
    assert events.exists() and not registry.exists()
