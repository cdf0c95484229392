"""The pipeline benchmark (`make bench`, not a test): a generated month through the real
stages — intake of the whole landing folder (every edit), dbt build, export, GX gate,
release — each in its own process and measured (wall, CPU, peak RSS of the process tree),
each beside its plain-DuckDB floor on the same data in the same run; then one agency
resubmits a changed contact log and the same stages publish a revision; then the next
month lands on the warehouse that now holds this one (the steady state of the nightly
runs: the night must not grow with the history it keeps), together with another agency's
late correction of this month's contact log, and the same stages publish both periods.

    .venv/bin/python bench/nightly.py [--scale national|small] [--format csv|parquet] [--keep]

Writes bench/results.json (national) or bench/results-<scale>.json and prints the table;
`make bench-readme` (bench/report.py) puts the latest national table into the READMEs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

import pyarrow.parquet as pq
from measure import load_average, machine, settle, timed
from report import markdown, stage_figures, totals

from collectwatch.config import NO_TELEMETRY_ENV, Settings
from collectwatch.contracts import shift_period

HERE = Path(__file__).resolve().parent
COLLECTWATCH = Path(sys.executable).with_name("collectwatch")
STAGE = [sys.executable, str(HERE / "stage.py")]
# The stages of a night in order, and the floor each is compared with.
NIGHT = ("intake", "build", "export", "gate", "release")
FLOOR_OF = {"intake": "floor-intake", "build": "floor-build", "export": "floor-export",
            "gate": "floor-gate"}  # fmt: skip
ROWS_LINE = re.compile(r"^\s+([a-z_]+)\s+([\d,]+) rows$")
# What a run writes under its work folder besides the generated month (``source``).
RUN_FOLDERS = ("data", "state", "results", "floor")
# The next month, when this run generates it (not ``--next-source``).
NEXT_SOURCE = "source-next"


class Bench:
    def __init__(self, work: Path, period: str, env: dict, results_path: Path):
        self.work, self.period, self.env = work, period, env
        # Published periods the night also rebuilds (a late correction of one of them).
        self.late_periods: list[str] = []
        self.settings = Settings.from_env().with_data_dir(work / "data")
        self.results_path = results_path
        self.results: dict = {}

    def save(self) -> None:
        """Write the results so far: a long run that stops still leaves its figures."""
        self.results["load_average"]["end"] = load_average()
        text = json.dumps(self.results, indent=2, ensure_ascii=False) + "\n"
        self.results_path.write_text(text)

    def stage(self, name: str, previous: str | None = None, **options: str) -> dict:
        """Run one stage (or floor) in its own process; its measures and its result."""
        command = [*STAGE, name, "--period", self.period, "--output", str(self.out(name))]
        if previous:
            command += ["--input", str(self.out(previous))]
        if name == "build":
            for period in self.late_periods:
                command += ["--late-period", period]
        for option, value in options.items():
            command += [f"--{option}", value]
        measured = timed(command, self.env)
        measured.pop("stdout")
        return {**measured, "result": json.loads(self.out(name).read_text())}

    def out(self, name: str) -> Path:
        return self.work / "results" / f"{name}.json"

    def night(self, rows_in: int, stages: list[dict], with_floors: bool, source: Path) -> None:
        """intake → build → export → gate → release, as the DAGs chain them, into
        ``stages`` (part of the saved results)."""
        outputs = {}
        for name, previous in zip(NIGHT, (None, None, "build", "export", "gate"), strict=True):
            run = self.stage(name, previous)
            outputs[name] = run.pop("result")
            stages.append({"name": name, "rows": 0, **run})
            print(f"  {name}: {run['wall_s']} s, peak {run['peak_rss_mb']} MB", flush=True)
            self.save()
        rows = {"intake": rows_in, "build": self.raw_rows()}
        published = self.published_rows()
        for stage in stages:
            stage["rows"] = rows.get(stage["name"], published)
            result = outputs[stage["name"]]
            if stage["name"] == "intake":
                stage["statuses"] = result["statuses"]
                stage["by_type"] = result["by_type"]
            if stage["name"] == "build":
                stage["slowest_nodes"] = result["slowest_nodes"]
            if stage["name"] == "release":
                published = result["published"]
                stage["new_version"] = published[self.period]["new_version"]
                if self.late_periods:
                    stage["late_new_versions"] = {
                        period: published[period]["new_version"] for period in self.late_periods
                    }
            stage.update(stage_figures(stage))
        if with_floors:
            self.floors(stages, source)
        self.save()

    def floors(self, stages: list[dict], source: Path) -> None:
        """Each floor after the night, on what the night read or wrote: the generated files,
        the raw zone, the published warehouse (the candidate, renamed by the release) and
        the published files (the staged folder, renamed into place)."""
        scratch = str(self.work / "floor")
        options = {
            "floor-intake": {"source": str(source), "scratch": scratch},
            "floor-build": {},
            "floor-export": {"warehouse": str(self.settings.warehouse_path), "scratch": scratch},
            "floor-gate": {"staged": str(self.latest_folder())},
        }
        for stage in stages:
            floor = FLOOR_OF.get(stage["name"])
            if floor:
                run = self.stage(floor, **options[floor])
                result = run.pop("result")
                stage["floor"] = {"name": floor, **run}
                if "by_type" in result:
                    stage["floor"]["by_type"] = result["by_type"]
                stage.update(stage_figures(stage))
                print(f"  {floor}: {run['wall_s']} s", flush=True)
                self.save()
        shutil.rmtree(scratch, ignore_errors=True)

    def raw_rows(self) -> int:
        con = self.settings.duckdb()
        try:
            manifest = self.settings.current_manifest
            return con.execute(
                f"select sum(row_count)::bigint from read_parquet('{manifest}') "
                f"where period = '{self.period}'"
            ).fetchone()[0]
        finally:
            con.close()

    def latest_folder(self, period: str | None = None) -> Path:
        folder = self.settings.publish_dir / (period or self.period)
        return folder / json.loads((folder / "latest.json").read_text())["path"]

    def published_rows(self) -> int:
        """Rows of the night's periods' latest versions' Parquet files (every format holds
        the same rows)."""
        files = [
            path
            for period in (self.period, *self.late_periods)
            for path in self.latest_folder(period).rglob("*.parquet")
        ]
        return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


def generate(bench: Bench, period: str, scale: str, file_format: str, source: Path) -> dict:
    run = timed(
        [str(COLLECTWATCH), "generate", "--period", period, "--scale", scale,
         "--seed", "1", "--out", str(source), "--format", file_format],
        bench.env,
    )  # fmt: skip
    rows = {
        m[1]: int(m[2].replace(",", ""))
        for m in map(ROWS_LINE.match, run["stdout"].splitlines())
        if m
    }
    files = [p for p in source.glob("*/*") if p.is_file()]
    run.pop("stdout")
    generated = {
        "run": run,
        "data": {
            "format": file_format,
            "files": len(files),
            "bytes": sum(p.stat().st_size for p in files),
            "rows": sum(rows.values()),
            "contact_events": rows.get("contact_events", 0),
            "rows_by_type": rows,
        },
    }
    (source / "generated.json").write_text(json.dumps(generated, indent=2) + "\n")
    return generated


def land(source: Path, landing: Path) -> None:
    """Every generated file into landing/<USCC>/ as a hard link (intake removes what it
    takes; the generated copy stays for the floors). Same inode, same mtime (receipt time)."""
    for path in sorted(source.glob("*/*")):
        target = landing / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)


def resubmit(bench: Bench, source: Path, rank: int = 1) -> tuple[str, int]:
    """The agency with the ``rank``-th largest contact log sends a corrected copy: the
    contacts it had recorded as to an emergency contact were to the debtor (same rows, same
    receipt time as the original). Third-party contact counts change, so a new version is
    published."""
    logs = sorted(source.glob("*/contact_events__*"), key=lambda p: p.stat().st_size)
    original = logs[-rank]
    target = bench.settings.landing_dir / original.parent.name / original.name
    target.parent.mkdir(parents=True, exist_ok=True)
    parquet = original.suffix == ".parquet"
    reader = (
        f"read_parquet('{original}')" if parquet else f"read_csv('{original}', all_varchar = true)"
    )
    options = "format parquet" if parquet else "format csv, header true"
    con = bench.settings.duckdb()
    try:
        rows = con.execute(
            f"""copy (select * replace (case when target = 'emergency_contact' then 'debtor'
                                          else target end as target)
                      from {reader})
                to '{target}' ({options})"""
        ).fetchone()[0]
    finally:
        con.close()
    stamp = original.stat().st_mtime
    os.utime(target, (stamp, stamp))
    return original.parent.name, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scale", choices=("small", "national"), default="national")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--period", default="2026-10")
    parser.add_argument("--work", default=None, help="default: bench/runs/<scale>")
    parser.add_argument(
        "--source",
        default=None,
        help="the folder of a month an earlier run generated (<work>/source: the folder holding "
        "its generated.json)",
    )
    parser.add_argument(
        "--next-source",
        default=None,
        help="the folder of the month after --period an earlier run generated "
        "(<work>/source-next); default: generated by this run",
    )
    parser.add_argument("--keep", action="store_true", help="keep the generated data")
    parser.add_argument(
        "--memory-limit",
        default="4GB",
        help="DuckDB's memory limit per process (two intake processes run at once; the "
        "target is a peak under 6 GiB for the whole process tree)",
    )
    parser.add_argument(
        "--dbt-memory-limit",
        default="4GB",
        help="dbt's DuckDB memory limit in the build, which runs alone (5GB: its largest model "
        "~10%% faster as a CTAS, but the night's build peaked at 5,946 MiB of the 6 GiB target)",
    )
    args = parser.parse_args()
    work = Path(args.work or HERE / "runs" / args.scale).resolve()
    source = Path(args.source).resolve() if args.source else work / "source"
    next_source = Path(args.next_source).resolve() if args.next_source else work / NEXT_SOURCE
    generated_here = (
        *(() if args.source else ("source",)),
        *(() if args.next_source else (NEXT_SOURCE,)),
    )
    for folder in (*RUN_FOLDERS, *generated_here):
        shutil.rmtree(work / folder, ignore_errors=True)
    (work / "results").mkdir(parents=True)
    env = {
        **os.environ,
        **NO_TELEMETRY_ENV,
        "COLLECTWATCH_DATA_DIR": str(work / "data"),
        "COLLECTWATCH_STATE_DIR": str(work / "state"),
        "COLLECTWATCH_DUCKDB_MEMORY_LIMIT": args.memory_limit,
        "COLLECTWATCH_DBT_MEMORY_LIMIT": args.dbt_memory_limit,
    }
    name = "results.json" if args.scale == "national" else f"results-{args.scale}.json"
    bench = Bench(work, args.period, env, HERE / name)
    bench.results = results = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "complete": False,
        "scale": args.scale,
        "period": args.period,
        "machine": machine(),
        "load_average": {"start": load_average(), "end": None},
        "duckdb": {
            "memory_limit": args.memory_limit,
            "dbt_memory_limit": args.dbt_memory_limit,
            "threads": bench.settings.duckdb_threads,
            "intake_parallel_batches": bench.settings.intake_parallel_batches,
            "intake_threads": bench.settings.intake_duckdb_threads,
            "temp_directory": "<data>/duckdb-spill (dbt: candidates/building.duckdb.tmp)",
        },
    }
    generated = month(bench, args.period, args.scale, args.format, source)
    results |= {"data": generated["data"], "generate": generated["run"], "stages": []}
    bench.save()
    land(source, bench.settings.landing_dir)
    results["generate"]["sync_s"] = settled()
    print("the night:", flush=True)
    bench.night(generated["data"]["rows"], results["stages"], True, source)
    results["nightly"] = totals(results["stages"])
    agency, resubmitted_rows = resubmit(bench, source)
    print(f"resubmission of {agency}'s contact log ({resubmitted_rows:,} rows):", flush=True)
    results["resubmission"] = {"agency_uscc": agency, "rows": resubmitted_rows, "stages": []}
    bench.night(resubmitted_rows, results["resubmission"]["stages"], False, source)
    results["resubmission"] |= totals(results["resubmission"]["stages"])
    bench.save()
    bench.period = shift_period(args.period, 1)
    following = month(bench, bench.period, args.scale, args.format, next_source)
    results["next_month"] = {
        "period": bench.period, "data": following["data"], "generate": following["run"],
        "stages": [],
    }  # fmt: skip
    land(next_source, bench.settings.landing_dir)
    # The night a new month lands often carries a late correction of the month before: that
    # month is rebuilt for the correcting agency only, beside the new month built whole.
    late_agency, late_rows = resubmit(bench, source, rank=2)
    results["next_month"]["late_correction"] = {
        "period": args.period, "agency_uscc": late_agency, "rows": late_rows,
    }  # fmt: skip
    bench.late_periods = [args.period]
    print(
        f"the next night ({bench.period}, on the warehouse holding {args.period}; "
        f"{late_agency}'s corrected {args.period} contact log, {late_rows:,} rows):",
        flush=True,
    )
    results["next_month"]["generate"]["sync_s"] = settled()
    landed = following["data"]["rows"] + late_rows
    bench.night(landed, results["next_month"]["stages"], False, next_source)
    results["next_month"] |= totals(results["next_month"]["stages"])
    results["complete"] = True
    bench.save()
    print(markdown(results))
    if args.keep:
        return
    for folder in (*RUN_FOLDERS, *generated_here):  # not a month an earlier run generated
        shutil.rmtree(work / folder, ignore_errors=True)
    if not any(work.iterdir()):
        work.rmdir()


def settled() -> float:
    """The disk made quiet before a night is timed (measure.settle); its seconds."""
    seconds = settle()
    print(f"  the generated files written back to the disk in {seconds} s", flush=True)
    return seconds


def month(bench: Bench, period: str, scale: str, file_format: str, source: Path) -> dict:
    """The generated month in ``source``: an earlier run's (its generated.json), or
    generated now."""
    described = source / "generated.json"
    if described.exists():
        generated = json.loads(described.read_text())
    else:
        print(f"generating the {scale} month {period} ({file_format}) …", flush=True)
        generated = generate(bench, period, scale, file_format, source)
    print(f"  {generated['data']['rows']:,} rows in {generated['run']['wall_s']} s", flush=True)
    return generated


if __name__ == "__main__":
    main()
