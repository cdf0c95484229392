"""Failure alerts: a local alert file always, a JSON POST to a webhook and an email when
configured. Delivery problems are recorded in the alert file, never raised: an alert that
cannot be sent must not hide the failure it reports.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

from collectwatch.config import CHINA_TZ, Settings
from collectwatch.files import atomic_write_bytes

log = logging.getLogger(__name__)
WEBHOOK_TIMEOUT_S = 10


def post_json(url: str, body: dict) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body, ensure_ascii=False, default=str).encode(),
        headers={"Content-Type": "application/json; charset=utf-8"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as response:
        return response.status


def send_email(settings: Settings, subject: str, body: dict) -> None:
    message = EmailMessage()
    message["Subject"] = subject
    message["From"] = settings.alert_email_from
    message["To"] = ", ".join(settings.alert_email_to)
    message.set_content(json.dumps(body, ensure_ascii=False, indent=2, default=str))
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=WEBHOOK_TIMEOUT_S) as smtp:
        smtp.send_message(message)


def _deliver(settings: Settings, body: dict) -> dict[str, str]:
    delivery = {}
    if settings.alert_webhook_url:
        try:
            delivery["webhook"] = f"HTTP {post_json(settings.alert_webhook_url, body)}"
        except OSError as error:  # URLError, HTTPError, timeouts
            delivery["webhook"] = f"failed: {error}"
    if settings.smtp_host and settings.alert_email_to:
        try:
            send_email(settings, f"[collectwatch] {body['kind']}: {body.get('summary', '')}", body)
            delivery["email"] = "sent to " + ", ".join(settings.alert_email_to)
        except (OSError, smtplib.SMTPException) as error:
            delivery["email"] = f"failed: {error}"
    return delivery


def notify(settings: Settings, kind: str, details: dict) -> Path:
    """Raise an alert on every configured channel; return the local alert file."""
    now = datetime.now(CHINA_TZ)
    body = {"kind": kind, "raised_at": now.isoformat(timespec="seconds"), **details}
    path = settings.alerts_dir / f"{now.strftime('%Y%m%dT%H%M%S%f')}-{kind}.json"
    atomic_write_bytes(path, json.dumps(body, indent=2, default=str).encode())
    delivery = _deliver(settings, body)
    if delivery:
        atomic_write_bytes(
            path, json.dumps({**body, "delivery": delivery}, indent=2, default=str).encode()
        )
    for channel, outcome in delivery.items():
        if outcome.startswith("failed"):
            log.error("alert %s via %s %s", path.name, channel, outcome)
    return path


def task_failure_details(context: dict) -> dict:
    """What an operator needs from an Airflow task's failure context."""
    task_instance = context.get("task_instance") or context.get("ti")
    exception = context.get("exception")
    dag_id = getattr(task_instance, "dag_id", None)
    task_id = getattr(task_instance, "task_id", None)
    return {
        "summary": f"{dag_id}.{task_id} failed",
        "dag_id": dag_id,
        "task_id": task_id,
        "run_id": getattr(task_instance, "run_id", None) or context.get("run_id"),
        "try_number": getattr(task_instance, "try_number", None),
        "map_index": getattr(task_instance, "map_index", None),
        "exception": f"{type(exception).__name__}: {exception}" if exception else None,
    }


def on_task_failure(context: dict) -> None:
    """Airflow ``on_failure_callback``. A gate failure has already alerted with its reports
    (``pipeline.audit``), so its exception carries the alert file and is not sent twice."""
    exception = context.get("exception")
    if getattr(exception, "alert_path", None):
        return
    notify(Settings.from_env(), "task_failed", task_failure_details(context))
