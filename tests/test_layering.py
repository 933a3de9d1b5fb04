"""Imports go one way, checked on the source: import statements anywhere (functions too), dotted paths
in strings ("webapp.x:Y", importlib.import_module(...), settings strings), and Celery's private API.

| package   | may not import                                                              |
|-----------|-----------------------------------------------------------------------------|
| contract/ | anything of ours                                                            |
| conf/     | anything of ours, django, celery                                            |
| ingest/   | django, webapp, skills, workers; private names of celery/kombu (`_chain`)    |
| skills/   | django, webapp, celery, kombu, workers, ingest, conf (knobs come in a Config) |
| webapp/   | workers, ingest                                                             |
| workers/  | webapp, except webapp.actions.*                                             |
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OURS = tuple(sorted(p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()))


@dataclass(frozen=True)
class Rule:
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()  # exceptions inside a forbidden package, e.g. webapp.actions
    private_of: tuple[str, ...] = ()  # libraries whose underscore names may not be used


def _others(package: str, *extra: str) -> tuple[str, ...]:
    return tuple(p for p in OURS if p != package) + extra


RULES: dict[str, Rule] = {
    "contract": Rule(_others("contract")),
    "conf": Rule(_others("conf", "django", "celery")),
    "ingest": Rule(("django", "webapp", "skills", "workers"), private_of=("celery", "kombu")),
    "skills": Rule(("django", "webapp", "celery", "kombu", "workers", "ingest", "conf")),
    "webapp": Rule(("workers", "ingest")),
    "workers": Rule(("webapp",), allowed=("webapp.actions",)),
}

# Known violations being removed elsewhere, each with who removes it. An entry that no longer
# matches fails the test too: delete it then.
PENDING: dict[tuple[str, str], str] = {}

_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+(?::[A-Za-z_][\w.]*)?")
_IMPORT_CALLS = {"import_module", "__import__", "import_string"}


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the docstring nodes (documentation, not imports)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def _leading_text(node: ast.AST) -> str | None:
    """The constant start of a string built at run time: f"workers.{x}", "workers." + x."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values:
        return _leading_text(node.values[0])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _leading_text(node.left)
    return None


