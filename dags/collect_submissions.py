"""
### collect_submissions — intake of landed submission files (every 15 minutes)

Lenders and agencies drop files into `landing/<USCC>/`. Each run takes what has landed,
in batches by type (not one task per file: a national month is ~12,000 files), runs every
edit, records each file's status and edit report, loads accepted files into the raw
zone and emits the `raw_zone` asset. The logic lives in `collectwatch.pipeline`.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import Asset, dag, task

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.orchestration import RAW_ZONE_URI, TAGS, default_args

RAW_ZONE = Asset(RAW_ZONE_URI)
SETTINGS = Settings.from_env()


@dag(
    dag_id="collect_submissions",
    schedule="*/15 * * * *",
    start_date=datetime(2026, 1, 1, tzinfo=CHINA_TZ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(SETTINGS),
    tags=[*TAGS, "intake"],
    doc_md=__doc__,
)
def collect_submissions():
    @task
    def intake_registry() -> dict:
        """The registry decides who may submit the rest: it goes first, alone."""
        from collectwatch import pipeline

        return pipeline.intake_registry(Settings.from_env())

    @task
    def find_batches() -> list[list[str]]:
        from collectwatch import pipeline

        return pipeline.landing_batches(Settings.from_env())

    # At most intake_parallel_batches batches at once (Settings): each holds its typed rows
    # in memory, and more batches than cores only slice the same CPU thinner.
    @task(max_active_tis_per_dagrun=SETTINGS.intake_parallel_batches)
    def intake(batch: list[str]) -> dict:
        from collectwatch import pipeline

        return pipeline.intake_batch(Settings.from_env(), batch)

    @task(outlets=[RAW_ZONE], trigger_rule="none_failed")
    def refresh_current_versions(results: list[dict]) -> dict:
        from collectwatch.raw import write_current

        manifest = write_current(Settings.from_env())
        statuses: dict[str, int] = {}
        for result in results or []:
            for status, count in result["statuses"].items():
                statuses[status] = statuses.get(status, 0) + count
        return {"current_manifest": str(manifest), "statuses": statuses}

    batches = find_batches()
    intake_registry() >> batches
    refresh_current_versions(intake.expand(batch=batches))


collect_submissions()
