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


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks
def pytest_collection_modifyitems(items):
    """The portal's tests are one group for `pytest -n 2 --dist loadgroup` (make pytest):
    they share one publication and one server, built once (~35 s). Every other test is a
    unit of its own, so the long end-to-end tests spread over both workers: each worker runs
    the session's shared pipeline once (~80 s, which keeps the two workers' loads level),
    and takes its tests in collection order, so a module's state-changing tests still run
    after its reading ones."""
    for item in items:
        if item.path.parent.name == "portal":
            item.add_marker(pytest.mark.xdist_group("portal"))
