"""Deliver against the DingTalk sandbox: webhook, 300001 fallback, token cache, reply-once."""

from __future__ import annotations

import socket
import time

import pytest

from skills.api import Reply
from testkit.envelopes import envelope_from_push
from testkit.personas import Persona, alice, bob, mallory
from webapp.models import MessageRecord, MessageStatus
from workers.errors import PoisonMessage, Throttled, TransientError
from workers.payload import StagePayload
from workers.stages.deliver import choose_channel, deliver
from workers.stages.postprocess import postprocess
from workers.stages.preprocess import preprocess
from workers.stages.run_skill import run_skill
from workers.state import reply_state

pytestmark = pytest.mark.django_db


def ready_to_deliver(server, client, text="hi", who: Persona = alice, **message) -> StagePayload:
    """Inject a message from `who` into the sandbox and run the first three stages on its push."""
    injected = who.send(client, text, **message)
    env = envelope_from_push(server, injected["messageId"])
    return postprocess(run_skill(preprocess(env, run_id=f"run-{injected['msgId']}")))


def test_it_replies_over_the_session_webhook(dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "hello")
    assert deliver(payload)["result"] == "sent"
    [reply] = sandbox_client.replies()
    assert reply["via"] == "webhook"
    assert reply["msg_id"] == payload.msg_id
    assert reply["text"] == "You said: hello"
    record = MessageRecord.objects.get(msg_id=payload.msg_id)
    assert record.status == MessageStatus.REPLIED
    assert record.channel == "webhook"
    assert record.replied_at >= record.postprocessed_at
    # The stamps the earlier stages carried land with the status, in deliver's one write.
    assert record.received_at <= record.preprocessed_at <= record.skill_done_at <= record.postprocessed_at
    assert (record.skill, record.user.staff_id) == ("echo", alice.staff_id)


def test_in_a_group_the_reply_mentions_the_asker(dingtalk_sandbox, sandbox_client,
                                                 sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "hi all",
                               conversation_type="2", who=bob)
    deliver(payload)
    [reply] = sandbox_client.replies()
    assert reply["body"]["at"]["atUserIds"] == [bob.staff_id]
    assert reply["conversation_type"] == "2"


def test_markdown_replies_use_the_markdown_body(dingtalk_sandbox, sandbox_client,
                                                sandbox_settings):
    deliver(ready_to_deliver(dingtalk_sandbox, sandbox_client, "帮助"))
    [reply] = sandbox_client.replies()
    assert reply["msgtype"] == "markdown"
    assert "**echo**" in reply["body"]["markdown"]["text"]


def test_an_expired_webhook_falls_back_to_batch_send_in_private_chats(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "late")
    sandbox_client.fault("expire_webhooks")  # the webhook now answers errcode 300001
    assert deliver(payload)["channel"] == "openapi"
    [reply] = sandbox_client.replies()
    assert reply["via"] == "batchSend"
    assert reply["user_ids"] == [alice.staff_id]
    assert reply["msg_key"] == "sampleText"
    assert reply["param"] == {"content": "You said: late"}
    assert MessageRecord.objects.get(msg_id=payload.msg_id).channel == "openapi"


def test_an_expired_webhook_falls_back_to_group_send_in_groups(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "help",
                               conversation_type="2")
    sandbox_client.fault("expire_webhooks")
    deliver(payload)
    [reply] = sandbox_client.replies()
    assert reply["via"] == "groupSend"
    assert reply["conversation_id"] == payload.delivery["conversation_id"]
    assert reply["msg_key"] == "sampleMarkdown"


def test_a_webhook_past_its_expiry_time_is_not_even_tried(dingtalk_sandbox, sandbox_client,
                                                          sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "hi")
    payload.delivery["session_webhook_expires_at"] = int(time.time() * 1000) - 1
    deliver(payload)
    assert [r["via"] for r in sandbox_client.replies()] == ["batchSend"]


def test_channel_choice_follows_the_webhook_expiry():
    now = 1_700_000_000_000
    hook = {"session_webhook": "http://x/robot/sendBySession?session=s"}
    assert choose_channel({**hook, "session_webhook_expires_at": now + 60_000}, now) == "webhook"
    assert choose_channel({**hook, "session_webhook_expires_at": now + 1_000}, now) == "openapi"
    assert choose_channel({**hook, "session_webhook_expires_at": 0}, now) == "webhook"
    assert choose_channel({"session_webhook": "", "session_webhook_expires_at": 0}, now) == \
        "openapi"


