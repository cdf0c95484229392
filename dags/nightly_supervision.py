"""
### nightly_supervision — build, audit and publish the regional supervision tables

02:00 Asia/Shanghai every night. First completes a release a crash interrupted and
removes what interrupted runs left behind (staging, candidates; old ones by age). Plans
the periods to rebuild (the previous month, every period whose current submissions
changed since its last publication and the published month after and year after each of
those, or the `periods` param), builds a candidate
warehouse with `dbt build`, exports each period's tables and runs the Great Expectations
gate over exactly those files, then publishes a new version per period and swaps the
warehouse in (`latest.json` last). A failed gate
fails the run and leaves the last good warehouse and publication untouched.

Backfill: trigger with `{"periods": ["2026-08", "2026-09"]}` (or `collectwatch run --from
2026-08 --to 2026-09`); a period whose data files do not change gets no new version.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, Param, dag, get_current_context, task
from airflow.timetables.trigger import CronTriggerTimetable

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.orchestration import (
    PUBLICATION_URI,
    RAW_ZONE_URI,
    TAGS,
    WAREHOUSE_URI,
    default_args,
)

RAW_ZONE = Asset(RAW_ZONE_URI)
WAREHOUSE = Asset(WAREHOUSE_URI)
PUBLICATION = Asset(PUBLICATION_URI)
# DuckDB has one writer: every task that writes the warehouse or the publication takes a slot.
WAREHOUSE_POOL = Settings.from_env().warehouse_pool


@dag(
    dag_id="nightly_supervision",
    schedule=CronTriggerTimetable("0 2 * * *", timezone="Asia/Shanghai"),
    start_date=datetime(2026, 1, 1, tzinfo=CHINA_TZ),
    catchup=False,
    # DuckDB has one writer: one night at a time.
    max_active_runs=1,
    default_args=default_args(Settings.from_env()),
    params={
        "periods": Param([], type="array", description="YYYY-MM periods; empty = plan"),
        "full_refresh": Param(False, type="boolean"),
        "as_of": Param(None, type=["null", "string"], description="release-status clock"),
    },
    tags=[*TAGS, "publication"],
    doc_md=__doc__,
)
def nightly_supervision():
    @task(pool=WAREHOUSE_POOL)
    def recover() -> dict:
        from collectwatch import pipeline

        return pipeline.recover(Settings.from_env())

    @task(inlets=[RAW_ZONE])
    def plan_periods() -> list[str]:
        from collectwatch import pipeline

        context = get_current_context()
        now = context["dag_run"].run_after or datetime.now(CHINA_TZ)
        return pipeline.plan_periods(
            Settings.from_env(), list(context["params"]["periods"]), now.astimezone(CHINA_TZ)
        )

    @task(pool=WAREHOUSE_POOL)
    def build_candidate(periods: list[str]) -> dict:
        from collectwatch import pipeline

        params = get_current_context()["params"]
        return pipeline.build(
            Settings.from_env(), periods, params["as_of"], bool(params["full_refresh"])
        )

    @task(pool=WAREHOUSE_POOL)
    def audit_candidate(build: dict) -> dict:
        from collectwatch import pipeline

        return pipeline.audit(Settings.from_env(), build)

    @task(outlets=[WAREHOUSE, PUBLICATION], pool=WAREHOUSE_POOL)
    def publish(audit: dict) -> dict:
        from collectwatch import pipeline

        return pipeline.release(Settings.from_env(), audit)

    periods = plan_periods()
    recover() >> periods
    publish(audit_candidate(build_candidate(periods)))


nightly_supervision()
