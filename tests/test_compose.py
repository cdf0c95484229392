"""docker-compose.yml, the Dockerfile, .env.example, deploy/helm-values.yaml and
docs/operations.md, checked against the code they deploy.

No Docker engine or cluster runs where these tests run, so nothing here builds or starts a
container: the files are parsed and compared with collectwatch.config (its environment variables,
defaults, pools and telemetry opt-outs), with the DAGs (the pools and queues their tasks use), with
the pins in requirements.lock / pyproject.toml, and with the installed Airflow (its config options,
CLI commands and API routes) — each check fails if the stack drifts from the code in that way.
tests/integration/test_celery_stack.py runs the same topology as real processes.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import json
import os
import re
import shlex
import sys
import tomllib
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
LOCK_FILE = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
ENV_EXAMPLE = ROOT / ".env.example"
DOCKERIGNORE = ROOT / ".dockerignore"

AIRFLOW_IMAGE_NAME = "collectwatch-airflow"
INIT_SERVICE = "airflow-init"
API_SERVER_SERVICE = "airflow-apiserver"
REQUIRED_SERVICES = {
    "postgres",
    "redis",
    INIT_SERVICE,
    API_SERVER_SERVICE,
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-1",
    "airflow-worker-2",
}
API_HEALTH_PATH = "/api/v2/monitor/health"
DATA_VOLUME = "collectwatch-data"
STATE_VOLUME = "collectwatch-state"
HELM_VALUES_FILE = ROOT / "deploy" / "helm-values.yaml"
OPERATIONS_DOC = ROOT / "docs" / "operations.md"
# Settings the containers take from their volume layout, not from .env.
PATH_SETTINGS = {"COLLECTWATCH_DATA_DIR", "COLLECTWATCH_STATE_DIR"}

# Tags count as exact when they carry this many version parts. PostgreSQL numbers its releases
# major.minor since version 10, so "16.11" is a patch release; "7.2" of Redis is a moving line.
MIN_VERSION_PARTS = {"postgres": 2}
DEFAULT_MIN_VERSION_PARTS = 3
VERSION_TAG = re.compile(r"v?(?P<version>\d+(?:\.\d+)*)(?:-[A-Za-z0-9_.]+)*")

# ${NAME}, ${NAME:-default}, ${NAME:?message}…; "$${" is compose's escaped literal "${".
INTERPOLATION = re.compile(
    r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}"
)
SECRET_NAME = re.compile(r"(PASSWORD|SECRET|KEY|TOKEN|_AUTH)$")
URL_PASSWORD = re.compile(r"://[^:/@\s]*:(?P<password>[^@\s]*)@")


def _collectwatch_config():
    """collectwatch.config, installed or else straight from include/."""
    try:
        return importlib.import_module("collectwatch.config")
    except ModuleNotFoundError:
        sys.path.insert(0, str(ROOT / "include"))
        return importlib.import_module("collectwatch.config")


CONFIG = _collectwatch_config()
SETTINGS = CONFIG.Settings(data_dir=Path("/data"), state_dir=Path("/state"))
COMPOSE = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
SERVICES: dict[str, dict] = COMPOSE["services"]
HELM_VALUES = yaml.safe_load(HELM_VALUES_FILE.read_text(encoding="utf-8"))


# --- reading the compose file -------------------------------------------------------------------


def environment(service: str) -> dict[str, str]:
    env = SERVICES[service].get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: str(value) for key, value in env.items()}


def command_args(service: str) -> list[str]:
    command = SERVICES[service].get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(arg) for arg in command]


def healthcheck_text(service: str) -> str:
    test = (SERVICES[service].get("healthcheck") or {}).get("test") or []
    return test if isinstance(test, str) else " ".join(str(part) for part in test)


def airflow_services() -> list[str]:
    return sorted(
        name
        for name, spec in SERVICES.items()
        if str(spec.get("image", "")).split(":")[0] == AIRFLOW_IMAGE_NAME
    )


def long_running_airflow_services() -> list[str]:
    return [name for name in airflow_services() if name != INIT_SERVICE]


def celery_workers() -> list[str]:
    return [
        name
        for name in airflow_services()
        if " celery worker" in " " + " ".join(command_args(name))
    ]


def mounts(service: str) -> list[tuple[str, str, str]]:
    """(type, source, target) of each volume: type is "bind" or "volume"."""
    result = []
    for volume in SERVICES[service].get("volumes") or []:
        if isinstance(volume, dict):
            kind, source, target = volume["type"], volume.get("source", ""), volume["target"]
        else:
            source, target = volume.split(":")[:2]
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        result.append((kind, source, target))
    return result


def mount_target(service: str, source: str) -> str | None:
    return next((target for _, src, target in mounts(service) if src == source), None)


def all_strings(node) -> list[str]:
    """Every scalar in a parsed YAML tree, as text."""
    if isinstance(node, dict):
        return [text for value in node.values() for text in all_strings(value)]
    if isinstance(node, list):
        return [text for value in node for text in all_strings(value)]
    return [] if node is None else [str(node)]


def interpolations() -> list[re.Match]:
    return [m for text in all_strings(COMPOSE) for m in INTERPOLATION.finditer(text)]


def is_required_interpolation(text: str) -> bool:
    """A whole value of the form ${NAME} or ${NAME:?message}: no default that could ship."""
    match = INTERPOLATION.fullmatch(text)
    return bool(match) and match.group("op") in (None, "?", ":?")


# --- reading the Dockerfile, the lock and the pins ----------------------------------------------


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("#") or not line.strip():
            continue
        current += line.rstrip("\\").strip() + " "
        if not line.rstrip().endswith("\\"):
            logical.append(current.strip())
            current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def dockerfile_env() -> dict[str, str]:
    env = {}
    for instruction, args in dockerfile_instructions():
        if instruction == "ENV":
            env.update(part.split("=", 1) for part in shlex.split(args))
    return env


def dockerfile_base() -> tuple[str, str]:
    """(airflow version, python version) of the FROM line."""
    base = next(args for instruction, args in dockerfile_instructions() if instruction == "FROM")
    match = re.fullmatch(r"apache/airflow:(\d+\.\d+\.\d+)-python(\d+\.\d+)", base.split()[0])
    assert match, f"Dockerfile must start FROM apache/airflow:<x.y.z>-python<x.y>, not {base!r}"
    return match.group(1), match.group(2)


def locked_versions() -> dict[str, str]:
    pins = {}
    for line in LOCK_FILE.read_text(encoding="utf-8").splitlines():
        match = re.match(r"([A-Za-z0-9_.\-]+)==([^\s;#]+)", line.strip())
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def pinned_airflow_version() -> tuple[str, str]:
    """(version, where it is pinned): requirements.lock, else pyproject.toml's exact pin."""
    if LOCK_FILE.exists():
        return locked_versions()["apache-airflow"], LOCK_FILE.name
    for requirement in tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"][
        "dependencies"
    ]:
        match = re.fullmatch(r"apache-airflow\s*==\s*([^\s;]+)", requirement.strip())
        if match:
            return match.group(1), PYPROJECT.name
    pytest.skip("neither requirements.lock nor pyproject.toml pins apache-airflow exactly yet")


