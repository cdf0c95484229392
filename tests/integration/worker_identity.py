"""`[core] hostname_callable` for the integration test's Celery workers.

Both workers run on this one machine, where Airflow's default (the FQDN) would record the same
hostname for every task instance. Each worker process is started with its own
COLLECTWATCH_TEST_WORKER, so the metadata database says which worker ran which task.
"""

from __future__ import annotations

import os


def hostname() -> str:
    return os.environ["COLLECTWATCH_TEST_WORKER"]
