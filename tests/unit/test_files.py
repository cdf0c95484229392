"""Atomic writes: every file is flushed before it is renamed into place, and its folder
after the renames (a crash leaves the old file or the new one, never half of one). A landed
file's digest: its hash, whether it is ASCII, its lines, from one read."""

from __future__ import annotations

import hashlib
import os

import duckdb
import pytest

from collectwatch.config import connect_duckdb
from collectwatch.files import CHUNK, atomic_copy, atomic_write_files, digest_file
from collectwatch.raw import write_parquet


def test_files_are_flushed_renamed_then_their_folders_flushed_once(tmp_path, monkeypatch):
    reports, other = tmp_path / "reports", tmp_path / "other"
    (reports / "r1.json").parent.mkdir()
    (reports / "r1.json").write_bytes(b"old")
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(source, destination):
        events.append(("rename", str(source), str(destination)))
        real_replace(source, destination)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    contents = {
        reports / "r1.json": b"{}",
        reports / "r1.csv": b"a,b\r\n",
        reports / "r1.html": b"<p>",
        other / "x.bin": b"\x00",
    }
    atomic_write_files(contents)

    assert {path: path.read_bytes() for path in contents} == contents
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        p.name for p in contents
    )  # no temporary file left
    renames = [e for e in events if e[0] == "rename"]
    assert [e[2] for e in renames] == [str(path) for path in contents]
    first_rename = events.index(renames[0])
    # each temporary file flushed before any rename; each folder once, after the renames
    assert sorted(e[1] for e in events[:first_rename]) == sorted(e[1] for e in renames)
    assert sorted(e[1] for e in events[first_rename + len(renames) :]) == sorted(
        [str(reports), str(other)]
    )


def _everything_in(folder):
    return sorted(path.name for path in folder.iterdir())


def test_a_failed_parquet_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "raw" / "v1.parquet"
    con = connect_duckdb()  # the product's settings: see test_duckdb_settings
    write_parquet(con, "select 1 as x", target)
    before = target.read_bytes()
    # a query that fails halfway (DuckDB removes its own partial file) ...
    failing = (
        "select case when i < 200000 then i::varchar else 'x' end::int from range(300000) t(i)"
    )
    with pytest.raises(duckdb.ConversionException):
        write_parquet(con, failing, target)
    assert _everything_in(target.parent) == ["v1.parquet"]

    # ... and a file written in full that cannot be flushed (a device error)
    def fsync(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError):
        write_parquet(con, "select 2 as x", target)
    assert _everything_in(target.parent) == ["v1.parquet"]
    assert target.read_bytes() == before


def test_a_failed_copy_or_write_leaves_no_temporary(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_copy(tmp_path / "missing", tmp_path / "out" / "copy")
    assert _everything_in(tmp_path / "out") == []
    (tmp_path / "blocker").write_bytes(b"a file where a folder should be")
    with pytest.raises(OSError):
        atomic_write_files(
            {tmp_path / "out" / "first.json": b"{}", tmp_path / "blocker" / "x.json": b"{}"}
        )
    assert _everything_in(tmp_path / "out") == []  # the first file's temporary is gone too


@pytest.mark.parametrize(
    ("content", "ascii_only", "lines"),
    [
        (b"a,b\n1,2\n", True, 2),
        (b"a,b\n1,2", True, 2),  # a last line without a line feed counts
        (b"", True, 0),
        # one byte that is not ASCII, in the second chunk read (after CHUNK bytes)
        (b"x" * CHUNK + "\n１\n".encode(), False, 2),
        (b"x" * (CHUNK - 1) + b"\n" + b"\xa0", False, 2),
    ],
)
def test_a_files_digest_is_its_hash_whether_it_is_ascii_and_its_lines(
    tmp_path, content, ascii_only, lines
):
    path = tmp_path / "landed.csv"
    path.write_bytes(content)
    counted = digest_file(path, count_lines=True)
    assert counted.sha256 == hashlib.sha256(content).hexdigest()
    assert (counted.ascii_only, counted.lines) == (ascii_only, lines)
    uncounted = digest_file(path)
    assert (uncounted.sha256, uncounted.ascii_only, uncounted.lines) == (
        counted.sha256,
        ascii_only,
        None,
    )