def env_example() -> dict[str, str]:
    pairs = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            pairs[key.strip()] = value.strip()
    return pairs


# --- the installed Airflow ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_conf(tmp_path_factory):
    # Importing airflow creates AIRFLOW_HOME; keep it out of the user's home if nobody set it.
    os.environ.setdefault("AIRFLOW_HOME", str(tmp_path_factory.mktemp("airflow_home")))
    pytest.importorskip("airflow")
    from airflow.configuration import conf

    return conf


def airflow_package_dir() -> Path:
    spec = importlib.util.find_spec("airflow")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("apache-airflow is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def celery_provider_installed() -> bool:
    try:
        return importlib.util.find_spec("airflow.providers.celery") is not None
    except ModuleNotFoundError:
        return False


# --- services -----------------------------------------------------------------------------------


def test_required_services_present():
    missing = REQUIRED_SERVICES - set(SERVICES)
    assert not missing, f"services missing: {missing}"
    assert set(airflow_services()) >= {s for s in REQUIRED_SERVICES if s.startswith("airflow-")}


def test_at_least_two_celery_workers_with_distinct_node_names():
    workers = celery_workers()
    assert len(workers) >= 2, f"Celery workers: {workers}"
    hostnames = [SERVICES[name].get("hostname", name) for name in workers]
    assert len(set(hostnames)) == len(hostnames), hostnames


@pytest.mark.parametrize("service", airflow_services())
def test_executor_is_celery(service):
    assert environment(service).get("AIRFLOW__CORE__EXECUTOR") == "CeleryExecutor"


# --- images and the Dockerfile ------------------------------------------------------------------


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_image_pinned_to_exact_version(service):
    image = SERVICES[service].get("image")
    assert image, f"{service} names no image"
    if "@sha256:" in image:
        return
    name, _, tag = image.rpartition(":")
    assert name and "/" not in tag, f"{service}: {image!r} has no tag"
    match = VERSION_TAG.fullmatch(tag)
    assert match, f"{service}: tag {tag!r} is not a version (latest and names float)"
    parts = len(match.group("version").split("."))
    wanted = MIN_VERSION_PARTS.get(name.rsplit("/", 1)[-1], DEFAULT_MIN_VERSION_PARTS)
    assert parts >= wanted, f"{service}: {image!r} names a release line, not a release"


@pytest.mark.parametrize("service", airflow_services())
def test_airflow_service_built_from_dockerfile_with_base_version(service):
    build = SERVICES[service].get("build") or {}
    context = ROOT / build.get("context", ".")
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE
    airflow_version, _ = dockerfile_base()
    assert SERVICES[service]["image"] == f"{AIRFLOW_IMAGE_NAME}:{airflow_version}"


def test_dockerfile_base_image_matches_pinned_airflow_and_python():
    from packaging.specifiers import SpecifierSet

    airflow_version, python_version = dockerfile_base()
    pinned, source = pinned_airflow_version()
    assert airflow_version == pinned, f"Dockerfile has Airflow {airflow_version}, {source} {pinned}"
    requires_python = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"].get(
        "requires-python", ""
    )
    assert SpecifierSet(requires_python).contains(f"{python_version}.0"), requires_python


