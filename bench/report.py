"""The pipeline benchmark's figures as a Markdown table, and the README section that shows
the latest one. Pure functions of the results dict (bench/results.json): unit-tested."""

from __future__ import annotations

# What each stage is compared with (its plain-DuckDB floor on the same data, same run).
FLOORS = {
    "intake": "plain DuckDB CSV → Parquet COPY of the same files",
    "build": "one aggregate scan per raw type over the raw Parquet",
    "export": "plain COPY of the period's marts to Parquet and CSV",
    "gate": "DuckDB SUMMARIZE of every staged Parquet file",
}
README_START = "<!-- bench:start (make bench-readme rewrites this section) -->"
README_END = "<!-- bench:end -->"
TARGETS = {
    "nightly_wall_s": 600,
    "peak_rss_mb": 6 * 1024,
    "resubmission_wall_s": 60,
    "contact_log_intake_ratio": 1.5,  # its wall time over its plain COPY's
}


def ratio(value: float, floor: float | None) -> float | None:
    """``value`` over its floor, or None when there is no floor to divide by."""
    if not floor:
        return None
    return round(value / floor, 2)


def stage_figures(stage: dict) -> dict:
    """A stage's measured run with rows/s and its ratios to the floor filled in."""
    figures = dict(stage)
    figures["rows_per_s"] = round(stage["rows"] / stage["wall_s"]) if stage["wall_s"] else None
    floor = stage.get("floor")
    figures["ratio_wall"] = ratio(stage["wall_s"], floor and floor["wall_s"])
    figures["ratio_cpu"] = ratio(stage["cpu_s"], floor and floor["cpu_s"])
    return figures


def totals(stages: list[dict]) -> dict:
    """A run of consecutive stages: summed wall and CPU time, the largest peak."""
    return {
        "wall_s": round(sum(stage["wall_s"] for stage in stages), 2),
        "cpu_s": round(sum(stage["cpu_s"] for stage in stages), 2),
        "peak_rss_mb": max((stage["peak_rss_mb"] for stage in stages), default=0),
    }


def verdicts(results: dict) -> dict[str, bool]:
    """Each target of issue 8 met or not (the contact log's intake only in a run that
    timed the intake by type)."""
    nightly, resubmission = results["nightly"], results["resubmission"]
    next_month = results.get("next_month")  # runs before 2026-12-06 had none
    nights = [nightly, *([next_month] if next_month else [])]
    peak = max(run["peak_rss_mb"] for run in (*nights, resubmission))
    met = {
        "nightly_under_10_min": all(n["wall_s"] < TARGETS["nightly_wall_s"] for n in nights),
        "peak_under_6_gib": peak < TARGETS["peak_rss_mb"],
        "resubmission_under_60_s": resubmission["wall_s"] < TARGETS["resubmission_wall_s"],
    }
    contact_log = _contact_log_intake(results)
    if contact_log is not None:
        met["contact_log_intake_within_1_5x"] = (
            contact_log["ratio_wall"] <= TARGETS["contact_log_intake_ratio"]
        )
    return met


def slowest_nodes(run_results: dict, count: int = 8) -> list[dict]:
    """The ``count`` dbt nodes (models, tests, seeds) that took longest in a build, from its
    ``run_results.json``: where the build's time goes."""
    nodes = sorted(run_results["results"], key=lambda node: -node["execution_time"])
    return [
        {"node": _node_name(node["unique_id"]), "s": round(node["execution_time"], 1)}
        for node in nodes[:count]
    ]


def _node_name(unique_id: str) -> str:
    """A node's name: a model's, seed's or data test's own; a unit test's with its model's
    (its unique id is unit_test.<project>.<model>.<name>)."""
    kind, _, name, *rest = unique_id.split(".")
    return f"{name} unit test {rest[0]}" if kind == "unit_test" else name


def _contact_log_intake(results: dict) -> dict | None:
    """The contact logs' row of ``intake_by_type``, if it has a ratio to its floor."""
    row = next((r for r in intake_by_type(results) if r["type"] == "contact_events"), None)
    return row if row and row["ratio_wall"] is not None else None


