"""Every environment variable the code reads is listed in .env.example (with a default)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("conf", "ingest", "workers", "skills", "webapp", "sandbox")
# env.str("NAME", ...), env.int(...), os.environ["NAME"], os.environ.get("NAME"), os.getenv("NAME")
READS = re.compile(r'(?:env\.\w+|os\.environ\.get|os\.environ\.setdefault|os\.getenv)\(\s*"([A-Z][A-Z0-9_]+)"'
                   r'|os\.environ\[\s*"([A-Z][A-Z0-9_]+)"\s*\]')
# Set by the platform or by Django/Celery themselves, not by an operator.
NOT_OPERATOR_SETTINGS = {"DJANGO_SETTINGS_MODULE", "WORKER_READY_FILE", "HOME", "PATH"}


def names_read() -> set[str]:
    found: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for match in READS.finditer(path.read_text(encoding="utf-8")):
                found.add(match.group(1) or match.group(2))
    return found - NOT_OPERATOR_SETTINGS


def names_listed() -> set[str]:
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    return set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, flags=re.M))


def test_the_scan_finds_the_settings_module_reads():
    assert {"DATABASE_URL", "CELERY_BROKER_URL", "DINGTALK_CLIENT_ID", "MEDIA_RETENTION_DAYS"} <= names_read()


def test_every_variable_the_code_reads_is_in_env_example():
    missing = sorted(names_read() - names_listed())
    assert not missing, f"add these to .env.example with a safe default: {missing}"
