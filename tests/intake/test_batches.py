"""Batches: the registry goes first and is in effect for the rest of the same batch; the
generator's registry covers every submitter it writes; the clean CSV files of a batch are
read by one query and each still gets exactly the verdict, report and raw version it gets
when taken alone."""

from __future__ import annotations

import os
import shutil
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from collectwatch import pipeline
from collectwatch.config import Settings
from collectwatch.intake import crosschecks, lifecycle
from collectwatch.intake.checked import CheckedFile
from collectwatch.intake.clean import CleanBatch
from collectwatch.intake.process import IntakeSession, intake_file
from collectwatch.intake.registry import ROLE_TYPES
from collectwatch.intake.report import EditReport, _finding, add_listed_findings
from collectwatch.raw import write_current
from collectwatch.uscc import check_character
from conftest import ON_TIME, Landing, current_ids, read_rows, write_rows

# A well-formed USCC the generated registry does not hold.
UNKNOWN = "91440300MA5G8WWWW" + check_character("91440300MA5G8WWWW")


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
    [registry_id] = [
        s["submission_id"] for s in outcome["submissions"] if s["file"] == registry.name
    ]
    # A batch leaves the list of current versions to the night's refresh (and the build):
    # rewritten by each of a night's ~55 batches, it read the whole state store every time.
    assert registry_id not in current_ids(settings)
    write_current(settings)
    [registry_id] = [
        s["submission_id"] for s in outcome["submissions"] if s["file"] == registry.name
    ]
    assert current_ids(settings) == {registry_id}


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


def _contact_logs(month) -> list[Path]:
    return sorted(p for p in month.files if p.name.startswith("contact_events__"))


def _plant(path: Path, edit) -> None:
    rows, fieldnames = read_rows(path)
    write_rows(path, edit(rows), fieldnames)
    os.utime(path, (ON_TIME, ON_TIME))


def _land_contact_logs(settings, month) -> list[Path]:
    """Every contact log of the month, with a row finding (an unknown channel, row 6), a
    duplicate key (row 2 repeated), a counterparty the registry does not know (row 4) and,
    in a fourth, an unbalanced quote that makes the whole batch unreadable as CSV;
    the others are clean."""
    landed = []
    for source in _contact_logs(month):
        target = settings.landing_dir / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        os.utime(target, (ON_TIME, ON_TIME))
        landed.append(target)
    _plant(landed[0], lambda rows: [*rows[:4], {**rows[4], "channel": "fax"}, *rows[5:]])
    _plant(landed[1], lambda rows: [*rows, rows[0]])
    _plant(landed[2], lambda rows: [*rows[:2], {**rows[2], "lender_uscc": UNKNOWN}, *rows[3:]])
    return landed


def _outcome(result) -> tuple:
    report = result.report
    # in the report's order, with the key of the record each names
    findings = [
        (f["rule_id"], f["row"], f["field"], f["value"], f["key"] and sorted(f["key"].items()))
        for f in report.findings
    ]
    return result.status, dict(report.rule_counts), findings


def _raw_rows(settings, result) -> list[tuple]:
    if result.status == lifecycle.REJECTED:
        return []
    submission = lifecycle.StateStore(settings.submissions_db).get(result.submission_id)
    path = settings.raw_dir / submission.raw_path
    return duckdb.connect().execute(f"select * from read_parquet('{path}')").fetchall()


def _alone(tmp_path, month, landed) -> dict[str, tuple]:
    """Every landed file taken alone in a data root of its own."""
    alone = {}
    for index, path in enumerate(landed):
        settings = Settings.from_env().with_data_dir(tmp_path / f"alone-{index}")
        assert Landing(settings, month).intake("institution_registry").status == "accepted"
        target = settings.landing_dir / path.parent.name / path.name
        target.parent.mkdir(parents=True)
        shutil.copy2(path, target)
        result = intake_file(target, settings)
        alone[path.name] = (_outcome(result), _raw_rows(settings, result))
    return alone


