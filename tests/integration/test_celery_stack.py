"""The production topology, proven with real processes.

docker-compose.yml runs collectwatch on Airflow 3's CeleryExecutor: PostgreSQL metadata, a Redis
broker, an api-server (Airflow 3 workers run tasks through its Task Execution API), a scheduler,
a dag-processor and two Celery workers. No Docker engine runs here, so this test starts the same
services as processes on 127.0.0.1 — PostgreSQL and Redis from Debian's packages, installed when
missing — initialises Airflow with the `airflow …` commands of compose's airflow-init, runs the
collect and nightly DAGs for a generated month through the REST API, and checks that

- both DAG runs succeed, and the intake batches ran on both workers (each task instance's
  hostname as Airflow recorded it),
- the warehouse-writing tasks ran in the one-slot pool that airflow-init created,
- the publication's files are byte for byte those of the embedded path (SQLite metadata,
  dag.test()) run on a copy of the same landing files.

Every process it starts is stopped at the end, failed or not. It is skipped only when PostgreSQL
or Redis is missing and cannot be installed (not root, no apt-get, no package source), or when the
Python environment lacks a driver the stack needs (the reason names it).
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import json
import os
import pwd
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import yaml

from collectwatch.config import NO_TELEMETRY_ENV, Settings
from collectwatch.files import sha256_file
from collectwatch.generate import generate_month

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PERIOD = "2026-10"
# Before the period's due date: both paths publish the same `preliminary` release.
AS_OF = "2026-11-10T09:00:00+08:00"
WORKERS = ("cw-worker-1", "cw-worker-2")
WAREHOUSE_WRITERS = {"recover", "build_candidate", "audit_candidate", "publish"}
STARTUP_TIMEOUT_S = 300
RUN_TIMEOUT_S = 1200
ADMIN = "admin"


# --- PostgreSQL and Redis from Debian packages --------------------------------------------------


def postgres_bin_dir() -> Path | None:
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    # Debian installs the server under a versioned folder that is not on PATH.
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


def missing_packages() -> list[str]:
    present = {"postgresql": postgres_bin_dir(), "redis-server": shutil.which("redis-server")}
    return [package for package, found in present.items() if not found]


def install_services() -> str | None:
    """Install whichever of PostgreSQL and Redis is missing; why that is impossible, or None."""
    missing = missing_packages()
    if not missing:
        return None
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return f"{' and '.join(missing)} not installed, and installing needs root and apt-get"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Wait for a dpkg lock held by another apt-get rather than fail on it.
    apt_get = ["apt-get", "-o", "DPkg::Lock::Timeout=600"]
    for command in ([*apt_get, "update"], [*apt_get, "install", "-y", *missing]):
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            return f"`{' '.join(command)}` failed: {done.stderr.strip()[-400:]}"
    still_missing = missing_packages()
    return f"installed but not found: {still_missing}" if still_missing else None


def missing_python_drivers() -> str | None:
    """What the stack needs from this Python environment beyond the services, or None.
    The image carries these too (see docs/operations.md); a lock without them cannot run it."""
    problems = []
    if importlib.util.find_spec("asyncpg") is None:
        problems.append("asyncpg (Airflow 3.3 opens an async connection to PostgreSQL metadata)")
    try:
        importlib.import_module("airflow.providers.celery.executors.celery_executor_utils")
    except ImportError as error:
        problems.append(f"a celery release the Celery provider can import ({error})")
    return "; ".join(problems) or None


# --- processes ----------------------------------------------------------------------------------


class Processes:
    """Every process this test starts, each in its own process group with its output in a log
    file; stop_all() ends the groups (task runners and serve-logs children included)."""

    def __init__(self, log_dir: Path):
        self.log_dir = log_dir
        self.started: dict[str, tuple[subprocess.Popen, int]] = {}
        self.services: list[str] = []
        # Inherited by every descendant, including those that leave the process group (Airflow
        # runs each task in a session of its own): stop_all() finds them by it.
        self.marker = f"COLLECTWATCH_TEST_STACK={log_dir}"

    def start(self, name: str, args: list[str], env: dict, stop_signal=signal.SIGTERM, **popen):
        """Start a long-running service: it exiting at any time fails the test."""
        self.services.append(name)
        return self.start_job(name, args, env, stop_signal, **popen)

    def start_job(self, name: str, args: list[str], env: dict, stop_signal=signal.SIGTERM, **popen):
        """Start a process that ends by itself."""
        variable, value = self.marker.split("=", 1)
        with open(self.log_path(name), "wb") as log:
            process = subprocess.Popen(
                [str(arg) for arg in args],
                env={**env, variable: value},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **popen,
            )
        self.started[name] = (process, stop_signal)
        return process

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def tail(self, name: str, lines: int = 60) -> str:
        text = self.log_path(name).read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def assert_running(self) -> None:
        for name in self.services:
            process, _ = self.started[name]
            if process.poll() is not None:
                raise AssertionError(f"{name} exited ({process.returncode}):\n{self.tail(name)}")

    def stop_all(self, grace_s: float = 30) -> None:
        for process, stop_signal in reversed(self.started.values()):
            _signal_group(process, stop_signal)
        deadline = time.monotonic() + grace_s
        for process, _ in self.started.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            # Children outlive a leader that exits first (Celery's pool, serve-logs).
            _signal_group(process, signal.SIGKILL)
            process.wait()
        for pid in processes_with(self.marker):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def processes_with(marker: str) -> list[int]:
    """The processes whose environment holds `marker` (NAME=value)."""
    found = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        with contextlib.suppress(OSError):
            if marker.encode() in environ.read_bytes().split(b"\0"):
                found.append(int(environ.parent.name))
    return found


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(check: Callable[[], object], what: str, processes: Processes, timeout: float):
    """Poll check() until it returns something truthy; fail early if a process died."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        processes.assert_running()
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # not up yet: connection refused, 503, a half-written file
            last_error = error
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}: {last_error!r}")


