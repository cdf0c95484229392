"""History benchmark (not a test): what reading one month of a staging view costs as the
raw zone keeps more months, in the two forms macro current_submissions has had.

- one read: a single ``read_parquet`` over every month's files, the period the files' own
  column (to 8226701), and the build's check that they share one schema (macro
  ``same_columns``: ``parquet_schema`` over every file, once per staging view and build);
- per period: one ``read_parquet`` per month, its period a constant, ``union all by name``
  (since 8226701; the schema check reads the signatures recorded in ``_current.parquet``).

The raw zone is synthetic: ``--files`` contact logs a month (2,400, as a national month) of
``--rows`` rows each, in the raw zone's layout; the query is a night's read of the last
month (a count and a sum for one agency).

    .venv/bin/python bench/history.py [--months 1 3 6 12 24] [--files 2400] [--rows 2000]

Writes bench/results-history.json and prints the Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
from measure import load_average, machine

HERE = Path(__file__).resolve().parent
READ_OPTIONS = "union_by_name = false, hive_partitioning = false, filename = true"


def write_month(con: duckdb.DuckDBPyConnection, raw: Path, period: str, files: int) -> list[str]:
    folder = raw / "contact_events" / f"period={period}"
    paths = [folder / f"submitter=S{i:05d}" / "v1.parquet" for i in range(files)]
    for path in paths:
        path.parent.mkdir(parents=True)
        con.execute(
            f"copy (select * replace ('{period}' as period) from contact_log) to '{path}' "
            "(format parquet, compression zstd)"
        )
    return [str(path) for path in paths]


def listed(paths: list[str]) -> str:
    return "[" + ", ".join(f"'{path}'" for path in paths) + "]"


def fastest(con: duckdb.DuckDBPyConnection, query: str, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        con.execute(query).fetchall()
        times.append(time.perf_counter() - started)
    return round(min(times), 3)


def measure(con: duckdb.DuckDBPyConnection, months: dict[str, list[str]]) -> dict:
    every = [path for paths in months.values() for path in paths]
    last = list(months)[-1]
    one_read = f"select * from read_parquet({listed(every)}, {READ_OPTIONS})"
    per_period = " union all by name ".join(
        f"select * replace ('{period}' as period) from read_parquet({listed(paths)}, "
        f"{READ_OPTIONS})"
        for period, paths in months.items()
    )
    night = (
        "select count(*), sum(duration_s) from ({relation}) "
        "where period = '{last}' and agency_uscc = 'A1'"
    )
    schema_check = (
        "select count(distinct columns) from (select string_agg(name || ' ' || duckdb_type, "
        f"', ' order by column_id) as columns from parquet_schema({listed(every)}) "
        "where column_id > 0 group by file_name)"
    )
    return {
        "months": len(months),
        "files": len(every),
        "one_read_s": fastest(con, night.format(relation=one_read, last=last)),
        "schema_check_s": fastest(con, schema_check),
        "per_period_s": fastest(con, night.format(relation=per_period, last=last)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--months", type=int, nargs="+", default=[1, 3, 6, 12, 24])
    parser.add_argument("--files", type=int, default=2400)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="collectwatch-history-"))
    results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "files_per_month": args.files,
        "rows_per_file": args.rows,
        "duckdb_threads": args.threads,
        "runs": [],
    }
    try:
        con = duckdb.connect()
        con.execute(f"set threads = {args.threads}")
        con.execute(
            "create table contact_log as select range as event_id, 'A' || (range % 7) "
            "as agency_uscc, now() as contact_at, 'phone' as channel, range % 100 as "
            "duration_s, md5(range::varchar) as case_ref, md5((range * 7)::varchar) as "
            f"debtor_ref, '440300' as region_code, '' as period from range({args.rows})"
        )
        months: dict[str, list[str]] = {}
        for count in sorted(args.months):
            while len(months) < count:
                year, month = divmod(len(months), 12)
                period = f"{2025 + year}-{month + 1:02d}"
                months[period] = write_month(con, work / "raw", period, args.files)
            results["runs"].append(measure(con, months))
            print(results["runs"][-1], flush=True)
        results["load_average_end"] = load_average()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    (HERE / "results-history.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))


def table(results: dict) -> str:
    lines = [
        "| months kept | files | one read: the last month (s) | + schema check per build (s) "
        "| per period: the last month (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for run in results["runs"]:
        lines.append(
            f"| {run['months']} | {run['files']:,} | {run['one_read_s']} "
            f"| {run['schema_check_s']} | {run['per_period_s']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
