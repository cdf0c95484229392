"""The one settings object: paths, thresholds and engine limits, read from the environment.

Every module takes a ``Settings`` instead of reading constants or environment variables
itself, so tests point the whole product at a temporary folder with one object.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta, timezone
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]

# Supervision runs on Beijing time: conduct rules and due dates are defined in UTC+08:00.
CHINA_TZ = timezone(timedelta(hours=8), name="Asia/Shanghai")

DEFAULT_REGULATOR_USCC = "11100000MB0000000P"

# Environment variables that stop the pipeline from phoning home (DESIGN: "Phoning home").
NO_TELEMETRY_ENV = {
    "DO_NOT_TRACK": "1",
    "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
    "GX_ANALYTICS_ENABLED": "false",
    "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
    "SCARF_ANALYTICS": "false",
}


# Every environment variable ``Settings.from_env`` reads (compose and docs are tested against it).
ENV_VARIABLES = (
    "COLLECTWATCH_DATA_DIR",
    "COLLECTWATCH_STATE_DIR",
    "COLLECTWATCH_REGULATOR_USCC",
    "COLLECTWATCH_MAX_FILE_BYTES",
    "COLLECTWATCH_DUE_DAY",
    "COLLECTWATCH_COVERAGE_FLOOR",
    "COLLECTWATCH_QUARANTINE_DAYS",
    "COLLECTWATCH_ARCHIVE_RETENTION_YEARS",
    "COLLECTWATCH_DUCKDB_MEMORY_LIMIT",
    "COLLECTWATCH_DUCKDB_THREADS",
    "COLLECTWATCH_INTAKE_PARALLEL_BATCHES",
    "COLLECTWATCH_INTAKE_DUCKDB_THREADS",
    "COLLECTWATCH_DBT_MEMORY_LIMIT",
    "COLLECTWATCH_DBT_UNIT_TESTS",
    "COLLECTWATCH_GATE_PARALLEL_PERIODS",
    "COLLECTWATCH_TASK_RETRIES",
    "COLLECTWATCH_TASK_RETRY_DELAY_S",
    "COLLECTWATCH_TASK_TIMEOUT_S",
    "COLLECTWATCH_XLSX_MAX_UNCOMPRESSED_BYTES",
    "COLLECTWATCH_XLSX_MAX_COMPRESSION_RATIO",
    "COLLECTWATCH_ALERT_WEBHOOK_URL",
    "COLLECTWATCH_SMTP_HOST",
    "COLLECTWATCH_SMTP_PORT",
    "COLLECTWATCH_ALERT_EMAIL_FROM",
    "COLLECTWATCH_ALERT_EMAIL_TO",
    "COLLECTWATCH_CANDIDATE_RETENTION_DAYS",
)


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


# DuckDB 2.0's asynchronous I/O pool: a COPY to Parquet that fails halfway (a cast error)
# hung its connection forever about once in a few hundred failures here (a worker blocked in
# ManagedAsyncWriteStreamQueue while the query waited for it; duckdb#23885 reports the same
# of reads). Without the pool the worker threads do the I/O: writing a gigabyte of contact
# logs to Parquet took as long (4.2-4.4 s against 4.4-5.1 s, 2026-12-07). dbt's connections
# get the same setting from profiles.yml.
DUCKDB_CONFIG = {"async_threads": 0}


def connect_duckdb(
    database: str | Path = ":memory:", read_only: bool = False, config: dict | None = None
):
    """A DuckDB connection with the product's settings (DUCKDB_CONFIG) and ``config``:
    every DuckDB connection the product opens is opened here."""
    import duckdb

    return duckdb.connect(
        str(database), read_only=read_only, config={**DUCKDB_CONFIG, **(config or {})}
    )


@dataclass(frozen=True)
class Settings:
    """Where collectwatch keeps its data and state, and the limits it enforces."""

    data_dir: Path
    state_dir: Path
    project_dir: Path = PROJECT_ROOT
    regulator_uscc: str = DEFAULT_REGULATOR_USCC
    # Largest submission file accepted, in bytes (a syntactic edit above it).
    max_file_bytes: int = 4 * 1024**3
    # XLSX is a zip: refuse a decompression bomb before parsing (a full sheet of 1,048,576
    # rows unpacks to well under 2 GiB; ordinary workbooks compress 5-30 times).
    xlsx_max_uncompressed_bytes: int = 2 * 1024**3
    xlsx_max_compression_ratio: int = 200
    # A period's release is final after this day of the following month, 23:59:59 +08:00.
    due_day_of_next_month: int = 15
    # The gate blocks a period when fewer than this share of the registry's active
    # institutions have every expected submission accepted (DESIGN "Quality gate").
    coverage_floor: float = 0.8
    # DuckDB limits for the pipeline's own connections and dbt; spill instead of dying.
    duckdb_memory_limit: str = "6GB"
    duckdb_threads: int = 2
    # Intake runs one batch per mapped task, at most ``intake_parallel_batches`` at once
    # (collect_submissions), each on a DuckDB of ``intake_duckdb_threads`` threads: the
    # batches, not DuckDB's threads, keep the cores busy. Two batches of two threads each
    # on 2 cores took 14% more CPU and 13% more time than of one thread each (two 1 GiB
    # batches of national contact logs, bench/README.md "2026-12-06"), and an unbounded
    # fan-out (the executor's 16 slots) would hold 16 batches in memory at once.
    intake_parallel_batches: int = field(default_factory=lambda: os.cpu_count() or 1)
    intake_duckdb_threads: int = 1
    # dbt's DuckDB. The build runs alone (the warehouse pool's one slot), after the intake
    # tasks that run side by side, so it may be given more than each of them: its largest
    # model sorts a month's events, and spills less with more (bench/README.md).
    dbt_memory_limit: str = "6GB"
    # The night's `dbt build` runs the dbt unit tests (formula checks, ~1 min) with the
    # models. Crash tests, which rebuild the same unchanged models many times, turn them off.
    dbt_unit_tests: bool = True
    # A night of several periods (a new month beside a late correction) gates them side by
    # side, at most this many at once, each in a process of its own: GX validates in one
    # Python thread (collectwatch.gate.run_gates). Each holds its period's published tables
    # in memory (~1.4 GB for a national month).
    gate_parallel_periods: int = field(default_factory=lambda: os.cpu_count() or 1)
    # Failed-task retries: kept for production, set to 0 by tests (see DESIGN "Verified").
    task_retries: int = 2
    task_retry_delay_s: int = 300
    # A task running longer fails (and is retried, and alerts): a hung DuckDB or dbt must not
    # hold the warehouse pool for good. A national night's longest task takes minutes, and a
    # year's backfill builds in one task, ~4 minutes a month here (bench/README.md).
    task_timeout_s: int = 4 * 3600
    # Quality edits: overdue share jump vs the last accepted month (Q003), outsourced
    # balance vs assignments (Q004); macro edit: lender vs agency reconciliation (M001).
    overdue_jump_factor: float = 3.0
    outsourced_tolerance: float = 0.01
    reconciliation_tolerance: float = 0.05
    # Retention (DESIGN Decision 11): rejected files in quarantine, originals in the archive.
    quarantine_days: int = 90
    archive_retention_years: int = 10
    # Rows of each rule listed in an edit report before it says "and N more".
    report_rows_per_rule: int = 100
    # Failure alerts: always a local file; a JSON POST and/or an email when configured.
    alert_webhook_url: str | None = None
    smtp_host: str | None = None
    smtp_port: int = 25
    alert_email_from: str = "collectwatch@localhost"
    alert_email_to: tuple[str, ...] = ()
    # Candidates kept after a failed gate (and per-run gate reports) are removed after this.
    candidate_retention_days: int = 14
    # Airflow pool of the tasks that write the DuckDB warehouse or the publication. DuckDB has
    # one writer per file, so the pool has one slot: a manual replay, a backfill and the night
    # queue behind each other on any executor, while intake tasks (no pool) fan out.
    warehouse_pool: str = "collectwatch_warehouse"

    @classmethod
    def from_env(cls) -> Settings:
        data_dir = _env_path("COLLECTWATCH_DATA_DIR", PROJECT_ROOT / "data")
        return cls(
            data_dir=data_dir,
            state_dir=_env_path("COLLECTWATCH_STATE_DIR", PROJECT_ROOT / ".state"),
            regulator_uscc=os.environ.get("COLLECTWATCH_REGULATOR_USCC", DEFAULT_REGULATOR_USCC),
            max_file_bytes=int(os.environ.get("COLLECTWATCH_MAX_FILE_BYTES", 4 * 1024**3)),
            due_day_of_next_month=int(os.environ.get("COLLECTWATCH_DUE_DAY", 15)),
            coverage_floor=float(os.environ.get("COLLECTWATCH_COVERAGE_FLOOR", 0.8)),
            quarantine_days=int(os.environ.get("COLLECTWATCH_QUARANTINE_DAYS", 90)),
            archive_retention_years=int(os.environ.get("COLLECTWATCH_ARCHIVE_RETENTION_YEARS", 10)),
            duckdb_memory_limit=os.environ.get("COLLECTWATCH_DUCKDB_MEMORY_LIMIT", "6GB"),
            duckdb_threads=int(os.environ.get("COLLECTWATCH_DUCKDB_THREADS", 2)),
            intake_parallel_batches=int(
                os.environ.get("COLLECTWATCH_INTAKE_PARALLEL_BATCHES", os.cpu_count() or 1)
            ),
            intake_duckdb_threads=int(os.environ.get("COLLECTWATCH_INTAKE_DUCKDB_THREADS", 1)),
            dbt_memory_limit=os.environ.get("COLLECTWATCH_DBT_MEMORY_LIMIT", "6GB"),
            dbt_unit_tests=os.environ.get("COLLECTWATCH_DBT_UNIT_TESTS", "true").lower()
            not in ("0", "false", "no"),
            gate_parallel_periods=int(
                os.environ.get("COLLECTWATCH_GATE_PARALLEL_PERIODS", os.cpu_count() or 1)
            ),
            task_retries=int(os.environ.get("COLLECTWATCH_TASK_RETRIES", 2)),
            task_retry_delay_s=int(os.environ.get("COLLECTWATCH_TASK_RETRY_DELAY_S", 300)),
            task_timeout_s=int(os.environ.get("COLLECTWATCH_TASK_TIMEOUT_S", 4 * 3600)),
            xlsx_max_uncompressed_bytes=int(
                os.environ.get("COLLECTWATCH_XLSX_MAX_UNCOMPRESSED_BYTES", 2 * 1024**3)
            ),
            xlsx_max_compression_ratio=int(
                os.environ.get("COLLECTWATCH_XLSX_MAX_COMPRESSION_RATIO", 200)
            ),
            alert_webhook_url=os.environ.get("COLLECTWATCH_ALERT_WEBHOOK_URL") or None,
            smtp_host=os.environ.get("COLLECTWATCH_SMTP_HOST") or None,
            smtp_port=int(os.environ.get("COLLECTWATCH_SMTP_PORT", 25)),
            alert_email_from=os.environ.get(
                "COLLECTWATCH_ALERT_EMAIL_FROM", "collectwatch@localhost"
            ),
            alert_email_to=tuple(
                address.strip()
                for address in os.environ.get("COLLECTWATCH_ALERT_EMAIL_TO", "").split(",")
                if address.strip()
            ),
            candidate_retention_days=int(
                os.environ.get("COLLECTWATCH_CANDIDATE_RETENTION_DAYS", 14)
            ),
        )

    @property
    def airflow_pools(self) -> dict[str, dict]:
        """The pools the DAGs use, with their slots. Created at deploy time (airflow-init in
        docker-compose.yml, the Helm chart's migration job) and by the embedded runs."""
        return {
            self.warehouse_pool: {
                "slots": 1,
                "description": (
                    "DuckDB has one writer: "
                    "tasks that write the warehouse or the publication take this slot"
                ),
                "include_deferred": False,
            }
        }

    def with_data_dir(self, data_dir: Path) -> Settings:
        return replace(self, data_dir=Path(data_dir).resolve())

    def duckdb(
        self, database: str | Path = ":memory:", read_only: bool = False, threads: int | None = None
    ):
        """A DuckDB connection with the configured limits (``threads``: instead of
        ``duckdb_threads``). Month arithmetic on timestamps happens in Beijing time, or a
        month would end 8 hours early."""
        # DuckDB creates its spill folder on demand, but not the folder above it.
        self.duckdb_temp_dir.parent.mkdir(parents=True, exist_ok=True)
        con = connect_duckdb(
            database,
            read_only=read_only,
            config={
                "memory_limit": self.duckdb_memory_limit,
                "threads": threads or self.duckdb_threads,
                "temp_directory": str(self.duckdb_temp_dir),
            },
        )
        # Set after connecting: ICU is built in but not autoloaded by connect(config=...).
        con.execute("set TimeZone = 'Asia/Shanghai'")
        return con

    # --- product data (DESIGN "Data folders") ---
    @property
    def landing_dir(self) -> Path:
        return self.data_dir / "landing"

    @property
    def archive_dir(self) -> Path:
        return self.data_dir / "archive"

    @property
    def quarantine_dir(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def intake_work_dir(self) -> Path:
        """Short-lived UTF-8 copies of GB18030 files while DuckDB reads them."""
        return self.data_dir / "work"

    @property
    def duckdb_temp_dir(self) -> Path:
        """Where DuckDB spills beyond its memory limit (pipeline connections and dbt): on
        the data volume, which has room for a national month, not in the working folder.
        Connections share it safely (DuckDB names its files by process and instance)."""
        return self.data_dir / "duckdb-spill"

    @property
    def reports_dir(self) -> Path:
        return self.data_dir / "reports"

    @property
    def submissions_db(self) -> Path:
        return self.data_dir / "state" / "submissions.sqlite"

    @property
    def raw_dir(self) -> Path:
        return self.data_dir / "raw"

    @property
    def current_manifest(self) -> Path:
        return self.raw_dir / "_current.parquet"

    @property
    def submission_log(self) -> Path:
        return self.raw_dir / "_submissions.parquet"

    @property
    def warehouse_path(self) -> Path:
        return self.data_dir / "warehouse" / "collectwatch.duckdb"

    @property
    def candidates_dir(self) -> Path:
        return self.data_dir / "warehouse" / "candidates"

    @property
    def release_journal(self) -> Path:
        """Present only while a release is being applied (see pipeline.release)."""
        return self.data_dir / "warehouse" / "release-pending.json"

    @property
    def publish_dir(self) -> Path:
        return self.data_dir / "publish"

    @property
    def alerts_dir(self) -> Path:
        return self.data_dir / "alerts"

    # --- tool state (git-ignored, DESIGN Decision 15) ---
    @property
    def airflow_home(self) -> Path:
        return self.state_dir / "airflow"

    @property
    def portal_db(self) -> Path:
        """Portal tokens (hashed) and the append-only audit log."""
        return self.state_dir / "portal.sqlite"

    @property
    def dbt_project_dir(self) -> Path:
        return self.project_dir / "dbt_project"

    @property
    def region_seed(self) -> Path:
        return self.dbt_project_dir / "seeds" / "regions.csv"

    @property
    def expected_submission_types_seed(self) -> Path:
        return self.dbt_project_dir / "seeds" / "expected_submission_types.csv"

    def ensure_dirs(self) -> None:
        for folder in (
            self.landing_dir,
            self.archive_dir,
            self.quarantine_dir,
            self.reports_dir,
            self.submissions_db.parent,
            self.raw_dir,
            self.candidates_dir,
            self.publish_dir,
            self.alerts_dir,
            self.state_dir,
        ):
            folder.mkdir(parents=True, exist_ok=True)