def test_dockerfile_installs_the_project_under_the_lock_as_airflow_user():
    instructions = dockerfile_instructions()
    copied = " ".join(args for instruction, args in instructions if instruction == "COPY")
    for needed in ("pyproject.toml", "requirements.lock", "include/"):
        assert needed in copied, f"Dockerfile does not COPY {needed}"
    installs = [
        (index, args)
        for index, (instruction, args) in enumerate(instructions)
        if instruction == "RUN" and "pip install" in args
    ]
    assert installs, "Dockerfile never runs pip install"
    index, install = installs[-1]
    words = shlex.split(install)
    assert "-c" in words, f"pip install without the lock as constraints: {install}"
    assert words[words.index("-c") + 1] == "requirements.lock", install
    assert "." in words, f"the project itself is not installed: {install}"
    last_user = [args for instruction, args in instructions[:index] if instruction == "USER"]
    assert last_user and last_user[-1] == "airflow", "pip must run as the airflow user"


def test_lock_pins_the_celery_provider():
    if not LOCK_FILE.exists():
        pytest.skip("requirements.lock not written yet")
    pins = locked_versions()
    # The workers run `airflow celery worker`; the Dockerfile installs the provider under the lock.
    for package in ("apache-airflow-providers-celery", "celery", "redis"):
        assert package in pins, f"requirements.lock must pin {package} (the image installs it)"


def test_lock_is_a_valid_constraints_file_for_the_image():
    if not LOCK_FILE.exists():
        pytest.skip("requirements.lock not written yet")
    for line in LOCK_FILE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        # pip refuses editables as constraints, and a file:// path from a dev machine does not
        # exist in the image; the project is installed from its source, not from the lock.
        assert not line.startswith(("-e", "--editable")), line
        assert "@ file:" not in line, line
        assert not re.match(r"collectwatch\b", line, re.IGNORECASE), line


def test_dockerignore_keeps_secrets_state_and_data_out_of_the_image():
    ignored = {
        line.strip().rstrip("/")
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    wanted = {".git", ".env", ".venv", "data", ".state", "dbt_project/target", "dbt_project/logs"}
    assert wanted <= ignored, wanted - ignored


# --- volumes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("service", "source"),
    [(s, src) for s in sorted(SERVICES) for kind, src, _ in mounts(s) if kind == "bind"],
)
def test_bind_mount_source_exists_in_repo(service, source):
    assert (ROOT / source).exists(), f"{service} mounts {source}, which is not in the repository"


