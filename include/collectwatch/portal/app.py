"""The regulator portal (``collectwatch serve``): published tables by period and scope,
previews, verifiable downloads, the monthly bulletin, submission upload and verification,
and the audit log — as HTML pages (Chinese and English) and a JSON API.

Who may see what is decided in one place, ``Scope.may_read`` over the manifest's scope of
each published file; previews and charts read only entitled files, and a province or the
public additionally sees only its own rows. Every request — served or refused — is
written to the audit log by ``AuditMiddleware`` before the response leaves.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from collectwatch.config import Settings
from collectwatch.files import sha256_file
from collectwatch.portal import charts
from collectwatch.portal.audit import AuditEntry, AuditLog
from collectwatch.portal.auth import (
    NATIONAL,
    PUBLIC,
    SUBMITTER,
    Refused,
    Token,
    TokenStore,
)
from collectwatch.portal.i18n import TEXT, language
from collectwatch.portal.publication import (
    TABLE_TITLES,
    ManifestMismatch,
    PublishedFile,
    Release,
    periods,
    release,
)

TEMPLATES = Path(__file__).parent / "templates"
COOKIE = "collectwatch_token"
PREVIEW_ROWS = 50
MAX_PREVIEW_ROWS = 1000
UPLOAD_CHUNK = 64 * 1024


class PortalError(HTTPException):
    """A 4xx/5xx the caller can act on: a status, a short code and a sentence."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(status, message)
        self.code = code


