"""The submission state store (SQLite in WAL mode, DESIGN Decision 2).

Statuses: received -> rejected | needs_verification | accepted -> superseded. Only the
current accepted version per (submitter, type, period) reaches the warehouse. Many intake
tasks may write at once: sequence numbers are allocated inside an immediate transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

RECEIVED, REJECTED, NEEDS_VERIFICATION, ACCEPTED, SUPERSEDED = (
    "received",
    "rejected",
    "needs_verification",
    "accepted",
    "superseded",
)

SCHEMA = """
create table if not exists submissions (
    submission_id    text primary key,
    submitter_uscc   text not null,
    submission_type  text not null,
    period           text not null,
    sequence         integer not null,
    status           text not null,
    sha256           text not null,
    file_name        text not null,
    size_bytes       integer not null,
    received_at      text not null,
    decided_at       text,
    row_count        integer,
    archive_path     text,
    raw_path         text,
    report_path      text,
    unique (submitter_uscc, submission_type, period, sequence)
);
create index if not exists submissions_by_key
    on submissions (submitter_uscc, submission_type, period, status);
"""


@dataclass(frozen=True)
class Submission:
    submission_id: str
    submitter_uscc: str
    submission_type: str
    period: str
    sequence: int
    status: str
    sha256: str
    file_name: str
    size_bytes: int
    received_at: str
    decided_at: str | None
    row_count: int | None
    archive_path: str | None
    raw_path: str | None
    report_path: str | None


class StateStore:
    """The store's SQLite file behind one connection per instance (opened on first use):
    an intake batch makes a few statements per file, and opening a connection costs more
    than they do."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._con: sqlite3.Connection | None = None
        with self._connect() as con:
            con.executescript(SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if self._con is None:
            con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            con.execute("pragma journal_mode = wal")
            con.execute("pragma busy_timeout = 60000")
            con.row_factory = sqlite3.Row
            self._con = con
        yield self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as con:
            con.execute("begin immediate")
            try:
                yield con
            except BaseException:
                con.execute("rollback")
                raise
            con.execute("commit")

    def find_identical(
        self, submitter_uscc: str, submission_type: str, period: str, sha256: str
    ) -> Submission | None:
        with self._connect() as con:
            row = con.execute(
                "select * from submissions where submitter_uscc = ? and submission_type = ? "
                "and period = ? and sha256 = ? and status <> ? order by sequence desc limit 1",
                (submitter_uscc, submission_type, period, sha256, RECEIVED),
            ).fetchone()
        return Submission(**row) if row else None

    def register(
        self,
        submitter_uscc: str,
        submission_type: str,
        period: str,
        sha256: str,
        file_name: str,
        size_bytes: int,
        received_at: str,
    ) -> Submission:
        """Record a received file under the next sequence number of its key."""
        with self.transaction() as con:
            sequence = con.execute(
                "select coalesce(max(sequence), 0) + 1 from submissions "
                "where submitter_uscc = ? and submission_type = ? and period = ?",
                (submitter_uscc, submission_type, period),
            ).fetchone()[0]
            submission_id = f"{submitter_uscc}-{period}-{submission_type}-{sequence:03d}"
            con.execute(
                "insert into submissions (submission_id, submitter_uscc, submission_type, "
                "period, sequence, status, sha256, file_name, size_bytes, received_at) "
                "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    submission_id,
                    submitter_uscc,
                    submission_type,
                    period,
                    sequence,
                    RECEIVED,
                    sha256,
                    file_name,
                    size_bytes,
                    received_at,
                ),
            )
        return self.get(submission_id)

    def decide(self, submission_id: str, status: str, decided_at: str, **paths: object) -> None:
        """Set the outcome; an accepted version supersedes the previous accepted one."""
        assignments = ", ".join(f"{name} = ?" for name in paths)
        with self.transaction() as con:
            if status == ACCEPTED:
                self._supersede_previous(con, submission_id)
            con.execute(
                f"update submissions set status = ?, decided_at = ?"
                f"{', ' + assignments if assignments else ''} where submission_id = ?",
                (status, decided_at, *paths.values(), submission_id),
            )

    @staticmethod
    def _supersede_previous(con: sqlite3.Connection, submission_id: str) -> None:
        con.execute(
            """
            update submissions set status = ?
            where status in (?, ?) and submission_id <> ?
              and (submitter_uscc, submission_type, period) = (
                  select submitter_uscc, submission_type, period
                  from submissions where submission_id = ?)
            """,
            (SUPERSEDED, ACCEPTED, NEEDS_VERIFICATION, submission_id, submission_id),
        )

    def get(self, submission_id: str) -> Submission:
        with self._connect() as con:
            row = con.execute(
                "select * from submissions where submission_id = ?", (submission_id,)
            ).fetchone()
        if row is None:
            raise KeyError(f"no submission {submission_id!r}")
        return Submission(**row)

    def current(
        self,
        submission_type: str | None = None,
        period: str | None = None,
        submitter_uscc: str | None = None,
        submitters: list[str] | None = None,
    ) -> list[Submission]:
        """The accepted version of every (submitter, type, period), optionally only those
        of one type, period, submitter or list of submitters."""
        filters = {
            "submission_type": submission_type,
            "period": period,
            "submitter_uscc": submitter_uscc,
        }
        chosen = {name: value for name, value in filters.items() if value is not None}
        where = "".join(f" and {name} = ?" for name in chosen)
        values = [ACCEPTED, *chosen.values()]
        if submitters is not None:
            # a JSON array, so any number of submitters is one parameter
            where += " and submitter_uscc in (select value from json_each(?))"
            values.append(json.dumps(sorted(submitters)))
        with self._connect() as con:
            rows = con.execute(
                f"select * from submissions where status = ?{where} order by submission_id",
                values,
            ).fetchall()
        return [Submission(**row) for row in rows]

    def decided_before(self, status: str, decided_before: str) -> list[Submission]:
        """Submissions in ``status`` decided before an ISO timestamp (for purging)."""
        with self._connect() as con:
            rows = con.execute(
                "select * from submissions where status = ? and decided_at < ? "
                "order by submission_id",
                (status, decided_before),
            ).fetchall()
        return [Submission(**row) for row in rows]

    def rows(self, columns: tuple[str, ...], status: str | None = None) -> list[tuple]:
        """``columns`` of every submission (of one ``status``), ordered by id, as plain
        tuples: the manifests take the whole store at once, and an object per row cost
        ~1 s per 16,000 rows each time a batch of the night listed them."""
        where, values = (" where status = ?", [status]) if status is not None else ("", [])
        with self._connect() as con:
            cursor = con.cursor()
            cursor.row_factory = None
            return cursor.execute(
                f"select {', '.join(columns)} from submissions{where} order by submission_id",
                values,
            ).fetchall()

    def all_versions(self) -> list[Submission]:
        """Every submission of every status, for the coverage log dbt reads."""
        with self._connect() as con:
            rows = con.execute("select * from submissions order by submission_id").fetchall()
        return [Submission(**row) for row in rows]
