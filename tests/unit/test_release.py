"""The night's housekeeping without Airflow: which periods it plans, backfill ranges, an
interrupted release completed from its journal, leftovers removed (old ones by age)."""

from __future__ import annotations

import dataclasses
import json
import os
from datetime import datetime, timedelta

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from collectwatch import pipeline, rebuild, warehouse
from collectwatch.config import CHINA_TZ, Settings
from collectwatch.faults import fault_point
from collectwatch.files import file_lock, sha256_file
from collectwatch.intake.lifecycle import ACCEPTED, StateStore
from collectwatch.publish import json_bytes, prepare_version
from collectwatch.warehouse import RUN_ID_CLOCK

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=CHINA_TZ)


@pytest.fixture
def settings(tmp_path):
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    settings.ensure_dirs()
    return settings


def _accept(store: StateStore, uscc: str, period: str, sha256: str) -> str:
    submission = store.register(uscc, "lender_portfolio", period, sha256, "f.csv", 1, "t")
    store.decide(submission.submission_id, ACCEPTED, "t")
    return submission.submission_id


def _publish_manifest(settings, period: str, inputs: dict[str, str]) -> None:
    folder = settings.publish_dir / period / "v1"
    folder.mkdir(parents=True)
    (folder / "manifest.json").write_bytes(
        json_bytes({"version": 1, "input_submissions": inputs, "files": {}})
    )
    (settings.publish_dir / period / "latest.json").write_bytes(
        json_bytes({"period": period, "version": 1, "path": "v1"})
    )


def test_plan_periods_previous_month_and_periods_whose_inputs_changed(settings):
    store = StateStore(settings.submissions_db)
    unchanged = {_accept(store, "91440300MA5G8XXXXM", "2026-07", "a"): "a"}
    changed = {_accept(store, "91440300MA5G8XXXXM", "2026-08", "b"): "b"}
    _accept(store, "91440300MA5G8XXXXM", "2026-09", "c")  # never published
    _publish_manifest(settings, "2026-07", unchanged)
    _publish_manifest(settings, "2026-08", changed)
    _accept(store, "91440300MA5G8XXXXM", "2026-08", "b2")  # a resubmission after publication
    assert pipeline.plan_periods(settings, [], NOW) == ["2026-08", "2026-09", "2026-10"]
    # January's previous month is December of the year before.
    january = datetime(2027, 1, 3, tzinfo=CHINA_TZ)
    assert "2026-12" in pipeline.plan_periods(settings, None, january)
    # Requested periods win, deduplicated and in order.
    assert pipeline.plan_periods(settings, ["2026-09", "2026-07", "2026-09"], NOW) == [
        "2026-07",
        "2026-09",
    ]


def test_a_correction_replans_the_published_periods_that_read_it(settings):
    """A resubmission for 2025-06 after publication: 2025-07 (its flow rates and month-on-
    month changes read 2025-06) and 2026-06 (year-on-year) are rebuilt too; 2025-08, two
    months later, is not."""
    store = StateStore(settings.submissions_db)
    for period in ("2025-06", "2025-07", "2025-08", "2026-06"):
        inputs = {_accept(store, "91440300MA5G8XXXXM", period, period): period}
        _publish_manifest(settings, period, inputs)
    _accept(store, "91440300MA5G8XXXXM", "2025-06", "corrected")
    assert pipeline.plan_periods(settings, None, NOW) == [
        "2025-06",
        "2025-07",
        "2026-06",
        "2026-10",  # the previous month, as every night
    ]
    # A change in December reaches January of the next year.
    _accept(store, "91440300MA5G8XXXXM", "2025-12", "late")
    _publish_manifest(settings, "2026-01", {})
    assert {"2025-12", "2026-01"} <= set(pipeline.plan_periods(settings, None, NOW))