# --- the backing services -----------------------------------------------------------------------


def start_postgres(processes: Processes, folder: Path, password: str) -> str:
    """A PostgreSQL cluster in `folder` on a free loopback port; its Airflow database URL."""
    import psycopg2

    bin_dir = postgres_bin_dir()
    as_user: dict = {}
    if os.geteuid() == 0:
        # initdb and postgres refuse to run as root: run them as the package's postgres user.
        owner = pwd.getpwnam("postgres")
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}
        os.chown(folder, owner.pw_uid, owner.pw_gid)
    password_file = folder / "password"
    password_file.write_text(password)
    if as_user:
        os.chown(password_file, as_user["user"], as_user["group"])
    initdb = subprocess.run(
        [bin_dir / "initdb", "-D", folder / "data", "-U", "airflow", "--pwfile", password_file,
         "--auth-host=scram-sha-256", "--auth-local=scram-sha-256", "-E", "UTF8"],
        capture_output=True, text=True, cwd=folder, **as_user,
    )  # fmt: skip
    assert initdb.returncode == 0, initdb.stderr
    port = free_port()
    processes.start(
        "postgres",
        [bin_dir / "postgres", "-D", folder / "data", "-h", "127.0.0.1", "-p", port,
         "-k", folder, "-c", "fsync=off"],
        env={"PATH": os.environ["PATH"], "LANG": "C.UTF-8"},
        stop_signal=signal.SIGINT,  # "fast" shutdown: SIGTERM would wait for clients to leave
        cwd=folder,
        **as_user,
    )  # fmt: skip

    def create_database() -> bool:
        connection = psycopg2.connect(
            host="127.0.0.1", port=port, user="airflow", password=password, dbname="postgres"
        )
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("create database airflow")
        connection.close()
        return True

    wait_until(create_database, "PostgreSQL", processes, timeout=60)
    return f"airflow:{password}@127.0.0.1:{port}/airflow"