def test_named_volumes_are_declared():
    used = {src for s in SERVICES for kind, src, _ in mounts(s) if kind == "volume"}
    declared = set(COMPOSE.get("volumes") or {})
    assert used <= declared, used - declared
    assert {DATA_VOLUME, STATE_VOLUME} <= used


@pytest.mark.parametrize("service", airflow_services())
def test_data_and_state_dirs_are_the_shared_named_volumes(service):
    env = environment(service)
    assert mount_target(service, DATA_VOLUME) == env["COLLECTWATCH_DATA_DIR"]
    assert mount_target(service, STATE_VOLUME) == env["COLLECTWATCH_STATE_DIR"]
    image_env = dockerfile_env()
    assert image_env["COLLECTWATCH_DATA_DIR"] == env["COLLECTWATCH_DATA_DIR"]
    assert image_env["COLLECTWATCH_STATE_DIR"] == env["COLLECTWATCH_STATE_DIR"]


@pytest.mark.parametrize("service", airflow_services())
def test_project_tree_in_container_matches_the_package_layout(service):
    # collectwatch.config finds dbt_project/ and expectations/ beside include/ (PROJECT_ROOT).
    include = PurePosixPath(dockerfile_env()["PYTHONPATH"])
    assert mount_target(service, "./include") == str(include)
    for folder in ("dbt_project", "expectations"):
        assert mount_target(service, f"./{folder}") == str(include.parent / folder)
    assert mount_target(service, "./dags") == "/opt/airflow/dags"


# --- environment --------------------------------------------------------------------------------


def test_collectwatch_env_vars_are_read_by_config():
    names = {key for s in SERVICES for key in environment(s) if key.startswith("COLLECTWATCH_")}
    names |= {key for key in dockerfile_env() if key.startswith("COLLECTWATCH_")}
    names |= {key for key in env_example() if key.startswith("COLLECTWATCH_")}
    assert names, "compose sets no COLLECTWATCH_* variable"
    unknown = names - set(CONFIG.ENV_VARIABLES)
    assert not unknown, f"set for the stack but never read by collectwatch.config: {unknown}"


@pytest.mark.parametrize("service", airflow_services())
def test_telemetry_opt_outs_set(service):
    env = environment(service)
    missing = {k: v for k, v in CONFIG.NO_TELEMETRY_ENV.items() if env.get(k) != v}
    assert not missing, f"{service} lacks telemetry opt-outs {missing}"


def test_telemetry_opt_outs_baked_into_the_image():
    image_env = dockerfile_env()
    missing = {k: v for k, v in CONFIG.NO_TELEMETRY_ENV.items() if image_env.get(k) != v}
    assert not missing, f"Dockerfile lacks telemetry opt-outs {missing}"


def test_every_interpolated_variable_is_documented_in_env_example():
    documented = env_example()
    names = {m.group("name") for m in interpolations()}
    assert names - set(documented) == set(), names - set(documented)
    # Secrets are left empty in the example, so a copied file cannot start with a known value.
    secrets = {m.group("name") for m in interpolations() if SECRET_NAME.search(m.group("name"))}
    assert secrets, "compose takes no secret from the environment"
    assert {name: documented[name] for name in secrets if documented[name]} == {}


def test_no_literal_secrets():
    problems = []
    for service in SERVICES:
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not is_required_interpolation(value):
                problems.append(f"{service}: {key}={value!r}")
            for match in URL_PASSWORD.finditer(value):
                if not is_required_interpolation(match.group("password")):
                    problems.append(f"{service}: {key} has a literal password in its URL")
        args = command_args(service)
        for flag, value in itertools.pairwise(args):
            if flag in ("--requirepass", "--password") and not is_required_interpolation(value):
                problems.append(f"{service}: {flag} {value!r}")
    for key in dockerfile_env():
        if SECRET_NAME.search(key):
            problems.append(f"Dockerfile bakes {key} into the image")
    assert not problems, problems