def test_a_hotline_record_replans_the_published_periods_holding_its_complaints_copies(
    settings,
):
    """A complaint's copies share its regulator_ref across months, and the hotline's record
    is kept (DESIGN Decision 13): a resubmission for 2026-09 whose hotline record R1 names a
    complaint a lender filed in 2026-07 moves it out of 2026-07, and one withdrawing R2
    moves its 2026-08 copy's complaint back; 2026-05, sharing no reference, is not
    rebuilt, and neither is a complaint without one (its key is its own month's)."""
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute(
            "create table int_complaint_copies as select * from (values "
            "('2026-05', 'R9'), ('2026-05', null), ('2026-07', 'R1'), ('2026-08', 'R2'), "
            "('2026-09', 'R2'), ('2026-09', null)) as t(period, regulator_ref)"
        )
    store = StateStore(settings.submissions_db)
    submission = store.register("91440300MA5G8XXXXM", "complaints", "2026-09", "c", "f", 1, "t")
    raw = settings.raw_dir / "complaints" / "2026-09.parquet"
    raw.parent.mkdir(parents=True)
    pq.write_table(pa.table({"regulator_ref": ["R1", None, "R7"]}), raw)
    store.decide(
        submission.submission_id, ACCEPTED, "t", raw_path=str(raw.relative_to(settings.raw_dir))
    )
    _accept(store, "91440300MA5G8XXXXM", "2026-10", "l")  # another type, another month

    assert rebuild.periods_sharing_complaints(settings, {"2026-09"}) == {"2026-07", "2026-08"}
    assert rebuild.periods_sharing_complaints(settings, {"2026-10"}) == set()
    for period in ("2026-05", "2026-07", "2026-08", "2026-09"):
        _publish_manifest(settings, period, {})
    planned = pipeline.plan_periods(settings, None, NOW)
    assert planned == ["2026-07", "2026-08", "2026-09", "2026-10"]


def test_periods_between_spans_a_year_end_and_rejects_nonsense():
    assert pipeline.periods_between("2025-11", "2026-02") == [
        "2025-11", "2025-12", "2026-01", "2026-02",
    ]  # fmt: skip
    assert pipeline.periods_between("2026-08", "2026-08") == ["2026-08"]
    with pytest.raises(ValueError, match="after"):
        pipeline.periods_between("2026-09", "2026-08")
    with pytest.raises(ValueError, match="YYYY-MM"):
        pipeline.periods_between("2026-13", "2027-01")
    # Full-width digits and a trailing newline are not a period (contracts.PERIOD_PATTERN).
    for malformed in ("２０２６-08", "2026-08\n"):
        with pytest.raises(ValueError, match="YYYY-MM"):
            pipeline.periods_between(malformed, "2026-09")


def _run_id(age: timedelta, tail: str) -> str:
    return (NOW - age).strftime(RUN_ID_CLOCK) + "-" + tail


def test_clean_candidates_by_age_keeps_the_current_and_recent_inspections(settings):
    folder = settings.candidates_dir
    old, recent = timedelta(days=20), timedelta(days=1)
    layout = {
        # run id: (files to create, kept by a failed gate?)
        _run_id(old, "oldkept0"): ((".duckdb", "/gate_report.html"), True),
        _run_id(recent, "newkept0"): ((".duckdb", "/gate_report.html"), True),
        _run_id(recent, "crashed0"): ((".duckdb", ".duckdb.wal", "/gate_report.html"), False),
        _run_id(old, "passed00"): (("/gate_report.html",), False),
        _run_id(recent, "passed01"): (("/gate_report.html",), False),
        _run_id(old, "current0"): ((".duckdb", "/gate_report.html"), True),
    }
    for run_id, (suffixes, kept) in layout.items():
        for suffix in suffixes:
            path = folder / f"{run_id}{suffix}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("x")
        if kept:
            (folder / run_id / pipeline.KEPT_MARKER).write_text("{}")
    current = _run_id(old, "current0")
    pipeline.clean_candidates(settings, NOW, keep={current})
    remaining = sorted(p.name for p in folder.iterdir())
    assert remaining == sorted(
        [
            _run_id(recent, "newkept0"), _run_id(recent, "newkept0") + ".duckdb",
            _run_id(recent, "crashed0"),  # its partial gate report ages out later
            _run_id(recent, "passed01"),
            current, current + ".duckdb",
        ]
    )  # fmt: skip


