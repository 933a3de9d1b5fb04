"""Every inbound type through the real chain: sandbox pushes the protocol's payloads, the probe skill reports."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import redis

from contract.envelope import TOPIC_CARD_CALLBACK
from sandbox.client import SandboxClient
from sandbox.dingtalk.messages import corp_id
from testkit.envelopes import card_callback
from testkit.personas import alice, bob
from testkit.stack import SANDBOX_CLIENT_ID, Stack
from workers.dingtalk.card_streamer import out_track_id_for
from workers.phrases import phrase

from .gateway_support import needs_listener, report, start_bot

pytestmark = [pytest.mark.slow, needs_listener]
SANDBOX_CORP = corp_id(SANDBOX_CLIENT_ID)  # callbacks come from the corp the card was sent in

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
PDF = b"%PDF-1.4\n" + b"0" * 3000
MP4 = b"\x00\x00\x00\x18ftypmp42" + b"v" * 2000
MAX_BYTES = 100_000

FILES = {
    "img-1": (PNG, "image/png", "cat.png"),
    "img-2": (PNG, "image/png", "dog.png"),
    "doc-1": (PDF, "application/pdf", "report.pdf"),
    "vid-1": (MP4, "video/mp4", "clip.mp4"),
    "huge-1": (b"z" * (MAX_BYTES + 1), "application/pdf", "huge.pdf"),
}


def check_text(r: dict, reply: dict) -> None:
    assert (r["text"], r["msgtype"], r["attachments"], r["params"]) == ("hello there", "text", [], {})


def check_group(r: dict, reply: dict) -> None:
    assert r["text"] == "ask @bob about it"
    assert r["params"]["mentions"] == [bob.staff_id] and r["params"]["bot_mentioned"] is True
    assert reply["body"]["at"]["atUserIds"] == [alice.staff_id]  # the asker is @-mentioned


def check_quote(r: dict, reply: dict) -> None:
    assert r["text"] == "and this?"
    assert r["params"]["quoted"]["text"] == "the plan" and r["params"]["quoted"]["msg_id"] == "msgQUOTED=="


def check_rich(r: dict, reply: dict) -> None:
    assert r["text"] == "what is this?"
    assert [(a["kind"], a["size"], a["readable"]) for a in r["attachments"]] == [("image", len(PNG), True)]


def check_rich_old(r: dict, reply: dict) -> None:
    assert r["text"] == "old style" and [a["kind"] for a in r["attachments"]] == ["image"]


def check_picture(r: dict, reply: dict) -> None:
    assert r["text"] == "" and r["msgtype"] == "picture"
    assert [(a["kind"], a["content_type"], a["readable"]) for a in r["attachments"]] == [("image", "image/png", True)]


def check_audio(r: dict, reply: dict) -> None:
    assert r["text"] == "明天下午三点开会" and r["attachments"] == []


def check_video(r: dict, reply: dict) -> None:
    assert [(a["kind"], a["size"], a["readable"]) for a in r["attachments"]] == [("video", len(MP4), True)]


def check_file(r: dict, reply: dict) -> None:
    assert [(a["kind"], a["name"], a["readable"]) for a in r["attachments"]] == [("file", "report.pdf", True)]


def check_link(r: dict, reply: dict) -> None:
    assert r["text"] == "https://docs.example/handbook"


# name → (message fields for POST /sandbox/messages, check of the probe report)
CASES: dict[str, tuple[dict[str, Any], Callable[[dict, dict], None]]] = {
    "text": ({"text": "hello there"}, check_text),
    "group text with mentions": ({"text": "ask @bob about it", "conversation_type": "2",
                                  "user_id": alice.staff_id, "at_users": [bob.staff_id]}, check_group),
    "quoted reply": ({"text": "and this?", "content": {"isReplyMsg": True, "repliedMsg": {
        "msgId": "msgQUOTED==", "msgType": "text", "senderId": "$:x", "content": {"text": "the plan"}}}}, check_quote),
    "richText": ({"msgtype": "richText", "content": {"richText": [
        {"text": "what is "}, {"type": "picture", "downloadCode": "img-1", "pictureDownloadCode": "img-1"},
        {"text": "this?"}]}}, check_rich),
    "richText richTextList": ({"msgtype": "richText", "content": {"richText": {"richTextList": [
        {"text": "old "}, {"downloadCode": "img-2"}, {"text": "style"}]}}}, check_rich_old),
    "picture": ({"msgtype": "picture", "content": {"downloadCode": "img-1", "pictureDownloadCode": "img-1"}},
                check_picture),
    "audio": ({"msgtype": "audio", "content": {"duration": "3000", "downloadCode": "aud-x",
                                               "recognition": "明天下午三点开会"}}, check_audio),
    "video": ({"msgtype": "video", "content": {"duration": "5", "downloadCode": "vid-1", "videoType": "mp4"}},
              check_video),
    "file": ({"msgtype": "file", "content": {"spaceId": "sp", "fileName": "report.pdf", "downloadCode": "doc-1",
                                             "fileId": "f1"}}, check_file),
    "interactiveCard": ({"msgtype": "interactiveCard",
                         "content": {"biz_custom_action_url": "https://docs.example/handbook"}}, check_link),
}

# name → (message fields, the exact polite answer)
POLITE = {
    "unknown type": ({"msgtype": "location", "content": {"latitude": "30.2", "longitude": "120.1"}},
                     phrase("unsupported", "zh-CN")),
    "file over the size limit": ({"msgtype": "file", "content": {"downloadCode": "huge-1", "fileName": "huge.pdf"}},
                                 phrase("too_large", "zh-CN", limit="98 KB")),
    "expired download code": ({"msgtype": "picture", "content": {"downloadCode": "nope"}},
                              phrase("unavailable", "zh-CN")),
}


@pytest.fixture
def bot(stack: Stack) -> SandboxClient:
    client = start_bot(stack, MEDIA_ROOT=str(stack.log_dir.parent / "media"), MEDIA_MAX_BYTES=str(MAX_BYTES))
    for code, (content, content_type, name) in FILES.items():
        client.add_file(code, content, content_type=content_type, filename=name)
    return client


def send_all(client: SandboxClient, cases: dict[str, tuple[dict[str, Any], Any]]) -> dict[str, dict]:
    """Inject every case, wait for one reply each; name → reply. Each case comes from a user of its
    own (u0, u1, …; more people than the personas) so no case waits in another's conversation."""
    sent = {name: client.send_message(**{"user_id": f"u{i}", **fields}) for i, (name, (fields, _)) in
            enumerate(cases.items())}
    replies: dict[str, dict] = {}
    deadline = time.monotonic() + 60
    while len(replies) < len(sent) and time.monotonic() < deadline:
        for name, ids in sent.items():
            found = client.replies(msg_id=ids["msgId"])
            if found:
                replies[name] = found[0]
        time.sleep(0.2)
    missing = sorted(set(sent) - set(replies))
    assert not missing, f"no reply for {missing}"
    time.sleep(1.0)  # a duplicate would show up by now
    for name, ids in sent.items():
        assert len(client.replies(msg_id=ids["msgId"])) == 1, f"{name}: not exactly one reply"
    return replies


