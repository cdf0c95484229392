"""The portal's append-only audit log: who did what, when, to which path, with how many
bytes of which hash, and how it ended — every download, upload, verification, token
change and refused request.

It lives in ``state/portal.sqlite`` beside the tokens (tool state, DESIGN Decision 15).
Append-only is enforced by the database itself: triggers refuse UPDATE and DELETE, so a
bug (or a curious operator with the sqlite3 shell) cannot quietly rewrite history.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from collectwatch.config import CHINA_TZ

SCHEMA = """
create table if not exists audit_log (
    entry_id     integer primary key autoincrement,
    at           text not null,
    who          text not null,
    scope        text,
    action       text not null,
    method       text,
    path         text,
    status       integer not null,
    bytes        integer,
    sha256       text,
    detail       text
);
create trigger if not exists audit_log_no_update before update on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
create trigger if not exists audit_log_no_delete before delete on audit_log
begin select raise(abort, 'the audit log is append-only'); end;
"""


_connections = threading.local()


@contextmanager
def portal_db(path: Path) -> Iterator[sqlite3.Connection]:
    """This thread's connection to ``portal.sqlite``, opened once: every request reads a
    token and appends an entry, and opening SQLite per request costs more than the query.
    WAL lets the server and the CLI write at once; ``synchronous = normal`` (safe in WAL:
    never corrupts, at most the last commits lost on power failure) spares an fsync per
    request."""
    opened = _connections.__dict__.setdefault("by_path", {})
    con = opened.get(path)
    if con is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(path, timeout=30, isolation_level=None)
        con.execute("pragma journal_mode = wal")
        con.execute("pragma busy_timeout = 30000")
        con.execute("pragma synchronous = normal")
        con.row_factory = sqlite3.Row
        opened[path] = con
    yield con


def now() -> str:
    return datetime.now(CHINA_TZ).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class AuditEntry:
    who: str
    action: str
    status: int
    scope: str | None = None
    method: str | None = None
    path: str | None = None
    bytes: int | None = None
    sha256: str | None = None
    detail: str | None = None


class AuditLog:
    def __init__(self, path: Path):
        self.path = Path(path)
        with portal_db(self.path) as con:
            con.executescript(SCHEMA)

    def record(self, entry: AuditEntry) -> None:
        with portal_db(self.path) as con:
            con.execute(
                "insert into audit_log (at, who, scope, action, method, path, status, bytes, "
                "sha256, detail) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    now(),
                    entry.who,
                    entry.scope,
                    entry.action,
                    entry.method,
                    entry.path,
                    entry.status,
                    entry.bytes,
                    entry.sha256,
                    entry.detail,
                ),
            )

    def entries(self, after: int = 0, limit: int = 1000) -> list[dict]:
        """Entries with an id above ``after``, oldest first (page with the last id)."""
        with portal_db(self.path) as con:
            rows = con.execute(
                "select * from audit_log where entry_id > ? order by entry_id limit ?",
                (after, limit),
            ).fetchall()
        return [dict(row) for row in rows]
