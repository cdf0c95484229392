"""The single-writer design: warehouse tasks share a one-slot pool, intake fans out, and the
embedded metadata database gets the pools the DAGs name (a task in a missing pool is never
scheduled)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from collectwatch.config import PROJECT_ROOT, Settings
from collectwatch.orchestration import embedded_metadata_path, ensure_pools, migrate_metadata

WAREHOUSE_WRITERS = {"recover", "build_candidate", "audit_candidate", "publish"}


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT_ROOT / "dags"))


def test_warehouse_writers_share_the_one_slot_pool(dag_bag):
    settings = Settings.from_env()
    nightly = dag_bag.dags["nightly_supervision"]
    pooled = {task.task_id for task in nightly.tasks if task.pool == settings.warehouse_pool}
    assert pooled == WAREHOUSE_WRITERS
    assert settings.airflow_pools[settings.warehouse_pool]["slots"] == 1


def test_intake_is_mapped_and_outside_the_warehouse_pool(dag_bag):
    settings = Settings.from_env()
    intake = dag_bag.dags["collect_submissions"].get_task("intake")
    assert intake.is_mapped
    assert intake.pool != settings.warehouse_pool
    # bounded: each batch holds its typed rows in memory (Settings.intake_parallel_batches)
    assert intake.max_active_tis_per_dagrun == settings.intake_parallel_batches


def test_every_pool_a_dag_names_is_created(dag_bag):
    used = {task.pool for dag in dag_bag.dags.values() for task in dag.tasks}
    # default_pool is Airflow's own, created by `airflow db migrate`.
    assert used - {"default_pool"} <= set(Settings.from_env().airflow_pools)


def test_embedded_metadata_gets_the_pools_and_a_resized_pool_is_put_back():
    from airflow.models.pool import Pool

    settings = Settings.from_env()
    migrate_metadata(settings)
    Pool.create_or_update_pool(settings.warehouse_pool, 5, "widened by hand", False)
    ensure_pools(settings)
    pool = Pool.get_pool(settings.warehouse_pool)
    assert (pool.slots, pool.include_deferred) == (1, False)
    assert "one writer" in pool.description


def test_airflow_standalone_creates_the_pools_before_the_scheduler_starts(monkeypatch, tmp_path):
    """`make airflow` (collectwatch airflow standalone) on a metadata database that no
    pipeline run has touched: the pools exist before Airflow itself is started."""
    from airflow.models.pool import Pool

    from collectwatch import cli

    settings = Settings.from_env()
    migrate_metadata(settings)
    if Pool.get_pool(settings.warehouse_pool):
        Pool.delete_pool(settings.warehouse_pool)
    started = []
    monkeypatch.setattr(cli.subprocess, "call", lambda command, env: started.append(command) or 0)

    assert cli.main(["airflow", "standalone"]) == 0

    assert started[0][-1] == "standalone"
    assert Pool.get_pool(settings.warehouse_pool).slots == 1


def test_a_metadata_database_is_migrated_once_per_process_and_again_once_it_is_gone(tmp_path):
    """`airflow db migrate` is a process that imports Airflow (~4 s): the tests run the DAGs
    ~15 times in one process, and each run asked for it."""
    settings = replace(Settings.from_env(), state_dir=tmp_path / "state")
    database = embedded_metadata_path(settings)
    database.parent.mkdir(parents=True)

    migrate_metadata(settings)
    created = database.stat().st_mtime_ns
    migrate_metadata(settings)
    assert database.stat().st_mtime_ns == created  # not opened for writing again

    database.unlink()
    migrate_metadata(settings)
    assert database.is_file()