def test_the_access_token_is_cached_in_redis_and_reused(dingtalk_sandbox, sandbox_client,
                                                        sandbox_settings, redis_conn, resources):
    before = sandbox_client.state()["token_fetches"]
    for who in (alice, bob, alice):
        payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "x", who=who)
        payload.delivery["session_webhook_expires_at"] = 1
        deliver(payload)
    assert len(sandbox_client.replies(via="batchSend")) == 3
    assert sandbox_client.state()["token_fetches"] - before == 1
    assert redis_conn.get(resources.current.key("dingtalk:token:sandbox-client-id"))


def test_a_refused_token_is_refreshed_once_and_the_send_succeeds(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    first = ready_to_deliver(dingtalk_sandbox, sandbox_client, "one")
    first.delivery["session_webhook_expires_at"] = 1
    deliver(first)
    before = sandbox_client.state()["token_fetches"]
    sandbox_client.fault("expire_tokens")  # the cached token is now refused
    second = ready_to_deliver(dingtalk_sandbox, sandbox_client, "two", who=bob)
    second.delivery["session_webhook_expires_at"] = 1
    deliver(second)
    assert [r["text"] for r in sandbox_client.replies(via="batchSend")] == [
        "You said: one", "You said: two"]
    assert sandbox_client.state()["token_fetches"] - before == 1


def test_wrong_credentials_are_poison_and_nothing_is_marked_sent(
        dingtalk_sandbox, sandbox_client, sandbox_settings, resources):

    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "x")
    payload.delivery["session_webhook_expires_at"] = 1
    resources.set(DINGTALK_CLIENT_SECRET="wrong")
    with pytest.raises(PoisonMessage, match="DINGTALK_CLIENT_SECRET"):
        deliver(payload)
    assert sandbox_client.replies() == []
    # The token is fetched before the part is marked in flight: nothing was marked, a replay may send it.
    assert reply_state.get(payload.msg_id) == ""
    assert MessageRecord.objects.get(msg_id=payload.msg_id).reply_progress == ""


def test_a_reply_is_sent_at_most_once_per_msg_id(dingtalk_sandbox, sandbox_client,
                                                 sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "once")
    deliver(payload)
    assert deliver(payload)["result"] == "already_sent"  # a retried deliver task
    assert len(sandbox_client.replies()) == 1


def test_a_retry_after_a_crash_mid_send_does_not_resend(dingtalk_sandbox, sandbox_client,
                                                        sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "crash")
    # The previous attempt died between marking "sending" and marking "sent".
    assert reply_state.swap(payload.msg_id, "", reply_state.sending(0))
    assert deliver(payload)["result"] == "delivery_unknown"
    assert sandbox_client.replies() == []
    record = MessageRecord.objects.get(msg_id=payload.msg_id)
    assert record.status == MessageStatus.DELIVERY_UNKNOWN


def test_a_rate_limited_send_is_not_sent_and_the_stage_retry_sends_it_once(
        dingtalk_sandbox, sandbox_client, sandbox_settings, resources):
    resources.set(DELIVER_THROTTLE_RETRIES="0")  # no in-task retry: the task re-queues
    first, second = (ready_to_deliver(dingtalk_sandbox, sandbox_client, t, who=who)
                     for t, who in (("first", alice), ("second", bob)))
    for payload in (first, second):
        payload.delivery["session_webhook_expires_at"] = 1
    sandbox_client.configure(qps_limits={"robot_send": 1})
    deliver(first)  # uses this second's budget
    with pytest.raises(Throttled, match="QpsLimit"):
        deliver(second)  # 403 Forbidden.AccessDenied.QpsLimitForApi
    assert reply_state.get(second.msg_id) == "next:0"
    sandbox_client.configure(qps_limits={})
    deliver(second)  # the retry
    assert [r["text"] for r in sandbox_client.replies(via="batchSend")] == [
        "You said: first", "You said: second"]