def test_auth_passwords_file_is_written_where_the_api_server_reads_it():
    path = environment(API_SERVER_SERVICE)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
    assert environment(INIT_SERVICE)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == path
    for service in (INIT_SERVICE, API_SERVER_SERVICE):
        on_volume = [
            src
            for kind, src, target in mounts(service)
            if kind == "volume" and PurePosixPath(path).is_relative_to(target)
        ]
        assert on_volume == [STATE_VOLUME], f"{service}: {path} is not on {STATE_VOLUME}"
    users = environment(API_SERVER_SERVICE)["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS"]
    init_script = " ".join(command_args(INIT_SERVICE))
    for user in users.split(","):
        username = user.rsplit(":", 1)[0]
        variable = INTERPOLATION.fullmatch(username)
        assert variable, f"UI user {username!r} should come from .env"
        assert variable.group("name") in init_script, f"init writes no password for {username}"
        assert variable.group("name") in environment(INIT_SERVICE)


# --- startup order and health -------------------------------------------------------------------


@pytest.mark.parametrize("service", airflow_services())
def test_waits_for_healthy_postgres_and_redis(service):
    depends_on = SERVICES[service].get("depends_on") or {}
    for backing in ("postgres", "redis"):
        assert (depends_on.get(backing) or {}).get("condition") == "service_healthy", service


@pytest.mark.parametrize("service", long_running_airflow_services())
def test_waits_for_init_to_complete(service):
    condition = (SERVICES[service].get("depends_on") or {}).get(INIT_SERVICE) or {}
    assert condition.get("condition") == "service_completed_successfully", service


@pytest.mark.parametrize("service", celery_workers())
def test_workers_wait_for_healthy_api_server(service):
    condition = (SERVICES[service].get("depends_on") or {}).get(API_SERVER_SERVICE) or {}
    assert condition.get("condition") == "service_healthy", service


def test_init_runs_once_and_exits():
    assert str(SERVICES[INIT_SERVICE].get("restart", "no")) == "no"
    assert "healthcheck" not in SERVICES[INIT_SERVICE]


@pytest.mark.parametrize("service", sorted(set(SERVICES) - {INIT_SERVICE}))
def test_long_running_service_has_healthcheck(service):
    assert healthcheck_text(service), f"{service} has no healthcheck"
    assert str(SERVICES[service].get("restart")) == "unless-stopped", service


def test_backing_services_have_healthchecks():
    assert "pg_isready" in healthcheck_text("postgres")
    assert re.search(r"\bredis-cli\b.*\bping\b", healthcheck_text("redis"))


def test_api_server_healthcheck_uses_the_airflow_3_health_route():
    url = urlsplit(re.search(r"https?://\S+", healthcheck_text(API_SERVER_SERVICE)).group(0))
    assert url.path == API_HEALTH_PATH
    published = [str(port).rsplit(":", 1)[-1] for port in SERVICES[API_SERVER_SERVICE]["ports"]]
    assert str(url.port) in published, f"health check port {url.port} is not the served port"


def test_health_route_exists_unauthenticated_in_installed_airflow():
    spec = airflow_package_dir() / "api_fastapi/core_api/openapi/v2-rest-api-generated.yaml"
    paths = yaml.load(
        spec.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    )["paths"]
    assert API_HEALTH_PATH in paths, f"{API_HEALTH_PATH} is not an Airflow API route"
    assert not paths[API_HEALTH_PATH]["get"].get("security"), "health route needs credentials"


def test_execution_api_url_points_at_the_api_server():
    url = urlsplit(environment(API_SERVER_SERVICE)["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"])
    assert url.hostname == API_SERVER_SERVICE
    health = urlsplit(re.search(r"https?://\S+", healthcheck_text(API_SERVER_SERVICE)).group(0))
    assert url.port == health.port, "workers must reach the port the api-server listens on"
    assert url.path == "/execution/"
    app_source = (airflow_package_dir() / "api_fastapi/app.py").read_text(encoding="utf-8")
    assert 'app.mount("/execution"' in app_source, "Airflow no longer serves /execution"


# --- Airflow's own names ------------------------------------------------------------------------

