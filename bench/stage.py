"""One benchmark stage in its own process, so its wall time, CPU time and peak memory are
its own (bench/pipeline.py runs each through ``measure.timed``).

    python bench/stage.py STAGE --period P [--input IN.json] [--output OUT.json] [...]

Pipeline stages call the functions the DAG tasks call (``collectwatch.pipeline``) with the
settings from the environment; ``floor-*`` stages are the plain-DuckDB floors each stage
is compared with, on the same data, the same memory limit and threads.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from multiprocessing import get_context
from pathlib import Path

from report import slowest_nodes

from collectwatch import pipeline
from collectwatch.config import Settings
from collectwatch.contracts import SUBMISSION_TYPES, shift_period
from collectwatch.intake.registry import REGISTRY_TYPE
from collectwatch.raw import write_current
from collectwatch.tables import PUBLISHED_TABLES
from collectwatch.warehouse import run_results_path


def as_of(period: str) -> str:
    """The release-status clock of a period's nights: the 20th of the next month, 02:00
    Beijing time (after the due date, so the publication is final). Fixed, so reruns
    publish the same bytes."""
    return f"{shift_period(period, 1)}-20T02:00:00+08:00"


def intake(settings: Settings, args: argparse.Namespace) -> dict:
    """What collect_submissions does: the registry first, then every batch of the rest in
    ``--workers`` processes at once, as that many executor slots run the mapped intake
    tasks (the state store takes concurrent writers; one batch per task). Also each
    submission type's share: the wall time from its first batch's start to its last
    batch's end, and the CPU time of its batches (``by_type``)."""
    started, cpu = time.time(), _cpu_s()
    registry = pipeline.intake_registry(settings)
    results = [_batch_figures(registry, REGISTRY_TYPE, started, cpu)]
    batches = pipeline.landing_batches(settings)
    with ProcessPoolExecutor(args.workers, mp_context=get_context("spawn")) as pool:
        results += pool.map(partial(_measured_batch, settings), batches)
    write_current(settings)  # the DAG's refresh_current_versions
    statuses: dict[str, int] = {}
    for result in results:
        for status, count in result["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    return {"statuses": statuses, "by_type": _by_type(results)}


def _cpu_s() -> float:
    """User + system CPU time of this process, all its threads (DuckDB's) included."""
    times = os.times()
    return times.user + times.system


def _measured_batch(settings: Settings, paths: list[str]) -> dict:
    """One mapped intake task (``intake_batch``) and its figures, in a worker process."""
    started, cpu = time.time(), _cpu_s()
    result = pipeline.intake_batch(settings, paths)
    return _batch_figures(result, Path(paths[0]).name.split("__")[0], started, cpu)


def _batch_figures(result: dict, submission_type: str, started: float, cpu: float) -> dict:
    return {
        "statuses": result["statuses"],
        "type": submission_type,
        "files": len(result["submissions"]),
        "started": started,
        "ended": time.time(),
        "cpu_s": _cpu_s() - cpu,
    }


def _by_type(batches: list[dict]) -> dict[str, dict]:
    """Per submission type: files, batches, wall time (first start to last end) and the
    batches' CPU time."""
    grouped: dict[str, list[dict]] = {}
    for batch in batches:
        grouped.setdefault(batch["type"], []).append(batch)
    return {
        name: {
            "files": sum(batch["files"] for batch in group),
            "batches": len(group),
            "wall_s": round(max(b["ended"] for b in group) - min(b["started"] for b in group), 2),
            "cpu_s": round(sum(batch["cpu_s"] for batch in group), 2),
        }
        for name, group in sorted(grouped.items())
    }


def build(settings: Settings, args: argparse.Namespace) -> dict:
    pipeline.recover(settings)
    # One clock for the night: a late period's release status is already final at it.
    periods = [args.period, *args.late_period]
    result = pipeline.build(settings, periods, as_of(args.period))
    run_results = json.loads(run_results_path(settings, result["run_id"]).read_text())
    return {**result, "slowest_nodes": slowest_nodes(run_results)}


def export(settings: Settings, args: argparse.Namespace) -> dict:
    return pipeline.export(settings, _read(args.input))


def gate(settings: Settings, args: argparse.Namespace) -> dict:
    return pipeline.gate(settings, _read(args.input))


def release(settings: Settings, args: argparse.Namespace) -> dict:
    return pipeline.release(settings, _read(args.input))


def floor_intake(settings: Settings, args: argparse.Namespace) -> dict:
    """Each type's landed files converted CSV/Parquet -> one Parquet file, nothing checked;
    each type's wall and CPU time (``by_type``)."""
    out = Path(args.scratch)
    out.mkdir(parents=True, exist_ok=True)
    con = settings.duckdb()
    rows, by_type = 0, {}
    for name in SUBMISSION_TYPES:
        files = sorted(Path(args.source).glob(f"*/{name}__*.*"))
        if not files:
            continue
        reader = "read_parquet" if files[0].suffix == ".parquet" else "read_csv"
        listed = ", ".join(f"'{path}'" for path in files)
        started, cpu = time.perf_counter(), _cpu_s()
        rows += con.execute(
            f"copy (select * from {reader}([{listed}])) to '{out / name}.parquet' "
            "(format parquet, compression zstd)"
        ).fetchone()[0]
        by_type[name] = {
            "files": len(files),
            "wall_s": round(time.perf_counter() - started, 2),
            "cpu_s": round(_cpu_s() - cpu, 2),
        }
    con.close()
    return {"rows": rows, "by_type": by_type}


def floor_build(settings: Settings, args: argparse.Namespace) -> dict:
    """One aggregate scan per raw type: what any model must at least read from the raw zone
    (contacts by agency, region and hour band; books by lender, region and bucket)."""
    raw = settings.raw_dir
    con = settings.duckdb()
    queries = {
        "contact_events": """
            select agency_uscc, region_code, count(*) as contacts,
                   count(*) filter (where hour(contact_at) < 8 or hour(contact_at) >= 21),
                   count(*) filter (where channel = 'postcard'),
                   count(*) filter (where target in ('family', 'third_party'))
            from {source} group by all""",
        "lender_portfolio": """
            select lender_uscc, region_code, bucket, sum(balance), sum(balance_outsourced)
            from {source} group by all""",
        "agency_assignment": """
            select agency_uscc, region_code, sum(balance_assigned), avg(commission_rate)
            from {source} group by all""",
        "complaints": """
            select region_code, category, count(distinct coalesce(regulator_ref, complaint_id))
            from {source} group by all""",
    }
    groups = 0
    for name, query in queries.items():
        source = f"read_parquet('{raw / name}/**/*.parquet')"
        groups += con.execute(f"select count(*) from ({query.format(source=source)})").fetchone()[0]
    con.close()
    return {"groups": groups}


def floor_gate(settings: Settings, args: argparse.Namespace) -> dict:
    """SUMMARIZE (min, max, nulls, distinct counts of every column) over every staged
    Parquet file: the statistics a gate's expectations need, computed by DuckDB."""
    con = settings.duckdb()
    files = sorted(Path(args.staged).rglob("*.parquet"))
    for path in files:
        con.execute(f"summarize select * from read_parquet('{path}')").fetchall()
    con.close()
    return {"files": len(files)}


def floor_export(settings: Settings, args: argparse.Namespace) -> dict:
    """Every published mart's rows of the period copied to Parquet and CSV."""
    out = Path(args.scratch)
    out.mkdir(parents=True, exist_ok=True)
    con = settings.duckdb(args.warehouse, read_only=True)
    names = [t.name for t in PUBLISHED_TABLES]
    names += [f"public_{t.name}" for t in PUBLISHED_TABLES if t.public]
    rows = 0
    for name in names:
        query = f"select * from {name} where period = '{args.period}'"
        rows += con.execute(
            f"copy ({query}) to '{out / name}.parquet' (format parquet)"
        ).fetchone()[0]
        con.execute(f"copy ({query}) to '{out / name}.csv' (format csv, header true)")
    con.close()
    return {"rows": rows}


STAGES = {
    "intake": intake,
    "build": build,
    "export": export,
    "gate": gate,
    "release": release,
    "floor-intake": floor_intake,
    "floor-build": floor_build,
    "floor-gate": floor_gate,
    "floor-export": floor_export,
}


def _read(path: str) -> dict:
    return json.loads(Path(path).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stage", choices=sorted(STAGES))
    parser.add_argument("--period", required=True)
    parser.add_argument("--input", help="the previous stage's result (JSON)")
    parser.add_argument(
        "--late-period",
        action="append",
        default=[],
        help="a published period the build also rebuilds (a late correction; repeatable)",
    )
    parser.add_argument("--output", help="where this stage's result goes (JSON)")
    parser.add_argument("--source", help="the generated month (floor-intake)")
    parser.add_argument("--staged", help="a staged publication folder (floor-gate)")
    parser.add_argument("--warehouse", help="a candidate warehouse (floor-publish)")
    parser.add_argument("--scratch", help="a folder for the floors' output")
    parser.add_argument(
        "--workers",
        type=int,
        default=Settings.from_env().intake_parallel_batches,
        help="intake processes (default: intake_parallel_batches, as the DAG runs them)",
    )
    args = parser.parse_args()
    result = STAGES[args.stage](Settings.from_env(), args)
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
