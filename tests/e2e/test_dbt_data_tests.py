"""End to end: the project's own generic data tests fail on the defect they exist for, run
by real dbt against a copy of the warehouse the shared pipeline run published."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections import Counter

import duckdb
import pytest

from collectwatch.publish import latest_manifest
from collectwatch.raw import write_current
from collectwatch.warehouse import (
    BUILDING,
    PARSE_FILE,
    RUN_VALUES_ENV,
    dbt_command,
    dbt_environment,
    dbt_run_dir,
    reuse_last_parse,
)

from .conftest import AS_OF, BASE_PERIOD, PERIOD, hash_tables, operators

pytestmark = pytest.mark.e2e


def _dbt(
    settings,
    warehouse,
    target,
    selector: str,
    changed_submitters=None,
    verb: str = "test",
    periods=(BASE_PERIOD, PERIOD),
    options: tuple[str, ...] = (),
    whole_periods=(),
) -> subprocess.CompletedProcess:
    run_values = {
        "periods": list(periods),
        "as_of": AS_OF,
        "changed_submitters": changed_submitters,
        "whole_periods": list(whole_periods),
    }
    command = [*dbt_command(settings, verb, target), "--select", selector, *options]
    if not (target / "target" / PARSE_FILE).exists():
        # as a night's build does: dbt parses only what changed since the shared run's
        # parse, not the whole project again (~4 s of each test)
        reuse_last_parse(settings, target / "target")
    return subprocess.run(
        command,
        env={**dbt_environment(settings, warehouse), RUN_VALUES_ENV: json.dumps(run_values)},
        capture_output=True,
        text=True,
        check=False,
    )


def _compiled(target, name: str) -> str:
    """The SQL dbt last compiled for the node whose file is ``name``.sql."""
    [path] = (target / "target" / "compiled").rglob(f"{name}.sql")
    return path.read_text()


def _passes_then_fails(settings, tmp_path, selector: str, defects: list[str], failing: str):
    """The selected tests pass on a copy of the published warehouse, and fail on a copy
    with each defect planted, naming the failing test."""
    warehouse = tmp_path / BUILDING  # the name dbt's profile builds under
    shutil.copy(settings.warehouse_path, warehouse)
    passed = _dbt(settings, warehouse, tmp_path, selector)
    assert passed.returncode == 0, passed.stdout[-3000:]
    assert "ERROR=0" in passed.stdout and "PASS=0" not in passed.stdout

    for defect in defects:
        copy = tmp_path / "defect" / BUILDING
        copy.parent.mkdir(exist_ok=True)
        shutil.copy(warehouse, copy)
        with duckdb.connect(str(copy)) as con:
            con.execute(defect)
        failed = _dbt(settings, copy, tmp_path, selector)
        assert failed.returncode != 0, defect
        assert f"FAIL 1 {failing}" in failed.stdout, failed.stdout[-3000:]


def test_a_lost_or_doubled_event_fails_the_flagged_events_row_count(first_run, settings, tmp_path):
    """int_contact_events_flagged must hold one row per event of stg_contact_events (test
    as_many_rows_as, which stands for its key test): it passes on the published warehouse
    and fails once an event is deleted from the flagged table, or one is doubled."""
    _passes_then_fails(
        settings,
        tmp_path,
        "int_contact_events_flagged,test_name:as_many_rows_as",
        [
            "delete from int_contact_events_flagged where rowid = (select min(rowid) from "
            f"int_contact_events_flagged where period = '{PERIOD}')",
            "insert into int_contact_events_flagged select * from int_contact_events_flagged "
            f"where period = '{BASE_PERIOD}' limit 1",
        ],
        "as_many_rows_as_int_contact_events_flagged",
    )


def test_a_repeated_key_fails_unique_combination(first_run, settings, tmp_path):
    """unique_combination groups by a hash of the key first: a row repeated in the conduct
    counts is still reported."""
    _passes_then_fails(
        settings,
        tmp_path,
        "int_conduct_by_agency_lender_prefecture,test_name:unique_combination",
        [
            "insert into int_conduct_by_agency_lender_prefecture select * from "
            f"int_conduct_by_agency_lender_prefecture where period = '{PERIOD}' limit 1"
        ],
        "unique_combination_int_conduct_by_agency_lender_prefecture",
    )


def _agencies(warehouse) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [
            row[0]
            for row in con.execute(
                "select agency_uscc from int_contact_events_flagged "
                f"where period = '{PERIOD}' group by 1 order by count(*) desc limit 2"
            ).fetchall()
        ]


def test_a_partial_builds_slice_tests_read_only_the_changed_agencys_raw_files(
    first_run, settings, tmp_path
):
    """In a partial build the flagged events' row-count test compares the changed agency's
    rows with stg_contact_events read from that agency's raw files only (macro
    rebuilt_slice): it passes on the published warehouse, so the file filter keeps every row
    of the slice; it fails when one of that agency's events is lost, and does not look at
    another agency's rows."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    changed, other = _agencies(warehouse)
    selector = "int_contact_events_flagged,test_name:as_many_rows_as"
    changed_submitters = {"contact_events": [changed]}

    passed = _dbt(settings, warehouse, tmp_path, selector, changed_submitters)
    assert passed.returncode == 0 and "PASS=1" in passed.stdout, passed.stdout[-3000:]
    compiled = _compiled(tmp_path, "as_many_rows_as_int_contact_ev*")
    assert f"contains(raw_file, '/submitter={changed}/')" in compiled
    assert other not in compiled

    for agency, fails in ((changed, True), (other, False)):
        copy = tmp_path / agency / BUILDING
        copy.parent.mkdir()
        shutil.copy(warehouse, copy)
        with duckdb.connect(str(copy)) as con:
            con.execute(
                "delete from int_contact_events_flagged where rowid = (select min(rowid) from "
                f"int_contact_events_flagged where period = '{PERIOD}' "
                f"and agency_uscc = '{agency}')"
            )
        result = _dbt(settings, copy, tmp_path, selector, changed_submitters)
        assert (result.returncode != 0) == fails, result.stdout[-3000:]