def test_a_rate_limited_send_is_retried_in_the_task_after_a_shared_pause(
        dingtalk_sandbox, sandbox_client, sandbox_settings):
    first, second = (ready_to_deliver(dingtalk_sandbox, sandbox_client, t, who=who)
                     for t, who in (("first", alice), ("second", bob)))
    for payload in (first, second):
        payload.delivery["session_webhook_expires_at"] = 1
    sandbox_client.configure(qps_limits={"robot_send": 1})
    deliver(first)
    assert deliver(second)["result"] == "sent"  # throttled once, penalty, then sent
    assert sandbox_client.state()["throttled"] >= 1
    assert [r["text"] for r in sandbox_client.replies(via="batchSend")] == [
        "You said: first", "You said: second"]


def test_the_webhook_rate_limit_errcode_is_throttling(dingtalk_sandbox, sandbox_client,
                                                      sandbox_settings, resources):

    resources.set(DELIVER_THROTTLE_RETRIES="0")
    sandbox_client.configure(qps_limits={"webhook": 0.001})
    payloads = [ready_to_deliver(dingtalk_sandbox, sandbox_client, f"m{i}") for i in range(3)]
    outcomes = []
    for payload in payloads:
        try:
            outcomes.append(deliver(payload)["result"])
        except Throttled as exc:
            outcomes.append(str(exc))
            assert reply_state.get(payload.msg_id) == "next:0"
    assert any("130101" in o for o in outcomes)


def test_long_replies_go_out_in_parts_and_a_retry_resumes_after_the_sent_ones(
        dingtalk_sandbox, sandbox_client, sandbox_settings, resources):

    resources.set(REPLY_MAX_BYTES="60")
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client,
                               "\n".join(f"line number {i}" for i in range(8)))
    assert len(payload.replies) >= 3
    reply_state.swap(payload.msg_id, "", reply_state.next_part(1))  # part 0 went out before
    deliver(payload)
    texts = [r["text"] for r in sandbox_client.replies()]
    assert texts == [p.text for p in payload.replies[1:]]


def test_a_private_chat_without_a_staff_id_cannot_fall_back(dingtalk_sandbox, sandbox_client,
                                                            sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "x", who=mallory)
    sandbox_client.fault("expire_webhooks")
    with pytest.raises(PoisonMessage, match="staff id"):
        deliver(payload)


def _net_payload(url: str) -> StagePayload:
    msg_id = f"net-{url[-40:]}"
    return StagePayload(
        msg_id=msg_id, turn=alice.turn("hi", msg_id=msg_id), replies=(Reply(text="hi"),),
        delivery={"session_webhook": url, "session_webhook_expires_at": 0, "conversation_type": "1",
                  "sender_staff_id": alice.staff_id},
    )


@pytest.fixture
def short_http_timeout(sandbox_settings, resources):
    resources.set(HTTP_TIMEOUT_SECONDS="0.3")


def test_a_refused_connection_is_transient_and_leaves_the_part_unsent(short_http_timeout):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        refused = f"http://127.0.0.1:{closed.getsockname()[1]}/robot/sendBySession?session=x"
    payload = _net_payload(refused)
    with pytest.raises(TransientError):
        deliver(payload)
    assert reply_state.get(payload.msg_id) == "next:0"


def test_a_read_timeout_is_an_unknown_outcome_that_is_never_resent(short_http_timeout):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts connections, never answers: a read timeout
        silent = f"http://127.0.0.1:{listener.getsockname()[1]}/robot/sendBySession?session=x"
        payload = _net_payload(silent)
        assert deliver(payload)["result"] == "delivery_unknown"
        assert reply_state.get(payload.msg_id) == "sending:0"
        # A retry (or a redelivered task) must not send the part a second time.
        assert deliver(payload)["result"] == "delivery_unknown"


def test_it_records_when_the_listener_acked_the_push(dingtalk_sandbox, sandbox_client,
                                                     sandbox_settings, redis_conn, resources):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "ack")
    acked = time.time() - 1
    redis_conn.set(resources.current.key(f"acked:{payload.msg_id}"), str(acked))
    deliver(payload)
    record = MessageRecord.objects.get(msg_id=payload.msg_id)
    assert abs(record.acked_at.timestamp() - acked) < 0.01


