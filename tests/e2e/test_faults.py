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

from collectwatch import tables, uscc
from collectwatch.config import Settings
from collectwatch.faults import FAULT_ENV, FAULT_POINTS
from collectwatch.files import sha256_file
from collectwatch.generate import generate_month

# Six full runs of two periods: a CI step of its own (make test-crash), beside make test.
pytestmark = [pytest.mark.e2e, pytest.mark.crash]
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
        _register_silent_agency(settings, month)
        shutil.copytree(
            month.out_dir,
            settings.landing_dir,
            ignore=shutil.ignore_patterns("*.json"),
            dirs_exist_ok=True,
        )
        months[period] = month
    return months


def _registry(month) -> Path:
    return next(p for p in month.files if p.name.startswith("institution_registry__"))


def _placed(settings: Settings) -> pd.DataFrame:
    """Region code -> its province and prefecture-equivalent (counties roll up)."""
    seed = pd.read_csv(settings.region_seed, dtype=str)
    seed["prefecture"] = seed["prefecture_code"].fillna(seed["region_code"])
    return seed.rename(columns={"province_code": "province"})[
        ["region_code", "level", "province", "prefecture"]
    ]


def _silent_prefecture(settings: Settings, month) -> str:
    """The first prefecture of a province none of the month's files has a row in."""
    used = set()
    for path in month.files:
        if not path.name.startswith("institution_registry__"):
            used |= set(pd.read_csv(path, dtype=str, usecols=["region_code"])["region_code"])
    regions = _placed(settings)
    busy = set(regions.loc[regions["region_code"].isin(used), "province"])
    prefectures = regions[(regions["level"] == "prefecture") & ~regions["province"].isin(busy)]
    return prefectures["region_code"].min()


def _register_silent_agency(settings: Settings, month) -> None:
    """Plant an expected reporter that reports nothing: an active agency registered in a
    province without any data. Its province and prefecture must still be published, as
    zeros (and its missing submissions lower coverage, still above the floor)."""
    registry_path = _registry(month)
    registry = pd.read_csv(registry_path, dtype=str, keep_default_na=False)
    prefecture = _silent_prefecture(settings, month)
    first17 = f"91{prefecture}MAPLANTED"
    template = registry[registry["role"] == "agency"].iloc[0]
    silent = template.copy()
    silent[["uscc", "region_code", "status", "licence_no"]] = (
        first17 + uscc.check_character(first17),
        prefecture,
        "active",
        f"A-{prefecture}-PLANTED",
    )
    silent[["name_zh", "name_en"]] = "合成静默催收有限公司", "Synthetic Silent Agency Co., Ltd."
    pd.concat([registry, silent.to_frame().T]).to_csv(registry_path, index=False)


def _run(settings: Settings, *args: str, fault: str | None = None) -> subprocess.CompletedProcess:
    """`collectwatch run` in its own process group; after a kill, the group goes too (the
    dbt child a killed worker leaves behind)."""
    # The crash tests rebuild the same models five times: dbt's unit tests (formulas, run by
    # every other pipeline test) would add a minute to each build and prove nothing here.
    env = {
        **os.environ,
        "COLLECTWATCH_DATA_DIR": str(settings.data_dir),
        "COLLECTWATCH_DBT_UNIT_TESTS": "false",
    }
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


def _expected_regions(settings: Settings, month) -> set[tuple[str, str]]:
    """(level, region_code) every complete table must have, computed from the submitted
    files: the nation, every province, and every prefecture with an active registered
    institution or any submitted row."""
    regions = _placed(settings)
    registry = pd.read_csv(_registry(month), dtype=str)
    codes = set(registry.loc[registry["status"] == "active", "region_code"])
    for path in month.files:
        if not path.name.startswith("institution_registry__"):
            codes |= set(pd.read_csv(path, dtype=str, usecols=["region_code"])["region_code"])
    prefectures = set(regions.loc[regions["region_code"].isin(codes), "prefecture"])
    provinces = set(regions.loc[regions["level"] == "province", "region_code"])
    return (
        {("national", tables.NATIONAL_CODE)}
        | {("province", code) for code in provinces}
        | {("prefecture", code) for code in prefectures}
    )


def test_published_regions_are_the_expected_ones(settings, submitted, baseline):
    for period in PERIODS:
        month = submitted[period]
        expected = _expected_regions(settings, month)
        silent = _silent_prefecture(settings, month)
        silent_province = silent[:2] + "0000"
        version = settings.publish_dir / period / "v1"
        for table in (t for t in tables.PUBLISHED_TABLES if t.every_expected_region):
            for scope in table.scopes:
                frame = pd.read_parquet(version / scope / f"{table.name}.parquet")
                levels = tables.LEVELS if scope == "internal" else tables.PUBLIC_LEVELS
                wanted = {cell for cell in expected if cell[0] in levels}
                published = set(zip(frame["level"], frame["region_code"], strict=True))
                assert published == wanted, (table.name, scope, published ^ wanted)
                # every breakdown value for every region
                if table.breakdown:
                    per_region = frame.groupby("region_code")[list(table.breakdown)].nunique()
                    assert per_region.nunique().eq(1).all(), (table.name, scope)
                codes = {silent_province} | ({silent} if scope == "internal" else set())
                rows = frame[frame["region_code"].isin(codes)]
                measures = [column for column in table.additive if column in frame.columns]
                assert len(rows) > 0 and (rows[measures] == 0).all().all(), (table.name, scope)
                if scope == "public":  # an empty cell is published as zeros, not withheld
                    assert rows["disclosure_flag"].isna().all(), table.name


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
    # Only the changed period: every fault point lies on its way, and a second period would
    # only add its export and gate to each killed run. The rerun backfills both.
    result = _run(settings, "--period", CHANGED, fault=fault)
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
    # The gate compared the revision with v1: one corrected balance moves no distribution.
    report = json.loads(Path(manifest["gate"]["report"]).read_text())
    drift = [
        o for o in report["tables"]["outsourcing_by_region"] if o["rule"] == "distribution_drift"
    ]
    assert drift and all(o["success"] for o in drift), drift
    # The published warehouse now holds the new night.
    assert sha256_file(settings.warehouse_path) != baseline["snapshot"]["warehouse"]