def test_a_nights_slice_tests_read_only_its_periods(first_run, settings, tmp_path):
    """A night's tests of the contact events read only the periods it builds, not every
    month the warehouse holds (which made the key test of stg_contact_events 7 -> 21 s
    on the second national month): an event lost from the month it builds fails the
    row-count test, one lost from the month before does not (that month was tested when it
    was built)."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    selector = (
        "stg_contact_events,test_name:unique_combination "
        "int_contact_events_flagged,test_name:as_many_rows_as"
    )
    passed = _dbt(settings, warehouse, tmp_path, selector, periods=[PERIOD])
    assert passed.returncode == 0 and "PASS=2 " in passed.stdout, passed.stdout[-3000:]
    for name in ("as_many_rows_as_int_contact_ev*", "unique_combination_stg_contact_*"):
        assert f"period in ('{PERIOD}')" in _compiled(tmp_path, name), name

    for period, fails in ((PERIOD, True), (BASE_PERIOD, False)):
        copy = tmp_path / period / BUILDING
        copy.parent.mkdir()
        shutil.copy(warehouse, copy)
        with duckdb.connect(str(copy)) as con:
            con.execute(
                "delete from int_contact_events_flagged where rowid = (select min(rowid) "
                f"from int_contact_events_flagged where period = '{period}')"
            )
        result = _dbt(settings, copy, tmp_path, selector, periods=[PERIOD])
        assert (result.returncode != 0) == fails, result.stdout[-3000:]


def test_a_nights_flagged_events_keep_the_events_off_every_hash_table(
    first_run, settings, tmp_path
):
    """The flagged events' query as a night runs it (incrementally, for one period): no
    hash join builds its table from the raw files. A filter DuckDB cannot estimate (a
    `contains` on the file name beside the period, as the slice tests use) made a month's
    58M events the hash table of their join to the regions, and the third national month
    ran out of memory at 4 GB."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    compiled = _dbt(settings, warehouse, tmp_path, "int_contact_events_flagged",
                    verb="compile", periods=[PERIOD])  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    sql = _compiled(tmp_path, "int_contact_events_flagged")
    assert f"period in ('{PERIOD}')" in sql  # the incremental query, not the whole table's
    with duckdb.connect(str(warehouse), read_only=True) as con:
        tables = hash_tables(con, sql)
    assert tables
    assert not [table for table in tables if "READ_PARQUET" in operators(table)], tables


