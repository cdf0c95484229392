"""The authorization matrix: a scope of every kind (conftest.issued) × every published
file (every table, every region's folder, every format) × every endpoint, against the real
server. A scope gets exactly its entitled files and rows — and nothing else, anywhere: not
a download, not a preview row, not a link, not a name in a chart."""

from __future__ import annotations

import hashlib
import io
import json
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest
from scoped_publication import PERIOD

NOT_ENTITLED = {403, 404}


def readable(scope: str, file_scope: str) -> bool:
    """The entitlement rule as the issue states it (DESIGN Decision 6)."""
    if scope == "national":
        return True
    if scope == "public":
        return file_scope == "public"
    if scope.startswith("province:"):
        return file_scope == "province=" + scope.removeprefix("province:")
    return False


@pytest.fixture(scope="module")
def manifest(settings):
    pointer = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    version_dir = settings.publish_dir / PERIOD / pointer["path"]
    return json.loads((version_dir / "manifest.json").read_text())


@pytest.fixture(scope="module")
def regions(settings, manifest):
    """Every published region (code, level, Chinese name) from the internal files."""
    pointer = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    internal = settings.publish_dir / PERIOD / pointer["path"] / "internal"
    frame = pd.read_parquet(internal / "outsourcing_by_region.parquet")
    return frame[["region_code", "level", "region_name_zh", "reporting_lenders"]].drop_duplicates()


def file_scope(relative: str, entry: dict) -> str:
    return (entry.get("scope") or relative.split("/")[0]).replace("province:", "province=")


def datasets(manifest) -> set[tuple[str, str]]:
    return {
        (file_scope(relative, entry), relative.split("/")[-1].rsplit(".", 1)[0])
        for relative, entry in manifest["files"].items()
    }


def assert_rows_entitled(scope: str, frame: pd.DataFrame, where: str) -> None:
    """No row outside the scope's region; the public sees no prefecture. A table with no
    regions (agency_watchlist, a list of institutions) is the national scope's alone."""
    if "region_code" not in frame.columns:
        assert scope == "national", f"{scope} received a national-only table in {where}"
        return
    codes = frame["region_code"].astype(str).str.zfill(6)
    if scope.startswith("province:"):
        prefix = scope.removeprefix("province:")[:2]
        outside = sorted(set(codes[~codes.str.startswith(prefix)]))
        assert not outside, f"{scope} received rows of {outside} in {where}"
    if scope == "public":
        assert "prefecture" not in set(frame["level"]), f"public received prefectures in {where}"


def read_body(relative: str, body: bytes, columns: list[str]) -> pd.DataFrame:
    """A downloaded file's rows; ``columns`` are its Parquet sibling's column names."""
    if relative.endswith(".parquet"):
        return pq.read_table(io.BytesIO(body)).to_pandas()
    if relative.endswith(".csv"):
        return pd.read_csv(io.BytesIO(body), dtype={"region_code": str}, encoding="utf-8-sig")
    # XLSX: the first sheet, columns in the Parquet order under one or more header rows
    # (labels, not names); a data row is one whose period cell is a period.
    sheet = pd.read_excel(io.BytesIO(body), header=None, dtype=str)
    sheet = sheet.set_axis(columns, axis=1)
    rows = sheet[sheet["period"].str.fullmatch(r"\d{4}-\d{2}", na=False)]
    assert len(rows) >= len(sheet) - 2, f"{relative}: more than two header rows"
    return rows


def test_the_publication_has_every_scope_and_format(manifest, provinces):
    scopes = {file_scope(r, e) for r, e in manifest["files"].items()}
    assert {"internal", "public"} <= scopes
    assert {f"province={code}" for code in provinces} == scopes - {"internal", "public"}
    assert len(provinces) >= 2
    assert {r.rsplit(".", 1)[1] for r in manifest["files"]} == {"csv", "xlsx", "parquet"}


def test_downloads(issued, client, manifest, published):
    """Each scope downloads exactly its files, byte-identical to the manifest's hash, and
    every row inside them is its own."""
    columns = {
        relative: pq.read_schema(published.file(relative.rsplit(".", 1)[0] + ".parquet").path).names
        for relative in manifest["files"]
    }
    for scope, secret in issued.items():
        with client(secret) as http:
            for relative, entry in manifest["files"].items():
                response = http.get(f"/files/{PERIOD}/{relative}")
                if not readable(scope, file_scope(relative, entry)):
                    assert response.status_code in NOT_ENTITLED, (scope, relative)
                    assert response.json()["error"]["status"] == response.status_code
                    continue
                assert response.status_code == 200, (scope, relative, response.text)
                assert hashlib.sha256(response.content).hexdigest() == entry["sha256"]
                rows = read_body(relative, response.content, columns[relative])
                assert len(rows) == entry["rows"], relative
                assert_rows_entitled(scope, rows, relative)