def test_every_inbound_type_reaches_the_skill_converted(bot: SandboxClient):
    replies = send_all(bot, CASES)
    for name, (_, check) in CASES.items():
        try:
            check(report(replies[name]), replies[name])
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}\nreply: {replies[name]['text'][:500]}") from exc


def test_unreadable_messages_get_a_polite_answer_and_nothing_crashes(bot: SandboxClient, stack: Stack):
    replies = send_all(bot, {name: (fields, None) for name, (fields, _) in POLITE.items()})
    for name, (_, expected) in POLITE.items():
        assert replies[name]["text"] == expected, name
    assert all(p.alive() for p in stack.procs)
    assert "unsupported msgtype 'location'" in stack.logs("worker-pipeline")


def test_card_buttons_and_forms_come_back_to_the_skill_and_stop_sets_the_flag(bot: SandboxClient, stack: Stack):
    asked = alice.send(bot, "card please")
    bot.wait_for_replies(1, timeout=30, msg_id=None, via="card")
    out_track_id = out_track_id_for(f"{asked['msgId']}:0")
    assert bot.card(out_track_id)["cardTemplateId"] == "tpl.probe-form"

    bot.push(TOPIC_CARD_CALLBACK, card_callback(out_track_id, action_ids=["submit"],
                                                params={"query": "leave policy"}, user_id=alice.staff_id,
                                                corp_id=SANDBOX_CORP))
    bot.push(TOPIC_CARD_CALLBACK, card_callback(out_track_id, action_ids=["go"], user_id=alice.staff_id,
                                                corp_id=SANDBOX_CORP))
    answers = bot.wait_for_replies(2, timeout=30, msg_id=asked["msgId"])  # on the card message's webhook
    reports = sorted((report(a) for a in answers), key=lambda r: r["params"]["type"])
    button, form = reports
    assert button["params"]["type"] == "button" and button["params"]["action"] == "probe.go"
    assert button["params"]["params"] == {"x": "1"} and button["msgtype"] == "card_callback"
    assert form["params"]["fields"] == {"query": "leave policy"} and form["text"] == "leave policy"

    # Stop on a card nobody owns (a guessed outTrackId) is refused; on the asker's own card it counts.
    bot.push(TOPIC_CARD_CALLBACK, card_callback("streaming-card-1", action_ids=["stop"], user_id=alice.staff_id,
                                                corp_id=SANDBOX_CORP))
    bot.push(TOPIC_CARD_CALLBACK, card_callback(out_track_id, action_ids=["stop"], user_id=alice.staff_id,
                                                corp_id=SANDBOX_CORP))
    flags = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    deadline = time.monotonic() + 20
    while not flags.exists(f"{stack.redis_prefix}cancel:{out_track_id}") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert flags.exists(f"{stack.redis_prefix}cancel:{out_track_id}")
    assert not flags.exists(f"{stack.redis_prefix}cancel:streaming-card-1")
    time.sleep(1.0)
    assert len(bot.replies(msg_id=asked["msgId"])) == 2  # Stop answers nothing


def test_a_media_only_message_lands_under_the_media_root(bot: SandboxClient, stack: Stack):
    sent = alice.send(bot, msgtype="picture", content={"downloadCode": "img-1"})
    [reply] = bot.wait_for_replies(1, timeout=30, msg_id=sent["msgId"])
    assert report(reply)["attachments"][0]["readable"]
    stored = list((stack.log_dir.parent / "media").rglob("*.png"))
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in stored] == [hashlib.sha256(PNG).hexdigest()]