def _staged_version(settings, tmp_path, period="2026-10"):
    """A staged publication with its manifest, as release() prepares it."""
    staged = settings.publish_dir / period / ".staging-run-b"
    (staged / "internal").mkdir(parents=True)
    pq.write_table(pa.table({"release_status": ["final"]}), staged / "internal" / "t.parquet")
    return prepare_version(settings, period, staged, {"run_id": "run-b"})


def test_recover_completes_a_release_interrupted_between_renames(settings, tmp_path):
    settings.warehouse_path.write_bytes(b"old warehouse")
    candidate = settings.candidates_dir / "20261101T020000-runb0000.duckdb"
    con = settings.duckdb(candidate)
    con.execute("create table marker as select 2 as version")
    con.close()
    prepared = _staged_version(settings, tmp_path)
    journal = {"run_id": "run-b", "candidate": str(candidate), "versions": [prepared.as_dict()]}
    settings.release_journal.write_bytes(json_bytes(journal))
    # The crash came after the version folder was renamed, before the warehouse swap.
    prepared.staged.rename(prepared.final)
    assert not (settings.publish_dir / "2026-10" / "latest.json").exists()

    outcome = pipeline.recover(settings, NOW)

    assert outcome["completed_release"] == "run-b"
    assert not settings.release_journal.exists() and not candidate.exists()
    con = settings.duckdb(settings.warehouse_path, read_only=True)
    assert con.execute("select version from marker").fetchone()[0] == 2
    con.close()
    pointer = json.loads((settings.publish_dir / "2026-10" / "latest.json").read_text())
    assert pointer["path"] == "v1"
    assert pointer["manifest_sha256"] == sha256_file(prepared.final / "manifest.json")
    # Nothing pending: a second recovery changes nothing.
    assert pipeline.recover(settings, NOW)["completed_release"] is None


def test_recover_removes_stale_staging_and_temporary_files(settings, tmp_path):
    stale = [
        settings.publish_dir / "2026-10" / ".staging-crashed" / "internal" / "t.csv",
        settings.publish_dir / "2026-10" / ".latest.json.abc.tmp",
        settings.warehouse_path.parent / ".collectwatch.duckdb.abc.tmp",
    ]
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    published = settings.publish_dir / "2026-10" / "v1" / "manifest.json"
    published.parent.mkdir(parents=True)
    published.write_text("{}")
    pipeline.recover(settings, NOW)
    assert not any(path.exists() for path in stale)
    assert not (settings.publish_dir / "2026-10" / ".staging-crashed").exists()
    assert published.read_text() == "{}"


def test_a_dead_holder_leaves_no_lock_behind(settings):
    """Locks are flock()s: the kernel drops them with the process, so no stale lock file
    can block the next night (the kill tests prove it across real processes)."""
    lock = settings.warehouse_path.parent / ".release.lock"
    pid = os.fork()
    if pid == 0:  # the child takes the lock and dies holding it
        with file_lock(lock):
            os._exit(0)
    os.waitpid(pid, 0)
    with file_lock(lock):
        assert lock.exists()


def test_fault_points_are_named_and_inert_unless_asked(monkeypatch):
    monkeypatch.delenv("COLLECTWATCH_FAULT_AT", raising=False)
    fault_point("release.between_renames")  # returns: nothing asked for
    monkeypatch.setenv("COLLECTWATCH_FAULT_AT", "build.dbt")
    fault_point("release.publish")  # another step: returns
    with pytest.raises(ValueError, match="unknown fault point"):
        fault_point("release.typo")


