"""The JSON API and the file downloads (shared by the pages' links)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from collectwatch.intake.lifecycle import NEEDS_VERIFICATION
from collectwatch.intake.process import verify
from collectwatch.portal import submissions
from collectwatch.portal.app import (
    MAX_PREVIEW_ROWS,
    PREVIEW_ROWS,
    Authenticated,
    NationalToken,
    PortalError,
    SubmitterToken,
    bulletin,
    download_response,
    entitled,
    entitled_release,
    json_response,
    note,
    period_list,
    preview,
    verified,
)
from collectwatch.portal.auth import SUBMITTER, Token
from collectwatch.portal.i18n import language

router = APIRouter()


@router.get("/api/whoami")
def whoami(token: Authenticated):
    return json_response(token.as_dict())


@router.get("/api/periods")
def api_periods(request: Request, token: Authenticated):
    settings = request.app.state.settings
    return json_response(
        [
            {"period": r.period, "version": r.version, "release_status": r.release_status}
            for r in period_list(settings, token)
        ]
    )


@router.get("/api/periods/{period}")
def api_period(period: str, request: Request, token: Authenticated):
    found = entitled_release(request.app.state.settings, period, token)
    return json_response(found.summary(token.scope))


@router.get("/api/periods/{period}/tables/{folder}/{table}")
def api_table(
    period: str,
    folder: str,
    table: str,
    request: Request,
    token: Authenticated,
    limit: Annotated[int, Query(ge=1, le=MAX_PREVIEW_ROWS)] = PREVIEW_ROWS,
):
    settings = request.app.state.settings
    found = entitled_release(settings, period, token)
    file = entitled(found.dataset(folder, table), token, f"{folder}/{table}")
    note(request, action="preview", sha256=file.sha256, detail=file.relative)
    return json_response(preview(request.app.state.duckdb, verified(file), token, limit))


@router.get("/api/periods/{period}/bulletin")
def api_bulletin(period: str, request: Request, token: Authenticated):
    """The bulletin's figures and charts (SVG) of the caller's scope, as JSON."""
    found = entitled_release(request.app.state.settings, period, token)
    note(request, action="bulletin", detail=f"{period} v{found.version} {token.scope.folder}")
    lang = language(request.query_params.get("lang"))
    body = bulletin(request.app.state.duckdb, found, token, lang)
    return json_response(
        {
            "period": period,
            "version": found.version,
            "release_status": found.release_status,
            "scope": body["folder"],
            "figures": [{"label": f.label, "value": f.value} for f in body["figures"]],
            "charts": [{"key": c.key, "title": c.title, "svg": c.svg} for c in body["charts"]],
        }
    )


@router.get("/files/{period}/{relative:path}")
def download(period: str, relative: str, request: Request, token: Authenticated):
    settings = request.app.state.settings
    found = entitled_release(settings, period, token)
    file = verified(entitled(found.file(relative), token, relative))
    return download_response(request, file, language(request.query_params.get("lang")))


# --- submissions ------------------------------------------------------------------------


def _owner(token: Token) -> str | None:
    """Whose submissions a token sees: a submitter its own, the national scope all."""
    if token.scope.kind == SUBMITTER:
        return token.scope.value
    if token.scope.kind == "national":
        return None
    raise PortalError(403, "forbidden", f"scope {token.scope} has no access to submissions")


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return int(value) if value and value.isdigit() else None


@router.post("/api/submissions")
async def upload(
    request: Request,
    token: SubmitterToken,
    name: Annotated[str, Query(description="the submission's file name")],
):
    settings = request.app.state.settings
    note(request, action="upload", detail=name)
    if not submissions.SAFE_NAME.match(name):
        raise PortalError(400, "bad_file_name", f"{name!r} is not a plain file name")
    declared = _declared_length(request)
    if declared is not None and declared > settings.max_file_bytes:
        note(request, bytes=0)
        raise PortalError(413, "too_large", f"{declared} bytes is over {settings.max_file_bytes}")
    try:
        received = await submissions.receive(request.stream(), settings, token.scope.value, name)
    except submissions.TooLarge as error:
        note(request, bytes=error.received)
        raise PortalError(413, "too_large", str(error)) from None
    note(request, bytes=received.bytes)
    try:
        status, body = await run_in_threadpool(
            submissions.take_in, received.path, settings, token.scope.value
        )
    finally:
        received.discard()
    report = body["report"]
    note(request, sha256=report["sha256"], detail=f"{name}: {report['status']}")
    return json_response(body, status)


@router.get("/api/submissions")
def list_submissions(request: Request, token: Authenticated):
    found = submissions.listed(request.app.state.settings, _owner(token))
    return json_response([submissions.summary(item) for item in found])


def _submission(request: Request, submission_id: str, token: Token):
    found = submissions.find(request.app.state.settings, submission_id, _owner(token))
    if found is None:  # someone else's is as unknown as a missing one
        raise PortalError(404, "not_found", f"no submission {submission_id} for {token.scope}")
    return found


@router.get("/api/submissions/{submission_id}")
def get_submission(submission_id: str, request: Request, token: Authenticated):
    return json_response(submissions.summary(_submission(request, submission_id, token)))


REPORT_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}


@router.get("/api/submissions/{submission_id}/report")
def get_report(
    submission_id: str,
    request: Request,
    token: Authenticated,
    format: Annotated[Literal["json", "csv", "html"], Query()] = "json",
):
    """The edit report as written at intake: JSON, CSV (for spreadsheets) or HTML."""
    found = _submission(request, submission_id, token)
    path = Path(found.report_path).with_suffix(f".{format}") if found.report_path else None
    if path is None or not path.exists():
        raise PortalError(404, "not_found", f"no {format} report for {submission_id} yet")
    note(request, action="report", detail=f"{submission_id}.{format}")
    return Response(path.read_bytes(), media_type=REPORT_TYPES[format])


@router.post("/api/submissions/{submission_id}/verify")
def verify_submission(submission_id: str, request: Request, token: SubmitterToken):
    settings = request.app.state.settings
    note(request, action="verify", detail=submission_id)
    found = _submission(request, submission_id, token)
    if found.status != NEEDS_VERIFICATION:
        raise PortalError(
            409, "conflict", f"{submission_id} is {found.status}; only a submission that "
            "needs verification can be verified"
        )  # fmt: skip
    verified_submission = verify(submission_id, settings)
    note(request, detail=f"{submission_id}: {verified_submission.status}")
    return json_response(submissions.summary(verified_submission))


# --- the audit log ----------------------------------------------------------------------


@router.get("/api/audit")
def audit_log(
    request: Request,
    token: NationalToken,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=10000)] = 1000,
):
    return json_response(request.app.state.audit.entries(after, limit))
