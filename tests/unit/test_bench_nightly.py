"""The pipeline benchmark's corrections (bench/nightly.py): which agency's contact log is
corrected, what changes in it, and what the build stage is asked to rebuild. No timing."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from collectwatch.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import nightly  # bench/ is scripts, not a package

PERIOD = "2026-10"
TARGETS = ["debtor", "emergency_contact", "family"]


def _log(source, agency: str, rows: int):
    """A contact log of ``rows`` rows (its size grows with them) under source/<agency>/."""
    path = source / agency / f"contact_events__{agency}__{PERIOD}.csv"
    path.parent.mkdir(parents=True)
    events = pd.DataFrame(
        {
            "period": PERIOD,
            "agency_uscc": agency,
            "event_id": [f"E{i}" for i in range(rows)],
            "target": [TARGETS[i % 3] for i in range(rows)],
        }
    )
    events.to_csv(path, index=False)
    return path


def test_the_late_correction_is_the_second_largest_log_and_only_its_targets_change(tmp_path):
    source = tmp_path / "source"
    largest = _log(source, "91110000MA00000001", 30)
    second = _log(source, "91110000MA00000002", 20)
    _log(source, "91110000MA00000003", 10)
    bench = nightly.Bench(tmp_path / "work", PERIOD, {}, tmp_path / "results.json")

    agency, rows = nightly.resubmit(bench, source, rank=2)

    assert (agency, rows) == ("91110000MA00000002", 20)
    landed = bench.settings.landing_dir / agency / second.name
    corrected = pd.read_csv(landed, dtype=str)
    original = pd.read_csv(second, dtype=str)
    assert (corrected["event_id"] == original["event_id"]).all()
    assert "emergency_contact" not in set(corrected["target"])
    moved = original["target"] == "emergency_contact"
    assert moved.any() and (corrected.loc[moved, "target"] == "debtor").all()
    assert (corrected.loc[~moved, "target"] == original.loc[~moved, "target"]).all()
    assert landed.stat().st_mtime == second.stat().st_mtime  # the original's receipt time
    assert nightly.resubmit(bench, source)[0] == largest.parent.name  # the resubmission's


def test_only_the_build_stage_is_asked_for_the_late_periods(tmp_path, monkeypatch):
    commands = []

    def timed(command, env):
        commands.append(command)
        out = command[command.index("--output") + 1]
        (tmp_path / "work" / "results").mkdir(parents=True, exist_ok=True)
        Path(out).write_text("{}")
        return {"stdout": "", "wall_s": 1.0}

    monkeypatch.setattr(nightly, "timed", timed)
    bench = nightly.Bench(tmp_path / "work", "2026-11", {}, tmp_path / "results.json")
    bench.late_periods = [PERIOD]

    bench.stage("build")
    bench.stage("export", "build")

    build, export = commands
    assert build[build.index("--late-period") + 1] == PERIOD
    assert build[build.index("--period") + 1] == "2026-11"
    assert "--late-period" not in export