def test_previews(issued, client, manifest):
    """The preview API returns every row of an entitled file (none dropped, none added)
    and refuses every other dataset."""
    for scope, secret in issued.items():
        with client(secret) as http:
            for folder, table in sorted(datasets(manifest)):
                response = http.get(
                    f"/api/periods/{PERIOD}/tables/{folder}/{table}", params={"limit": 1000}
                )
                if not readable(scope, folder):
                    assert response.status_code in NOT_ENTITLED, (scope, folder, table)
                    assert "rows" not in response.json()
                    continue
                assert response.status_code == 200, (scope, folder, table)
                body = response.json()
                frame = pd.DataFrame(body["rows"], columns=body["columns"])
                assert len(frame) == manifest["files"][f"{folder}/{table}.parquet"]["rows"]
                assert_rows_entitled(scope, frame, f"preview of {folder}/{table}")


def cells(html: str) -> set[str]:
    return set(re.findall(r"<td[^>]*>([^<]*)</td>", html))


def foreign_names(scope: str, regions: pd.DataFrame) -> set[str]:
    """Chinese names of regions a scope must never be shown."""
    if scope.startswith("province:"):
        prefix = scope.removeprefix("province:")[:2]
        return set(regions.loc[~regions["region_code"].str.startswith(prefix), "region_name_zh"])
    if scope == "public":
        return set(regions.loc[regions["level"] == "prefecture", "region_name_zh"])
    return set()


def test_table_pages(issued, client, manifest, regions):
    for scope, secret in issued.items():
        forbidden = foreign_names(scope, regions)
        with client(secret) as http:
            for folder, table in sorted(datasets(manifest)):
                response = http.get(f"/periods/{PERIOD}/tables/{folder}/{table}")
                if not readable(scope, folder):
                    assert response.status_code in NOT_ENTITLED, (scope, folder, table)
                    continue
                assert response.status_code == 200
                shown = cells(response.text)
                if manifest["files"][f"{folder}/{table}.parquet"]["rows"]:
                    assert shown, f"the preview of {folder}/{table} shows its rows"
                assert not shown & forbidden, (scope, folder, table, shown & forbidden)


def test_listings_show_exactly_the_entitled_files(issued, client, manifest):
    for scope, secret in issued.items():
        expected = {r for r, e in manifest["files"].items() if readable(scope, file_scope(r, e))}
        with client(secret) as http:
            periods = http.get("/api/periods")
            summary = http.get(f"/api/periods/{PERIOD}")
            page = http.get(f"/periods/{PERIOD}")
            home = http.get("/")
        assert home.status_code == 200
        if not expected:
            assert periods.json() == [] if periods.status_code == 200 else True
            assert summary.status_code in NOT_ENTITLED and page.status_code in NOT_ENTITLED
            continue
        assert [p["period"] for p in periods.json()] == [PERIOD]
        assert {f["path"] for f in summary.json()["files"]} == expected, scope
        links = set(re.findall(rf'href="/files/{PERIOD}/([^"?]+)', page.text))
        assert links == expected, scope
        for listed in summary.json()["files"]:
            assert listed["sha256"] == manifest["files"][listed["path"]]["sha256"]


def test_bulletins(issued, client, regions):
    """Page and JSON: charts only from the scope's own rows (no foreign name in any SVG)."""
    for scope, secret in issued.items():
        with client(secret) as http:
            page = http.get(f"/periods/{PERIOD}/bulletin")
            api = http.get(f"/api/periods/{PERIOD}/bulletin")
        expected = 200
        if scope.startswith("submitter:"):
            expected = 403
        assert page.status_code == api.status_code == expected, scope
        if expected != 200:
            continue
        svgs = "".join(chart["svg"] for chart in api.json()["charts"])
        reported = regions.loc[regions["reporting_lenders"] > 0, "region_code"]
        # A province whose rows are all empty (no reporter) has nothing to chart.
        if not scope.startswith("province:") or scope.removeprefix("province:") in set(reported):
            assert page.text.count("<svg") >= 2, scope
            assert len(api.json()["charts"]) >= 2 and api.json()["figures"], scope
        for rendered in (page.text, svgs):
            names = set(re.findall(r">([^<>]+)</text>", rendered))
            leaked = names & foreign_names(scope, regions)
            assert not leaked, (scope, leaked)


def test_submissions_and_audit_are_not_for_readers(issued, client):
    for scope, secret in issued.items():
        with client(secret) as http:
            audit = http.get("/api/audit", params={"limit": 1})
            listed = http.get("/api/submissions")
        assert audit.status_code == (200 if scope == "national" else 403), scope
        if scope == "national" or scope.startswith("submitter:"):
            assert listed.status_code == 200
            if scope.startswith("submitter:"):
                owners = {s["submitter_uscc"] for s in listed.json()}
                assert owners == {scope.removeprefix("submitter:")}
        else:
            assert listed.status_code == 403, scope


def test_no_token_no_data(client, manifest):
    with client() as http:
        assert http.get("/api/periods").status_code == 401
        relative = next(iter(manifest["files"]))
        response = http.get(f"/files/{PERIOD}/{relative}")
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthenticated"
        page = http.get(f"/periods/{PERIOD}/bulletin")
        assert page.status_code == 303
        assert page.headers["location"].startswith("/login?next=")
