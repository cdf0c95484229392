"""One publication per session (the real pipeline), one real portal server on 127.0.0.1,
tokens for every scope, and an HTTP client factory."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import replace
from pathlib import Path

import httpx
import pandas as pd
import pytest
import uvicorn
from scoped_publication import AS_OF, EMPTY_PROVINCE, PERIOD, UPLOAD_LIMIT, complete_scopes

from collectwatch import pipeline
from collectwatch.config import Settings
from collectwatch.generate import generate_month
from collectwatch.portal.app import create_app
from collectwatch.portal.auth import Scope, TokenStore
from collectwatch.portal.publication import release
from collectwatch.publish import export_period, publish_period


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """Generate a month, take it in, build it with dbt and publish it with the real
    publication functions (the gate has its own tests; skipping it keeps this quick)."""
    root = tmp_path_factory.mktemp("portal")
    settings = replace(Settings.from_env().with_data_dir(root / "data"), state_dir=root / "state")
    month = generate_month(settings, PERIOD, root / "generated", seed=5)
    shutil.copytree(month.out_dir, settings.landing_dir, ignore=shutil.ignore_patterns("*.json"))
    for batch in pipeline.landing_batches(settings):
        pipeline.intake_batch(settings, batch)
    build = pipeline.build(settings, [PERIOD], as_of=AS_OF)
    staged = export_period(settings, Path(build["candidate"]), PERIOD, build["run_id"])
    publish_period(settings, PERIOD, staged, {"run_id": build["run_id"], "as_of": AS_OF})
    complete_scopes(settings, PERIOD)
    return replace(settings, max_file_bytes=UPLOAD_LIMIT), month


@pytest.fixture(scope="session")
def settings(built):
    return built[0]


@pytest.fixture(scope="session")
def generated(built):
    return built[1]


@pytest.fixture(scope="session")
def published(settings):
    return release(settings, PERIOD)


@pytest.fixture(scope="session")
def provinces(published):
    return sorted(
        {f.scope.removeprefix("province=") for f in published.files if f.scope != "internal"}
        - {"public"}
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def server(settings):
    """The portal under uvicorn on a free port of 127.0.0.1, in a thread."""
    port = _free_port()
    config = uvicorn.Config(
        create_app(settings), host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the portal did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="session")
def tokens(settings):
    return TokenStore(settings.portal_db)


@pytest.fixture(scope="session")
def lenders(generated) -> list[str]:
    """USCCs of the generated month's lenders."""
    return sorted(
        p.name.split("__")[1] for p in generated.files if p.name.startswith("lender_portfolio__")
    )


@pytest.fixture(scope="session")
def reporting_provinces(published) -> list[str]:
    """Provinces with at least one reporting lender in the generated month."""
    rows = pd.read_parquet(published.dataset("internal", "outsourcing_by_region").path)
    provinces = rows[(rows["level"] == "province") & (rows["reporting_lenders"] > 0)]
    return sorted(set(provinces["region_code"].astype(str)))


@pytest.fixture(scope="session")
def issued(tokens, reporting_provinces, lenders):
    """A token for every kind of scope: national, public, a submitter (a lender of the
    generated month), a province without reporters, and the first and last province with
    reporters. Every province's folder is laid out by the same code, so two of them stand
    for all 31 (each scope is checked against every published file)."""
    assert len(reporting_provinces) >= 2 and EMPTY_PROVINCE not in reporting_provinces
    submitter = lenders[0]
    scopes = ["national", "public", f"submitter:{submitter}", f"province:{EMPTY_PROVINCE}"]
    scopes += [f"province:{code}" for code in (reporting_provinces[0], reporting_provinces[-1])]
    return {scope: tokens.issue(Scope.parse(scope), 1, f"test {scope}")[1] for scope in scopes}


@pytest.fixture
def client(server):
    def make(secret: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {secret}"} if secret else {}
        return httpx.Client(base_url=server, headers=headers, timeout=60)

    return make
