"""DAG integrity: the DAG files import cleanly and follow the house rules
(astro-cli dagexampletest.py, cosmos test_example_dags_no_connections.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from collectwatch.config import PROJECT_ROOT, Settings
from collectwatch.orchestration import default_args

DAGS_DIR = PROJECT_ROOT / "dags"
DAG_IDS = ("collect_submissions", "nightly_supervision")


@pytest.fixture(scope="module")
def dag_bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_DIR))


def test_no_import_errors(dag_bag):
    assert dag_bag.import_errors == {}
    assert set(DAG_IDS) <= set(dag_bag.dag_ids)


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_dag_is_tagged_documented_and_single_writer(dag_bag, dag_id):
    dag = dag_bag.dags[dag_id]
    assert "collectwatch" in dag.tags
    assert dag.doc_md and dag_id in dag.doc_md
    assert dag.max_active_runs == 1
    assert dag.catchup is False
    for task in dag.tasks:
        assert "retries" in dag.default_args
        assert task.retries == dag.default_args["retries"]
        # a hung process fails at the timeout instead of holding its pool for good
        assert task.execution_timeout == dag.default_args["execution_timeout"]
        assert task.execution_timeout.total_seconds() == Settings.from_env().task_timeout_s


def test_production_default_retries_are_set():
    defaults = default_args(Settings(data_dir=Path("/x"), state_dir=Path("/y")))
    assert defaults["retries"] >= 1
    assert defaults["retry_delay"].total_seconds() >= 60


def test_nightly_runs_at_two_in_shanghai(dag_bag):
    dag = dag_bag.dags["nightly_supervision"]
    timetable = dag.timetable
    assert timetable._expression == "0 2 * * *"
    assert str(timetable._timezone.name) == "Asia/Shanghai"
    assert set(dag.params.keys()) >= {"periods", "full_refresh", "as_of"}


def test_assets_link_collect_to_publish(dag_bag):
    collect = dag_bag.dags["collect_submissions"]
    nightly = dag_bag.dags["nightly_supervision"]
    emitted = {o.uri for t in collect.tasks for o in t.outlets}
    consumed = {i.uri for t in nightly.tasks for i in t.inlets}
    published = {o.uri for t in nightly.tasks for o in t.outlets}
    assert emitted & consumed, "nightly must consume the raw zone asset collect emits"
    assert any("publication" in uri for uri in published)
    assert any("warehouse" in uri for uri in published)


@pytest.mark.parametrize("path", sorted(DAGS_DIR.glob("*.py")), ids=lambda p: p.name)
def test_dag_files_do_no_work_at_import(path):
    """The DAG processor imports these files often: top level holds only imports,
    constants and DAG definitions; package imports of heavy stages live inside tasks."""
    tree = ast.parse(path.read_text())
    heavy = {"collectwatch.pipeline", "collectwatch.gate", "collectwatch.warehouse"}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom):
            assert node.module not in heavy, f"{path.name} imports {node.module} at top level"
        assert not isinstance(node, (ast.For, ast.While, ast.With)), f"{path.name}: work at import"
