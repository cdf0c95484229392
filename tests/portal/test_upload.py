"""Uploads through the portal: streamed under a size limit, bound to the token's USCC,
taken through the same intake as the landing folder, answered with the edit report;
verification through the API; a submitter sees only its own submissions and reports."""

from __future__ import annotations

import csv
import io

import httpx
import pytest
from scoped_publication import PERIOD, UPLOAD_LIMIT, audit_entries

from collectwatch.portal.auth import Scope

# An upload arrives now, after the generated period's due date: the late-arrival macro
# flag (M002) rides along with whatever the file itself gets.
ARRIVAL_FLAGS = {"M002", "M003"}


def own_findings(report: dict) -> list[dict]:
    return [f for f in report["findings"] if f["rule_id"] not in ARRIVAL_FLAGS]


@pytest.fixture(scope="module")
def uscc(lenders):
    return lenders[0]


@pytest.fixture(scope="module")
def submitter(issued, uscc):
    return issued[f"submitter:{uscc}"]


@pytest.fixture(scope="module")
def other_submitter(tokens, lenders):
    return tokens.issue(Scope.parse(f"submitter:{lenders[1]}"), 1, "another lender")[1]


def original(generated, uscc: str, submission_type: str) -> tuple[str, list[list[str]]]:
    name = f"{submission_type}__{uscc}__{PERIOD}.csv"
    text = (generated.out_dir / uscc / name).read_text(encoding="utf-8-sig")
    return name, list(csv.reader(io.StringIO(text)))