def test_a_batch_read_as_one_gives_each_file_the_verdict_it_gets_alone(
    tmp_path, settings, month, monkeypatch
):
    landed = _land_contact_logs(settings, month)
    expected = _alone(tmp_path, month, landed)
    batches_read = []
    original = CleanBatch._read
    monkeypatch.setattr(
        CleanBatch, "_read", lambda self, *a: batches_read.append(a[1]) or original(self, *a)
    )

    with IntakeSession(settings) as session:
        results = session.intake_many(landed)

    assert len(batches_read) == 1 and len(batches_read[0]) == len(landed)
    got = {r.path.name: (_outcome(r), _raw_rows(settings, r)) for r in results}
    assert got == expected
    # The planted findings are where they were planted, and only there.
    outcomes = {name: outcome for name, (outcome, _) in got.items()}
    assert ("V003", 6, "channel", "fax") in [f[:4] for f in outcomes[landed[0].name][2]]
    assert outcomes[landed[1].name][1] == {"V010": 2}
    assert [(f[0], f[1]) for f in outcomes[landed[2].name][2]] == [("Q005", 4)]
    assert {o[0] for name, o in outcomes.items() if name not in {p.name for p in landed[:3]}} == {
        lifecycle.ACCEPTED
    }
    assert not list(settings.intake_work_dir.glob("*.parquet"))  # nothing left behind


def _unterminated_quote_at_the_end(text: str) -> str:
    return text + '"unbalanced,quote\n'


def _extra_cell_in_the_middle(text: str) -> str:
    lines = text.splitlines(keepends=True)
    return "".join([*lines[:3], lines[3].rstrip("\n") + ",extra\n", *lines[4:]])


@pytest.mark.parametrize("malform", [_unterminated_quote_at_the_end, _extra_cell_in_the_middle])
def test_a_malformed_file_in_a_batch_gets_the_verdict_it_gets_alone(
    tmp_path, settings, month, malform
):
    """A malformed record fails the batch's read (then every file is read alone), or, as
    DuckDB 2.0 does with a last record holding an unterminated quote among many files, is
    dropped without an error: the file's line count catches that."""
    landed = _land_contact_logs(settings, month)
    broken = landed[3]
    broken.write_text(malform(broken.read_text(encoding="utf-8")), encoding="utf-8")
    os.utime(broken, (ON_TIME, ON_TIME))
    expected = _alone(tmp_path, month, landed)

    with IntakeSession(settings) as session:
        results = session.intake_many(landed)

    got = {r.path.name: (_outcome(r), _raw_rows(settings, r)) for r in results}
    assert got == expected
    assert got[broken.name][0][0] == lifecycle.REJECTED
    # The three planted files and the malformed one are not accepted; the rest are.
    accepted = {name for name, (outcome, _) in got.items() if outcome[0] == lifecycle.ACCEPTED}
    assert accepted == {p.name for p in landed[4:]}


def _land(settings, sources: list[Path]) -> list[Path]:
    landed = []
    for source in sources:
        target = settings.landing_dir / source.parent.name / source.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, target)
        os.utime(target, (ON_TIME, ON_TIME))
        landed.append(target)
    return landed


def _spy(monkeypatch, owner, name: str) -> list:
    """Replace ``owner.name`` by a wrapper that records what each call returned."""
    returned, original = [], getattr(owner, name)

    def recording(*args, **kwargs):
        result = original(*args, **kwargs)
        returned.append(result)
        return result

    monkeypatch.setattr(owner, name, recording)
    return returned


