"""The submission lifecycle end to end through the `collectwatch` command, as a submitter
or operator runs it: resubmission and supersede, byte-identical re-upload, quality
verification, exit codes, the terminal summary, a stateless check, and purge."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from collectwatch.config import Settings
from collectwatch.intake import lifecycle
from conftest import Landing, current_ids, read_rows

COLLECTWATCH = Path(sys.executable).with_name("collectwatch")


def _run(settings: Settings, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "COLLECTWATCH_DATA_DIR": str(settings.data_dir), **env}
    return subprocess.run(
        [str(COLLECTWATCH), *args], capture_output=True, text=True, env=environment, timeout=300
    )


def _submission_id(output: str) -> str:
    return re.search(r"\b[0-9A-Z]{18}-\d{4}-\d{2}-[a-z_]+-\d{3}\b", output).group(0)


def _report_path(output: str) -> Path:
    return Path(re.search(r"report: (\S+)", output).group(1))


@pytest.fixture
def cli(tmp_path, month):
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    landing = Landing(settings, month)
    registry = _run(settings, "intake", str(landing.put("institution_registry")))
    assert registry.returncode == 0, registry.stdout + registry.stderr
    return settings, landing


def _nudge_written_off(rows, fieldnames):
    rows[-1]["written_off"] = str(Decimal(rows[-1]["written_off"]) + Decimal("0.01"))
    return rows, fieldnames


def _recovered_over_balance(rows, fieldnames):
    index = next(i for i, r in enumerate(rows) if r["bucket"] == "M1")
    rows[index]["recovered_inhouse"] = str(Decimal(rows[index]["balance"]) + 1)
    return rows, fieldnames


def test_resubmission_repeat_and_verification_through_the_cli(cli):
    settings, landing = cli
    store = lifecycle.StateStore(settings.submissions_db)

    first = _run(settings, "intake", str(landing.put("lender_portfolio")))
    assert first.returncode == 0, first.stderr
    first_id = _submission_id(first.stdout)
    assert first.stdout.startswith("accepted") and first_id.endswith("-001")
    assert _report_path(first.stdout).exists()

    repeat = _run(settings, "intake", str(landing.put("lender_portfolio")))
    assert repeat.returncode == 0
    assert _submission_id(repeat.stdout) == first_id
    assert "byte-identical" in repeat.stdout
    key = (store.get(first_id).submitter_uscc, "lender_portfolio", store.get(first_id).period)
    assert len(store.current(key[1], key[2], key[0])) == 1

    second = _run(settings, "intake", str(landing.put("lender_portfolio", _nudge_written_off)))
    second_id = _submission_id(second.stdout)
    assert second.returncode == 0 and second_id.endswith("-002")
    assert store.get(first_id).status == lifecycle.SUPERSEDED
    assert second_id in current_ids(settings) and first_id not in current_ids(settings)

    held = _run(settings, "intake", str(landing.put("lender_portfolio", _recovered_over_balance)))
    held_id = _submission_id(held.stdout)
    assert held.returncode == 0  # not rejected: held for the submitter's confirmation
    assert held.stdout.startswith("needs_verification")
    assert f"collectwatch verify {held_id}" in held.stdout and "Q001" in held.stdout
    assert second_id in current_ids(settings) and held_id not in current_ids(settings)

    verified = _run(settings, "verify", held_id)
    assert verified.returncode == 0 and "accepted" in verified.stdout
    assert current_ids(settings) & {first_id, second_id, held_id} == {held_id}
    assert store.get(second_id).status == lifecycle.SUPERSEDED

    again = _run(settings, "verify", held_id)
    assert again.returncode == 1 and "only a submission that needs verification" in again.stderr


def test_rejected_file_exits_2_and_names_its_report(cli):
    settings, landing = cli

    def negative(rows, fieldnames):
        rows[0]["written_off"] = "-1.00"
        return rows, fieldnames

    rejected = _run(settings, "intake", str(landing.put("lender_portfolio", negative)))
    assert rejected.returncode == 2
    assert rejected.stdout.startswith("rejected") and "V006×1" in rejected.stdout
    report = _report_path(rejected.stdout)
    assert report.exists() and report.with_suffix(".html").exists()
    assert not list(settings.raw_dir.glob("lender_portfolio/**/*.parquet"))


def test_internal_error_exits_1(cli):
    settings, _ = cli
    missing = _run(settings, "intake", str(settings.landing_dir / "nowhere.csv"))
    assert missing.returncode == 1 and "nowhere.csv" in missing.stderr


def _tree(folder: Path) -> set:
    return {
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and not p.name.endswith(("-wal", "-shm"))
    }


def test_check_leaves_no_state(cli):
    settings, landing = cli
    clean = landing.put("agency_caseload")
    rows, _ = read_rows(clean)
    bad = landing.put(
        "contact_events",
        lambda rows, names: ([{**rows[0], "channel": "fax"}, *rows[1:]], names),
    )
    before = _tree(settings.data_dir)
    assert _run(settings, "check", str(clean)).returncode == 0
    checked = _run(settings, "check", str(bad))
    assert checked.returncode == 2 and '"V003"' in checked.stdout
    assert _tree(settings.data_dir) == before
    assert rows  # the clean file was not consumed either
    assert clean.exists() and bad.exists()


def test_purge_removes_old_quarantine_and_logs_it(cli):
    settings, landing = cli
    stray = settings.landing_dir / landing.source("lender_portfolio").parent.name / "x.csv"
    stray.parent.mkdir(parents=True, exist_ok=True)
    stray.write_text("a,b\n1,2\n")
    assert _run(settings, "intake", str(stray)).returncode == 2
    quarantined = list(settings.quarantine_dir.iterdir())
    assert len(quarantined) == 1
    kept = _run(settings, "purge")
    assert kept.returncode == 0 and "purged 0 files" in kept.stdout
    purged = _run(settings, "purge", COLLECTWATCH_QUARANTINE_DAYS="0")
    assert purged.returncode == 0 and str(quarantined[0]) in purged.stdout
    assert not quarantined[0].exists()
    assert str(quarantined[0]) in (settings.submissions_db.parent / "purge.log").read_text()
    assert list(settings.archive_dir.iterdir())  # the registry's original stays: 10 years