def json_response(body, status: int = 200, headers: dict | None = None) -> Response:
    """JSON with Chinese unescaped; decimals and dates as strings (exact, not floats)."""
    return Response(
        json.dumps(body, ensure_ascii=False, default=str),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


# --- authentication and the audit log ---------------------------------------------------


@dataclass(frozen=True)
class Caller:
    token: Token | None
    refused: Refused | None

    @property
    def who(self) -> str:
        if self.token is not None:
            return f"token:{self.token.token_id}"
        if self.refused is not None and self.refused.token_id:
            return f"token:{self.refused.token_id}"
        return "anonymous"


def presented_token(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        kind, _, value = header.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise Refused("the Authorization header must be 'Bearer <token>'")
        return value.strip()
    return request.cookies.get(COOKIE)


def identify(tokens: TokenStore, request: Request) -> Caller:
    try:
        presented = presented_token(request)
        if presented is None:
            return Caller(None, None)
        return Caller(tokens.authenticate(presented), None)
    except Refused as refused:
        return Caller(None, refused)


class AuditMiddleware:
    """Authenticates once and records every HTTP request with its final status.

    Handlers add what only they know (action, bytes, sha256, detail) to
    ``request.state.audit``; a request that crashes is recorded as 500."""

    def __init__(self, app, tokens: TokenStore, audit: AuditLog):
        self.app = app
        self.tokens = tokens
        self.audit = audit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        found = await run_in_threadpool(identify, self.tokens, request)
        request.state.caller = found
        request.state.audit = {}
        sent = {"status": 500, "bytes": None, "recorded": False}

        async def record() -> None:
            sent["recorded"] = True
            await run_in_threadpool(self.audit.record, _entry(request, found, sent))

        async def send_and_record(message):
            if message["type"] == "http.response.start":
                sent["status"] = message["status"]
                length = dict(message.get("headers", [])).get(b"content-length")
                sent["bytes"] = int(length) if length else None
            last = message["type"] == "http.response.body" and not message.get("more_body")
            if last and not sent["recorded"]:
                # Committed before the response completes: a client that has its answer
                # finds the request in the log.
                await record()
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            if not sent["recorded"]:
                await record()


def _entry(request: Request, found: Caller, sent: dict) -> AuditEntry:
    noted = request.state.audit
    return AuditEntry(
        who=found.who,
        scope=str(found.token.scope) if found.token else None,
        action=noted.get("action") or _default_action(request),
        method=request.method,
        path=request.url.path,  # never the query string: nothing secret is logged
        status=sent["status"],
        bytes=noted.get("bytes", sent["bytes"]),
        sha256=noted.get("sha256"),
        detail=noted.get("detail") or (found.refused.reason if found.refused else None),
    )


def _default_action(request: Request) -> str:
    return "api" if request.url.path.startswith("/api/") else "page"


def caller(request: Request) -> Token:
    """The authenticated token, or 401 saying why not."""
    found: Caller = request.state.caller
    if found.token is None:
        reason = found.refused.reason if found.refused else "a bearer token is required"
        raise PortalError(401, "unauthenticated", reason)
    return found.token


Authenticated = Annotated[Token, Depends(caller)]


def national(token: Authenticated) -> Token:
    if token.scope.kind != NATIONAL:
        raise PortalError(403, "forbidden", f"scope {token.scope} may not read this")
    return token


def submitter(token: Authenticated) -> Token:
    if token.scope.kind != SUBMITTER:
        raise PortalError(403, "forbidden", "only a submitter:<USCC> token may upload or verify")
    return token


NationalToken = Annotated[Token, Depends(national)]
SubmitterToken = Annotated[Token, Depends(submitter)]


def note(request: Request, **fields) -> None:
    request.state.audit.update(fields)


# --- the publication as a scope may see it ----------------------------------------------


def checked_release(settings: Settings, period: str) -> Release | None:
    try:
        return release(settings, period)
    except ManifestMismatch as error:
        raise PortalError(500, "integrity", str(error)) from None


def entitled_release(settings: Settings, period: str, token: Token) -> Release:
    if token.scope.folder is None:
        raise PortalError(403, "forbidden", f"scope {token.scope} has no publication access")
    found = checked_release(settings, period)
    if found is None or not found.entitled(token.scope):
        raise PortalError(404, "not_found", f"no publication of {period} for {token.scope}")
    return found


def entitled(file: PublishedFile | None, token: Token, what: str) -> PublishedFile:
    if file is None:
        raise PortalError(404, "not_found", f"{what} is not published")
    if not token.scope.may_read(file.scope):
        raise PortalError(403, "forbidden", f"scope {token.scope} may not read {what}")
    return file


def row_filter(token: Token, columns: set[str]) -> tuple[str, dict]:
    """Rows a scope may see inside an entitled file (defence in depth: its files hold
    nothing else): a province its own region codes, the public no prefecture rows."""
    if token.scope.province_prefix and "region_code" in columns:
        return "where left(region_code, 2) = $prefix", {"prefix": token.scope.province_prefix}
    if token.scope.kind == PUBLIC and "level" in columns:
        return "where level <> 'prefecture'", {}
    return "", {}


def preview(con, file: PublishedFile, token: Token, limit: int) -> dict:
    """The first ``limit`` rows of an entitled file the scope may see, read on a cursor
    of the portal's DuckDB (Hive partitioning off: ``province=<code>/`` is no column)."""
    cursor = con.cursor()
    try:
        source = cursor.read_parquet(str(file.path), hive_partitioning=False)
        columns = list(source.columns)
        where, parameters = row_filter(token, set(columns))
        rows = (
            cursor.sql(
                f"select * from read_parquet($file, hive_partitioning = false) {where} "
                "limit $limit",
                params={"file": str(file.path), "limit": limit, **parameters},
            )
            .to_arrow_table()
            .to_pylist()
        )
    finally:
        cursor.close()
    return {
        "period": file.period,
        "version": file.version,
        "scope": file.scope,
        "table": file.table,
        "sha256": file.sha256,
        "rows_in_file": file.rows,
        "columns": columns,
        "rows": rows,
    }


_verified: dict[tuple[str, int, int], str] = {}


def verified(file: PublishedFile) -> PublishedFile:
    """Serve only bytes that are what the manifest says (hash cached per mtime and size)."""
    stat = file.path.stat()
    key = (str(file.path), stat.st_mtime_ns, stat.st_size)
    if key not in _verified:
        _verified[key] = sha256_file(file.path)
    if _verified[key] != file.sha256:
        raise PortalError(500, "integrity", f"{file.relative} does not match its manifest hash")
    return file


def etag_matches(if_none_match: str | None, sha256: str) -> bool:
    if not if_none_match:
        return False
    tags = {tag.strip().removeprefix("W/").strip('"') for tag in if_none_match.split(",")}
    return "*" in tags or sha256 in tags


def content_disposition(utf8_name: str, ascii_name: str) -> str:
    """RFC 6266 / RFC 5987: an ASCII fallback and the UTF-8 name."""
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(utf8_name, safe='')}"


def download_response(request: Request, file: PublishedFile, lang: str) -> Response:
    note(request, action="download", sha256=file.sha256, detail=file.relative)
    headers = {
        "ETag": f'"{file.sha256}"',
        "Cache-Control": "private, no-cache",
        "X-Content-Type-Options": "nosniff",
    }
    if etag_matches(request.headers.get("if-none-match"), file.sha256):
        note(request, bytes=0)
        return Response(status_code=304, headers=headers)
    digest = base64.b64encode(bytes.fromhex(file.sha256)).decode()
    headers["Repr-Digest"] = f"sha-256=:{digest}:"
    headers["Content-Disposition"] = content_disposition(*file.download_name(lang))
    return FileResponse(file.path, media_type=file.content_type, headers=headers)


# --- the application --------------------------------------------------------------------


def create_app(settings: Settings) -> FastAPI:
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    tokens = TokenStore(settings.portal_db)
    app = FastAPI(
        title="collectwatch portal",
        docs_url=None,  # the interactive docs load JavaScript from a CDN
        redoc_url=None,
        openapi_url="/api/openapi.json",
        redirect_slashes=False,  # an unknown path is a JSON 404, not a redirect
    )
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.audit = AuditLog(settings.portal_db)
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES))
    # One in-memory DuckDB for the server's reads; each request takes a cursor (opening a
    # database per request costs more than reading a published file).
    app.state.duckdb = settings.duckdb()
    app.add_middleware(AuditMiddleware, tokens=tokens, audit=app.state.audit)
    _errors(app)
    from collectwatch.portal import api, pages

    app.include_router(api.router)
    app.include_router(pages.router)
    return app