# Opt-outs from config.NO_TELEMETRY_ENV that Airflow 3.3 itself does not define: checked by
# test_telemetry_opt_outs_set instead: [cosmos] belongs to astronomer-cosmos.
NOT_AIRFLOW_CORE_OPTIONS = {key for key in CONFIG.NO_TELEMETRY_ENV if key.startswith("AIRFLOW__")}
# Sections that come from a provider; when it is not installed its options cannot be checked.
PROVIDER_SECTIONS = {"celery": "apache-airflow-providers-celery"}

AIRFLOW_ENV_VARS = sorted(
    {
        key
        for service in SERVICES
        for key in environment(service)
        if key.startswith("AIRFLOW__") and key not in NOT_AIRFLOW_CORE_OPTIONS
    }
)


@pytest.mark.parametrize("variable", AIRFLOW_ENV_VARS)
def test_airflow_env_var_is_a_real_config_option(variable, airflow_conf):
    _, section, option = variable.split("__", 2)
    section, option = section.lower(), option.lower()
    # The config description, not conf.has_option: has_option is true for any AIRFLOW__X__Y set
    # in the environment, real or not.
    described = airflow_conf.configuration_description.get(section, {}).get("options", {})
    if option not in described and section in PROVIDER_SECTIONS and not celery_provider_installed():
        pytest.skip(f"{PROVIDER_SECTIONS[section]} is not installed: cannot check {variable}")
    assert option in described, f"{variable}: Airflow has no option [{section}] {option}"


def airflow_commands() -> list[tuple[str, tuple[str, ...]]]:
    """(service, airflow arguments) for every `airflow …` the stack runs."""
    found = set()
    for service in airflow_services():
        args = command_args(service)
        lines = [args] if args[:1] == ["airflow"] else []
        texts = [args[-1]] if args[:2] == ["bash", "-c"] else []
        texts.append(healthcheck_text(service))
        for text in texts:
            lines += [shlex.split(line) for line in text.splitlines() if "airflow " in line]
        for words in lines:
            if "airflow" in words:
                found.add((service, tuple(words[words.index("airflow") + 1 :])))
    return sorted(found)


@pytest.mark.parametrize(
    ("service", "arguments"),
    airflow_commands(),
    ids=[f"{service}:{' '.join(arguments[:3])}" for service, arguments in airflow_commands()],
)
def test_airflow_cli_command_exists(service, arguments, airflow_conf, capsys):
    from airflow.cli import cli_parser

    if arguments[0] == "celery" and not celery_provider_installed():
        pytest.skip("apache-airflow-providers-celery is not installed: `airflow celery` unknown")
    try:
        cli_parser.get_parser().parse_args(list(arguments))
    except SystemExit:
        pytest.fail(
            f"{service}: `airflow {' '.join(arguments)}` is not an Airflow 3 command\n"
            + capsys.readouterr().err[-500:]
        )


def pools_set(commands: list[tuple[str, ...]]) -> dict[str, int]:
    """{pool: slots} of the `airflow pools set NAME SLOTS DESCRIPTION` commands."""
    return {args[2]: int(args[3]) for args in commands if args[:2] == ("pools", "set")}


def helm_migration_commands() -> list[tuple[str, ...]]:
    script = HELM_VALUES["migrateDatabaseJob"]["args"][-1]
    lines = [shlex.split(line) for line in script.splitlines() if line.startswith("airflow ")]
    return [tuple(words[1:]) for words in lines]


def test_init_migrates_then_creates_every_pool_with_its_slots():
    commands = [arguments for service, arguments in airflow_commands() if service == INIT_SERVICE]
    assert commands[0] == ("db", "migrate")
    wanted = {name: pool["slots"] for name, pool in SETTINGS.airflow_pools.items()}
    assert pools_set(commands) == wanted
    assert wanted[SETTINGS.warehouse_pool] == 1, "DuckDB has one writer"


def test_helm_migration_job_migrates_then_creates_every_pool_with_its_slots():
    commands = helm_migration_commands()
    assert commands[0] == ("db", "migrate")
    assert pools_set(commands) == {n: p["slots"] for n, p in SETTINGS.airflow_pools.items()}


