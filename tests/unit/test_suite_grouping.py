"""`make pytest` spreads the suite over two workers with `--dist loadgroup`; the portal's
tests are one group (tests/conftest.py), so their shared publication and server are built
once. A pytest and pytest-xdist pair that ignores the marks does so silently (pytest 9.2
with xdist 3.8: every test its own unit, pytest-xdist #1386), and the suite only gets
slower. This runs a small suite marked the way tests/conftest.py marks the portal's."""

from __future__ import annotations

import re
import subprocess
import sys

CONFTEST = """
import pytest

@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    for item in items:
        if item.path.parent.name == "grouped":
            item.add_marker(pytest.mark.xdist_group("grouped"))
"""
# The marked tests are quick, the others take a moment: a worker done with the group
# takes unmarked tests too, so neither worker runs all of them alone.
BODIES = {"grouped": "pass", "loose": "time.sleep(0.5)"}


def _tests(body: str) -> str:
    return "import time\n\n" + "".join(f"def test_{n}():\n    {body}\n\n" for n in range(6))


def test_marked_tests_run_on_one_worker_and_the_others_spread(tmp_path):
    (tmp_path / "conftest.py").write_text(CONFTEST)
    for folder in BODIES:
        (tmp_path / folder).mkdir()
        (tmp_path / folder / f"test_{folder}.py").write_text(_tests(BODIES[folder]))

    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup",
         "--no-loadscope-reorder", "-v", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, check=False,
    )  # fmt: skip

    assert run.returncode == 0, run.stdout[-2000:]
    workers = {
        folder: set(re.findall(rf"\[(gw\d)\] .* PASSED .*{folder}/test_\w+\.py", run.stdout))
        for folder in BODIES
    }
    assert len(workers["grouped"]) == 1, run.stdout[-2000:]
    assert len(workers["loose"]) == 2, run.stdout[-2000:]
