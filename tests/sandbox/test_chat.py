"""The newcomer's ways in: the chat page, the terminal chat and `python -m sandbox`."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.chat import TerminalChat
from sandbox.client import SandboxClient, http_client
from tests.sandbox.stream import HTTP, EchoBot

ROOT = Path(__file__).resolve().parents[2]


def test_the_chat_page_is_served_and_needs_nothing_from_the_internet(server):
    answer = HTTP.get(server.base_url + "/")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/html")
    page = answer.text
    assert "/sandbox/messages" in page and "/sandbox/replies" in page and "/sandbox/cards/" in page
    assert not re.search(r'<(script|link|img)[^>]+(src|href)="(https?:)?//', page)


def test_the_terminal_chat_sends_as_the_demo_user_and_prints_the_reply(server, control):
    bot = EchoBot(server.base_url)
    try:
        out = io.StringIO()
        chat = TerminalChat(SandboxClient(server.base_url), "demo", group=False, out=out)
        chat.say("hello there")
        control.wait_for_replies(1, timeout=5)
        chat.poll_once()
        assert "bot> echo: hello there" in out.getvalue()
        push = control.pushes()[0]
        assert push["acked"] is True
    finally:
        bot.stop()


def test_the_terminal_chat_prints_a_streamed_card_once_it_is_finished(server, control):
    out = io.StringIO()
    chat = TerminalChat(SandboxClient(server.base_url), "demo", group=True, out=out)
    sent = chat.say("story please")
    with http_client(base_url=server.base_url, timeout=5) as api:
        token = api.post("/v1.0/oauth2/accessToken", json={"appKey": "sandbox-client-id", "appSecret": "sandbox-client-secret"}).json()["accessToken"]
        api.headers["x-acs-dingtalk-access-token"] = token
        api.post("/v1.0/card/instances/createAndDeliver", json={
            "cardTemplateId": "ai", "outTrackId": "c1", "cardData": {"cardParamMap": {}},
            "openSpaceId": f"dtv1.card//IM_GROUP.{sent['conversationId']}",
            "imGroupOpenDeliverModel": {"robotCode": "sandbox-client-id"}})
        chat.poll_once()
        assert "bot>" not in out.getvalue()  # still streaming
        api.put("/v1.0/card/streaming", json={"outTrackId": "c1", "guid": "g", "key": "content",
                                              "content": "the end", "isFull": True, "isFinalize": True})
    chat.poll_once()
    assert "bot> the end" in out.getvalue()


@pytest.mark.slow
def test_python_m_sandbox_announces_its_url_and_serves(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "--port", "0", "--ping-interval", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.fullmatch(r"sandbox listening on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        state = SandboxClient(match.group(1)).state()
        assert state["connections"] == 0
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