def test_a_batch_checks_its_files_counterparties_at_once_with_the_same_findings(
    tmp_path, month, monkeypatch
):
    """Q005, the counterparties and M001 come from queries over the batch (not per file),
    and every file's verdict and report equal those of the same files each read alone in
    the same order, also when the counterparties' current submissions are no longer those
    the batch compared with (another process took one since: the file queries its own).
    Planted: an assignment to an agency the registry does not know (row 3) and a caseload
    from one (row 5); the caseloads reconcile against the assignments taken before them."""
    files = sorted(
        (p for p in month.files if p.name.startswith(("agency_assignment__", "agency_caseload__"))),
        key=lambda path: (not path.name.startswith("agency_assignment__"), path),
    )
    plants = {
        files[0]: lambda rows: [*rows[:1], {**rows[1], "agency_uscc": UNKNOWN}, *rows[2:]],
        files[-1]: lambda rows: [*rows[:3], {**rows[3], "lender_uscc": UNKNOWN}, *rows[4:]],
    }
    outcomes, reconciled, from_batches = {}, {}, {}
    for mode in ("batched", "batched, compared with others", "alone"):
        settings = Settings.from_env().with_data_dir(tmp_path / mode.replace(" ", "-"))
        assert Landing(settings, month).intake("institution_registry").status == "accepted"
        landed = _land(settings, files)
        for source, edit in plants.items():
            _plant(landed[files.index(source)], edit)
        queried = _spy(monkeypatch, crosschecks, "_distinct")
        taken = _spy(monkeypatch, CleanBatch, "take")
        reconciled[mode] = _spy(monkeypatch, crosschecks, "reconciliation_findings")
        if mode == "batched, compared with others":
            _as_if_compared_with_none(monkeypatch)
        with IntakeSession(settings) as session:
            if mode == "alone":
                monkeypatch.setattr(session, "_plan_batches", lambda paths: None)
            results = session.intake_many(landed)
        outcomes[mode] = [(r.path.name, _outcome(r), _raw_rows(settings, r)) for r in results]
        # A file cut from its batch takes its counterparties from the batch; only a file
        # with a row finding (the generator plants some) queries its own.
        from_batches[mode] = len([clean_file for clean_file in taken if clean_file is not None])
        assert len(queried) == len(files) - from_batches[mode]
        assert from_batches[mode] >= (len(files) - 2 if mode != "alone" else 0)
        monkeypatch.undo()

    assert outcomes["batched"] == outcomes["alone"]
    assert outcomes["batched, compared with others"] == outcomes["alone"]
    # Per-file reconciliation queries: only files outside a batch in the first run; every
    # caseload with a counterparty when the batch's comparison is out of date.
    assert len(reconciled["batched"]) <= len(files) - from_batches["batched"]
    assert len(reconciled["batched, compared with others"]) > len(reconciled["batched"])
    assert len(reconciled["alone"]) == len(reconciled["batched, compared with others"])
    by_name = {name: outcome for name, outcome, _ in outcomes["batched"]}
    assert [(f[0], f[1], f[2]) for f in by_name[files[0].name][2] if f[0] == "Q005"] == [
        ("Q005", 3, "agency_uscc")
    ]
    assert [(f[0], f[1], f[2]) for f in by_name[files[-1].name][2] if f[0] == "Q005"] == [
        ("Q005", 5, "lender_uscc")
    ]
    others = [o for name, o in by_name.items() if name not in {files[0].name, files[-1].name}]
    assert all("Q005" not in rule_counts for _, rule_counts, _ in others)
    assert any("M001" in rule_counts for _, rule_counts, _ in by_name.values())


def _as_if_compared_with_none(monkeypatch) -> None:
    """Every batch's M001 as computed before any counterparty had submitted."""
    original = CleanBatch._cross_file

    def cross_file(self, con, per_file):
        results = original(self, con, per_file)
        return {
            file: replace(result, compared={}) if result.compared is not None else result
            for file, result in results.items()
        }

    monkeypatch.setattr(CleanBatch, "_cross_file", cross_file)


def test_batch_m001_findings_are_used_only_against_the_submissions_they_were_compared_with():
    batch = crosschecks.BatchResults(
        "a.csv", {"AGENCY1", "AGENCY2"}, {"M001": 2}, {"AGENCY1": "s1", "X": "s9"}
    )
    # Codes outside the file's counterparties do not matter; the ones in it must match.
    assert batch.compared_with({"AGENCY1": "s1"})
    assert not batch.compared_with({"AGENCY1": "s2"})  # AGENCY1 resubmitted since
    assert not batch.compared_with({"AGENCY1": "s1", "AGENCY2": "s3"})  # AGENCY2 came in
    assert not replace(batch, compared=None).compared_with({"AGENCY1": "s1"})  # not reconciled


def test_findings_a_batch_listed_join_the_files_own_in_the_order_of_its_report():
    """A file's own row findings (Q004 here) and those its batch counted and listed (M001,
    Q005) make one listing in (rule, row, field) order after the file-level findings, and
    the counts include the batch's unlisted ones (a batch lists up to the cap per rule)."""
    report = EditReport("f.csv", "agency_assignment", "A", "2026-10", "0" * 64)
    report.add_file_finding("M002", "received_at", "late")
    first_row_finding = len(report.findings)
    report.rule_counts["Q004"] = 1
    report.findings.append(_finding("Q004", 9, "balance_assigned", "x", {"k": 9}))
    listed = {
        "Q005": (1, [("Q005", 5, "agency_uscc", "y", {"k": 5})]),
        "M001": (7, [("M001", 12, "balance_assigned", "z", {"k": 12}),
                     ("M001", 3, "balance_assigned", "z", {"k": 3})]),
    }  # fmt: skip

    add_listed_findings(report, listed, first_row_finding)

    assert report.rule_counts == {"M002": 1, "Q004": 1, "Q005": 1, "M001": 7}
    assert [(f["rule_id"], f["row"], f["key"]) for f in report.findings] == [
        ("M002", None, {}),
        ("M001", 3, {"k": 3}),
        ("M001", 12, {"k": 12}),
        ("Q004", 9, {"k": 9}),
        ("Q005", 5, {"k": 5}),
    ]


