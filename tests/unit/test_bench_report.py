"""The pipeline benchmark's pure parts: ratios to the floors, totals, target verdicts, the
Markdown table and the README section it rewrites (bench/report.py). No timing here."""

from __future__ import annotations

import sys

import pytest

from collectwatch.config import PROJECT_ROOT

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
import report  # bench/ is scripts, not a package


def _stage(name, rows, wall, cpu, peak, floor=None):
    stage = {"name": name, "rows": rows, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": peak}
    if floor is not None:
        stage["floor"] = {"name": f"floor-{name}", "wall_s": floor[0], "cpu_s": floor[1],
                          "peak_rss_mb": 100}  # fmt: skip
    return stage


@pytest.fixture
def results():
    night = [
        _stage("intake", 1_000_000, 40.0, 60.0, 3000, floor=(20.0, 30.0)),
        _stage("build", 900_000, 100.0, 150.0, 5000, floor=(8.0, 12.0)),
        _stage("export", 20_000, 10.0, 9.0, 800, floor=(2.0, 2.0)),
        _stage("gate", 20_000, 30.0, 25.0, 900, floor=(1.5, 1.0)),
        _stage("release", 20_000, 2.0, 1.0, 200),
    ]
    again = [
        _stage("intake", 30_000, 3.0, 2.0, 400),
        _stage("build", 900_000, 45.0, 50.0, 4000),
        _stage("export", 20_000, 10.0, 9.0, 800),
        _stage("gate", 20_000, 20.0, 18.0, 900),
        _stage("release", 20_000, 2.0, 1.0, 200),
    ]
    return {
        "date": "2026-11-23T18:00:00+00:00",
        "scale": "small",
        "period": "2026-10",
        "machine": {"platform": "Linux-x86_64", "logical_cpus": 2, "memory_gb": 23.5},
        "load_average": {"start": [2.0, 1.5, 1.0], "end": [3.0, 2.0, 1.5]},
        "duckdb": {"memory_limit": "6GB", "threads": 2},
        "data": {
            "format": "csv",
            "files": 120,
            "bytes": 2 * 1024**3,
            "rows": 1_000_000,
            "contact_events": 800_000,
        },
        "generate": {"wall_s": 12.5, "peak_rss_mb": 700},
        "stages": night,
        "nightly": report.totals(night),
        "resubmission": {"stages": again, **report.totals(again)},
    }


def test_ratio_divides_by_the_floor_and_has_none_without_one():
    assert report.ratio(45.0, 30.0) == 1.5
    assert report.ratio(45.0, None) is None
    assert report.ratio(45.0, 0) is None


def test_stage_figures_add_rows_per_second_and_both_ratios(results):
    intake = report.stage_figures(results["stages"][0])
    assert intake["rows_per_s"] == 25_000  # 1,000,000 rows in 40 s
    assert (intake["ratio_wall"], intake["ratio_cpu"]) == (2.0, 2.0)  # 40/20, 60/30
    release = report.stage_figures(results["stages"][4])
    assert (release["ratio_wall"], release["ratio_cpu"]) == (None, None)


def test_totals_sum_times_and_keep_the_largest_peak(results):
    assert report.totals(results["stages"]) == {
        "wall_s": 182.0,
        "cpu_s": 245.0,
        "peak_rss_mb": 5000,
    }
    assert report.totals([]) == {"wall_s": 0, "cpu_s": 0, "peak_rss_mb": 0}


def test_verdicts_compare_with_the_issue_targets(results):
    assert report.verdicts(results) == {
        "nightly_under_10_min": True,  # 182 s
        "peak_under_6_gib": True,  # 5,000 MB
        "resubmission_under_60_s": False,  # 80 s
    }
    results["resubmission"]["peak_rss_mb"] = 7000
    assert report.verdicts(results)["peak_under_6_gib"] is False


def test_markdown_table_has_a_row_per_stage_with_its_ratio(results):
    table = report.markdown(results)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    header, stages = rows[0], rows[1:]
    assert "× floor (wall)" in header
    assert len(stages) == 5 + 1 + 5 + 1  # night, its total, resubmission, its total
    build = next(row for row in stages if row.startswith("| build |"))
    assert "| 12.5× | 12.5× |" in build  # 100/8 wall, 150/12 CPU
    assert "| **landing → publication** | | **182.0** |" in table
    assert "| **resubmitted contact log → publication** | | **80.0** |" in table
    assert "resubmission under 60 s (not met)" in table
    assert "2.00 GiB" in table and "load average [2.0, 1.5, 1.0]" in table


def test_replace_section_rewrites_only_between_the_markers():
    text = f"# Title\n\nbefore\n{report.README_START}\nold table\n{report.README_END}\nafter\n"
    updated = report.replace_section(text, "new table\n")
    assert updated == (
        f"# Title\n\nbefore\n{report.README_START}\nnew table\n{report.README_END}\nafter\n"
    )
    assert report.replace_section(updated, "new table") == updated  # idempotent
    with pytest.raises(ValueError):
        report.replace_section("# no markers\n", "table")


def test_readme_section_says_which_scale_has_no_run_yet(results):
    section = report.readme_section({"small": results})
    assert "No `national` run recorded yet" in section
    assert "#### `make bench SCALE=small`" in section


def test_readme_section_names_an_incomplete_run_instead_of_a_table(results):
    partial = {"date": "2026-11-23T18:34:23+00:00", "complete": False, "note": "intake stopped."}
    section = report.readme_section({"national": partial, "small": results})
    assert "did not complete: intake stopped." in section
    assert section.count("| stage |") == 1  # the small run's table only


def test_intake_by_type_sets_each_type_beside_its_own_floor(results):
    intake = results["stages"][0]
    intake["by_type"] = {
        "contact_events": {"files": 10, "batches": 2, "wall_s": 30.0, "cpu_s": 50.0},
        "institution_registry": {"files": 1, "batches": 1, "wall_s": 0.5, "cpu_s": 0.4},
    }
    intake["floor"]["by_type"] = {"contact_events": {"files": 10, "wall_s": 12.0, "cpu_s": 20.0}}
    results["data"]["rows_by_type"] = {"contact_events": 800_000, "institution_registry": 20}
    by_type = {row["type"]: row for row in report.intake_by_type(results)}
    assert by_type["contact_events"]["ratio_wall"] == 2.5  # 30 / 12
    assert by_type["contact_events"]["ratio_cpu"] == 2.5  # 50 / 20
    assert by_type["institution_registry"]["ratio_wall"] is None  # no floor of its own
    table = report.markdown(results)
    assert report.verdicts(results)["contact_log_intake_within_1_5x"] is False
    assert "contact log intake within 1.5× its plain COPY (not met: 2.5×)" in table
    assert "| contact_events | 10 | 800,000 | 30.0 | 50.0 | 12.0 | 20.0 | 2.5× | 2.5× |" in table
    assert "| institution_registry | 1 | 20 | 0.5 | 0.4 | – | – | – | – |" in table


def test_a_run_without_figures_by_type_has_no_intake_table(results):
    assert report.intake_by_type(results) == []
    assert "by submission type" not in report.markdown(results)
    assert "contact_log_intake_within_1_5x" not in report.verdicts(results)


def test_intake_figures_by_type_span_first_start_to_last_end_and_sum_cpu():
    import stage  # bench/stage.py

    def batch(kind, files, started, ended, cpu):
        return {"type": kind, "files": files, "started": started, "ended": ended,
                "cpu_s": cpu, "statuses": {}}  # fmt: skip

    by_type = stage._by_type(
        [
            batch("institution_registry", 1, 0.0, 0.5, 0.4),
            batch("contact_events", 300, 1.0, 11.0, 18.0),  # two batches at once
            batch("contact_events", 200, 1.5, 9.0, 14.0),
            batch("complaints", 300, 9.0, 12.0, 3.0),
        ]
    )
    assert by_type["contact_events"] == {"files": 500, "batches": 2, "wall_s": 10.0, "cpu_s": 32.0}
    assert by_type["complaints"]["wall_s"] == 3.0
    assert list(by_type) == sorted(by_type)


def test_the_next_months_night_has_its_rows_and_counts_for_the_night_target(results):
    """The steady state: the month after lands on a warehouse holding this one; the night
    target holds for both nights, and its peak counts too."""
    following = [
        _stage("intake", 1_000_000, 40.0, 60.0, 3000),
        _stage("build", 900_000, 600.0, 700.0, 5500),
        _stage("export", 20_000, 10.0, 9.0, 800),
        _stage("gate", 20_000, 30.0, 25.0, 900),
        _stage("release", 20_000, 2.0, 1.0, 200),
    ]
    assert report.verdicts(results)["nightly_under_10_min"] is True  # no next month: 182 s
    results["next_month"] = {"period": "2026-11", "stages": following, **report.totals(following)}
    met = report.verdicts(results)
    assert met["nightly_under_10_min"] is False  # the next night: 682 s
    assert met["peak_under_6_gib"] is True
    table = report.markdown(results)
    rows = [line for line in table.splitlines() if line.startswith("| next month: ")]
    assert [row.split(" | ")[0] for row in rows] == [
        f"| next month: {name}" for name in ("intake", "build", "export", "gate", "release")
    ]
    assert (
        "| **next month (2026-11, on a warehouse holding 2026-10): landing → publication** "
        "| | **682.0** |" in table
    )
    assert "landing → publication under 10 min (both nights) (not met)" in table
    results["next_month"]["late_correction"] = {
        "period": "2026-10", "agency_uscc": "91110000MA00000001", "rows": 81_680,
    }  # fmt: skip
    assert (
        "| **next month (2026-11, on a warehouse holding 2026-10, with one agency's corrected "
        "2026-10 contact log (81,680 rows)): landing → publication** | | **682.0** |"
        in report.markdown(results)
    )
    following[1]["peak_rss_mb"] = 7000
    results["next_month"] |= report.totals(following)
    assert report.verdicts(results)["peak_under_6_gib"] is False


def test_slowest_nodes_are_a_builds_longest_dbt_nodes_by_name():
    run_results = {
        "results": [
            {"unique_id": "model.collectwatch.stg_complaints", "execution_time": 0.41},
            {
                "unique_id": "model.collectwatch.int_contact_events_flagged",
                "execution_time": 107.23,
            },
            {
                "unique_id": "test.collectwatch.unique_combination_stg_x.1a2b",
                "execution_time": 7.26,
            },
            {"unique_id": "unit_test.collectwatch.stg_x.keeps_rows", "execution_time": 1.04},
        ]
    }
    assert report.slowest_nodes(run_results, 3) == [
        {"node": "int_contact_events_flagged", "s": 107.2},
        {"node": "unique_combination_stg_x", "s": 7.3},
        {"node": "stg_x unit test keeps_rows", "s": 1.0},
    ]


def test_markdown_lists_each_builds_slowest_nodes_where_recorded(results):
    assert "slowest dbt nodes" not in report.markdown(results)  # runs before 2026-12-06
    results["stages"][1]["slowest_nodes"] = [{"node": "int_contact_events_flagged", "s": 90.5}]
    results["resubmission"]["stages"][1]["slowest_nodes"] = [{"node": "stg_x", "s": 4.0}]
    text = report.markdown(results)
    assert "- night: `int_contact_events_flagged` 90.5" in text
    assert "- resubmission: `stg_x` 4.0" in text
    assert "- next month" not in text


def _beside(read, written, others, iowait, steal, **stalled):
    return {
        "disk": {"read_mb": read, "written_mb": written},
        "beside": {"others_cpu_s": others, "iowait_s": iowait, "steal_s": steal, **stalled},
    }


def test_markdown_sets_what_the_machine_did_beside_each_stage_and_floor(results):
    assert "Beside each stage" not in report.markdown(results)  # runs before 2026-12-07
    intake, build = results["stages"][0], results["stages"][1]
    intake |= _beside(7_168.0, 2_450.5, 61.3, 12.0, 0.4, io_some_s=88.5, io_full_s=40.25)
    intake["floor"] |= _beside(0.0, 1_900.0, 3.1, 0.5, 0.0)
    build |= _beside(120.0, 3_000.0, 1.0, 0.2, 9.75)  # its floor ran before 2026-12-07
    results["resubmission"]["stages"][0] |= _beside(5.0, 10.0, 0.1, 0.0, 0.0)
    results["generate"]["sync_s"] = 14.2
    lines = report.markdown(results).splitlines()
    rows = [line for line in lines if line.startswith("| ") and line.count("|") == 9]
    assert rows[1:] == [
        "| intake | 7,168.0 | 2,450.5 | 61.3 | 12.0 | 0.4 | 88.5 | 40.25 |",
        # recorded before the I/O pressure was (2026-12-08): a dash, not a zero
        "| build | 120.0 | 3,000.0 | 1.0 | 0.2 | 9.75 | – | – |",
        "| floor-intake | 0.0 | 1,900.0 | 3.1 | 0.5 | 0.0 | – | – |",
        "| resubmission: intake | 5.0 | 10.0 | 0.1 | 0.0 | 0.0 | – | – |",
    ]
    text = "\n".join(lines)
    assert "written back to the disk, so the intake does not share it" in text
    assert "kernel's writeback: 14.2 s." in text
    results["next_month"] = {
        "period": "2026-11",
        "generate": {"wall_s": 1.0, "peak_rss_mb": 10, "sync_s": 3.5},
        "stages": [_stage("intake", 10, 1.0, 1.0, 10) | _beside(1.0, 2.0, 0.0, 0.0, 0.0)],
        **report.totals([_stage("intake", 10, 1.0, 1.0, 10)]),
    }
    text = report.markdown(results)
    assert "| next month: intake | 1.0 | 2.0 | 0.0 | 0.0 | 0.0 | – | – |" in text
    assert "writeback: 14.2 s, the next month 3.5 s." in text
