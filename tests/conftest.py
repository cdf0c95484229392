"""Test-wide environment: no telemetry, no retries, and Airflow's embedded metadata in a
temporary folder — set before anything imports Airflow, dbt or GX."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from collectwatch.config import NO_TELEMETRY_ENV

_SESSION_ROOT = Path(tempfile.mkdtemp(prefix="collectwatch-tests-"))
os.environ.update(NO_TELEMETRY_ENV)
os.environ["COLLECTWATCH_STATE_DIR"] = str(_SESSION_ROOT / "state")
os.environ["COLLECTWATCH_DATA_DIR"] = str(_SESSION_ROOT / "data")
# A failing task must fail the test at once, not wait the retry delay (DESIGN "Verified").
os.environ["COLLECTWATCH_TASK_RETRIES"] = "0"
os.environ["COLLECTWATCH_TASK_RETRY_DELAY_S"] = "1"

from collectwatch.config import Settings  # noqa: E402
from collectwatch.orchestration import apply_embedded_airflow_env  # noqa: E402

apply_embedded_airflow_env(Settings.from_env())


def pytest_collection_modifyitems(items):
    """Groups for `pytest -n 2 --dist loadgroup` (make pytest): the end-to-end modules share
    one session pipeline and must run in order on one worker, so must the portal's modules
    (one publication, one server); every other module stays whole on one worker, so its
    module-scoped fixtures are built once."""
    for item in items:
        folder = item.path.parent.name
        group = folder if folder in {"e2e", "portal"} else item.path.stem
        item.add_marker(pytest.mark.xdist_group(group))