def _flag_of_first_event(con, period: str) -> bool:
    return con.execute(
        "select is_postcard from int_contact_events_flagged "
        f"where period = '{period}' order by event_id limit 1"
    ).fetchone()[0]


def _tamper_first_event(con, period: str) -> None:
    con.execute(
        "update int_contact_events_flagged set is_postcard = not is_postcard "
        "where event_id = (select min(event_id) from int_contact_events_flagged "
        f"where period = '{period}') and period = '{period}'"
    )


def _scans(profile: dict, table: str) -> list[dict]:
    """The scans of ``table`` in an EXPLAIN ANALYZE (FORMAT JSON) profile."""
    found, nodes = [], list(profile["operator"])
    while nodes:
        node = nodes.pop()
        if node["type"] == "TABLE_SCAN" and node["extra_info"].get("Table", "").endswith(table):
            found.append(node)
        nodes.extend(node.get("children", []))
    return found


def test_a_night_with_a_new_month_and_a_late_correction_scans_only_their_rows(
    first_run, settings, tmp_path
):
    """A night that builds a new month whole beside one agency's late correction of a
    published month (macro rebuilt_slice_branches): each scan of the flagged events hands
    on the new month's rows or that agency's rows of the published month, never the rest of
    the published month. (One `or` across period and agency was evaluated above the scan,
    which handed on the whole published month to every read of the slice: 13 s more of a
    national night's 210 s build, bench/README.md 2026-12-07, late evening.)"""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    agency, _ = _agencies(warehouse)
    model = "int_conduct_by_agency_lender_prefecture"
    compiled = _dbt(settings, warehouse, tmp_path, model, {"contact_events": [agency]},
                    verb="compile", whole_periods=[PERIOD])  # fmt: skip
    assert compiled.returncode == 0, compiled.stdout[-3000:]
    sql = _compiled(tmp_path, model)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(_, profile)] = con.execute(f"explain (analyze, format json) {sql}").fetchall()
        # Either read of the events: every row, or the call-bombing episode starts only.
        branches = con.execute(
            f"""
            select count(*), count(*) filter (where starts_call_bombing_episode)
            from int_contact_events_flagged
            where period = '{PERIOD}' or (period = '{BASE_PERIOD}' and agency_uscc = '{agency}')
            group by period
            """
        ).fetchall()
        published = con.execute(
            f"select count(*) from int_contact_events_flagged where period = '{BASE_PERIOD}'"
        ).fetchone()[0]
    assert len(branches) == 2  # the agency has events in the published month too
    branch_rows = {rows for branch in branches for rows in branch}
    scans = _scans(json.loads(profile), "int_contact_events_flagged")
    handed_on = sorted(scan["intermediate_rows"] for scan in scans)
    assert scans and set(handed_on) <= branch_rows, (handed_on, branch_rows, published)
    assert min(branch_rows) < published  # the agency's rows are a slice of the month