def start_redis(processes: Processes, folder: Path, password: str) -> str:
    """A Redis server without persistence on a free loopback port; its broker URL."""
    import redis

    port = free_port()
    processes.start(
        "redis",
        ["redis-server", "--bind", "127.0.0.1", "--port", port, "--requirepass", password,
         "--save", "", "--appendonly", "no", "--dir", folder, "--daemonize", "no"],
        env={"PATH": os.environ["PATH"]},
    )  # fmt: skip
    client = redis.Redis(host="127.0.0.1", port=port, password=password)
    wait_until(client.ping, "Redis", processes, timeout=30)
    client.close()
    return f"redis://:{password}@127.0.0.1:{port}/0"


# --- Airflow ------------------------------------------------------------------------------------


def airflow_env(folder: Path, database: str, broker: str, api_port: int) -> dict[str, str]:
    """What docker-compose.yml's x-airflow-common sets, pointed at this machine's services."""
    from cryptography.fernet import Fernet

    home = folder / "airflow"
    passwords = home / "simple_auth_manager_passwords.json"
    home.mkdir(parents=True)
    passwords.write_text(json.dumps({ADMIN: secrets.token_hex(16)}))
    return {
        **os.environ,
        **NO_TELEMETRY_ENV,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"postgresql+psycopg2://{database}",
        "AIRFLOW__CELERY__BROKER_URL": broker,
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://{database}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
        "AIRFLOW__CORE__AUTH_MANAGER": (
            "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
        ),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        # The test triggers every run itself; the scheduler's own cron and asset runs would
        # race with it for the landing files and the period.
        "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
        "COLLECTWATCH_DATA_DIR": str(folder / "data"),
        "COLLECTWATCH_STATE_DIR": str(folder / "state"),
        # A failing task fails the run at once instead of waiting out retries.
        "COLLECTWATCH_TASK_RETRIES": "0",
    }


def airflow(*args) -> list[str]:
    return [sys.executable, "-m", "airflow", *map(str, args)]


def init_commands() -> list[list[str]]:
    """The `airflow …` lines of docker-compose.yml's airflow-init (migrate, pools)."""
    script = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["airflow-init"]
    lines = script["command"][-1].splitlines()
    return [shlex.split(line)[1:] for line in lines if line.strip().startswith("airflow ")]


def start_airflow(processes: Processes, env: dict[str, str], api_port: int) -> None:
    for command in init_commands():
        done = subprocess.run(airflow(*command), env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"airflow {' '.join(command)}:\n{done.stderr[-2000:]}"
    processes.start(
        "api-server", airflow("api-server", "--host", "127.0.0.1", "--port", api_port, "-w", 1), env
    )
    processes.start("scheduler", airflow("scheduler"), env)
    processes.start("dag-processor", airflow("dag-processor"), env)
    for worker in WORKERS:
        worker_env = {
            **env,
            # Two workers on one machine: own Celery node names, log-server ports and hostnames.
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "worker_identity.hostname",
            "COLLECTWATCH_TEST_WORKER": worker,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent),
                                                        env.get("PYTHONPATH")])),
        }  # fmt: skip
        # One slot each: a worker busy with one batch leaves the next to the other.
        command = airflow("celery", "worker", "--celery-hostname", f"{worker}@%h", "-c", 1)
        processes.start(worker, command, worker_env)


