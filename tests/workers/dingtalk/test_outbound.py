"""Outbound bodies: text, markdown, action cards for the webhook and the OpenAPI, @ the asker in groups."""

from __future__ import annotations

import json
from urllib.parse import unquote

import pytest

from sandbox.dingtalk.bodies import validate_msg_param, validate_webhook_body
from skills.api import Reply
from testkit.personas import alice
from workers.dingtalk.outbound import TAP_TO_SEND, action_buttons, openapi_message, webhook_body

CONFIRM = {"title": "确认", "action": "schedule.confirm", "params": {"key": "k1"}}
CANCEL = {"title": "取消", "action": "schedule.dismiss", "params": {}}
LINK = {"title": "Open", "url": "https://example.com/doc"}

REPLIES = [
    Reply(text="plain"),
    Reply(text="# Title\n\n**bold**", kind="markdown"),
    Reply(text="Confirm?", kind="action_card", title="New reminder", buttons=[CONFIRM]),
    Reply(text="Confirm?", kind="action_card", title="New reminder", buttons=[CONFIRM, CANCEL]),
    Reply(text="Pick", kind="action_card", buttons=[CONFIRM, CANCEL, LINK]),
    Reply(text="Too many", kind="action_card", buttons=[{"title": f"b{i}", "action": "x"} for i in range(7)]),
    Reply(text="no buttons left", kind="action_card"),
]


@pytest.mark.parametrize("reply", REPLIES, ids=lambda r: f"{r.kind}-{len(r.buttons)}")
def test_every_body_is_one_dingtalk_accepts(reply):
    assert validate_webhook_body(webhook_body(reply)) is None
    assert validate_webhook_body(webhook_body(reply, alice.staff_id)) is None
    assert validate_msg_param(*openapi_message(reply)) is None


def test_an_action_card_with_two_buttons_uses_btns_and_tap_to_send_links():
    body = webhook_body(REPLIES[3])
    card = body["actionCard"]
    assert body["msgtype"] == "actionCard" and card["title"] == "New reminder"
    assert [b["title"] for b in card["btns"]] == ["确认", "取消"]
    assert card["btns"][0]["actionURL"].startswith(TAP_TO_SEND)
    assert unquote(card["btns"][0]["actionURL"][len(TAP_TO_SEND):]) == "确认"


def test_a_single_button_card_uses_single_title_and_url():
    card = webhook_body(REPLIES[2])["actionCard"]
    assert card["singleTitle"] == "确认" and "btns" not in card


def test_the_openapi_variant_matches_the_number_of_buttons():
    assert openapi_message(REPLIES[2])[0] == "sampleActionCard"
    key, param = openapi_message(REPLIES[4])
    assert key == "sampleActionCard3"
    assert json.loads(param)["actionURL3"] == "https://example.com/doc"
    assert openapi_message(REPLIES[5])[0] == "sampleActionCard5"  # DingTalk's maximum


def test_a_card_without_buttons_goes_as_markdown():
    assert webhook_body(REPLIES[6])["msgtype"] == "markdown"
    assert openapi_message(REPLIES[6])[0] == "sampleMarkdown"


def test_in_groups_markdown_names_the_asker_so_the_mention_shows():
    body = webhook_body(Reply(text="# Answer\n\ntext", kind="markdown"), alice.staff_id)
    assert body["at"]["atUserIds"] == [alice.staff_id]
    assert body["markdown"]["text"].startswith("# Answer")  # the heading still renders
    assert body["markdown"]["text"].endswith("@alice")
    card = webhook_body(REPLIES[3], alice.staff_id)
    assert "@alice" in card["actionCard"]["text"]


def test_text_replies_mention_through_the_at_list_only():
    body = webhook_body(Reply(text="hi"), alice.staff_id)
    assert body["text"]["content"] == "hi" and body["at"]["atUserIds"] == [alice.staff_id]


def test_only_skill_buttons_need_remembering():
    assert action_buttons(REPLIES[4]) == [CONFIRM, CANCEL]
    assert action_buttons(Reply(text="x", kind="markdown", buttons=[CONFIRM])) == []
