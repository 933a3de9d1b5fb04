"""The arguments every per-person data command shares (export_user, erase_user)."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import CommandParser


def add_subject_arguments(parser: CommandParser, verb: str) -> None:
    """The person (user id, tenant) and who acts, for the audit row."""
    parser.add_argument("user_id", help="DingTalk staff id (or sender id for people outside the org)")
    parser.add_argument("--tenant", default="", help="tenant (corp) id; default: every tenant")
    parser.add_argument("--actor", default="", help=f"who runs the {verb} (audit); default: OS user")


def actor_of(options: dict[str, Any]) -> str:
    return options["actor"] or f"manage.py:{getpass.getuser()}"