def test_a_replace_slice_model_rebuilds_its_slice_in_place(first_run, settings, tmp_path):
    """Materialization replace_slice, built incrementally for one period: that period's rows
    are built again (a flag tampered with there is restored) straight into the table, with
    no temporary copy; another period's rows are not touched (a flag tampered with there
    stays). A model whose columns are no longer the table's fails, naming the column, and
    loses no row; --full-refresh builds it again."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        published = {p: _flag_of_first_event(con, p) for p in (BASE_PERIOD, PERIOD)}
        rows = con.execute("select count(*) from int_contact_events_flagged").fetchone()[0]
        for period in (BASE_PERIOD, PERIOD):
            _tamper_first_event(con, period)

    built = _dbt(settings, warehouse, tmp_path, "int_contact_events_flagged", verb="run",
                 periods=[PERIOD])  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert _flag_of_first_event(con, PERIOD) == published[PERIOD]
        assert _flag_of_first_event(con, BASE_PERIOD) != published[BASE_PERIOD]
        assert con.execute("select count(*) from int_contact_events_flagged").fetchone()[0] == rows
    [run_sql] = (tmp_path / "target" / "run").rglob("int_contact_events_flagged.sql")
    assert "insert into" in run_sql.read_text() and "__dbt_tmp" not in run_sql.read_text()

    with duckdb.connect(str(warehouse)) as con:
        con.execute("alter table int_contact_events_flagged add column stale_flag boolean")
    refused = _dbt(settings, warehouse, tmp_path, "int_contact_events_flagged", verb="run",
                   periods=[PERIOD])  # fmt: skip
    assert refused.returncode != 0
    assert "only in the table: stale_flag BOOLEAN" in refused.stdout, refused.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from int_contact_events_flagged").fetchone()[0] == rows

    rebuilt = _dbt(settings, warehouse, tmp_path, "int_contact_events_flagged", verb="run",
                   periods=[PERIOD], options=("--full-refresh",))  # fmt: skip
    assert rebuilt.returncode == 0, rebuilt.stdout[-3000:]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        columns = [c[0] for c in con.execute("describe int_contact_events_flagged").fetchall()]
        assert "stale_flag" not in columns
        assert {p: _flag_of_first_event(con, p) for p in (BASE_PERIOD, PERIOD)} == published
        assert con.execute("select count(*) from int_contact_events_flagged").fetchone()[0] == rows


def _complaints(con) -> dict[str, dict]:
    """int_complaints_deduplicated's rows by complaint key."""
    rows = con.execute("select * from int_complaints_deduplicated").fetchall()
    names = [c[0] for c in con.description]
    return {row[names.index("complaint_key")]: dict(zip(names, row, strict=True)) for row in rows}


def _referenced_key(con, period: str, offset: int) -> str:
    """A complaint with a hotline reference whose copies are all in ``period``."""
    return con.execute(
        "select complaint_key from int_complaints_deduplicated where regulator_ref is not null "
        f"and copy_periods = ['{period}'] order by complaint_key limit 1 offset {offset}"
    ).fetchone()[0]


def _plant_copy(con, key: str, period: str, complaint_id: str) -> None:
    """An agency's copy of complaint ``key`` filed in ``period``, in int_complaint_copies
    (what the night's build of the copies would hold after a resubmission)."""
    con.execute(
        "insert into int_complaint_copies by name select * replace ("
        f"'{period}' as period, 'agency' as source, '{complaint_id}' as complaint_id) "
        f"from int_complaint_copies where complaint_key = '{key}' limit 1"
    )