def _size(size: int) -> str:
    return f"{size / 1024**3:.2f} GiB" if size >= 1024**3 else f"{size / 1024**2:.1f} MiB"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value}×"


def _stage_row(label: str, stage: dict) -> str:
    figures = stage_figures(stage)
    floor = stage.get("floor") or {}
    rows_per_s = "–" if figures["rows_per_s"] is None else f"{figures['rows_per_s']:,}"
    return (
        f"| {label} | {stage['rows']:,} | {stage['wall_s']} | {stage['cpu_s']} | {rows_per_s} | "
        f"{stage['peak_rss_mb']:,} | {floor.get('wall_s', '–')} | {_x(figures['ratio_wall'])} | "
        f"{_x(figures['ratio_cpu'])} |"
    )


def intake_by_type(results: dict) -> list[dict]:
    """The night's intake per submission type beside the plain COPY of the same type's
    files: the issue's intake target is the contact log's ratio (the registry has no
    floor of its own: it is one small file read before the rest)."""
    intake = next((s for s in results["stages"] if s["name"] == "intake"), {})
    measured = intake.get("by_type") or {}
    floors = (intake.get("floor") or {}).get("by_type") or {}
    rows_by_type = results["data"].get("rows_by_type", {})
    return [
        {
            "type": name,
            "files": figures["files"],
            "rows": rows_by_type.get(name),
            "wall_s": figures["wall_s"],
            "cpu_s": figures["cpu_s"],
            "floor_wall_s": floors.get(name, {}).get("wall_s"),
            "floor_cpu_s": floors.get(name, {}).get("cpu_s"),
            "ratio_wall": ratio(figures["wall_s"], floors.get(name, {}).get("wall_s")),
            "ratio_cpu": ratio(figures["cpu_s"], floors.get(name, {}).get("cpu_s")),
        }
        for name, figures in measured.items()
    ]


