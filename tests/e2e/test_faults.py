"""Crashes and backfills with real processes: `collectwatch run` as a subprocess, SIGKILLed
(by itself, at a named fault point: COLLECTWATCH_FAULT_AT) during dbt build, during the
gate, during publish and between the renames.

After every kill the last good publication (latest.json and every published file) and the
published warehouse are byte-identical to before, and the next run — which starts by
recovering — leaves none of the killed run's leftovers behind. The last rerun succeeds,
completes the release the last kill interrupted, and cleans up. Backfill: a range of
periods runs in one go, and only the period whose inputs changed gets a new version.

Tests in this module run in order over one data folder (each builds on the last).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from collectwatch.config import Settings
from collectwatch.faults import FAULT_ENV, FAULT_POINTS
from collectwatch.files import sha256_file
from collectwatch.generate import generate_month

pytestmark = pytest.mark.e2e
PERIODS = ("2026-09", "2026-10")
CHANGED = "2026-10"  # the later month: 2026-09's figures cannot depend on it
AS_OF = "2026-11-10T09:00:00+08:00"
COLLECTWATCH = Path(sys.executable).with_name("collectwatch")


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    return Settings.from_env().with_data_dir(tmp_path_factory.mktemp("faults") / "data")


@pytest.fixture(scope="module")
def submitted(settings, tmp_path_factory):
    months = {}
    for seed, period in enumerate(PERIODS, start=11):
        month = generate_month(settings, period, tmp_path_factory.mktemp(period), seed=seed)
        shutil.copytree(
            month.out_dir,
            settings.landing_dir,
            ignore=shutil.ignore_patterns("*.json"),
            dirs_exist_ok=True,
        )
        months[period] = month
    return months


def _run(settings: Settings, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """`collectwatch run` in its own process group; after a kill, the group goes too (the
    dbt child a killed worker leaves behind)."""
    env = {**os.environ, "COLLECTWATCH_DATA_DIR": str(settings.data_dir)}
    env.pop(FAULT_ENV, None)
    if fault:
        env[FAULT_ENV] = fault
    log = settings.data_dir.parent / f"run-{fault or 'clean'}.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [str(COLLECTWATCH), "run", *args, "--as-of", AS_OF],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        process.wait(timeout=900)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(process.args, process.returncode, log.read_text())


def _snapshot(settings: Settings) -> dict[str, str]:
    """What readers rely on: the warehouse, latest.json and every published file."""
    files = {"warehouse": sha256_file(settings.warehouse_path)}
    for period in PERIODS:
        folder = settings.publish_dir / period
        pointer = json.loads((folder / "latest.json").read_text())
        files[f"{period}/latest.json"] = sha256_file(folder / "latest.json")
        for path in sorted((folder / pointer["path"]).rglob("*")):
            if path.is_file():
                files[str(path.relative_to(settings.publish_dir))] = sha256_file(path)
    return files


def _leftovers(settings: Settings) -> set[str]:
    """What an interrupted run leaves: staging, candidate databases, a pending release."""
    found = {str(p) for p in settings.publish_dir.glob("*/.staging-*")}
    found |= {str(p) for p in settings.candidates_dir.glob("*.duckdb*")}
    if settings.release_journal.exists():
        found.add(str(settings.release_journal))
    return found


@pytest.fixture(scope="module")
def baseline(settings, submitted):
    """The first night, a backfill over a range through the CLI."""
    result = _run(settings, "--from", PERIODS[0], "--to", PERIODS[-1])
    assert result.returncode == 0, result.stdout[-3000:]
    return {"snapshot": _snapshot(settings), "leftovers": set()}


def test_a_backfill_range_publishes_every_period(settings, baseline):
    for period in PERIODS:
        pointer = json.loads((settings.publish_dir / period / "latest.json").read_text())
        assert pointer["version"] == 1
        manifest = json.loads((settings.publish_dir / period / "v1" / "manifest.json").read_text())
        assert manifest["period"] == period and manifest["gate"]["passed"] is True
        # submission ids: <USCC>-<YYYY>-<MM>-<type>-<sequence>
        assert {"-".join(s.split("-")[1:3]) for s in manifest["input_submissions"]} == {period}
    assert _leftovers(settings) == set()


def _resubmit_changed_portfolio(settings: Settings, month) -> str:
    """A lender corrects one overdue balance of the later month (a new version)."""
    original = next(p for p in month.files if p.name.startswith("lender_portfolio__"))
    rows = pd.read_csv(original, dtype=str, keep_default_na=False)
    overdue = rows.index[rows["bucket"] != "M0"][0]
    rows.loc[overdue, "balance"] = str(Decimal(rows.loc[overdue, "balance"]) + Decimal("100.00"))
    target = settings.landing_dir / original.parent.name / original.name
    target.parent.mkdir(parents=True, exist_ok=True)
    rows.to_csv(target, index=False)
    return original.name.split("__")[1]


@pytest.mark.parametrize("fault", FAULT_POINTS)
def test_a_kill_leaves_the_last_good_night_intact(settings, submitted, baseline, fault):
    if fault == FAULT_POINTS[0]:
        _resubmit_changed_portfolio(settings, submitted[CHANGED])
    result = _run(settings, "--period", PERIODS[0], "--period", PERIODS[1], fault=fault)
    assert result.returncode == -signal.SIGKILL, result.stdout[-3000:]
    after = _snapshot(settings)
    assert after == baseline["snapshot"], "the last good publication or warehouse changed"
    leftovers = _leftovers(settings)
    # This run recovered first: nothing the previous kill left is still there.
    assert not (leftovers & baseline["leftovers"]), leftovers & baseline["leftovers"]
    assert leftovers, "the kill came mid-run: it must have left its candidate behind"
    baseline["leftovers"] = leftovers
    if fault == "release.between_renames":
        orphan = settings.publish_dir / CHANGED / "v2"
        assert orphan.is_dir() and settings.release_journal.exists()
        journal = json.loads(settings.release_journal.read_text())
        assert [version["period"] for version in journal["versions"]] == [CHANGED], _changed_files(
            settings, PERIODS[0]
        )


def _changed_files(settings: Settings, period: str) -> list[str]:
    """Files of a period's newest version (published or not) that differ from v1."""
    folder = settings.publish_dir / period
    newest = max((p for p in folder.glob("v*") if p.is_dir()), key=lambda p: int(p.name[1:]))
    first = json.loads((folder / "v1" / "manifest.json").read_text())["files"]
    return sorted(
        relative
        for relative, entry in json.loads((newest / "manifest.json").read_text())["files"].items()
        if first.get(relative, {}).get("sha256") != entry["sha256"]
    )