def test_a_complaint_is_rebuilt_from_its_copies_of_every_month(first_run, settings, tmp_path):
    """int_complaints_deduplicated is incremental by key (replace_slice, replaced_keys): a
    night rebuilds the complaints with a copy in its periods — now or before — from their
    copies of every month, and leaves the other rows as they are. Copies filed in another
    month are planted in int_complaint_copies: an earlier copy of a complaint joins it; a
    later copy joins a complaint kept the month before; a complaint whose copies in the
    night's month are withdrawn is rebuilt from its earlier copy; one with no copy left is
    gone. The result equals a full rebuild."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)

    def night(period: str, *options: str) -> dict[str, dict]:
        built = _dbt(settings, warehouse, tmp_path, "int_complaints_deduplicated", verb="run",
                     periods=[period], options=options)  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:]
        with duckdb.connect(str(warehouse), read_only=True) as con:
            return _complaints(con)

    with duckdb.connect(str(warehouse)) as con:
        joined, untouched = (
            _referenced_key(con, BASE_PERIOD, 0),
            _referenced_key(con, BASE_PERIOD, 1),
        )
        moved, withdrawn = _referenced_key(con, PERIOD, 0), _referenced_key(con, PERIOD, 1)
        published = _complaints(con)
        _plant_copy(con, moved, BASE_PERIOD, "planted-early")
    base_night = night(BASE_PERIOD)
    assert base_night[moved]["copy_periods"] == [BASE_PERIOD, PERIOD]
    assert base_night[moved]["copies"] == published[moved]["copies"] + 1
    assert base_night[moved]["period"] == PERIOD  # the hotline's record is still kept

    with duckdb.connect(str(warehouse)) as con:
        _plant_copy(con, joined, PERIOD, "planted-late")
        con.execute(
            f"delete from int_complaint_copies where complaint_key in ('{moved}', '{withdrawn}') "
            f"and period = '{PERIOD}'"
        )
        con.execute(
            "update int_complaints_deduplicated set category = 'tampered' "
            f"where complaint_key = '{untouched}'"
        )
    incremental = night(PERIOD)
    assert incremental[joined]["copy_periods"] == [BASE_PERIOD, PERIOD]
    assert incremental[joined]["copies"] == published[joined]["copies"] + 1
    assert incremental[joined]["period"] == BASE_PERIOD
    assert incremental[moved]["copy_periods"] == [BASE_PERIOD]
    assert (incremental[moved]["copies"], incremental[moved]["complaint_id"]) == (
        1,
        "planted-early",
    )
    assert withdrawn not in incremental
    assert incremental[untouched]["category"] == "tampered"  # a base-month row: not rewritten

    full = night(PERIOD, "--full-refresh")
    assert full[untouched]["category"] == published[untouched]["category"]
    full[untouched]["category"] = "tampered"
    assert incremental == full


def test_complaints_built_before_copy_periods_are_rebuilt_whole(first_run, settings, tmp_path):
    """A warehouse from before int_complaints_deduplicated had copy_periods (an upgrade): the
    night builds the table whole from the copies instead of failing on its columns, and
    the next night is incremental again."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        published = _complaints(con)
        con.execute("alter table int_complaints_deduplicated drop column copy_periods")
    for night in ("upgrade", "next"):
        built = _dbt(settings, warehouse, tmp_path, "int_complaints_deduplicated", verb="run",
                     periods=[PERIOD])  # fmt: skip
        assert built.returncode == 0, built.stdout[-3000:]
        [run_sql] = (tmp_path / "target" / "run").rglob("int_complaints_deduplicated.sql")
        assert ("list_has_any" in run_sql.read_text()) == (night == "next"), night
        with duckdb.connect(str(warehouse), read_only=True) as con:
            assert _complaints(con) == published, night


def test_a_nights_complaint_tests_read_the_complaints_with_a_copy_in_its_periods(
    first_run, settings, tmp_path
):
    """The deduplicated complaints' tests read the rows the night rebuilt (where
    "__rebuilt_periods_overlap__ copy_periods"): a complaint repeated among the base month's
    rows is not read by the next month's night (it was tested when it was built), one with a
    copy in the night's month fails it."""
    selector = "int_complaints_deduplicated,test_name:unique_combination"
    failing = "unique_combination_int_complaints_deduplicated_complaint_key"
    for period, expected_failures in ((BASE_PERIOD, 0), (PERIOD, 1)):
        warehouse = tmp_path / period / BUILDING
        warehouse.parent.mkdir()
        shutil.copy(settings.warehouse_path, warehouse)
        with duckdb.connect(str(warehouse)) as con:
            con.execute(
                "insert into int_complaints_deduplicated select * from "
                f"int_complaints_deduplicated where copy_periods = ['{period}'] limit 1"
            )
        tested = _dbt(settings, warehouse, tmp_path, selector, periods=[PERIOD])
        assert f"PASS={1 - expected_failures} " in tested.stdout, tested.stdout[-3000:]
        assert (f"FAIL 1 {failing}" in tested.stdout) == bool(expected_failures)