def _views_made(monkeypatch) -> list:
    """The typed Parquet files a view ``submission`` was made over, as they are made."""
    views, original = [], CheckedFile.open_submission

    def recording(self):
        original(self)
        if self.view_open:
            views.append(self.typed_path)

    monkeypatch.setattr(CheckedFile, "open_submission", recording)
    return views


def test_a_batch_answers_v019_for_its_complaints_files_with_the_same_findings(
    tmp_path, month, monkeypatch
):
    """V019 (a complaint's source must fit the submitter's role) takes each clean file's
    distinct sources from the batch: a file whose sources all fit is never queried (no
    view over its rows is made), and every verdict and report equal those of the files
    read alone. Planted: a lender's or agency's complaint forwarded from the association
    (row 3 of one file, row 4 of another)."""
    files = sorted(p for p in month.files if p.name.startswith("complaints__"))
    registry, _ = read_rows(next(p for p in month.files if p.name.startswith("institution_")))
    roles = {row["uscc"]: row["role"] for row in registry}
    own = [p for p in files if p.parent.name in roles and len(read_rows(p)[0]) >= 3]
    planted = {own[0]: 1, own[-1]: 2}  # record index: line 3, line 4
    outcomes, opened = {}, {}
    for mode in ("batched", "alone"):
        settings = Settings.from_env().with_data_dir(tmp_path / mode)
        assert Landing(settings, month).intake("institution_registry").status == "accepted"
        landed = _land(settings, files)
        for source, index in planted.items():
            _plant(
                landed[files.index(source)],
                lambda rows, i=index: [
                    *rows[:i],
                    {**rows[i], "source": "association"},
                    *rows[i + 1 :],
                ],
            )
        views = _views_made(monkeypatch)
        with IntakeSession(settings) as session:
            if mode == "alone":
                monkeypatch.setattr(session, "_plan_batches", lambda paths: None)
            results = session.intake_many(landed)
        outcomes[mode] = [(r.path.name, _outcome(r), _raw_rows(settings, r)) for r in results]
        opened[mode] = len(set(views))
        monkeypatch.undo()

    assert outcomes["batched"] == outcomes["alone"]
    by_name = {name: outcome for name, outcome, _ in outcomes["batched"]}
    v019 = {
        name: [(f[1], f[2], f[3]) for f in findings if f[0] == "V019"]
        for name, (_, _, findings) in by_name.items()
    }
    assert {name: found for name, found in v019.items() if found} == {
        own[0].name: [(3, "source", f"association (submitter: {roles[own[0].parent.name]})")],
        own[-1].name: [(4, "source", f"association (submitter: {roles[own[-1].parent.name]})")],
    }
    # Read alone, every clean file is queried; in the batch, only the two planted ones.
    assert opened["batched"] == 2
    assert opened["alone"] > len(files) // 2


def _full_width_duration(rows: list[dict]) -> list[dict]:
    """The first call's duration in full-width digits, which normalisation folds back."""
    index = next(i for i, row in enumerate(rows) if row["duration_s"])
    digits = "".join(chr(ord(digit) + 0xFEE0) for digit in rows[index]["duration_s"])
    return [*rows[:index], {**rows[index], "duration_s": digits}, *rows[index + 1 :]]


def test_ascii_files_and_the_others_are_read_in_batches_of_their_own(
    tmp_path, settings, month, monkeypatch
):
    """A file whose every byte is ASCII is read without the full-width and Unicode
    white-space guards, so ASCII files and the others are batched apart. Two contact logs
    with a duration in full-width digits are read as a batch of their own, stay clean, and
    get the verdict, report and typed rows they get alone, the duration folded to the
    number; every file is accepted."""
    landed = _land(settings, _contact_logs(month))
    for path in landed[:2]:
        _plant(path, _full_width_duration)
    expected = _alone(tmp_path, month, landed)
    batches = []
    original = CleanBatch._read
    monkeypatch.setattr(
        CleanBatch,
        "_read",
        lambda self, *a: batches.append((self.layout.ascii_only, len(a[1]))) or original(self, *a),
    )

    with IntakeSession(settings) as session:
        results = session.intake_many(landed)

    assert sorted(batches) == [(False, 2), (True, len(landed) - 2)]
    got = {r.path.name: (_outcome(r), _raw_rows(settings, r)) for r in results}
    assert got == expected
    assert {outcome[0] for outcome, _ in got.values()} == {lifecycle.ACCEPTED}
    source_rows, _ = read_rows(_contact_logs(month)[0])
    call = next(row for row in source_rows if row["duration_s"])
    # raw columns in contract order: event_id third, duration_s twelfth
    durations = [row[11] for row in got[landed[0].name][1] if row[2] == call["event_id"]]
    assert durations == [int(call["duration_s"])]