def test_a_retry_after_the_send_completes_the_record(dingtalk_sandbox, sandbox_client,
                                                     sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "done")
    deliver(payload)
    # The first attempt sent, then died before its database update.
    MessageRecord.objects.filter(msg_id=payload.msg_id).update(
        status=MessageStatus.PROCESSING, replied_at=None)
    assert deliver(payload)["result"] == "already_sent"
    assert MessageRecord.objects.get(msg_id=payload.msg_id).status == MessageStatus.REPLIED
    assert len(sandbox_client.replies()) == 1


# --- reply-once when Redis loses the reply state (the record in PostgreSQL is the fallback) ------

def _forget_reply_state(msg_id: str) -> None:
    from workers.resources import current

    current().redis.delete(reply_state.reply_key(msg_id))  # Redis restarted without persistence


def test_a_sent_reply_is_not_sent_again_after_redis_lost_its_state(dingtalk_sandbox, sandbox_client,
                                                                   sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "once")
    assert deliver(payload)["result"] == "sent"
    assert MessageRecord.objects.get(msg_id=payload.msg_id).reply_progress == "sent"
    _forget_reply_state(payload.msg_id)
    assert deliver(payload)["result"] == "already_sent"  # a redelivered deliver task
    assert len(sandbox_client.replies()) == 1
    assert reply_state.get(payload.msg_id) == "sent"  # copied back from the record


def test_a_part_in_flight_when_redis_lost_its_state_is_never_resent(dingtalk_sandbox, sandbox_client,
                                                                    sandbox_settings):
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "crash")
    # The earlier attempt marked part 0 in flight (Redis and the record), then its worker died; then Redis lost it.
    MessageRecord.objects.filter(msg_id=payload.msg_id).update(reply_progress="sending:0")
    assert deliver(payload)["result"] == "delivery_unknown"
    assert sandbox_client.replies() == []
    assert MessageRecord.objects.get(msg_id=payload.msg_id).status == MessageStatus.DELIVERY_UNKNOWN


def test_a_reply_in_parts_resumes_from_the_record_after_redis_lost_its_state(
        dingtalk_sandbox, sandbox_client, sandbox_settings, resources):
    resources.set(REPLY_MAX_BYTES="60")
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "\n".join(f"line number {i}" for i in range(8)))
    assert len(payload.replies) >= 3
    MessageRecord.objects.filter(msg_id=payload.msg_id).update(reply_progress="next:2")
    assert deliver(payload)["result"] == "sent"
    assert [r["text"] for r in sandbox_client.replies()] == [p.text for p in payload.replies[2:]]


def test_a_part_is_marked_in_flight_only_when_its_request_leaves(dingtalk_sandbox, sandbox_client,
                                                                 sandbox_settings, resources):
    # No rate budget within the wait: nothing left, so nothing may say "sending".
    resources.set(DELIVER_THROTTLE_RETRIES="0", DELIVER_BUDGET_WAIT_SECONDS="0", DINGTALK_QPS_WEBHOOK="0.001")
    first, second = (ready_to_deliver(dingtalk_sandbox, sandbox_client, t, who=who)
                     for t, who in (("first", alice), ("second", bob)))
    deliver(first)
    with pytest.raises(Throttled):
        deliver(second)
    assert reply_state.get(second.msg_id) in ("", "next:0")
    assert MessageRecord.objects.get(msg_id=second.msg_id).reply_progress in ("", "next:0")


def test_a_reply_another_run_already_sent_ends_recorded_as_replied(
        dingtalk_sandbox, sandbox_client, sandbox_settings, resources):
    resources.set(REPLY_MAX_BYTES="60")
    payload = ready_to_deliver(dingtalk_sandbox, sandbox_client, "\n".join(f"line number {i}" for i in range(8)))
    reply_state.swap(payload.msg_id, "", reply_state.SENT)  # the other run sent it all first
    MessageRecord.objects.filter(msg_id=payload.msg_id).update(replied_at=None)
    assert deliver(payload)["result"] == "already_sent"
    assert sandbox_client.replies() == []
    assert MessageRecord.objects.get(msg_id=payload.msg_id).status == MessageStatus.REPLIED