def is_page(request: Request) -> bool:
    return not request.url.path.startswith(("/api/", "/files/"))


def _errors(app: FastAPI) -> None:
    @app.exception_handler(HTTPException)
    async def portal_error(request: Request, error: HTTPException):
        code = getattr(error, "code", None) or _code(error.status_code)
        if is_page(request) and error.status_code == 401:
            note(request, detail=f"refused: {error.detail}")
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if is_page(request):
            return page_error(request, error.status_code, str(error.detail))
        body = {"error": {"status": error.status_code, "code": code, "message": error.detail}}
        return json_response(body, error.status_code, getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        problems = [
            f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in error.errors()
        ]
        body = {"error": {"status": 422, "code": "invalid_request", "message": problems}}
        return json_response(body, 422)


def _code(status: int) -> str:
    return {
        400: "bad_request",
        401: "unauthenticated",
        403: "forbidden",
        404: "not_found",
        405: "method_not_allowed",
        409: "conflict",
        413: "too_large",
    }.get(status, "error")


def render(request: Request, template: str, context: dict, status: int = 200) -> Response:
    lang = language(request.query_params.get("lang"))
    found: Caller = request.state.caller
    return request.app.state.templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": TEXT[lang],
            "other_lang": "en" if lang == "zh" else "zh",
            "token": found.token,
            "titles": TABLE_TITLES,
            **context,
        },
        status_code=status,
    )


def page_error(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", {"status": status, "message": message}, status)


def period_list(settings: Settings, token: Token) -> list[Release]:
    """The periods whose latest release has at least one file the scope may read."""
    if token.scope.folder is None:
        return []
    found = (checked_release(settings, period) for period in periods(settings))
    return [item for item in found if item is not None and item.entitled(token.scope)]


def bulletin(con, found: Release, token: Token, lang: str) -> dict:
    """Figures and charts from the scope's own folder of the publication."""
    folder = token.scope.folder
    datasets = tuple(
        (file.table, verified(file).path, file.sha256)
        for file in found.entitled(token.scope)
        if file.scope == folder and file.suffix == ".parquet"
    )
    levels = charts.levels_for(folder)
    return {
        "release": found,
        "folder": folder,
        "figures": charts.figures(con, {t: p for t, p, _ in datasets}, levels, lang),
        "charts": charts.bulletin_charts(con, datasets, folder, lang),
        "suppressed": token.scope.kind == PUBLIC,
    }