def test_staging_reads_files_of_an_older_contract_by_column_name(first_run, settings, tmp_path):
    """A staging view reads its raw files as one schema when they all have the same columns
    (no union_by_name, which reads every file's schema at each query); when one file lacks a
    column (written under an older contract), it is read by name and that file's rows hold
    nulls there, the other files' rows their values."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    selector = "stg_contact_events"
    built = _dbt(settings, warehouse, tmp_path, selector, verb="run")
    assert built.returncode == 0, built.stdout[-3000:]
    assert "union_by_name = false" in _compiled(tmp_path, selector)

    older = _copied_raw_zone(settings, tmp_path / "older")
    with duckdb.connect() as con:
        [(raw_path,)] = con.execute(
            f"select raw_path from read_parquet('{older.current_manifest}') "
            "where submission_type = 'contact_events' order by raw_path limit 1"
        ).fetchall()
        path = older.raw_dir / raw_path
        rows = con.execute(f"select count(*) from read_parquet('{path}')").fetchone()[0]
        con.execute(
            f"copy (select * exclude (location_type) from read_parquet('{path}')) "
            f"to '{path}.tmp' (format parquet)"
        )
    (path.parent / f"{path.name}.tmp").replace(path)
    # The manifest as written before signatures were recorded: each is read from its file.
    older.current_manifest.unlink()
    write_current(older)
    built = _dbt(older, warehouse, tmp_path, selector, verb="run")
    assert built.returncode == 0, built.stdout[-3000:]
    assert "union_by_name = true" in _compiled(tmp_path, selector)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        by_file = con.execute(
            "select raw_file = ? as older, count(*), count(location_type) "
            "from stg_contact_events group by 1 order by 1",
            [str(path)],
        ).fetchall()
    assert by_file[1] == (True, rows, 0)
    assert by_file[0][0] is False and by_file[0][2] == by_file[0][1] > 0


def _copied_raw_zone(settings, data_dir):
    """Settings over a copy of the shared run's raw zone and state store."""
    copied = settings.with_data_dir(data_dir)
    shutil.copytree(settings.raw_dir, copied.raw_dir)
    shutil.copytree(settings.submissions_db.parent, copied.submissions_db.parent)
    return copied


def test_a_staging_read_of_one_period_opens_only_that_periods_files(first_run, settings, tmp_path):
    """A staging view reads each period's files apart (macro current_submissions): a filter
    on the period drops the other periods' reads before any file is opened, so a night's
    reads do not grow with the months the raw zone keeps. Proved with the earlier month's
    raw files made unreadable (all but the first, which creating the view reads): the later
    month still reads, and its tests still pass; the earlier month, or every month, does
    not read."""
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    damaged = _copied_raw_zone(settings, tmp_path / "damaged")
    # all but the first: creating the view reads the first file of each period's read
    earlier = sorted(
        (damaged.raw_dir / "contact_events" / f"period={BASE_PERIOD}").rglob("*.parquet")
    )
    earlier = earlier[1:]
    assert earlier
    for path in earlier:
        path.write_bytes(b"not parquet")
    selector = "stg_contact_events"
    built = _dbt(damaged, warehouse, tmp_path, selector, verb="build", periods=[PERIOD])
    assert built.returncode == 0 and "ERROR=0" in built.stdout, built.stdout[-3000:]
    assert "PASS=0" not in built.stdout

    with duckdb.connect(str(warehouse), read_only=True) as con:
        count = "select count(*) from stg_contact_events where period = ?"
        assert con.execute(count, [PERIOD]).fetchone()[0] > 0
        for query, parameters in (
            (count, [BASE_PERIOD]),
            ("select count(*) from stg_contact_events", []),
        ):
            with pytest.raises(duckdb.Error, match=re.escape(f"period={BASE_PERIOD}/")):
                con.execute(query, parameters).fetchall()


