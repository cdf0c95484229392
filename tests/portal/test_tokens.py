"""Tokens: issued and revoked by the CLI, stored only as hashes, expiring; expired,
revoked, unknown and forged tokens are refused (bearer header and browser cookie)."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta

import pytest

from collectwatch.cli import main
from collectwatch.config import CHINA_TZ
from collectwatch.portal.auth import Scope, TokenStore


def _expire(settings, token_id: str) -> None:
    """Move a token's expiry into the past (no waiting in tests)."""
    past = (datetime.now(CHINA_TZ) - timedelta(seconds=1)).isoformat(timespec="seconds")
    with sqlite3.connect(settings.portal_db) as con:
        con.execute("update tokens set expires_at = ? where token_id = ?", (past, token_id))


def test_expired_and_revoked_tokens_are_refused(client, tokens, settings):
    expiring, expiring_secret = tokens.issue(Scope.parse("public"), 1, "expiring")
    revoked, revoked_secret = tokens.issue(Scope.parse("national"), 1, "revoked")
    for secret in (expiring_secret, revoked_secret):
        with client(secret) as http:
            assert http.get("/api/periods").status_code == 200
    _expire(settings, expiring.token_id)
    tokens.revoke(revoked.token_id)
    for secret, reason in ((expiring_secret, "expired"), (revoked_secret, "revoked")):
        with client(secret) as http:
            for path in ("/api/periods", "/api/audit", "/files/2026-10/public/x.csv"):
                response = http.get(path)
                assert response.status_code == 401, path
                assert reason in response.json()["error"]["message"]


def test_unknown_and_forged_tokens_are_refused(client, issued):
    genuine = issued["national"]
    forged = genuine[:-1] + ("A" if genuine[-1] != "A" else "B")  # right id, wrong secret
    for secret in (forged, "cw_000000000000_" + "x" * 43, "not-a-token"):
        with client(secret) as http:
            response = http.get("/api/periods")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"


def test_browser_sign_in_sets_a_cookie_that_expires_with_revocation(client, tokens):
    token, secret = tokens.issue(Scope.parse("public"), 1, "browser")
    with client() as http:
        refused = http.post("/login", data={"token": "nope", "next": "/"})
        assert refused.status_code == 401
        signed_in = http.post("/login", data={"token": secret, "next": "/periods/2026-10"})
        assert signed_in.status_code == 303
        assert signed_in.headers["location"] == "/periods/2026-10"
        cookie = signed_in.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        assert http.get("/periods/2026-10").status_code == 200
        away = http.post("/login", data={"token": secret, "next": "//evil.example/"})
        assert away.headers["location"] == "/"
        tokens.revoke(token.token_id)
        after = http.get("/periods/2026-10")
        assert after.status_code == 303 and after.headers["location"].startswith("/login")


def test_the_cli_issues_lists_and_revokes(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COLLECTWATCH_STATE_DIR", str(tmp_path / "state"))
    assert (
        main(["token", "issue", "--scope", "province:440000", "--name", "粤", "--expires-in", "7"])
        == 0
    )
    issued = capsys.readouterr().out.splitlines()
    secret = issued[-1]
    token_id = issued[0].split()[1]
    assert secret.startswith(f"cw_{token_id}_")
    store = TokenStore(tmp_path / "state" / "portal.sqlite")
    token = store.authenticate(secret)
    assert str(token.scope) == "province:440000" and token.name == "粤"
    lifetime = datetime.fromisoformat(token.expires_at) - datetime.fromisoformat(token.created_at)
    assert lifetime == timedelta(days=7)
    database = (tmp_path / "state" / "portal.sqlite").read_bytes()
    assert (
        secret.encode() not in database
        and secret.removeprefix(f"cw_{token_id}_").encode() not in database
    )
    assert main(["token", "list"]) == 0
    listing = capsys.readouterr().out
    assert token_id in listing and "province:440000" in listing and secret not in listing
    assert main(["token", "revoke", token_id]) == 0
    capsys.readouterr()
    with pytest.raises(Exception, match="revoked"):
        store.authenticate(secret)
    actions = [e["action"] for e in store.audit.entries()]
    assert actions == ["token_issue", "token_revoke"]


@pytest.mark.parametrize(
    "scope",
    ["province:999999", "province:440100", "submitter:91440300MA5G8XXXXA", "regional", "public:1"],
)
def test_the_cli_refuses_scopes_that_do_not_exist(tmp_path, monkeypatch, capsys, scope):
    monkeypatch.setenv("COLLECTWATCH_STATE_DIR", str(tmp_path / "state"))
    assert main(["token", "issue", "--scope", scope]) == 1
    assert "collectwatch token" in capsys.readouterr().err
    assert TokenStore(tmp_path / "state" / "portal.sqlite").all() == []