def test_a_rerun_completes_the_interrupted_release_and_cleans_up(settings, baseline):
    result = _run(settings, "--period", PERIODS[0], "--period", PERIODS[1])
    assert result.returncode == 0, result.stdout[-3000:]
    assert _leftovers(settings) == set()
    lock = settings.warehouse_path.parent / ".release.lock"
    with open(lock, "a") as handle:  # no lock survives its killed holder
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    # Backfill: only the period whose inputs changed has a new version.
    unchanged = json.loads((settings.publish_dir / PERIODS[0] / "latest.json").read_text())
    assert unchanged["version"] == 1, _changed_files(settings, PERIODS[0])
    assert sorted(p.name for p in (settings.publish_dir / PERIODS[0]).iterdir()) == [
        "latest.json", "v1",
    ]  # fmt: skip
    changed = json.loads((settings.publish_dir / CHANGED / "latest.json").read_text())
    assert changed["version"] == 2
    manifest = json.loads((settings.publish_dir / CHANGED / "v2" / "manifest.json").read_text())
    submissions = manifest["previous"]["submissions"]
    assert [s.rsplit("-", 1)[0] for s in submissions["added"]] == [
        s.rsplit("-", 1)[0] for s in submissions["removed"]
    ]
    assert len(submissions["added"]) == 1 and submissions["added"][0].endswith("-002")
    for relative, entry in manifest["files"].items():
        assert sha256_file(settings.publish_dir / CHANGED / "v2" / relative) == entry["sha256"]
    # The published warehouse now holds the new night.
    assert sha256_file(settings.warehouse_path) != baseline["snapshot"]["warehouse"]