def as_bytes(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def upload(client, secret: str, name: str, body) -> httpx.Response:
    with client(secret) as http:
        return http.post("/api/submissions", params={"name": name}, content=body)


def test_a_good_file_is_accepted_and_supersedes_the_previous_version(
    client, submitter, generated, uscc
):
    name, rows = original(generated, uscc, "lender_portfolio")
    reordered = [rows[0], *reversed(rows[1:])]  # same facts, new bytes: a new version
    response = upload(client, submitter, name, as_bytes(reordered))
    assert response.status_code == 201, response.text
    report = response.json()["report"]
    assert response.json()["status"] == report["status"] == "accepted"
    assert report["submitter_uscc"] == uscc
    assert {rule["edit_class"] for rule in report["rules"]} <= {"macro"}
    with client(submitter) as http:
        mine = {s["submission_id"]: s for s in http.get("/api/submissions").json()}
    new = mine[report["submission_id"]]
    assert new["status"] == "accepted" and new["sequence"] == 2
    first = report["submission_id"].removesuffix("002") + "001"
    assert mine[first]["status"] == "superseded"


def test_a_bad_file_is_rejected_with_its_rule_ids_and_rows(client, submitter, generated, uscc):
    name, rows = original(generated, uscc, "lender_portfolio")
    header = rows[0]
    rows[1][header.index("region_code")] = "999999"  # line 2: unknown region
    rows[3][header.index("period")] = "2026-09"  # line 4: period not the file's
    response = upload(client, submitter, name, as_bytes(rows))
    assert response.status_code == 422
    report = response.json()["report"]
    assert report["status"] == "rejected"
    counts = {rule["rule_id"]: rule["count"] for rule in report["rules"]}
    assert {r: n for r, n in counts.items() if r not in ARRIVAL_FLAGS} == {"V005": 1, "V007": 1}
    found = {(f["rule_id"], f["row"], f["field"], f["value"]) for f in own_findings(report)}
    assert found == {("V005", 2, "region_code", "999999"), ("V007", 4, "period", "2026-09")}
    with client(submitter) as http:
        stored = http.get(f"/api/submissions/{report['submission_id']}/report")
        spreadsheet = http.get(f"/api/submissions/{report['submission_id']}/report?format=csv")
    assert stored.status_code == 200
    assert stored.json()["rules"] == report["rules"]
    assert spreadsheet.headers["content-type"] == "text/csv; charset=utf-8"
    lines = spreadsheet.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("rule_id,edit_class,row,field,value")
    listed = sorted(line.split(",")[0] for line in lines[1:])
    assert [rule for rule in listed if rule not in ARRIVAL_FLAGS] == ["V005", "V007"]


def test_an_upload_is_bound_to_the_tokens_uscc(client, submitter, generated, lenders):
    """A file named after another lender, uploaded with this lender's token, is rejected
    (S003) and registered under nobody's name — not even when its bytes equal the other
    lender's accepted file (which must not reveal that submission)."""
    for rows in (original(generated, lenders[1], "lender_portfolio")[1], [["period"]]):
        name = f"lender_portfolio__{lenders[1]}__{PERIOD}.csv"
        response = upload(client, submitter, name, as_bytes(rows))
        assert response.status_code == 422
        report = response.json()["report"]
        assert [rule["rule_id"] for rule in report["rules"]] == ["S003"]
        assert report["submission_id"] is None and report["status"] == "rejected"
    with client(submitter) as http:
        assert {s["submitter_uscc"] for s in http.get("/api/submissions").json()} == {lenders[0]}


def test_a_byte_identical_resubmission_returns_the_first_report(client, submitter, generated, uscc):
    name, rows = original(generated, uscc, "lender_portfolio")
    rows[1][rows[0].index("region_code")] = "999998"
    first = upload(client, submitter, name, as_bytes(rows))
    again = upload(client, submitter, name, as_bytes(rows))
    assert first.status_code == 422 and again.status_code == 200
    assert again.json()["duplicate_of_previous"] is True
    assert again.json()["report"] == first.json()["report"]


def test_quality_edits_wait_for_verification_through_the_api(
    client, submitter, other_submitter, generated, uscc
):
    name, rows = original(generated, uscc, "agency_assignment")
    rows[2][rows[0].index("commission_rate")] = "0.7500"  # line 3: above 0.6
    response = upload(client, submitter, name, as_bytes(rows))
    assert response.status_code == 201
    report = response.json()["report"]
    assert report["status"] == "needs_verification"
    assert [(f["rule_id"], f["row"]) for f in own_findings(report)] == [("Q002", 3)]
    submission_id = report["submission_id"]
    with client(other_submitter) as http:
        assert http.post(f"/api/submissions/{submission_id}/verify").status_code == 404
        assert http.get(f"/api/submissions/{submission_id}").status_code == 404
        assert http.get(f"/api/submissions/{submission_id}/report").status_code == 404
    with client(submitter) as http:
        verified = http.post(f"/api/submissions/{submission_id}/verify")
        assert verified.status_code == 200
        assert verified.json()["status"] == "accepted"
        again = http.post(f"/api/submissions/{submission_id}/verify")
        assert again.status_code == 409
        assert again.json()["error"]["code"] == "conflict"


def test_submitters_see_only_their_own_submissions(
    client, submitter, other_submitter, uscc, lenders
):
    with client(other_submitter) as http:
        theirs = http.get("/api/submissions").json()
    assert theirs and {s["submitter_uscc"] for s in theirs} == {lenders[1]}
    with client(submitter) as http:
        mine = http.get("/api/submissions").json()
        assert {s["submitter_uscc"] for s in mine} == {uscc}
        for submission in theirs:
            assert http.get(f"/api/submissions/{submission['submission_id']}").status_code == 404


def test_only_a_submitter_may_upload(client, issued, generated, uscc):
    name, rows = original(generated, uscc, "lender_portfolio")
    for scope in ("national", "public"):
        response = upload(client, issued[scope], name, as_bytes(rows))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"


def test_a_declared_oversize_upload_is_refused_before_reading(client, submitter, settings, uscc):
    name = f"lender_portfolio__{uscc}__{PERIOD}.csv"
    response = upload(client, submitter, name, b"x" * (UPLOAD_LIMIT + 1))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_an_oversize_stream_is_cut_off_while_streaming(client, submitter, issued, settings, uscc):
    """Chunked upload, no length declared: refused once past the limit, before the rest."""
    total = 3 * UPLOAD_LIMIT
    chunk = b"y" * 65536

    def body():
        for _ in range(total // len(chunk)):
            yield chunk

    name = f"lender_portfolio__{uscc}__{PERIOD}.csv"
    try:
        status = upload(client, submitter, name, body()).status_code
    except httpx.TransportError:  # the server may close before the client finished writing
        status = None
    with client(issued["national"]) as http:
        entries = audit_entries(http)
    refused = [e for e in entries if e["action"] == "upload" and e["status"] == 413]
    assert status in (413, None)
    streamed = refused[-1]
    assert UPLOAD_LIMIT < streamed["bytes"] < total
    assert not list((settings.landing_dir / uscc).glob(".upload-*"))


def test_bad_names_are_refused(client, submitter):
    response = upload(client, submitter, "../../escape.csv", b"a,b\n")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_file_name"
