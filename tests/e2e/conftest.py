"""One pipeline run for all end-to-end modules: generating, taking in and publishing a
month costs minutes here, so the generated month and its first run are session fixtures.
Modules that change the published state (new inputs, new versions) sort after
test_pipeline.py and put those tests last."""

from __future__ import annotations

import os
import shutil

import pytest

from collectwatch.config import Settings
from collectwatch.generate import generate_month
from collectwatch.orchestration import run_embedded

PERIOD = "2026-10"
# Before the due date (15 November, 23:59:59 +08:00): a preliminary release.
AS_OF = "2026-11-10T09:00:00+08:00"


@pytest.fixture(scope="session")
def settings(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    settings = Settings.from_env().with_data_dir(root / "data")
    os.environ["COLLECTWATCH_DATA_DIR"] = str(settings.data_dir)
    return settings


@pytest.fixture(scope="session")
def submitted(settings, tmp_path_factory):
    """The generated month, kept aside (intake consumes the landing copies)."""
    month = generate_month(settings, PERIOD, tmp_path_factory.mktemp("submitted"), seed=5)
    shutil.copytree(month.out_dir, settings.landing_dir, ignore=shutil.ignore_patterns("*.json"))
    return month


@pytest.fixture(scope="session")
def first_run(settings, submitted):
    return run_embedded(settings, [PERIOD], as_of=AS_OF)
