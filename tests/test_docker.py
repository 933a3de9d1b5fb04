"""The compose file is valid and runs every role of the Procfile from the one image."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
ENTRYPOINT = (ROOT / "docker" / "entrypoint.sh").read_text()
# Local stand-ins for DingTalk and the LLM: `make run` starts them, production never does.
DEV_ONLY_ROLES = {"sandbox", "llm-stub"}
ROLES = set(re.findall(r"^\s+([a-z-]+)\)\s", ENTRYPOINT, re.M))


def _app_services():
    return {
        name: svc for name, svc in COMPOSE["services"].items() if svc.get("image") == "dtbot:latest"
    }


def test_every_procfile_role_runs_in_compose():
    procfile_roles = {
        line.split(":", 1)[0]
        for line in (ROOT / "Procfile").read_text().splitlines()
        if line.strip() and line.split(":", 1)[0] not in DEV_ONLY_ROLES
    }
    assert procfile_roles <= set(_app_services())


def test_every_app_service_uses_a_role_the_entrypoint_knows():
    for name, svc in _app_services().items():
        assert svc["command"][0] in ROLES, f"{name} runs unknown role {svc['command']}"


def test_dependencies_point_at_declared_services():
    names = set(COMPOSE["services"])
    for name, svc in COMPOSE["services"].items():
        deps = svc.get("depends_on", {})
        assert set(deps) <= names, f"{name} depends on {set(deps) - names}"


def test_production_postgres_image_has_pgvector():
    assert "pgvector" in COMPOSE["services"]["postgres"]["image"]


def test_app_services_share_one_image_and_environment():
    envs = {svc["environment"]["CELERY_BROKER_URL"] for svc in _app_services().values()}
    assert len(envs) == 1
    assert (ROOT / "docker" / "Dockerfile").read_text().count("FROM ") == 1
