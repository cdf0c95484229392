"""Intake tests start from a clean generated month and break one thing at a time."""

from __future__ import annotations

import csv
import io
import os
import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from collectwatch.config import Settings
from collectwatch.generate import generate_month
from collectwatch.intake import lifecycle
from collectwatch.intake.process import intake_file

PERIOD = "2026-10"
PREVIOUS_PERIOD = "2026-09"
# Received before the due date of 2026-10 (15 November), so not flagged late (M002).
ON_TIME = datetime.fromisoformat("2026-11-05T10:00:00+08:00").timestamp()


@pytest.fixture(scope="session")
def month(tmp_path_factory):
    return generate_month(Settings.from_env(), PERIOD, tmp_path_factory.mktemp("month"), seed=3)


@pytest.fixture(scope="session")
def previous_month(tmp_path_factory):
    folder = tmp_path_factory.mktemp("previous")
    return generate_month(Settings.from_env(), PREVIOUS_PERIOD, folder, seed=3)


def read_rows(path: Path) -> tuple[list[dict], list[str]]:
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    return rows, list(rows[0])


def write_rows(path: Path, rows: list[dict], fieldnames: list[str]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(out.getvalue(), encoding="utf-8")


class Landing:
    """Puts generated files (whole or edited) into a data root's landing folder."""

    def __init__(self, settings: Settings, month):
        self.settings = settings
        self.month = month

    def source(self, submission_type: str, submitter: str | None = None) -> Path:
        candidates = [p for p in self.month.files if p.name.startswith(submission_type + "__")]
        if submitter:
            return next(p for p in candidates if p.parent.name == submitter)
        # By default an institution's file; only the registry is the regulator's alone.
        regulator = self.settings.regulator_uscc
        return next((p for p in candidates if p.parent.name != regulator), candidates[0])

    def put(
        self,
        submission_type: str,
        edit=None,
        submitter: str | None = None,
        name: str | None = None,
        folder: str | None = None,
        received: float = ON_TIME,
    ) -> Path:
        source = self.source(submission_type, submitter)
        target = self.settings.landing_dir / (folder or source.parent.name) / (name or source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if edit is None:
            shutil.copy(source, target)
        else:
            rows, fieldnames = read_rows(source)
            rows, fieldnames = edit(rows, fieldnames)
            write_rows(target, rows, fieldnames)
        os.utime(target, (received, received))
        return target

    def intake(self, submission_type: str, edit=None, **options):
        return intake_file(self.put(submission_type, edit, **options), self.settings)


def current_ids(settings: Settings) -> set[str]:
    if not settings.current_manifest.exists():
        return set()
    query = f"select submission_id from '{settings.current_manifest}'"
    return {row[0] for row in duckdb.connect().execute(query).fetchall()}


@pytest.fixture
def settings(tmp_path, month):
    """A data root in which the generated registry is in effect."""
    settings = Settings.from_env().with_data_dir(tmp_path / "data")
    result = Landing(settings, month).intake("institution_registry")
    assert result.status == lifecycle.ACCEPTED, result.report.rule_counts
    return settings


@pytest.fixture
def landing(settings, month) -> Landing:
    return Landing(settings, month)
