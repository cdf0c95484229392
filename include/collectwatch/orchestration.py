"""What the DAGs share: Airflow's environment for embedded runs, default task arguments,
and the asset names. Importable without Airflow (the DAG files import Airflow itself).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from collectwatch.alerts import on_task_failure
from collectwatch.config import NO_TELEMETRY_ENV, Settings

RAW_ZONE_URI = "file://collectwatch/raw_zone"
WAREHOUSE_URI = "file://collectwatch/warehouse"
PUBLICATION_URI = "file://collectwatch/publication"
TAGS = ["collectwatch", "supervision"]


def default_args(settings: Settings) -> dict:
    """Retries for production; tests set COLLECTWATCH_TASK_RETRIES=0 (a failing task
    would otherwise wait the retry delay twice inside dag.test()). A task that runs past
    its timeout fails (a hung process must not hold the warehouse pool); one that fails for
    good raises an alert (file, webhook, email: collectwatch.alerts)."""
    return {
        "owner": "statistics-office",
        "retries": settings.task_retries,
        "retry_delay": timedelta(seconds=settings.task_retry_delay_s),
        "execution_timeout": timedelta(seconds=settings.task_timeout_s),
        "on_failure_callback": on_task_failure,
    }


def embedded_metadata_path(settings: Settings) -> Path:
    """Airflow's embedded metadata database (SQLite)."""
    return settings.airflow_home / "airflow.db"


def embedded_airflow_env(settings: Settings) -> dict[str, str]:
    """Airflow on SQLite under the state folder, DAGs from this project: the embedded
    default that `make demo`, `collectwatch run` and the tests use."""
    home = settings.airflow_home
    return {
        **NO_TELEMETRY_ENV,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(settings.project_dir / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{embedded_metadata_path(settings)}",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "COLLECTWATCH_DATA_DIR": str(settings.data_dir),
        "COLLECTWATCH_STATE_DIR": str(settings.state_dir),
    }


def apply_embedded_airflow_env(settings: Settings) -> None:
    """Set the embedded Airflow environment in this process (before importing airflow)."""
    settings.airflow_home.mkdir(parents=True, exist_ok=True)
    os.environ.update(embedded_airflow_env(settings))


# The embedded metadata databases this process has migrated. `airflow db migrate` is a
# process of its own that imports Airflow (~4 s of CPU, idempotent); nothing downgrades a
# database while this process runs, so each one is migrated once per process (the tests
# run the DAGs ~15 times in one process).
_MIGRATED: set[Path] = set()


def migrate_metadata(settings: Settings) -> None:
    """`airflow db migrate` on the embedded SQLite, once per database and process."""
    import subprocess
    import sys

    database = embedded_metadata_path(settings)
    if database in _MIGRATED and database.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"],
        env={**os.environ, **embedded_airflow_env(settings)},
        check=True,
        capture_output=True,
    )
    _MIGRATED.add(database)


def ensure_pools(settings: Settings) -> None:
    """Create (or resize) the DAGs' pools in the metadata database this process is configured
    for: the scheduler never queues a task whose pool does not exist."""
    from airflow.models.pool import Pool

    for name, pool in settings.airflow_pools.items():
        Pool.create_or_update_pool(
            name, pool["slots"], pool["description"], pool["include_deferred"]
        )


def prepare_embedded_metadata(settings: Settings) -> None:
    """This process on the embedded metadata database, migrated and with the DAGs' pools:
    what `dag.test()` and a standalone scheduler need before the first task."""
    apply_embedded_airflow_env(settings)
    settings.ensure_dirs()
    migrate_metadata(settings)
    ensure_pools(settings)


def run_embedded(
    settings: Settings,
    periods: list[str],
    full_refresh: bool = False,
    as_of: str | None = None,
    run_after: datetime | None = None,
) -> dict:
    """Run collect_submissions, then nightly_supervision for ``periods`` (none: the
    periods it plans as of ``run_after``, by default now), through the real DAGs with
    dag.test() on the embedded metadata database."""
    prepare_embedded_metadata(settings)
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(settings.project_dir / "dags"))
    if bag.import_errors:
        raise RuntimeError(f"DAG import errors: {bag.import_errors}")
    collect = bag.get_dag("collect_submissions").test()
    states = {"collect_submissions": str(collect.state)}
    if states["collect_submissions"] == "success":
        nightly = bag.get_dag("nightly_supervision").test(
            run_after=run_after,
            run_conf={"periods": periods, "full_refresh": full_refresh, "as_of": as_of},
        )
        states["nightly_supervision"] = str(nightly.state)
    succeeded = all(state.endswith("success") for state in states.values()) and len(states) == 2
    return {
        "state": "success" if succeeded else "failed",
        "dag_runs": states,
        "warehouse": str(settings.warehouse_path),
        "publication": {
            period: str(settings.publish_dir / period / "latest.json") for period in periods
        },
    }
