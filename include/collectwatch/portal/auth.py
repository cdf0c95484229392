"""Portal access: scopes and bearer tokens.

A token is ``cw_<id>_<secret>``. Only the SHA-256 of the whole token is stored (in
``state/portal.sqlite``), so the database alone cannot be used to call the portal; the
token is shown once, when issued. Every issue and revoke is written to the audit log.

Scopes (what a token may read is decided per published file, by the scope the manifest
gives that file — never by filtering a file on the fly, DESIGN Decision 6):
- ``national``: every file; the submissions register; the audit log.
- ``province:<code>``: only ``province=<code>/`` files (its province and prefectures).
- ``public``: only ``public/`` files (province level, disclosure-controlled).
- ``submitter:<USCC>``: no publication; uploads bound to its USCC, its own submissions.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.portal.audit import AuditEntry, AuditLog, now, portal_db
from collectwatch.uscc import is_valid

NATIONAL, PROVINCE, PUBLIC, SUBMITTER = "national", "province", "public", "submitter"
PUBLIC_FOLDER, INTERNAL_FOLDER = "public", "internal"
TOKEN_PATTERN = re.compile(r"^cw_(?P<token_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})$")
PROVINCE_CODE = re.compile(r"^\d{2}0000$")
DEFAULT_EXPIRY_DAYS = 90

SCHEMA = """
create table if not exists tokens (
    token_id     text primary key,
    token_sha256 text not null,
    name         text not null,
    scope        text not null,
    created_at   text not null,
    expires_at   text not null,
    revoked_at   text
);
"""


@dataclass(frozen=True)
class Scope:
    kind: str
    value: str | None = None

    @classmethod
    def parse(cls, text: str) -> Scope:
        kind, _, value = text.partition(":")
        if kind in (NATIONAL, PUBLIC) and not value:
            return cls(kind)
        if kind == PROVINCE and PROVINCE_CODE.match(value) and value != "000000":
            return cls(kind, value)
        if kind == SUBMITTER and is_valid(value):
            return cls(kind, value)
        raise ValueError(
            f"scope {text!r} is not one of national, public, province:<6-digit code ending "
            "in 0000>, submitter:<USCC with a valid check character>"
        )

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind

    @property
    def folder(self) -> str | None:
        """The publication folder this scope reads (None: no publication access)."""
        return {
            NATIONAL: INTERNAL_FOLDER,
            PUBLIC: PUBLIC_FOLDER,
            PROVINCE: f"province={self.value}",
        }.get(self.kind)

    def may_read(self, file_scope: str) -> bool:
        """Whether a published file whose manifest scope is ``file_scope`` is entitled."""
        if self.kind == NATIONAL:
            return True
        return self.folder is not None and normalise_file_scope(file_scope) == self.folder

    @property
    def province_prefix(self) -> str | None:
        """The two leading digits every region code a province scope sees starts with."""
        return self.value[:2] if self.kind == PROVINCE else None


def normalise_file_scope(file_scope: str) -> str:
    """``province:440000`` and ``province=440000`` name the same folder."""
    return file_scope.replace("province:", "province=", 1)


@dataclass(frozen=True)
class Token:
    token_id: str
    name: str
    scope: Scope
    created_at: str
    expires_at: str
    revoked_at: str | None

    def as_dict(self) -> dict:
        return {
            "token_id": self.token_id,
            "name": self.name,
            "scope": str(self.scope),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
        }


class Refused(Exception):
    """Authentication failed; ``token_id`` is set when the token named a known id."""

    def __init__(self, reason: str, token_id: str | None = None):
        super().__init__(reason)
        self.reason = reason
        self.token_id = token_id


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _token(row) -> Token:
    return Token(
        row["token_id"],
        row["name"],
        Scope.parse(row["scope"]),
        row["created_at"],
        row["expires_at"],
        row["revoked_at"],
    )


class TokenStore:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.audit = AuditLog(self.path)
        with portal_db(self.path) as con:
            con.executescript(SCHEMA)

    def issue(
        self, scope: Scope, expires_in_days: float = DEFAULT_EXPIRY_DAYS, name: str = ""
    ) -> tuple[Token, str]:
        """A new token; returns it and its secret (shown once, never stored)."""
        if expires_in_days <= 0:
            raise ValueError("--expires-in must be a positive number of days")
        token_id = secrets.token_hex(6)
        secret = f"cw_{token_id}_{secrets.token_urlsafe(32)}"
        created = datetime.now(CHINA_TZ)
        expires = created + timedelta(days=expires_in_days)
        with portal_db(self.path) as con:
            con.execute(
                "insert into tokens (token_id, token_sha256, name, scope, created_at, "
                "expires_at) values (?, ?, ?, ?, ?, ?)",
                (
                    token_id,
                    _digest(secret),
                    name or str(scope),
                    str(scope),
                    created.isoformat(timespec="seconds"),
                    expires.isoformat(timespec="seconds"),
                ),
            )
        self.audit.record(
            AuditEntry("cli", "token_issue", 201, str(scope), detail=f"token {token_id} ({name})")
        )
        return self.get(token_id), secret

    def revoke(self, token_id: str) -> Token:
        token = self.get(token_id)
        if token.revoked_at is None:
            with portal_db(self.path) as con:
                con.execute(
                    "update tokens set revoked_at = ? where token_id = ?", (now(), token_id)
                )
        self.audit.record(
            AuditEntry("cli", "token_revoke", 200, str(token.scope), detail=f"token {token_id}")
        )
        return self.get(token_id)

    def get(self, token_id: str) -> Token:
        with portal_db(self.path) as con:
            row = con.execute("select * from tokens where token_id = ?", (token_id,)).fetchone()
        if row is None:
            raise KeyError(f"no token {token_id!r}")
        return _token(row)

    def all(self) -> list[Token]:
        with portal_db(self.path) as con:
            rows = con.execute("select * from tokens order by created_at, token_id").fetchall()
        return [_token(row) for row in rows]

    def authenticate(self, presented: str) -> Token:
        """The token for a presented secret, or ``Refused`` saying why."""
        match = TOKEN_PATTERN.match(presented.strip())
        if not match:
            raise Refused("malformed token")
        token_id = match["token_id"]
        with portal_db(self.path) as con:
            row = con.execute("select * from tokens where token_id = ?", (token_id,)).fetchone()
        if row is None or not hmac.compare_digest(row["token_sha256"], _digest(presented.strip())):
            raise Refused("unknown token")
        token = _token(row)
        if token.revoked_at is not None:
            raise Refused(f"token {token_id} was revoked at {token.revoked_at}", token_id)
        if datetime.fromisoformat(token.expires_at) <= datetime.now(CHINA_TZ):
            raise Refused(f"token {token_id} expired at {token.expires_at}", token_id)
        return token


def province_codes(settings: Settings) -> set[str]:
    """Province-level codes of the region seed (GB/T 2260)."""
    con = settings.duckdb()
    try:
        rows = con.execute(
            "select region_code from read_csv(?, all_varchar = true, header = true) "
            "where level = 'province'",
            [str(settings.region_seed)],
        ).fetchall()
    finally:
        con.close()
    return {code for (code,) in rows}


def checked_scope(settings: Settings, text: str) -> Scope:
    """Parse a scope and refuse a province that the region list does not have."""
    scope = Scope.parse(text)
    if scope.kind == PROVINCE and scope.value not in province_codes(settings):
        raise ValueError(f"{scope.value} is not a province-level code in the region list")
    return scope
