"""Analysts never see a half-built night: a separate reader process queries the published
warehouse read-only in a loop (the README's one-liner) while the warehouse is swapped 25
times; it sees no error and never two versions at once."""

from __future__ import annotations

import queue
import shutil
import subprocess
import sys
import threading

import duckdb
import pytest

from collectwatch.config import Settings
from collectwatch.warehouse import swap_in

pytestmark = pytest.mark.e2e
SWAPS = 25
READER = r"""
import sys, duckdb
path = sys.argv[1]
for line in sys.stdin:  # one query round per line the test sends; EOF ends the reader
    try:
        con = duckdb.connect(path, read_only=True)  # the analysts' one-liner
        together = con.execute(
            "select m.version, max(f.version), count(*) from release_marker m, figures f "
            "group by m.version"
        ).fetchall()
        marker = con.execute("select version from release_marker").fetchone()[0]
        figures = con.execute("select min(version), max(version) from figures").fetchone()
        con.close()
        versions = {together[0][0], together[0][1], marker, *figures}
        print(" ".join(str(v) for v in sorted(versions)), together[0][2], flush=True)
    except Exception as error:
        print("ERROR", repr(error).replace("\n", " "), flush=True)
"""


def _candidate(settings: Settings, template, version: int):
    """A candidate carrying ``version`` in two tables (200,000 rows in one of them)."""
    path = settings.candidates_dir / f"v{version}.duckdb"
    shutil.copyfile(template, path)
    con = duckdb.connect(str(path))
    con.execute("update release_marker set version = ?", [version])
    con.execute("update figures set version = ?", [version])
    con.close()
    return path


@pytest.fixture
def settings(tmp_path):
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    settings.ensure_dirs()
    template = tmp_path / "template.duckdb"
    con = duckdb.connect(str(template))
    con.execute("create table release_marker as select 0 as version")
    con.execute("create table figures as select range as id, 0 as version from range(200000)")
    con.close()
    shutil.copyfile(template, settings.warehouse_path)
    return settings


def _reader(settings: Settings):
    process = subprocess.Popen(
        [sys.executable, "-c", READER, str(settings.warehouse_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in process.stdout], daemon=True).start()
    return process, lines


def _ask(process, lines) -> str:
    process.stdin.write("query\n")
    process.stdin.flush()
    return lines.get(timeout=120).strip()


def test_a_reader_never_errs_nor_sees_two_versions_during_swaps(settings, tmp_path):
    template = tmp_path / "template.duckdb"
    candidates = [_candidate(settings, template, version) for version in range(1, SWAPS + 1)]
    process, lines = _reader(settings)
    seen = [_ask(process, lines)]
    try:
        for version, candidate in enumerate(candidates, start=1):
            # Keep the reader querying while the swap happens...
            process.stdin.write("query\n" * 3)
            process.stdin.flush()
            swap_in(settings, candidate)
            seen += [lines.get(timeout=120).strip() for _ in range(3)]
            # ...and once after it: a new reader must see the new version.
            after = _ask(process, lines)
            seen.append(after)
            assert after == f"{version} 200000", after
    finally:
        process.stdin.close()
        process.wait(timeout=60)
    assert process.returncode == 0
    errors = [line for line in seen if line.startswith("ERROR")]
    assert errors == []
    mixed = [line for line in seen if len(line.split()) != 2]
    assert mixed == [], "a reader saw two versions at once"
    assert len(seen) == 1 + SWAPS * 4
    # Every reading was one whole version, in order of the swaps.
    versions = [int(line.split()[0]) for line in seen]
    assert versions == sorted(versions) and versions[-1] == SWAPS


def test_a_read_only_connection_cannot_write(settings):
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    with pytest.raises(duckdb.Error, match="read-only"):
        con.execute("create table scribble (x integer)")
    con.close()
