"""The audit log: every request — served, refused, uploaded, verified — and every token
change is recorded with who, what, when, path, bytes, hash and status; it is append-only
and only the national scope may read it."""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import datetime, timedelta

import pytest
from scoped_publication import PERIOD, audit_entries

from collectwatch.config import CHINA_TZ
from collectwatch.portal.auth import Scope

TABLE = "recovery_by_bucket"


def _entries(client, national: str, after: int) -> list[dict]:
    with client(national) as http:
        return audit_entries(http, after)


def _last_id(client, national: str) -> int:
    return _entries(client, national, 0)[-1]["entry_id"]


def _reversed_file(generated, uscc: str) -> tuple[str, bytes]:
    name = f"lender_portfolio__{uscc}__{PERIOD}.csv"
    rows = list(csv.reader(io.StringIO((generated.out_dir / uscc / name).read_text())))
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([rows[0], *reversed(rows[1:])])
    return name, out.getvalue().encode()


def test_every_request_appears_in_the_audit_log(
    client, tokens, issued, settings, generated, lenders
):
    national = issued["national"]
    reader, reader_secret = tokens.issue(Scope.parse("province:440000"), 1, "audited reader")
    filer, filer_secret = tokens.issue(Scope.parse(f"submitter:{lenders[2]}"), 1, "audited filer")
    gone, gone_secret = tokens.issue(Scope.parse("public"), 1, "audited, then revoked")
    tokens.revoke(gone.token_id)
    start = _last_id(client, national)
    made = []  # (who, method, path, status) of every request, in order

    def request(secret, who, method, path, **options):
        with client(secret) as http:
            response = http.request(method, path, **options)
        made.append((who, method, path.split("?")[0], response.status_code))
        return response

    me, anyone, revoked = f"token:{reader.token_id}", "anonymous", f"token:{gone.token_id}"
    csv_path = f"/files/{PERIOD}/province=440000/outsourcing_by_region.csv"
    download = request(reader_secret, me, "GET", csv_path)
    request(reader_secret, me, "GET", csv_path, headers={"If-None-Match": download.headers["etag"]})
    request(reader_secret, me, "GET", f"/files/{PERIOD}/internal/outsourcing_by_region.csv")
    request(
        reader_secret, me, "GET", f"/api/periods/{PERIOD}/tables/province=440000/recovery_by_bucket"
    )
    request(reader_secret, me, "GET", f"/periods/{PERIOD}/bulletin")
    request(reader_secret, me, "GET", "/api/audit")
    request(None, anyone, "GET", "/api/periods")
    request(gone_secret, revoked, "GET", "/api/periods")
    name, body = _reversed_file(generated, lenders[2])
    filer_who = f"token:{filer.token_id}"
    upload = request(filer_secret, filer_who, "POST", f"/api/submissions?name={name}", content=body)
    request(filer_secret, filer_who, "POST", "/api/submissions/nobody-2026-10-x-001/verify")
    entries = [
        e for e in _entries(client, national, start) if e["path"] != "/api/audit" or e["who"] == me
    ]

    assert [(e["who"], e["method"], e["path"], e["status"]) for e in entries] == made
    assert [e["status"] for e in entries] == [200, 304, 403, 200, 200, 403, 401, 401, 201, 404]
    served, not_modified = entries[0], entries[1]
    assert served["action"] == "download" and served["scope"] == "province:440000"
    assert served["sha256"] == download.headers["etag"].strip('"')
    assert served["bytes"] == len(download.content)
    assert not_modified["bytes"] == 0 and not_modified["sha256"] == served["sha256"]
    assert "revoked" in entries[7]["detail"]
    uploaded = entries[8]
    assert uploaded["action"] == "upload" and uploaded["bytes"] == len(body)
    assert uploaded["sha256"] == upload.json()["report"]["sha256"]
    assert entries[9]["action"] == "verify"
    for entry in entries:
        at = datetime.fromisoformat(entry["at"])
        assert abs(datetime.now(CHINA_TZ) - at) < timedelta(hours=1)


def test_token_changes_are_audited(client, tokens, issued):
    start = _last_id(client, issued["national"])
    token, _ = tokens.issue(Scope.parse("public"), 1, "short-lived")
    tokens.revoke(token.token_id)
    changes = [e for e in _entries(client, issued["national"], start) if e["who"] == "cli"]
    assert [(e["action"], e["detail"].split()[1]) for e in changes] == [
        ("token_issue", token.token_id),
        ("token_revoke", token.token_id),
    ]


def test_the_audit_log_is_append_only(settings, client, issued):
    assert _entries(client, issued["national"], 0)
    with sqlite3.connect(settings.portal_db) as con:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("update audit_log set status = 200")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            con.execute("delete from audit_log")
