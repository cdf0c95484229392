"""HTTP behaviour of downloads and errors: ETag = the file's SHA-256 with conditional GET,
content types, RFC 5987 UTF-8 file names, a digest header, and clear JSON 4xx errors."""

from __future__ import annotations

import base64
import hashlib
import json
from urllib.parse import unquote

import pytest
from scoped_publication import PERIOD

CONTENT_TYPES = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "parquet": "application/vnd.apache.parquet",
}


@pytest.fixture(scope="module")
def files(settings):
    pointer = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    manifest = json.loads(
        (settings.publish_dir / PERIOD / pointer["path"] / "manifest.json").read_text()
    )
    return manifest["files"]


def test_etag_is_the_manifest_hash_and_conditional_get_answers_304(client, issued, files):
    relative = "public/outsourcing_by_region.csv"
    sha256 = files[relative]["sha256"]
    with client(issued["public"]) as http:
        first = http.get(f"/files/{PERIOD}/{relative}")
        assert first.headers["etag"] == f'"{sha256}"'
        for tag in (f'"{sha256}"', f'W/"{sha256}"', f'"other", "{sha256}"', "*"):
            again = http.get(f"/files/{PERIOD}/{relative}", headers={"If-None-Match": tag})
            assert again.status_code == 304, tag
            assert again.content == b""
            assert again.headers["etag"] == f'"{sha256}"'
        stale = http.get(f"/files/{PERIOD}/{relative}", headers={"If-None-Match": '"0"'})
        assert stale.status_code == 200 and stale.content == first.content


def test_content_types_digest_and_utf8_file_names(client, issued, files):
    with client(issued["national"]) as http:
        for extension, content_type in CONTENT_TYPES.items():
            relative = f"internal/recovery_by_bucket.{extension}"
            response = http.get(f"/files/{PERIOD}/{relative}")
            assert response.headers["content-type"] == content_type
            digest = base64.b64encode(hashlib.sha256(response.content).digest()).decode()
            assert response.headers["repr-digest"] == f"sha-256=:{digest}:"
            assert hashlib.sha256(response.content).hexdigest() == files[relative]["sha256"]
            disposition = response.headers["content-disposition"]
            assert disposition.startswith("attachment; ")
            ascii_name = f"recovery_by_bucket_{PERIOD}_v1_internal.{extension}"
            assert f'filename="{ascii_name}"' in disposition
            encoded = disposition.split("filename*=UTF-8''")[1]
            assert unquote(encoded) == f"按逾期阶段的回收_{ascii_name}"
            assert encoded.isascii()
        english = http.get(f"/files/{PERIOD}/internal/recovery_by_bucket.csv?lang=en")
        assert "Recovery%20by%20bucket_" in english.headers["content-disposition"]


def test_errors_are_json_and_say_what_to_do(client, issued):
    with client(issued["national"]) as http:
        missing = http.get("/api/periods/2020-01")
        assert missing.status_code == 404
        assert missing.headers["content-type"] == "application/json"
        assert missing.json()["error"] == {
            "status": 404,
            "code": "not_found",
            "message": "no publication of 2020-01 for national",
        }
        absent = http.get(f"/files/{PERIOD}/internal/nothing_here.csv")
        assert absent.status_code == 404
        assert "internal/nothing_here.csv is not published" in absent.json()["error"]["message"]
        for escape in ("%2E%2E/latest.json", "..%2Flatest.json", "%2E%2E/%2E%2E/state"):
            outside = http.get(f"/files/{PERIOD}/{escape}")
            assert outside.status_code == 404, escape
            assert outside.json()["error"]["code"] == "not_found"
        bad_limit = http.get(
            f"/api/periods/{PERIOD}/tables/internal/recovery_by_bucket", params={"limit": 0}
        )
        assert bad_limit.status_code == 422
        assert bad_limit.json()["error"]["code"] == "invalid_request"
        assert "limit" in bad_limit.json()["error"]["message"][0]
        unknown = http.get("/api/no-such-endpoint")
        assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"
    with client() as http:
        malformed = http.get("/api/periods", headers={"Authorization": "Basic abc"})
        assert malformed.status_code == 401
        assert "Bearer" in malformed.json()["error"]["message"]


def test_a_file_changed_after_publication_is_not_served(client, issued, settings):
    """The portal serves only bytes that match the manifest; it never repairs a file."""
    pointer = json.loads((settings.publish_dir / PERIOD / "latest.json").read_text())
    path = settings.publish_dir / PERIOD / pointer["path"] / "public" / "recovery_by_bucket.csv"
    published = path.read_bytes()
    try:
        path.write_bytes(published + b"tampered\r\n")
        with client(issued["public"]) as http:
            response = http.get(f"/files/{PERIOD}/public/recovery_by_bucket.csv")
        assert response.status_code == 500
        assert response.json()["error"]["code"] == "integrity"
    finally:
        path.write_bytes(published)
    with client(issued["public"]) as http:
        assert http.get(f"/files/{PERIOD}/public/recovery_by_bucket.csv").content == published
