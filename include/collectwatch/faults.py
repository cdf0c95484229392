"""Fault injection for the crash tests: ``COLLECTWATCH_FAULT_AT=<step>`` makes the process
SIGKILL itself when it reaches that step, the way a lost worker or an OOM kill would end
it — no cleanup handlers, no finally blocks. Unset (always, in production) it does nothing.
"""

from __future__ import annotations

import os
import signal

FAULT_ENV = "COLLECTWATCH_FAULT_AT"
# Every step a test may name, in the order a night reaches them.
FAULT_POINTS = (
    "build.dbt",  # dbt build is running against the candidate
    "audit.gate",  # the publication is staged, the gate is about to judge it
    "release.publish",  # manifests are written into staging, nothing renamed yet
    "release.between_renames",  # versions renamed into place; warehouse and latest.json not
)


def fault_point(step: str) -> None:
    if step not in FAULT_POINTS:
        raise ValueError(f"unknown fault point {step!r}")
    if os.environ.get(FAULT_ENV) == step:
        os.kill(os.getpid(), signal.SIGKILL)