def _intake_lines(results: dict) -> list[str]:
    by_type = intake_by_type(results)
    if not by_type:
        return []
    lines = [
        "",
        "The night's intake by submission type (wall: its first batch's start to its last "
        "batch's end, two batches at once; CPU: its batches' processes):",
        "",
        "| type | files | rows | wall (s) | CPU (s) | floor wall (s) | floor CPU (s) "
        "| × floor (wall) | × floor (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in by_type:
        rows = "–" if row["rows"] is None else f"{row['rows']:,}"
        lines.append(
            f"| {row['type']} | {row['files']:,} | {rows} | {row['wall_s']} | {row['cpu_s']} | "
            f"{'–' if row['floor_wall_s'] is None else row['floor_wall_s']} | "
            f"{'–' if row['floor_cpu_s'] is None else row['floor_cpu_s']} | "
            f"{_x(row['ratio_wall'])} | {_x(row['ratio_cpu'])} |"
        )
    return lines


def _slowest_nodes_lines(results: dict) -> list[str]:
    """Each build's slowest dbt nodes, where the run recorded them (since 2026-12-06)."""
    builds = [
        (label, next((s for s in run["stages"] if s["name"] == "build"), {}))
        for label, run in (
            ("night", results),
            ("resubmission", results["resubmission"]),
            ("next month", results.get("next_month") or {"stages": []}),
        )
    ]
    lines = [
        f"- {label}: "
        + ", ".join(f"`{node['node']}` {node['s']}" for node in build["slowest_nodes"])
        for label, build in builds
        if build.get("slowest_nodes")
    ]
    if not lines:
        return []
    return ["", "Each build's slowest dbt nodes (s, from its `run_results.json`):", "", *lines]


def _beside_row(label: str, run: dict) -> str:
    disk, beside = run["disk"], run["beside"]
    return (
        f"| {label} | {disk['read_mb']:,} | {disk['written_mb']:,} | {beside['others_cpu_s']} | "
        f"{beside['iowait_s']} | {beside['steal_s']} | {beside.get('io_some_s', '–')} | "
        f"{beside.get('io_full_s', '–')} |"
    )


def _written_back(results: dict) -> str:
    """How long writing the generated months back to the disk took before their nights."""
    months = [("", results["generate"])]
    if results.get("next_month"):
        months.append(("the next month ", results["next_month"]["generate"]))
    parts = [f"{label}{g['sync_s']} s" for label, g in months if g.get("sync_s") is not None]
    if not parts:
        return ""
    return (
        " Before each night the generated month was written back to the disk, so the intake "
        "does not share it with the kernel's writeback: " + ", ".join(parts) + "."
    )


def _beside_lines(results: dict) -> list[str]:
    """Each stage's and floor's disk traffic and what the rest of the machine did meanwhile,
    where the run recorded them (since 2026-12-07): a ratio to a floor is only as good as
    the two runs were alike."""
    rows = []
    for prefix, night in (
        ("", results),
        ("resubmission: ", results["resubmission"]),
        ("next month: ", results.get("next_month") or {"stages": []}),
    ):
        measured = [stage for stage in night["stages"] if "beside" in stage]
        floors = [stage["floor"] for stage in measured if "beside" in stage.get("floor", {})]
        rows += [_beside_row(prefix + run["name"], run) for run in (*measured, *floors)]
    if not rows:
        return []
    return [
        "",
        "Beside each stage and floor: what its processes read from the disk (page-cache hits "
        "are not reads) and wrote to it; the CPU time of everything else on the machine "
        "(other processes, the kernel writing dirty pages back); CPUs idle waiting on the "
        "disk; time the hypervisor gave this VM's CPUs to others (steal: the same work costs "
        "more CPU time then); the seconds in which some task, or every runnable one, stalled "
        "on the disk (the kernel's I/O pressure, since 2026-12-08)." + _written_back(results),
        "",
        "| run | read (MB) | written (MB) | others' CPU (s) | I/O wait (s) | steal (s) "
        "| I/O stall, some (s) | I/O stall, full (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]


def _intake_threads(duckdb: dict) -> str:
    """The intake's own concurrency, where the run recorded it (runs before 2026-12-06 ran
    two intake batches of ``threads`` threads each)."""
    if "intake_threads" not in duckdb:
        return ""
    threads = duckdb["intake_threads"]
    return (
        f" ({duckdb['intake_parallel_batches']} intake batches at once, "
        f"{threads} thread{'s' if threads != 1 else ''} each)"
    )


def _dbt_limit(duckdb: dict) -> str:
    """dbt's own limit in the build, where a run set one apart from the pipeline's."""
    limit = duckdb.get("dbt_memory_limit")
    return f" (dbt's in the build: {limit})" if limit and limit != duckdb["memory_limit"] else ""


def _next_month_night(results: dict) -> str:
    """What the next month's night carried: the new month on the warehouse holding the
    first and, in runs since 2026-12-07, one agency's late correction of the first."""
    next_month = results["next_month"]
    night = f"{next_month['period']}, on a warehouse holding {results['period']}"
    late = next_month.get("late_correction")
    if late:
        night += (
            f", with one agency's corrected {late['period']} contact log ({late['rows']:,} rows)"
        )
    return night


def markdown(results: dict) -> str:
    """The short table: every stage of the night, the resubmission, then the next month's
    night (where the run had one)."""
    machine, data = results["machine"], results["data"]
    lines = [
        f"Run {results['date']} on {machine['platform']}, {machine['logical_cpus']} CPUs, "
        f"{machine['memory_gb']} GB RAM (load average {results['load_average']['start']} at the "
        f"start, {results['load_average']['end']} at the end); DuckDB memory limit "
        f"{results['duckdb']['memory_limit']}{_dbt_limit(results['duckdb'])}, "
        f"{results['duckdb']['threads']} threads{_intake_threads(results['duckdb'])}.",
        f"Data: scale `{results['scale']}`, period {results['period']}, {data['files']:,} "
        f"{data['format'].upper()} files, {_size(data['bytes'])}, "
        f"{data['rows']:,} rows ({data['contact_events']:,} contact events); generated in "
        f"{results['generate']['wall_s']} s (peak {results['generate']['peak_rss_mb']:,} MB).",
        "",
        "| stage | rows | wall (s) | CPU (s) | rows/s | peak RSS (MB) | floor wall (s) "
        "| × floor (wall) | × floor (CPU) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for stage in results["stages"]:
        lines.append(_stage_row(stage["name"], stage))
    nightly = results["nightly"]
    lines.append(
        f"| **landing → publication** | | **{nightly['wall_s']}** | {nightly['cpu_s']} | | "
        f"**{nightly['peak_rss_mb']:,}** | | | |"
    )
    for stage in results["resubmission"]["stages"]:
        lines.append(_stage_row(f"resubmission: {stage['name']}", stage))
    resubmission = results["resubmission"]
    lines.append(
        f"| **resubmitted contact log → publication** | | **{resubmission['wall_s']}** | "
        f"{resubmission['cpu_s']} | | **{resubmission['peak_rss_mb']:,}** | | | |"
    )
    next_month = results.get("next_month")
    if next_month:
        for stage in next_month["stages"]:
            lines.append(_stage_row(f"next month: {stage['name']}", stage))
        lines.append(
            f"| **next month ({_next_month_night(results)}): landing → publication** | | "
            f"**{next_month['wall_s']}** | {next_month['cpu_s']} | | "
            f"**{next_month['peak_rss_mb']:,}** | | | |"
        )
    met = verdicts(results)
    contact_log = _contact_log_intake(results)
    intake_target = (
        ""
        if contact_log is None
        else ", contact log intake within 1.5× its plain COPY "
        f"({'met' if met['contact_log_intake_within_1_5x'] else 'not met'}: "
        f"{contact_log['ratio_wall']}×)"
    )
    lines += [
        "",
        f"Targets: landing → publication under 10 min{' (both nights)' if next_month else ''} "
        f"({'met' if met['nightly_under_10_min'] else 'not met'}), peak under 6 GiB "
        f"({'met' if met['peak_under_6_gib'] else 'not met'}), resubmission under 60 s "
        f"({'met' if met['resubmission_under_60_s'] else 'not met'}){intake_target}.",
        "Floors: " + "; ".join(f"{name}: {floor}" for name, floor in FLOORS.items()) + ".",
        *_intake_lines(results),
        *_beside_lines(results),
        *_slowest_nodes_lines(results),
    ]
    return "\n".join(lines)


def replace_section(text: str, body: str) -> str:
    """``text`` with the part between the benchmark markers replaced by ``body``."""
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        raise ValueError("the README has no benchmark section markers")
    return text[: start + len(README_START)] + "\n" + body.strip() + "\n" + text[end:]


def readme_section(results_by_scale: dict[str, dict]) -> str:
    """The benchmark section: the latest run of each scale, national first."""
    parts = []
    for scale in ("national", "small"):
        results = results_by_scale.get(scale)
        if results is None:
            parts.append(f"No `{scale}` run recorded yet (`make bench SCALE={scale}`).")
        elif results.get("complete") is False:
            parts.append(
                f"#### `make bench SCALE={scale}`\n\nThe last run ({results['date']}) did not "
                f"complete: {results.get('note', 'see the stages recorded in its results file')}"
            )
        else:
            parts.append(f"#### `make bench SCALE={scale}`\n\n{markdown(results)}")
    return "\n\n".join(parts)


def main() -> None:
    """Rewrite the benchmark section of README.md and bench/README.md from the results."""
    import json
    from pathlib import Path

    here = Path(__file__).resolve().parent
    results_by_scale = {
        scale: json.loads(path.read_text())
        for scale, path in (("national", here / "results.json"),
                            ("small", here / "results-small.json"))
        if path.exists()
    }  # fmt: skip
    body = readme_section(results_by_scale)
    for readme in (here.parent / "README.md", here / "README.md"):
        readme.write_text(replace_section(readme.read_text(), body))
        print(f"updated {readme}")


if __name__ == "__main__":
    main()