@pytest.mark.parametrize("arguments", helm_migration_commands(), ids=lambda a: " ".join(a[:2]))
def test_helm_migration_command_exists(arguments, airflow_conf, capsys):
    from airflow.cli import cli_parser

    try:
        cli_parser.get_parser().parse_args(list(arguments))
    except SystemExit:
        pytest.fail(f"`airflow {' '.join(arguments)}` is not an Airflow 3 command")


# --- the DAGs against the stack -----------------------------------------------------------------


@pytest.fixture(scope="module")
def dags(airflow_conf) -> dict:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags


@pytest.fixture(scope="module")
def dag_tasks(dags) -> list:
    return [task for dag in dags.values() for task in dag.tasks]


def test_every_pool_the_dags_use_is_created_at_deploy(dag_tasks):
    used = {task.pool for task in dag_tasks} - {"default_pool"}  # made by `airflow db migrate`
    assert used, "no DAG task uses the warehouse pool"
    created = pools_set([args for service, args in airflow_commands() if service == INIT_SERVICE])
    assert used <= set(created), used - set(created)
    assert used <= set(pools_set(helm_migration_commands()))


def worker_queues(service: str, default_queue: str) -> set[str]:
    args = command_args(service)
    for flag in ("-q", "--queues"):
        if flag in args:
            return set(args[args.index(flag) + 1].split(","))
    return {default_queue}


def test_every_queue_the_dags_use_is_served_by_two_workers(dag_tasks, airflow_conf):
    # Intake batches spread only if more than one worker takes their queue.
    default_queue = airflow_conf.get("operators", "default_queue")
    for queue in {task.queue for task in dag_tasks}:
        serving = [w for w in celery_workers() if queue in worker_queues(w, default_queue)]
        assert len(serving) >= 2, f"queue {queue!r} is served by {serving}"


# --- collectwatch settings ----------------------------------------------------------------------


@pytest.mark.parametrize("variable", CONFIG.ENV_VARIABLES)
def test_every_setting_is_documented_in_env_example(variable):
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    if variable in PATH_SETTINGS:
        assert variable in text, f".env.example does not say where {variable} comes from"
    else:
        assert variable in env_example(), f".env.example does not document {variable}"


def test_env_example_values_are_the_settings_defaults(monkeypatch):
    for variable in CONFIG.ENV_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    defaults = CONFIG.Settings.from_env()
    documented = env_example()
    for variable in set(CONFIG.ENV_VARIABLES) - PATH_SETTINGS:
        monkeypatch.setenv(variable, documented[variable])
    assert CONFIG.Settings.from_env() == defaults


@pytest.mark.parametrize("service", airflow_services())
def test_compose_passes_every_setting_with_the_documented_default(service):
    env, documented = environment(service), env_example()
    for variable in sorted(set(CONFIG.ENV_VARIABLES) - PATH_SETTINGS):
        assert env.get(variable) == f"${{{variable}:-{documented[variable]}}}", variable


def test_helm_values_set_only_real_settings_and_the_telemetry_opt_outs():
    env = {item["name"]: str(item["value"]) for item in HELM_VALUES["env"]}
    settings = {name for name in env if name.startswith("COLLECTWATCH_")}
    assert settings <= set(CONFIG.ENV_VARIABLES), settings - set(CONFIG.ENV_VARIABLES)
    assert settings >= PATH_SETTINGS
    assert {k: v for k, v in CONFIG.NO_TELEMETRY_ENV.items() if env.get(k) != v} == {}


# --- database URLs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variable", ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "AIRFLOW__CELERY__RESULT_BACKEND"]
)
def test_database_urls_name_an_installed_driver(variable):
    # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which the image does not carry.
    from sqlalchemy.engine import make_url

    url = INTERPOLATION.sub("secret", environment(API_SERVER_SERVICE)[variable])
    parsed = make_url(url.removeprefix("db+"))
    assert parsed.drivername == "postgresql+psycopg2", url
    parsed.get_dialect().import_dbapi()


# --- the Helm values ----------------------------------------------------------------------------


def test_helm_values_run_the_image_built_from_the_dockerfile():
    airflow_version, _ = dockerfile_base()
    assert HELM_VALUES["defaultAirflowTag"] == HELM_VALUES["airflowVersion"] == airflow_version
    assert HELM_VALUES["defaultAirflowRepository"].endswith(AIRFLOW_IMAGE_NAME)
    assert HELM_VALUES["executor"] in ("CeleryExecutor", "KubernetesExecutor")