def test_cli_run_takes_repeated_periods_and_a_range(monkeypatch, capsys):
    from collectwatch import cli, orchestration

    calls = []

    def fake_run_embedded(settings, periods, full_refresh=False, as_of=None):
        calls.append(periods)
        return {"state": "success", "dag_runs": {}}

    monkeypatch.setattr(orchestration, "run_embedded", fake_run_embedded)
    argv = ["run", "--from", "2026-08", "--to", "2026-09", "--period", "2026-11"]
    assert cli.main(argv) == 0
    assert cli.main(["run", "--period", "2026-09", "--period", "2026-08"]) == 0
    assert cli.main(["run"]) == 0  # no periods: the nightly plans them
    assert calls == [["2026-08", "2026-09", "2026-11"], ["2026-08", "2026-09"], []]
    assert cli.main(["run", "--from", "2026-08"]) == cli.EXIT_INTERNAL
    assert "--from and --to go together" in capsys.readouterr().err


def test_the_candidate_copy_is_flushed_once_by_the_swap_not_by_the_copy(settings, monkeypatch):
    # A national candidate is gigabytes: create_candidate leaves it to the page cache,
    # and swap_in flushes the whole file (its own and the copy's pages) before the rename.
    con = settings.duckdb(settings.warehouse_path)
    con.execute("create table published as select range as n from range(1000)")
    con.close()
    flushed = []
    real_fsync = os.fsync
    monkeypatch.setattr(
        os, "fsync", lambda fd: (flushed.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd))
    )

    candidate = warehouse.create_candidate(settings, "20261102T020000-abcdef01")
    assert not [path for path in flushed if path.endswith(".tmp") or path == str(candidate)]
    con = settings.duckdb(candidate)
    con.execute("insert into published select 1000")
    con.close()
    flushed.clear()
    warehouse.swap_in(settings, candidate)

    assert str(candidate) in flushed  # flushed under its candidate name, then renamed
    con = settings.duckdb(settings.warehouse_path, read_only=True)
    assert con.execute("select count(*) from published").fetchone()[0] == 1001
    con.close()


def _earlier_parse(runs, run_id: str, parse: bytes | None, project: str | None) -> None:
    target = runs / run_id / "target"
    target.mkdir(parents=True)
    if parse is not None:  # a build that failed before dbt parsed has none
        (target / warehouse.PARSE_FILE).write_bytes(parse)
    if project is not None:  # a build before the project folder was recorded has none
        (target / warehouse.PARSED_PROJECT_FILE).write_text(project)


def test_a_build_starts_from_the_latest_earlier_parse(settings, tmp_path):
    settings = dataclasses.replace(settings, state_dir=tmp_path / "state")  # no other builds
    runs = settings.state_dir / "dbt"
    project = str(settings.dbt_project_dir.resolve())
    target = runs / "20261102T020000-cccccccc" / "target"
    assert warehouse.reuse_last_parse(settings, target) is None  # the first build parses
    assert not (target / warehouse.PARSE_FILE).exists()
    for run_id, parse in (("20261031T020000-aaaaaaaa", b"older"),
                          ("20261101T020000-bbbbbbbb", b"latest"),
                          ("20261101T030000-dddddddd", None)):  # fmt: skip
        _earlier_parse(runs, run_id, parse, project)

    copy = warehouse.reuse_last_parse(settings, target)

    assert copy == target / warehouse.PARSE_FILE and copy.read_bytes() == b"latest"
    # the earlier build's own parse stays where it was (its folder is that run's record)
    assert (runs / "20261101T020000-bbbbbbbb" / "target" / warehouse.PARSE_FILE).exists()
    # and this build records what it parsed, for the next one
    assert (target / warehouse.PARSED_PROJECT_FILE).read_text() == project


