"""Atomic writes: every file is flushed before it is renamed into place, and its folder
after the renames (a crash leaves the old file or the new one, never half of one)."""

from __future__ import annotations

import os

from collectwatch.files import atomic_write_files


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