def _declared_constraints(settings) -> dict[str, Counter]:
    """Each contracted model's column constraints as its YAML declares them (the manifest
    of the build that published the shared run), by DuckDB's constraint type."""
    run_id = latest_manifest(settings, PERIOD)["run_id"]
    nodes = json.loads((dbt_run_dir(settings, run_id) / "target" / "manifest.json").read_text())
    declared = {}
    for node in nodes["nodes"].values():
        if node["resource_type"] == "model" and node["config"]["contract"]["enforced"]:
            declared[node["name"]] = Counter(
                (column, constraint["type"].replace("_", " ").upper())
                for column, spec in node["columns"].items()
                for constraint in spec["constraints"]
            )
    return declared


def test_every_contracted_mart_checks_its_declared_constraints_in_duckdb(
    first_run, settings, tmp_path
):
    """The published warehouse's contracted marts carry, as DuckDB constraints, every NOT
    NULL and CHECK (bounds, accepted values) their columns declare — what replaced those
    columns' data tests — and DuckDB refuses a row that breaks one, naming the table and
    the rule, while the same row unbroken goes in."""
    declared = _declared_constraints(settings)
    assert len(declared) >= 10 and sum(map(len, declared.values())) >= 200
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "select table_name, unnest(constraint_column_names), constraint_type "
            "from duckdb_constraints() where constraint_type in ('NOT NULL', 'CHECK')"
        ).fetchall()
    built = {table: Counter() for table in declared}
    for table, column, kind in rows:
        if table in built:
            built[table][(column, kind)] += 1
    assert built == declared

    table = "public_recovery_by_bucket"
    row = f"select * from {table} where accounts is not null limit 1"
    broken = {
        "accounts": ("-1", "CHECK((accounts BETWEEN 0 AND 1e15))"),
        "level": ("'county'", "CHECK((\"level\" IN ('national', 'province')))"),
        "period": ("null", f"NOT NULL constraint failed: {table}.period"),
    }
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(settings.warehouse_path, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute(f"insert into {table} {row}")  # a row within every rule goes in
        for column, (value, rule) in broken.items():
            with pytest.raises(duckdb.ConstraintException) as refused:
                con.execute(
                    f"insert into {table} select * replace ({value} as {column}) from ({row})"
                )
            assert rule in str(refused.value) and table in str(refused.value), column


def test_a_mart_built_before_its_constraints_fails_its_build_naming_them(
    first_run, settings, tmp_path
):
    """A table takes its constraints only when it is created: a contracted mart a warehouse
    holds from before a constraint was declared fails its model (post-hook
    assert_declared_constraints) naming what is missing, instead of going on without it;
    the same model on the published warehouse builds."""
    table = "public_recovery_by_bucket"
    warehouse = tmp_path / BUILDING
    shutil.copy(settings.warehouse_path, warehouse)
    built = _dbt(settings, warehouse, tmp_path, table, verb="run")
    assert built.returncode == 0 and "PASS=1 " in built.stdout, built.stdout[-3000:]

    with duckdb.connect(str(warehouse)) as con:  # as an older release created it
        con.execute(f"create table {table}__old as from {table}")
        con.execute(f"drop table {table}")
        con.execute(f"alter table {table}__old rename to {table}")
    failed = _dbt(settings, warehouse, tmp_path, table, verb="run")
    assert failed.returncode != 0
    output = " ".join(failed.stdout.split())
    assert f"{table} was created before its contract's constraints changed" in output
    assert "declared but missing: CHECK((accounts BETWEEN 0 AND 1e15)) on accounts" in output
    assert "declared but missing: NOT NULL on period" in output
    assert "full refresh" in output
