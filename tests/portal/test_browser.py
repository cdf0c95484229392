"""A real browser (headless Chromium, Debian package ``chromium``) signs in, loads the
monthly bulletin and a table page, and finds the charts (inline SVG) and figures
rendered; screenshots are kept in test-artifacts/ (git-ignored)."""

from __future__ import annotations

import html
import re
import shutil
import subprocess

import pandas as pd
import pytest
from scoped_publication import PERIOD

from collectwatch.portal.auth import Scope

INSTALL = ["apt-get", "install", "-y", "--no-install-recommends", "chromium", "fonts-wqy-zenhei"]


@pytest.fixture(scope="module")
def chromium() -> str:
    """The browser; installed through apt when missing (as `make test` does). The test is
    skipped only where apt itself is unavailable."""
    found = shutil.which("chromium")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("chromium is not installed and apt-get is unavailable to install it")
    subprocess.run(["apt-get", "update"], check=True, capture_output=True)
    subprocess.run(INSTALL, check=True, capture_output=True)
    return shutil.which("chromium")


@pytest.fixture(scope="module")
def browser(chromium, tmp_path_factory, tokens, server):
    """Run Chromium headless with a profile signed in through the login form."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    _, secret = tokens.issue(Scope.parse("national"), 1, "headless chromium")

    def run(*arguments: str) -> str:
        completed = subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                "--virtual-time-budget=3000",
                *arguments,
            ],
            capture_output=True,
            text=True,
            timeout=180,
            check=True,
        )
        return completed.stdout

    # Sign in as a person would: post the token to the login form; the cookie stays in
    # the profile for the next runs.
    login = profile / "login.html"
    login.write_text(
        f'<form method="post" action="{server}/login"><input name="token" value="{secret}">'
        '<input name="next" value="/"></form><script>document.forms[0].submit()</script>'
    )
    run("--dump-dom", login.as_uri())
    return run


@pytest.fixture(scope="module")
def artifacts(settings):
    folder = settings.project_dir / "test-artifacts"
    folder.mkdir(exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def national_outsourcing(published):
    parquet = published.file("internal/outsourcing_by_region.parquet").path
    return pd.read_parquet(parquet)


def _screenshot(browser, artifacts, name: str, url: str):
    target = artifacts / name
    target.unlink(missing_ok=True)
    browser(f"--screenshot={target}", "--window-size=1280,1800", url)
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert target.stat().st_size > 20_000  # a rendered page, not a blank one


def test_the_bulletin_renders_charts_and_figures(browser, server, artifacts, national_outsourcing):
    dom = browser("--dump-dom", f"{server}/periods/{PERIOD}/bulletin")
    assert f"<title>月度简报 {PERIOD}</title>" in dom
    charts = re.findall(r'<figure class="chart" id="chart-(\w+)">(.*?)</figure>', dom, re.S)
    assert {"outsourcing", "recovery"} <= {key for key, _ in charts}
    for key, body in charts:
        assert ("<svg" in body and "<rect" in body) or "<path" in body, key
    provinces = national_outsourcing[
        (national_outsourcing["level"] == "province")
        & (national_outsourcing["reporting_lenders"] > 0)
    ]  # an expected province without reporters is an empty row, not a bar
    outsourcing_svg = dict(charts)["outsourcing"]
    labels = {html.unescape(t) for t in re.findall(r">([^<>]+)</text>", outsourcing_svg)}
    assert set(provinces["region_name_zh"]) <= labels  # one bar per province
    nation = national_outsourcing[national_outsourcing["level"] == "national"].iloc[0]
    figures = re.findall(r'<div class="value">([^<]+)</div>', dom)
    assert f"{float(nation['overdue_balance']):,.2f}" in figures
    assert f"{float(nation['outsourcing_share']):.1%}" in figures
    _screenshot(browser, artifacts, "bulletin.png", f"{server}/periods/{PERIOD}/bulletin")


def test_a_table_page_renders_its_rows_and_hashes(browser, server, artifacts, published):
    url = f"{server}/periods/{PERIOD}/tables/internal/outsourcing_by_region?lang=en"
    dom = browser("--dump-dom", url)
    preview = re.search(r'<table class="preview">(.*?)</table>', dom, re.S).group(1)
    file = published.file("internal/outsourcing_by_region.parquet")
    assert preview.count("<tr>") == 1 + min(50, file.rows)  # header + rows
    assert "Outsourcing by region" in dom
    for extension in ("csv", "xlsx", "parquet"):
        sibling = published.file(f"internal/outsourcing_by_region.{extension}")
        assert sibling.sha256 in dom
    _screenshot(browser, artifacts, "table.png", url)
