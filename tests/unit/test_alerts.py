"""Failure alerts reach a real local webhook and a real (minimal) SMTP server; the local
alert file is written even when delivery fails; the Airflow callback is wired in."""

from __future__ import annotations

import json
import os
import socketserver
import subprocess
import sys
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest

from collectwatch import alerts
from collectwatch.config import Settings
from collectwatch.orchestration import default_args


@pytest.fixture
def settings(tmp_path):
    return Settings.from_env().with_data_dir(tmp_path / "data")


@pytest.fixture
def webhook():
    """An HTTP server that records the JSON bodies POSTed to it."""
    received: list[dict] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/alerts", received
    server.shutdown()
    server.server_close()


class _Smtp(socketserver.StreamRequestHandler):
    """Just enough SMTP (RFC 5321) for smtplib to deliver one message."""

    def reply(self, line: str) -> None:
        self.wfile.write(f"{line}\r\n".encode())

    def handle(self):
        self.reply("220 test")
        while line := self.rfile.readline().decode():
            verb = line.split(" ")[0].strip().upper()
            if verb == "DATA":
                self.reply("354 go on")
                lines = []
                while (data := self.rfile.readline().decode()) != ".\r\n":
                    lines.append(data)
                self.server.messages.append("".join(lines))
                self.reply("250 queued")
            elif verb == "QUIT":
                self.reply("221 bye")
                return
            else:  # EHLO, MAIL, RCPT, RSET, NOOP
                self.reply("250 ok")


@pytest.fixture
def smtp_server():
    server = socketserver.TCPServer(("127.0.0.1", 0), _Smtp)
    server.messages = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_alert_goes_to_file_webhook_and_email(settings, webhook, smtp_server):
    url, received = webhook
    settings = replace(
        settings,
        alert_webhook_url=url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.server_address[1],
        alert_email_to=("stats-oncall@regulator.example",),
    )
    path = alerts.notify(settings, "gate_failed", {"summary": "2026-10 blocked", "run_id": "r1"})
    written = json.loads(path.read_text())
    assert written["kind"] == "gate_failed" and written["run_id"] == "r1"
    assert written["delivery"]["webhook"] == "HTTP 204"
    assert written["delivery"]["email"] == "sent to stats-oncall@regulator.example"
    assert [(body["kind"], body["run_id"]) for body in received] == [("gate_failed", "r1")]
    (message,) = smtp_server.messages
    assert "Subject: [collectwatch] gate_failed: 2026-10 blocked" in message
    assert '"run_id": "r1"' in message


def test_undeliverable_alert_still_leaves_the_local_file(settings, webhook):
    url, received = webhook
    unreachable = url.rsplit(":", 1)[0] + ":9/alerts"  # discard port: nothing listens
    settings = replace(settings, alert_webhook_url=unreachable)
    path = alerts.notify(settings, "task_failed", {"summary": "x"})
    assert json.loads(path.read_text())["delivery"]["webhook"].startswith("failed")
    assert received == []


def test_no_channel_configured_writes_only_the_file(settings):
    path = alerts.notify(settings, "task_failed", {"summary": "x"})
    assert "delivery" not in json.loads(path.read_text())
    assert list(settings.alerts_dir.iterdir()) == [path]


def test_the_airflow_callback_alerts_once_per_failure(settings, monkeypatch, webhook):
    url, received = webhook
    monkeypatch.setenv("COLLECTWATCH_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("COLLECTWATCH_ALERT_WEBHOOK_URL", url)
    assert default_args(settings)["on_failure_callback"] is alerts.on_task_failure
    task = SimpleNamespace(
        dag_id="nightly_supervision", task_id="build_candidate", run_id="manual__1",
        try_number=1, map_index=-1,
    )  # fmt: skip
    alerts.on_task_failure({"task_instance": task, "exception": RuntimeError("dbt failed")})
    (body,) = received
    assert body["kind"] == "task_failed"
    assert body["summary"] == "nightly_supervision.build_candidate failed"
    assert body["exception"] == "RuntimeError: dbt failed"
    # A gate failure has already alerted with its reports: not a second time.
    gate_failed = RuntimeError("gate blocked")
    gate_failed.alert_path = "alerts/x-gate_failed.json"
    alerts.on_task_failure({"task_instance": task, "exception": gate_failed})
    assert len(received) == 1


SLOW_DAG = """
import time
from dataclasses import replace
from datetime import datetime

from airflow.sdk import dag, task

from collectwatch.config import Settings
from collectwatch.orchestration import default_args


@dag(
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    default_args=default_args(replace(Settings.from_env(), task_timeout_s=1)),
)
def hung_night():
    @task
    def hung_build():
        time.sleep(60)  # a process that never returns, as a hung DuckDB query

    hung_build()


hung_night()
"""


# dag.test() of that DAG in a process of its own: Airflow reads its DAG folder once per
# process, and this session's is the project's.
RUN_HUNG_NIGHT = """
import sys
from dataclasses import replace
from pathlib import Path

from collectwatch.config import Settings
from collectwatch.orchestration import prepare_embedded_metadata

settings = replace(Settings.from_env(), project_dir=Path(sys.argv[1]))
prepare_embedded_metadata(settings)
from airflow.dag_processing.dagbag import DagBag

bag = DagBag(dag_folder=str(settings.project_dir / "dags"))
assert not bag.import_errors, bag.import_errors
print("STATE", bag.get_dag("hung_night").test().state)
"""


def test_a_task_past_its_timeout_fails_and_alerts(settings, tmp_path):
    """A task that hangs (a DuckDB query that never returns: collectwatch.config) fails at
    the configured timeout through the real task runner, and its failure alerts."""
    project = tmp_path / "project"
    (project / "dags").mkdir(parents=True)
    (project / "dags" / "hung_night.py").write_text(SLOW_DAG)
    environment = {
        **os.environ,
        "COLLECTWATCH_DATA_DIR": str(settings.data_dir),
        "COLLECTWATCH_STATE_DIR": str(tmp_path / "state"),
    }

    completed = subprocess.run(
        [sys.executable, "-c", RUN_HUNG_NIGHT, str(project)],
        env=environment, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip

    assert "STATE failed" in completed.stdout, completed.stderr[-3000:]
    (alert,) = (settings.data_dir / "alerts").glob("*-task_failed.json")
    body = json.loads(alert.read_text())
    assert body["summary"] == "hung_night.hung_build failed"
    assert "Timeout" in body["exception"]
