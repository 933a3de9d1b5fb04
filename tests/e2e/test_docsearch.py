"""Document search end to end: ingest by command, ask through the chain, cited answers, departments enforced."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.dingtalk.messages import corp_id
from sandbox.llm import STUB_MARK
from testkit.personas import Persona, alice, bob
from testkit.stack import ROOT, SANDBOX_CLIENT_ID, Stack
from tests.support.skill_stack import run_bot, start_skills
from webapp.models import UserProfile

pytestmark = pytest.mark.slow

HANDBOOK = """# Employee handbook

## Annual leave

Every employee gets 15 days of paid annual leave per year. Unused annual leave can be carried over
until March 31 of the following year.

## Working hours

Core working hours are 10:00 to 16:00; the rest of the day is flexible.
"""

BONUS = """# Finance bonus policy

## Year-end bonus

The year-end bonus pool for the finance department is three months of salary, paid in January.
Individual shares depend on the annual performance review.
"""

BONUS_QUESTION = "How big is the year-end bonus pool?"
LEAVE_QUESTION = "How many days of annual leave do I get?"
SECRET = "three months"


def ingest(bot: Stack, path: Path, collection: str, *access: str) -> None:
    """`python manage.py ingest_documents` as an operator runs it."""
    out = subprocess.run(
        [sys.executable, "manage.py", "ingest_documents", str(path), "--collection", collection, *access],
        cwd=ROOT, env=bot.env(), capture_output=True, text=True, timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ready" in out.stdout, out.stdout


def ask(client, user: Persona, text: str) -> str:
    message = user.send(client, text)
    [reply] = client.wait_for_replies(1, timeout=60, msg_id=message["msgId"])
    return reply["text"]


def prompt_lines(request: dict) -> list[str]:
    return [line.strip() for m in request["messages"] for line in m["content"].splitlines() if line.strip()]


def test_answers_cite_documents_and_never_show_a_department_only_collection_to_outsiders(
        stack: Stack, pgvector_url: str, stub, tmp_path: Path):
    handbook, bonus = tmp_path / "Employee handbook.md", tmp_path / "Finance bonus policy.md"
    handbook.write_text(HANDBOOK, encoding="utf-8")
    bonus.write_text(BONUS, encoding="utf-8")
    tenant = corp_id(SANDBOX_CLIENT_ID)
    UserProfile.objects.create(tenant_id=tenant, staff_id=alice.staff_id, department="1001")  # finance
    UserProfile.objects.create(tenant_id=tenant, staff_id=bob.staff_id, department="2002")  # sales

    client = run_bot(stack, VECTOR_DATABASE_URL=pgvector_url, LLM_BASE_URL="")
    ingest(stack, handbook, "handbook", "--public")
    ingest(stack, bonus, "finance", "--departments", "1001")

    # Without an LLM: the best passages, each under its citation.
    answer = ask(client, alice, BONUS_QUESTION)
    assert "《Finance bonus policy》 › Finance bonus policy > Year-end bonus" in answer  # title › section
    assert SECRET in answer
    leave = ask(client, alice, LEAVE_QUESTION)
    assert "《Employee handbook》" in leave and "15 days" in leave
    outsider = ask(client, bob, BONUS_QUESTION)
    assert SECRET not in outsider and "Finance bonus policy" not in outsider
    assert "15 days" in ask(client, bob, LEAVE_QUESTION)

    # With the stub LLM: the answer is written from the retrieved chunks only, sources appended.
    [skills] = [p for p in stack.procs if p.role == "worker-skills" and p.alive()]
    stack.kill(skills)
    start_skills(stack, LLM_BASE_URL=stub.base_url, LLM_MODEL="stub-llm")
    written = ask(client, alice, BONUS_QUESTION)
    assert written.startswith(STUB_MARK)
    assert "**Sources**" in written and "《Finance bonus policy》" in written
    alices = len(stub.state.requests)
    outsider = ask(client, bob, BONUS_QUESTION)
    assert SECRET not in outsider and "Finance bonus policy" not in outsider
    assert not any(SECRET in line for r in stub.state.requests[alices:] for line in prompt_lines(r))

    documents = {line.strip() for text in (HANDBOOK, BONUS) for line in text.splitlines() if line.strip()}
    asked = [r for r in stub.state.requests if not r["stream"]]
    assert asked, "the docsearch skill did not ask the LLM"
    for request in asked:
        system, user = request["messages"]
        assert system["role"] == "system" and user["role"] == "user"
        for line in prompt_lines({"messages": [user]}):
            allowed = (
                line in ("Excerpts:", f"Question: {BONUS_QUESTION}")
                or re.fullmatch(r"\[\d+\] 《[^》]+》( › .+)?", line)
                or any(line in doc_line or doc_line in line for doc_line in documents)
            )
            assert allowed, f"not from a retrieved chunk: {line!r}"
    assert any(SECRET in line for line in prompt_lines(asked[0]))  # alice's prompt held her chunk