def referenced_modules(source: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of everything the source imports or names as a module path; string paths
    only when they name one of our packages (logger names like "celery.app.trace" are not imports)."""
    tree = ast.parse(source)
    aliases: dict[str, str] = {}
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                bound = alias.name if alias.asname else alias.name.split(".")[0]  # `import a.b` binds a
                aliases[alias.asname or bound] = bound
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:
                aliases[alias.asname or alias.name] = f"{node.module}.{alias.name}"
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            text = _leading_text(node.args[0])
            if name in _IMPORT_CALLS and text:
                yield node.lineno, text.split(":")[0].rstrip(".")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if _DOTTED.fullmatch(node.value.strip()) and _under(node.value.strip().split(".")[0], OURS):
                yield node.lineno, node.value.strip().split(":")[0]
        elif isinstance(node, (ast.JoinedStr, ast.BinOp)):
            text = _leading_text(node)
            if text and re.fullmatch(r"(?:[A-Za-z_]\w*\.)+", text) and _under(text.split(".")[0], OURS):
                yield node.lineno, text.rstrip(".")
        if isinstance(node, ast.Attribute):
            parts: list[str] = []
            current: ast.AST = node
            while isinstance(current, ast.Attribute):
                parts.insert(0, current.attr)
                current = current.value
            if isinstance(current, ast.Name) and current.id in aliases:
                yield node.lineno, ".".join([aliases[current.id], *parts])


def violations(source: str, rule: Rule) -> list[str]:
    """One message per offending line and name (`from a.b import c` reports a.b, not also a.b.c)."""
    found: dict[int, list[str]] = {}
    for line, name in sorted(referenced_modules(source), key=lambda item: (item[0], len(item[1]))):
        if _under(name, rule.forbidden) and not _under(name, rule.allowed):
            message = name
        elif _under(name, rule.private_of) and any(
                part.startswith("_") and not part.startswith("__") for part in name.split(".")[1:]):
            message = f"{name} (private API)"
        else:
            continue
        if not any(_under(name, (seen.split(" ")[0],)) for seen in found.get(line, [])):
            found.setdefault(line, []).append(message)
    return [f"line {line}: {message}" for line, messages in sorted(found.items()) for message in messages]


def _pending(path: str, message: str) -> bool:
    return any(path == p and f": {name}" in message for (p, name) in PENDING)


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_stay_on_their_side(package):
    offenders, pending_seen = [], set()
    files = sorted((ROOT / package).rglob("*.py"))
    assert files, f"{package} has no modules"
    for path in files:
        rel = str(path.relative_to(ROOT))
        for message in violations(path.read_text(encoding="utf-8"), RULES[package]):
            if _pending(rel, message):
                pending_seen.add(rel)
            else:
                offenders.append(f"{rel} {message}")
    assert not offenders, "\n".join(offenders)
    stale = [key for key, why in PENDING.items() if key[0].startswith(package + "/") and key[0] not in pending_seen]
    assert not stale, f"remove these PENDING entries, the code no longer has them: {stale}"


# --- the checker itself: every rule catches its own failing example -----------------------------

FAILING_EXAMPLES = {
    "contract": ["import conf.settings", "from workers.pipeline import chain_from"],
    "conf": ["from contract.pipeline import STAGES", "import django", "from celery import Celery"],
    "ingest": [
        "import django.conf",
        "from workers.celery import app",
        "from celery.canvas import _chain",
        "import celery.canvas\nrun = celery.canvas._chain.run",
        "from celery import canvas\nrun = canvas._chain",
        "import skills.registry",
    ],
    "skills": [
        'STORE = "webapp.actions.reminder_store:DjangoReminderStore"',
        "import kombu",
        "from ingest.publish import PipelineMessages",
        "def build():\n    from django.db import connection\n    return connection",
    ],
    "webapp": [
        "from workers.replay import replay",
        "def late():\n    from workers.state import session\n    return session",
        'import importlib\nmod = importlib.import_module("workers.state.session")',
        'from importlib import import_module\nmod = import_module(f"workers.state.{name}")',
        'mod = __import__("workers")',
        'CELERY_IMPORTS = ("workers.tasks",)',
        'SETUP = "workers.resources:setup_django"',
        'prefix = "ingest." + name',
    ],
    "workers": [
        "from webapp.models import DeadLetter",
        "from webapp import models",
        "import webapp.crypto",
        'os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")',
        "def read():\n    from webapp.knobs import KNOBS\n    return KNOBS",
    ],
}

PASSING_EXAMPLES = {
    "workers": ["from webapp.actions.records import do_mark_status", "from webapp.actions import versions",
                "import webapp.actions.routing"],
    "webapp": ['"""Docstrings may mention workers.state.session."""', 'log.info("workers pick it up")',
               'QUIET = {"celery.app.trace": "WARNING"}',
               'TASK = "dtbot.pipeline.deliver"', "from contract.keys import claim"],
    "ingest": ["from celery import Celery", 'QUIET = {"celery.app.trace": "WARNING"}',
               "from kombu.entity import PERSISTENT_DELIVERY_MODE", "x = celery.__version__"],
    "skills": ['HELP = "e.g. workers.resources:setup_django (run first)"'],
}


@pytest.mark.parametrize(("package", "source"), [(p, s) for p, examples in FAILING_EXAMPLES.items() for s in examples])
def test_the_checker_catches_each_rules_failing_example(package, source):
    assert violations(source, RULES[package]), f"{package} should refuse: {source!r}"


@pytest.mark.parametrize(("package", "source"), [(p, s) for p, examples in PASSING_EXAMPLES.items() for s in examples])
def test_the_checker_lets_allowed_imports_and_prose_through(package, source):
    assert violations(source, RULES[package]) == []


def test_every_rule_has_a_failing_example():
    assert set(FAILING_EXAMPLES) == set(RULES)
