"""Every pipeline connection gets the configured memory limit, threads and a spill folder
on the data volume: a query bigger than the limit spills there instead of failing."""

from __future__ import annotations

from dataclasses import replace

from collectwatch.config import Settings


def test_a_query_over_the_memory_limit_spills_to_the_data_volume(tmp_path):
    settings = replace(
        Settings.from_env().with_data_dir(tmp_path / "data"),
        duckdb_memory_limit="64MB",
        duckdb_threads=1,
    )
    con = settings.duckdb()
    try:
        limit, threads, spill = con.execute(
            "select current_setting('memory_limit'), current_setting('threads'), "
            "current_setting('temp_directory')"
        ).fetchone()
        # ~200 MB of strings: more than the limit, so the table must live partly on disk
        con.execute("create table t as select i, md5(i::varchar) as s from range(3000000) t(i)")
        count, spilled = con.execute(
            "select (select count(distinct s) from t), "
            "(select count(*) from duckdb_temporary_files())"
        ).fetchone()
    finally:
        con.close()
    assert (limit, threads, spill) == ("61.0 MiB", 1, str(settings.duckdb_temp_dir))
    assert count == 3_000_000
    assert spilled > 0
    assert settings.duckdb_temp_dir.parent == settings.data_dir
