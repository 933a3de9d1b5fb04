"""Bad input gets a clear log line or a polite reply; nothing crashes and nothing else is lost."""

from __future__ import annotations

import json

import pytest

from testkit import traffic
from testkit.ledger import Ledger
from testkit.stack import Stack
from tests.support.stack_fixtures import sandbox_control

pytestmark = pytest.mark.slow


def test_bad_frames_and_odd_texts_do_not_disturb_other_messages(stack: Stack):
    stack.start_sandbox(redeliver_after=5, ping_interval=2)
    stack.start_pipeline_worker(concurrency=8)
    stack.start_skills_worker(concurrency=2)
    listener = stack.start_listener()
    client = sandbox_control(stack)
    client.wait_for_state(connections=1, timeout=30)
    ledger = Ledger()
    traffic.send(client, ledger, 40)

    client.push_raw("{this is not json")
    client.push_raw(json.dumps({"type": "CALLBACK", "headers": {"topic": "/v1.0/im/bot/messages/get"}, "data": "{}"}))
    # The sandbox only pushes subscribed topics, so the unknown one goes out as a raw frame.
    client.push_raw(json.dumps({"specVersion": "1.0", "type": "CALLBACK", "data": "{}",
                                "headers": {"topic": "/v1.0/unknown/topic", "messageId": "unknown-1"}}))
    client.push("/v1.0/im/bot/messages/get", {"msgtype": "text", "text": {"content": "no msgId"}})
    empty = client.send_message("", user_id="empty-user")
    huge = client.send_message("长" * 200_000, user_id="huge-user")

    traffic.send(client, ledger, 40, start=40)
    odd_ids = {empty["msgId"], huge["msgId"]}
    replies = traffic.wait_for_all(client, ledger, timeout=90)
    verdict = ledger.check([r for r in replies if r.get("msg_id") not in odd_ids])
    assert verdict.exactly_once, verdict.summary()

    empty_reply = client.wait_for_replies(1, timeout=30, msg_id=empty["msgId"])
    assert len(empty_reply) == 1 and empty_reply[0]["text"].strip(), empty_reply
    huge_reply = client.wait_for_replies(1, timeout=30, msg_id=huge["msgId"])
    # The echo of a 200,000-character message is cut to the input limit, with a note.
    assert 1 <= len(huge_reply) <= 5, [len(r["text"]) for r in huge_reply]
    assert sum(len(r["text"]) for r in huge_reply) < 20_000

    assert listener.alive()
    log = listener.log_text()
    for expected in ("not JSON", "messageId", "topic", "msgId"):
        assert expected in log, f"no log line mentioning {expected!r}"
    codes = {a["messageId"]: a["code"] for a in client.acks() if a["code"] != 200}
    assert codes.get("unknown-1") == 404, codes
    assert 400 in codes.values(), codes