def test_helm_values_take_every_secret_from_a_kubernetes_secret():
    # The chart's own names: the value, and the Secret to take it from instead.
    for key, secret in (
        ("fernetKey", "fernetKeySecretName"),
        ("apiSecretKey", "apiSecretKeySecretName"),
        ("jwtSecret", "jwtSecretName"),
    ):
        assert not HELM_VALUES.get(key), f"{key} written in the values file"
        assert HELM_VALUES.get(secret), f"{key} has no Kubernetes Secret ({secret})"
    data = HELM_VALUES["data"]
    assert "metadataConnection" not in data and "brokerUrl" not in data
    assert data["metadataSecretName"] and data["brokerUrlSecretName"]
    plain = [item["name"] for item in HELM_VALUES["env"] if SECRET_NAME.search(item["name"])]
    assert plain == [], f"secrets among the plain env values: {plain}"


def test_helm_config_options_are_real_airflow_options(airflow_conf):
    for section, options in HELM_VALUES["config"].items():
        described = airflow_conf.configuration_description.get(section, {}).get("options", {})
        if section in PROVIDER_SECTIONS and not celery_provider_installed():
            continue
        unknown = set(options) - set(described)
        assert not unknown, f"[{section}] has no option {unknown}"


def test_helm_and_compose_agree_on_airflow_settings():
    compose_env = environment(API_SERVER_SERVICE)
    for section, options in HELM_VALUES["config"].items():
        for option, value in options.items():
            variable = f"AIRFLOW__{section.upper()}__{option.upper()}"
            if variable in compose_env and not INTERPOLATION.search(compose_env[variable]):
                assert compose_env[variable] == str(value), variable


# --- the operations guide -----------------------------------------------------------------------


def documented_airflow_commands() -> list[tuple[str, ...]]:
    """The arguments of every `airflow …` command docs/operations.md tells operators to run."""
    text = OPERATIONS_DOC.read_text(encoding="utf-8").replace("\\\n", " ")
    blocks = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)
    snippets = [line for block in blocks for line in block.splitlines()]
    snippets += re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.DOTALL))
    found = set()
    for snippet in snippets:
        words = shlex.split(snippet.split("#")[0]) if "airflow " in snippet else []
        # The command itself, or run in a container (`exec <service> airflow`, `-- airflow`);
        # not the database user of `psql -U airflow`.
        starts = [
            index
            for index, word in enumerate(words)
            if word == "airflow" and (index == 0 or words[index - 1] in {*SERVICES, "--"})
        ]
        found.update(tuple(words[index + 1 :]) for index in starts[:1])
    return sorted(found)


def test_the_guide_names_its_commands():
    commands = documented_airflow_commands()
    for needed in (("dags", "trigger"), ("pools", "set"), ("rotate-fernet-key",)):
        assert any(args[: len(needed)] == needed for args in commands), needed


@pytest.mark.parametrize("arguments", documented_airflow_commands(), ids=" ".join)
def test_the_guide_runs_only_real_airflow_commands(arguments, airflow_conf):
    from airflow.cli import cli_parser

    try:
        cli_parser.get_parser().parse_args(list(arguments))
    except SystemExit:
        pytest.fail(f"docs/operations.md: `airflow {' '.join(arguments)}` is no Airflow command")


def test_the_guide_names_the_pool_and_every_compose_service():
    text = OPERATIONS_DOC.read_text(encoding="utf-8")
    assert SETTINGS.warehouse_pool in text
    missing = [service for service in SERVICES if f"`{service}`" not in text]
    assert not missing, f"docs/operations.md does not mention {missing}"


def test_the_guide_triggers_real_dags_with_their_params(dags):
    triggers = [args for args in documented_airflow_commands() if args[:2] == ("dags", "trigger")]
    assert triggers
    for args in triggers:
        dag = dags[args[2]]
        conf = json.loads(args[args.index("--conf") + 1]) if "--conf" in args else {}
        assert set(conf) <= set(dag.params), f"{args}: {set(conf) - set(dag.params)}"
