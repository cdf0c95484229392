"""HTML pages (Jinja2, Chinese by default, ``?lang=en``): sign-in, periods, a period's
tables with downloads and hashes, a table preview, the monthly bulletin."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse

from collectwatch.config import CHINA_TZ
from collectwatch.portal import submissions
from collectwatch.portal.app import (
    COOKIE,
    PREVIEW_ROWS,
    Authenticated,
    bulletin,
    entitled,
    entitled_release,
    note,
    period_list,
    preview,
    render,
    verified,
)
from collectwatch.portal.auth import SUBMITTER, Refused
from collectwatch.portal.i18n import language

router = APIRouter()


def _safe_next(target: str) -> str:
    """Only a path on this site (no scheme, no //host): no open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.get("/login")
def login_form(request: Request, next: str = "/"):
    return render(request, "login.html", {"next": _safe_next(next), "failed": None})


@router.post("/login")
def login(request: Request, token: str = Form(...), next: str = Form("/")):
    note(request, action="login")
    try:
        found = request.app.state.tokens.authenticate(token)
    except Refused as refused:
        note(request, detail=f"refused: {refused.reason}")
        context = {"next": _safe_next(next), "failed": refused.reason}
        return render(request, "login.html", context, 401)
    note(request, detail=f"token:{found.token_id} signed in")
    response = RedirectResponse(_safe_next(next), status_code=303)
    expires = datetime.fromisoformat(found.expires_at)
    response.set_cookie(
        COOKIE,
        token,
        max_age=max(int((expires - datetime.now(CHINA_TZ)).total_seconds()), 0),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/logout")
def logout(request: Request):
    note(request, action="logout")
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE)
    return response


@router.get("/")
def home(request: Request, token: Authenticated):
    settings = request.app.state.settings
    if token.scope.kind == SUBMITTER:
        own = submissions.listed(settings, token.scope.value)
        return render(request, "submissions.html", {"submissions": own})
    return render(request, "index.html", {"releases": period_list(settings, token)})


@router.get("/periods/{period}")
def period_page(period: str, request: Request, token: Authenticated):
    found = entitled_release(request.app.state.settings, period, token)
    by_dataset: dict[tuple[str, str], list] = {}
    for file in found.entitled(token.scope):
        by_dataset.setdefault((file.scope, file.table), []).append(file)
    return render(request, "period.html", {"release": found, "datasets": by_dataset})


@router.get("/periods/{period}/tables/{folder}/{table}")
def table_page(period: str, folder: str, table: str, request: Request, token: Authenticated):
    settings = request.app.state.settings
    found = entitled_release(settings, period, token)
    file = entitled(found.dataset(folder, table), token, f"{folder}/{table}")
    note(request, action="preview", sha256=file.sha256, detail=file.relative)
    siblings = [
        other
        for other in found.entitled(token.scope)
        if other.scope == file.scope and other.table == file.table
    ]
    context = {
        "release": found,
        "file": file,
        "downloads": siblings,
        "preview": preview(request.app.state.duckdb, verified(file), token, PREVIEW_ROWS),
        "preview_rows": PREVIEW_ROWS,
    }
    return render(request, "table.html", context)


@router.get("/periods/{period}/bulletin")
def bulletin_page(period: str, request: Request, token: Authenticated):
    settings = request.app.state.settings
    found = entitled_release(settings, period, token)
    note(request, action="bulletin", detail=f"{period} v{found.version} {token.scope.folder}")
    lang = language(request.query_params.get("lang"))
    return render(request, "bulletin.html", bulletin(request.app.state.duckdb, found, token, lang))