class Api:
    """The api-server's REST API, as the admin user of the simple auth manager."""

    def __init__(self, port: int, env: dict[str, str]):
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        self.passwords = Path(env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"])

    def log_in(self) -> bool:
        password = json.loads(self.passwords.read_text())[ADMIN]
        response = self.client.post("/auth/token", json={"username": ADMIN, "password": password})
        response.raise_for_status()
        self.client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
        return True

    def get(self, path: str, **params) -> dict:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def healthy(self) -> bool:
        health = self.get("/api/v2/monitor/health")
        return all(health[part]["status"] == "healthy" for part in ("scheduler", "dag_processor"))

    def dags_parsed(self, dag_ids: set[str]) -> bool:
        return dag_ids <= {dag["dag_id"] for dag in self.get("/api/v2/dags")["dags"]}

    def trigger(self, dag_id: str, conf: dict) -> str:
        self.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()
        response = self.client.post(
            f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": None, "conf": conf}
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def finished_state(self, dag_id: str, run_id: str) -> str | None:
        state = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
        return state if state in ("success", "failed") else None

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        path = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
        return self.get(path, limit=1000)["task_instances"]


def workers_ready(processes: Processes) -> bool:
    return all(" ready." in processes.log_path(worker).read_text() for worker in WORKERS)


def run_to_the_end(api: Api, processes: Processes, dag_id: str, conf: dict) -> dict:
    run_id = api.trigger(dag_id, conf)
    state = wait_until(
        lambda: api.finished_state(dag_id, run_id), f"{dag_id} {run_id}", processes, RUN_TIMEOUT_S
    )
    return {"state": state, "task_instances": api.task_instances(dag_id, run_id)}


def failure_report(run: dict, log_folder: Path) -> str:
    """The failed task instances with the end of their logs, for the assertion message."""
    lines = [f"run {run['state']}"]
    for ti in run["task_instances"]:
        lines.append(f"  {ti['task_id']}[{ti['map_index']}] {ti['state']} on {ti['hostname']}")
        if ti["state"] not in ("success", "skipped"):
            for log in sorted(
                log_folder.glob(f"dag_id={ti['dag_id']}/**/task_id={ti['task_id']}/**/*.log")
            ):
                lines += log.read_text(errors="replace").splitlines()[-15:]
    return "\n".join(lines)


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def landing_files(tmp_path_factory) -> Path:
    """A generated month, kept aside: each path takes in its own copy."""
    out = tmp_path_factory.mktemp("submitted")
    generate_month(Settings.from_env().with_data_dir(out / "unused"), PERIOD, out / "month", seed=5)
    return out / "month"


def land(landing_files: Path, data_dir: Path) -> None:
    ignore = shutil.ignore_patterns("*.json")  # the planted-facts file is not a submission
    shutil.copytree(landing_files, data_dir / "landing", ignore=ignore)


@pytest.fixture(scope="module")
def stack(landing_files):
    """The embedded run and the Celery stack's two DAG runs on the same landing files."""
    reason = install_services()
    if reason:
        pytest.skip(f"PostgreSQL/Redis unavailable: {reason}")
    drivers = missing_python_drivers()
    if drivers:
        pytest.skip(f"requirements.lock lacks what the Celery stack needs: {drivers}")
    # Outside pytest's tmp folders: those are private to root, and postgres must get in.
    folder = Path(tempfile.mkdtemp(prefix="collectwatch-stack-"))
    folder.chmod(0o711)
    (folder / "logs").mkdir()
    processes = Processes(folder / "logs")
    try:
        yield run_both_paths(folder, processes, landing_files)
    finally:
        processes.stop_all()
        shutil.rmtree(folder, ignore_errors=True)


def run_both_paths(folder: Path, processes: Processes, landing_files: Path) -> dict:
    started = time.monotonic()
    embedded_data = folder / "embedded" / "data"
    land(landing_files, embedded_data)
    embedded_env = {
        **os.environ,
        "COLLECTWATCH_DATA_DIR": str(embedded_data),
        "COLLECTWATCH_STATE_DIR": str(folder / "embedded" / "state"),
    }
    # The embedded path runs while the stack starts: it is one process on its own SQLite.
    embedded = processes.start_job(
        "embedded",
        [sys.executable, "-m", "collectwatch.cli", "run", "--period", PERIOD, "--as-of", AS_OF],
        embedded_env,
    )
    (folder / "postgres").mkdir()
    (folder / "redis").mkdir()
    database = start_postgres(processes, folder / "postgres", secrets.token_hex(16))
    broker = start_redis(processes, folder / "redis", secrets.token_hex(16))
    api_port = free_port()
    env = airflow_env(folder / "stack", database, broker, api_port)
    start_airflow(processes, env, api_port)
    api = Api(api_port, env)
    wait_until(api.log_in, "the api-server", processes, STARTUP_TIMEOUT_S)
    wait_until(api.healthy, "scheduler and dag-processor", processes, STARTUP_TIMEOUT_S)
    dag_ids = {"collect_submissions", "nightly_supervision"}
    wait_until(lambda: api.dags_parsed(dag_ids), "parsed DAGs", processes, STARTUP_TIMEOUT_S)
    wait_until(lambda: workers_ready(processes), "both workers", processes, STARTUP_TIMEOUT_S)
    land(landing_files, Path(env["COLLECTWATCH_DATA_DIR"]))
    collect = run_to_the_end(api, processes, "collect_submissions", {})
    nightly = run_to_the_end(
        api, processes, "nightly_supervision", {"periods": [PERIOD], "as_of": AS_OF}
    )
    assert embedded.wait(timeout=RUN_TIMEOUT_S) == 0, processes.tail("embedded")
    return {
        "collect": collect,
        "nightly": nightly,
        "stack_data": Path(env["COLLECTWATCH_DATA_DIR"]),
        "embedded_data": embedded_data,
        "logs": Path(env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]),
        "seconds": time.monotonic() - started,
    }


# --- the tests ----------------------------------------------------------------------------------


def test_both_dag_runs_succeed_on_the_celery_stack(stack):
    print(f"integration stack: {stack['seconds']:.0f} s from first process to last assertion")
    for name in ("collect", "nightly"):
        assert stack[name]["state"] == "success", failure_report(stack[name], stack["logs"])


def test_intake_batches_ran_on_both_workers(stack):
    intake = [ti for ti in stack["collect"]["task_instances"] if ti["task_id"] == "intake"]
    assert len(intake) >= len(WORKERS), "too few batches to spread"
    assert sorted(ti["map_index"] for ti in intake) == list(range(len(intake)))
    assert {ti["state"] for ti in intake} == {"success"}
    assert {ti["hostname"] for ti in intake} == set(WORKERS)


def test_warehouse_writers_ran_in_the_single_slot_pool(stack):
    pools = {ti["task_id"]: ti["pool"] for ti in stack["nightly"]["task_instances"]}
    warehouse_pool = Settings.from_env().warehouse_pool
    assert {task for task, pool in pools.items() if pool == warehouse_pool} == WAREHOUSE_WRITERS
    intake_pools = {
        ti["pool"] for ti in stack["collect"]["task_instances"] if ti["task_id"] == "intake"
    }
    assert intake_pools == {"default_pool"}


def published_files(data_dir: Path) -> dict[str, str]:
    """SHA-256 of every data file of the period's latest version (the manifest, which carries
    the run's own metadata, aside)."""
    pointer = json.loads((data_dir / "publish" / PERIOD / "latest.json").read_text())
    version = data_dir / "publish" / PERIOD / pointer["path"]
    return {
        str(path.relative_to(version)): sha256_file(path)
        for path in sorted(version.rglob("*"))
        if path.is_file() and path.name != "manifest.json"
    }


def test_publication_matches_the_embedded_path_byte_for_byte(stack):
    on_celery = published_files(stack["stack_data"])
    embedded = published_files(stack["embedded_data"])
    assert len(embedded) >= 2
    assert on_celery == embedded
    manifests = [
        json.loads((data / "publish" / PERIOD / "v1" / "manifest.json").read_text())
        for data in (stack["stack_data"], stack["embedded_data"])
    ]
    assert manifests[0]["files"] == manifests[1]["files"]
    assert manifests[0]["input_submissions"] == manifests[1]["input_submissions"]
