"""Intake benchmark (not a test): a 10M-row contact log through `collectwatch intake`
(every edit, typed raw Parquet written, archive, report) against a plain DuckDB
CSV -> Parquet conversion of the same file on the same machine in the same run.

    .venv/bin/python bench/intake.py [--rows 10000000] [--work DIR]

Writes bench/results-intake.json and prints the Markdown table for bench/README.md.
Peak memory is each child process's own peak RSS (psutil, sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import load_average, machine, timed

from collectwatch.config import Settings
from collectwatch.uscc import check_character

HERE = Path(__file__).resolve().parent
PERIOD = "2026-10"
AGENCY = "91440300MA5G8AAAA" + check_character("91440300MA5G8AAAA")
LENDER = "91110000MA01BBBBB" + check_character("91110000MA01BBBBB")
COLLECTWATCH = Path(sys.executable).with_name("collectwatch")


def write_contact_log(path: Path, rows: int, settings: Settings) -> None:
    """A clean contact log of ``rows`` events for one agency, written by DuckDB."""
    con = settings.duckdb()
    con.execute(
        f"""
        copy (
            with events as (
                select i,
                       ['call', 'sms', 'ai_voice', 'letter', 'visit', 'app_push'][1 + i % 6]
                           as channel
                from range({rows}) as t(i)
            )
            select
                '{PERIOD}' as period,
                '{AGENCY}' as agency_uscc,
                'E' || lpad(i::varchar, 10, '0') as event_id,
                '{LENDER}' as lender_uscc,
                sha256('case:' || (i // 7)) as case_ref,
                sha256('debtor:' || (i // 7)) as debtor_ref,
                strftime(timestamp '{PERIOD}-01 08:00:00'
                         + to_days(((i * 7919) % 30)::int)
                         + to_seconds((i * 104729) % 46800), '%Y-%m-%dT%H:%M:%S')
                    || '+08:00' as contact_at,
                channel,
                ['debtor', 'debtor', 'debtor', 'guarantor'][1 + i % 4] as target,
                case when channel in ('call', 'sms', 'ai_voice') then 'registered'
                     else 'none' end as number_type,
                '440305' as region_code,
                case when channel = 'call' then 10 + i % 290 end as duration_s,
                ['no_answer', 'contacted', 'promise_to_pay', 'refused'][1 + i % 4] as outcome,
                case when channel = 'visit' then 'home' else 'none' end as location_type
            from events
        ) to '{path}' (format csv, header true)
        """
    )
    con.close()


def write_registry(path: Path) -> None:
    path.write_text(
        "period,uscc,name_zh,name_en,kind,role,region_code,licence_no,status,valid_from,valid_to\n"
        f"{PERIOD},{AGENCY},基准清收有限公司,Bench Recovery Co.,collection_agency,agency,"
        "440305,A-1,active,2020-01-01,\n"
        f"{PERIOD},{LENDER},基准信贷有限公司,Bench Lender Co.,consumer_finance,lender,"
        "110101,L-1,active,2020-01-01,\n"
    )


def plain_conversion(csv_path: Path, out: Path, settings: Settings, env: dict) -> dict:
    code = (
        "import duckdb;"
        f"con = duckdb.connect(config={{'memory_limit': '{settings.duckdb_memory_limit}', "
        f"'threads': {settings.duckdb_threads}}});"
        f"con.execute(\"copy (select * from read_csv('{csv_path}')) to '{out}' "
        '(format parquet, compression zstd)")'
    )
    return timed([sys.executable, "-c", code], env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--work", default=None, help="scratch folder (default: a temp dir)")
    args = parser.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="collectwatch-bench-"))
    settings = Settings.from_env().with_data_dir(work / "data")
    env = {**os.environ, "COLLECTWATCH_DATA_DIR": str(settings.data_dir)}
    source = work / "source"
    source.mkdir(parents=True, exist_ok=True)
    csv_path = source / f"contact_events__{AGENCY}__{PERIOD}.csv"
    started = time.perf_counter()
    write_contact_log(csv_path, args.rows, settings)
    generated_s = time.perf_counter() - started
    size = csv_path.stat().st_size

    plain = plain_conversion(csv_path, work / "plain.parquet", settings, env)

    regulator = settings.regulator_uscc
    registry = settings.landing_dir / regulator / f"institution_registry__{regulator}__{PERIOD}.csv"
    registry.parent.mkdir(parents=True, exist_ok=True)
    write_registry(registry)
    subprocess.run([str(COLLECTWATCH), "intake", str(registry)], env=env, check=True)
    landed = settings.landing_dir / AGENCY / csv_path.name
    landed.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(csv_path, landed)
    intake = timed([str(COLLECTWATCH), "intake", str(landed)], env)

    results = {
        "machine": machine(),
        "rows": args.rows,
        "csv_bytes": size,
        "csv_generation_s": round(generated_s, 2),
        "plain_duckdb_csv_to_parquet": {k: v for k, v in plain.items() if k != "stdout"},
        "collectwatch_intake": {k: v for k, v in intake.items() if k != "stdout"},
        "intake_summary": intake["stdout"].strip().splitlines()[0],
    }
    for name in ("plain_duckdb_csv_to_parquet", "collectwatch_intake"):
        results[name]["rows_per_s"] = round(args.rows / results[name]["wall_s"])
    results["ratio_intake_to_plain"] = round(intake["wall_s"] / plain["wall_s"], 2)
    results["cpu_ratio_intake_to_plain"] = round(intake["cpu_s"] / plain["cpu_s"], 2)
    results["load_average_at_end"] = load_average()
    (HERE / "results-intake.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))
    print(table(results))
    shutil.rmtree(work, ignore_errors=True)


def table(results: dict) -> str:
    rows = [
        "| run | rows | wall time (s) | CPU time (s) | rows/s (wall) | peak RSS (MB) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for label, key in (
        ("plain DuckDB CSV → Parquet", "plain_duckdb_csv_to_parquet"),
        ("`collectwatch intake` (all edits, raw Parquet)", "collectwatch_intake"),
    ):
        run = results[key]
        rows.append(
            f"| {label} | {results['rows']:,} | {run['wall_s']} | {run['cpu_s']} | "
            f"{run['rows_per_s']:,} | "
            f"{run['peak_rss_mb']:,} |"
        )
    rows.append(
        f"\nIntake / plain conversion: **{results['ratio_intake_to_plain']}×** wall time, "
        f"**{results['cpu_ratio_intake_to_plain']}×** CPU time "
        f"(load average at the end: {results['load_average_at_end']})."
    )
    return "\n".join(rows)


if __name__ == "__main__":
    main()