def test_a_parse_of_another_project_folder_is_never_reused(settings, tmp_path):
    # A parse holds absolute paths: one from another checkout (a new release's folder, an
    # old one since deleted) made dbt fail every seed ("No files found ... seeds/*.csv").
    settings = dataclasses.replace(settings, state_dir=tmp_path / "state")
    runs = settings.state_dir / "dbt"
    project = str(settings.dbt_project_dir.resolve())
    _earlier_parse(runs, "20261030T020000-aaaaaaaa", b"same folder", project)
    _earlier_parse(runs, "20261031T020000-bbbbbbbb", b"other folder", "/srv/old-release/dbt")
    _earlier_parse(runs, "20261101T020000-cccccccc", b"unrecorded", None)
    target = runs / "20261102T020000-dddddddd" / "target"

    copy = warehouse.reuse_last_parse(settings, target)

    assert copy.read_bytes() == b"same folder"

    _earlier_parse(runs, "20261029T020000-eeeeeeee", b"unused", None)
    (runs / "20261030T020000-aaaaaaaa" / "target" / warehouse.PARSE_FILE).unlink()
    (target / warehouse.PARSE_FILE).unlink()
    assert warehouse.reuse_last_parse(settings, target) is None


def test_dbt_builds_the_candidate_under_one_name_and_it_gets_its_own_back(settings):
    # dbt's parse is reused only while its profile (the database path) is unchanged.
    candidate = settings.candidates_dir / "20261102T020000-abcdef01.duckdb"
    con = settings.duckdb(candidate)
    con.execute("create table published as select 1 as n")
    con.close()
    building = settings.candidates_dir / warehouse.BUILDING
    stale_log = building.with_name(warehouse.BUILDING + ".wal")
    stale_log.write_bytes(b"an interrupted build's log")  # must never be replayed here

    with warehouse.building_name(settings, candidate) as path:
        assert path == building and not candidate.exists() and not stale_log.exists()
        con = settings.duckdb(path)
        # what a dbt that exits without a checkpoint leaves: the new rows only in the log
        con.execute("set checkpoint_threshold = '1TB'")
        con.execute("pragma disable_checkpoint_on_shutdown")
        con.execute("insert into published select 2 union all select 3")
        con.close()
        assert stale_log.exists()

    assert not building.exists() and not stale_log.exists()
    con = settings.duckdb(candidate, read_only=True)
    assert con.execute("select sum(n) from published").fetchone()[0] == 6
    con.close()


def test_recovery_removes_an_interrupted_build_but_not_one_in_progress(settings):
    building = settings.candidates_dir / warehouse.BUILDING
    building.write_bytes(b"a candidate dbt was building when the process was killed")
    spill = building.with_name(warehouse.BUILDING + ".tmp")
    spill.mkdir()
    (spill / "duckdb_temp_storage-0.tmp").write_bytes(b"what its queries spilled")
    pipeline.recover(settings, NOW)
    assert not building.exists() and not spill.exists()

    candidate = settings.candidates_dir / "20261102T020000-abcdef01.duckdb"
    settings.duckdb(candidate).close()
    with warehouse.building_name(settings, candidate) as path:
        # a cleanup that does not wait for the build's lock must leave its file alone
        assert pipeline.clean_candidates(settings, NOW, keep=set()) == []
        assert path.exists()
    assert candidate.exists()


def test_a_failed_build_leaves_its_candidate_under_its_own_name_and_no_build_files(settings):
    candidate = settings.candidates_dir / "20261102T020000-abcdef01.duckdb"
    settings.duckdb(candidate).close()
    building = settings.candidates_dir / warehouse.BUILDING

    with (
        pytest.raises(warehouse.DbtBuildFailed, match="planted"),
        warehouse.building_name(settings, candidate) as path,
    ):
        path.with_name(warehouse.BUILDING + ".wal").write_bytes(b"a failed build's log")
        raise warehouse.DbtBuildFailed("planted: dbt build returned 1")

    assert candidate.exists()  # not published: the caller raises, and recovery ages it out
    assert not [p for p in settings.candidates_dir.iterdir() if p.name.startswith(building.name)]
