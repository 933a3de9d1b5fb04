"""Streaming answers into AI cards on the DingTalk sandbox: coalesced, always finalized, stoppable."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import redis

from sandbox.llm import STUB_MARK, StubLLMServer
from skills.api import SkillError
from skills.llm_chat import LLMChatConfig, LLMChatSkill
from testkit.clock import FakeClock
from testkit.personas import make_turn
from testkit.streams import stream_of
from tests.workers.dingtalk.card_denials import PermissionlessCards
from tests.workers.dingtalk.conftest import GROUP, PRIVATE, CallLog, Dingtalk
from workers.dingtalk.card_client import CardClient, CardTarget
from workers.dingtalk.card_streamer import CardStreamer, out_track_id_for
from workers.dingtalk.ratebudget import RateBudget
from workers.errors import CardUnavailable
from workers.metrics import DINGTALK_CALLS
from workers.state.cards import CancelFlags

CREATE = "/v1.0/card/instances/createAndDeliver"
STREAMING = "/v1.0/card/streaming"
INSTANCES = "/v1.0/card/instances"


def slow_chunks(pieces: list[str], delay: float) -> Iterator[str]:
    for piece in pieces:
        time.sleep(delay)
        yield piece


def llm(stub: StubLLMServer) -> LLMChatSkill:
    return LLMChatSkill(LLMChatConfig(base_url=stub.base_url, model="m"))


def test_an_answer_creates_one_card_streams_it_and_finalizes_it(
    dingtalk: Dingtalk, card_client: CardClient, call_log: CallLog
) -> None:
    streamer = CardStreamer(card_client, "tpl-ai", set_flow_status=True)
    result = streamer.stream("m-ok", GROUP, slow_chunks(["Hello", " world", "!"], 0.05))
    assert result.status == "finished" and result.finalized and result.text == "Hello world!"
    card = dingtalk.card(result.out_track_id)
    assert card["status"] == "finished" and card["streams"]["content"] == "Hello world!"
    assert card["cardData"]["cardParamMap"]["flowStatus"] == "3" and card["cardTemplateId"] == "tpl-ai"
    [create] = call_log.to(CREATE)
    assert create["body"]["callbackType"] == "STREAM"
    assert create["body"]["cardData"]["cardParamMap"]["flowStatus"] == "1"
    assert create["body"]["openSpaceId"] == "dtv1.card//IM_GROUP.cid-group-1"
    [reply] = dingtalk.control.replies(via="card")
    assert reply["conversation_id"] == "cid-group-1" and reply["text"] == "Hello world!"
    ups = dingtalk.streaming(result.out_track_id)
    assert ups[-1]["isFinalize"] and not ups[-1]["isError"] and all(u["isFull"] for u in ups)
    assert not any(u["isFinalize"] for u in ups[:-1])


def test_a_private_chat_card_goes_to_the_askers_robot_space(dingtalk: Dingtalk, card_client: CardClient) -> None:
    CardStreamer(card_client, "tpl").stream("m-p", PRIVATE, iter(["hi"]))
    [reply] = dingtalk.control.replies(via="card")
    assert reply["conversation_type"] == "1" and reply["user_ids"] == [PRIVATE.user_id]


def test_text_already_read_when_the_card_is_created_is_on_it_from_the_start(
    dingtalk: Dingtalk, card_client: CardClient, call_log: CallLog
) -> None:
    # The LLM answered before the budget let the card be created: no separate first update.
    result = CardStreamer(card_client, "tpl").stream("m-early", GROUP, iter(["all at once"]))
    [create] = call_log.to(CREATE)
    assert create["body"]["cardData"]["cardParamMap"] == {"flowStatus": "2", "content": "all at once"}
    ups = dingtalk.streaming(result.out_track_id)
    assert len(ups) == 1 and ups[0]["isFinalize"] and result.first_visible_s is not None
    # By default the streaming API's isFinalize ends the card; no extra data update is spent.
    assert not [c for c in call_log.calls if c["path"] == INSTANCES]


def test_a_retried_message_streams_into_the_card_it_already_has(
    dingtalk: Dingtalk, card_client: CardClient
) -> None:
    streamer = CardStreamer(card_client, "tpl")
    # The first attempt died after creating the card (a worker killed mid-answer).
    card_client.create_and_deliver(out_track_id_for("m-retry"), "tpl", GROUP, {"flowStatus": "1", "content": ""})
    result = streamer.stream("m-retry", GROUP, iter(["the answer"]))
    assert result.finalized and result.out_track_id == out_track_id_for("m-retry")
    assert len(dingtalk.control.cards()) == 1 and len(dingtalk.control.replies(via="card")) == 1
    assert dingtalk.card(result.out_track_id)["streams"]["content"] == "the answer"


def test_a_fast_token_stream_is_coalesced_to_about_one_update_per_300_ms(
    dingtalk: Dingtalk, http: httpx.Client
) -> None:
    # The streamer's own clock, moving 1 ms each time the streamer looks at it; the answer's 120
    # tokens arrive one per 10 ms of that clock: what is measured is the streamer's pacing, not
    # how busy the machine is.
    clock = FakeClock(tick=0.001)
    sent_at: list[float] = []

    class Stamped(CardClient):
        def stream(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            sent_at.append(clock.now)  # when the streamer decided to send (no tick)
            return super().stream(*args, **kwargs)

    def tokens() -> Iterator[str]:
        for i in range(120):
            clock.wait_until(i * 0.01)
            yield f"t{i} "

    client = Stamped(http, dingtalk.url, lambda: dingtalk.token, backoff_initial=0.05, backoff_max=0.3)
    streamer = CardStreamer(client, "tpl", clock=clock, poll=0.002)
    result = streamer.stream("m-fast", GROUP, tokens())
    assert result.status == "finished" and result.text == "".join(f"t{i} " for i in range(120))
    updates = sent_at[:-1]  # the last call is the final one, sent as soon as the answer ends
    gaps = [b - a for a, b in itertools.pairwise(updates)]
    assert all(gap >= streamer.interval for gap in gaps), gaps
    assert 3 <= len(updates) <= result.elapsed_s / streamer.interval + 1
    assert result.first_visible_s is not None and result.first_visible_s < streamer.interval
    ups = dingtalk.streaming(result.out_track_id)
    assert len(ups) == len(sent_at) and ups[-1]["isFinalize"] and ups[-1]["content"] == result.text.strip()


def test_an_error_in_the_answer_still_finalizes_the_card_with_the_error(
    dingtalk: Dingtalk, card_client: CardClient
) -> None:
    def failing() -> Iterator[str]:
        yield "Partial answer"
        raise SkillError("boom", "Sorry, the AI service dropped.")

    result = CardStreamer(card_client, "tpl", set_flow_status=True).stream("m-err", GROUP, failing(), locale="en")
    last = dingtalk.streaming(result.out_track_id)[-1]
    assert result.status == "failed" and result.finalized
    assert last["isFinalize"] and last["isError"]
    assert last["content"].startswith("Partial answer") and "Sorry, the AI service dropped." in last["content"]
    card = dingtalk.card(result.out_track_id)
    assert card["status"] == "failed" and card["cardData"]["cardParamMap"]["flowStatus"] == "5"


def test_an_unexpected_crash_in_the_answer_shows_a_generic_apology(dingtalk: Dingtalk, card_client: CardClient) -> None:
    def crashing() -> Iterator[str]:
        raise RuntimeError("KeyError deep inside")
        yield ""

    result = CardStreamer(card_client, "tpl").stream("m-crash", GROUP, crashing(), locale="en")
    last = dingtalk.streaming(result.out_track_id)[-1]
    assert last["isError"] and "something went wrong" in last["content"] and "KeyError" not in last["content"]


def test_a_stream_cut_by_the_llm_finalizes_the_card_with_a_polite_error(
    stub: StubLLMServer, dingtalk: Dingtalk, card_client: CardClient
) -> None:
    stub.configure(cut_after=6, inter_token_delay=0.01)
    result = CardStreamer(card_client, "tpl").stream("m-cut", GROUP, stream_of(llm(stub).execute(make_turn())), locale="en")
    last = dingtalk.streaming(result.out_track_id)[-1]
    assert last["isFinalize"] and last["isError"] and "connection to the AI service dropped" in last["content"]


def test_the_worker_dying_mid_stream_still_finalizes_the_card(dingtalk: Dingtalk, card_client: CardClient) -> None:
    class SoftTimeLimit(BaseException):
        """Stands in for Celery's SoftTimeLimitExceeded raised into the worker thread."""

    ticks = iter(range(1000))

    def clock() -> float:
        if next(ticks) == 25:
            raise SoftTimeLimit()
        return time.monotonic()

    with pytest.raises(SoftTimeLimit):
        CardStreamer(card_client, "tpl", clock=clock).stream("m-die", GROUP, slow_chunks(["x"] * 200, 0.01))
    last = dingtalk.streaming(out_track_id_for("m-die"))[-1]
    assert last["isFinalize"] and last["isError"]


def test_the_stop_button_stops_within_one_second_even_while_the_llm_is_silent(
    stub: StubLLMServer, dingtalk: Dingtalk, card_client: CardClient, redis_client: redis.Redis, redis_prefix: str
) -> None:
    stub.configure(stall_after=5, inter_token_delay=0.02)
    flags = CancelFlags(redis_client, redis_prefix)
    pressed_at: list[float] = []

    def press_stop() -> None:
        time.sleep(0.6)
        pressed_at.append(time.time())
        flags.request(out_track_id_for("m-stop"))  # what the card-callback handler does

    threading.Thread(target=press_stop).start()
    streamer = CardStreamer(card_client, "tpl", cancel_check=flags)
    result = streamer.stream("m-stop", GROUP, stream_of(llm(stub).execute(make_turn())), locale="en")
    last = dingtalk.streaming(result.out_track_id)[-1]
    assert result.status == "stopped" and last["isFinalize"] and not last["isError"]
    assert last["content"].endswith("(stopped)") and last["content"].startswith(STUB_MARK)
    assert last["at"] - pressed_at[0] < 1.0
    assert redis_client.exists(f"{redis_prefix}cancel:{result.out_track_id}")


def test_stopping_also_stops_the_llm_generating(
    stub: StubLLMServer, dingtalk: Dingtalk, card_client: CardClient, redis_client: redis.Redis, redis_prefix: str
) -> None:
    stub.configure(tokens=2000, inter_token_delay=0.01)
    flags = CancelFlags(redis_client, redis_prefix)
    threading.Timer(0.5, flags.request, args=[out_track_id_for("m-stop2")]).start()
    streamer = CardStreamer(card_client, "tpl", cancel_check=flags)
    result = streamer.stream("m-stop2", GROUP, stream_of(llm(stub).execute(make_turn())))
    assert result.status == "stopped"
    deadline = time.monotonic() + 2
    while stub.requests()[-1]["outcome"] != "client_gone" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub.requests()[-1]["outcome"] == "client_gone"
    assert stub.requests()[-1]["tokens_sent"] < 300


def test_without_a_template_the_caller_is_told_to_reply_in_markdown(
    dingtalk: Dingtalk, card_client: CardClient, call_log: CallLog
) -> None:
    with pytest.raises(CardUnavailable) as caught:
        CardStreamer(card_client, "").stream("m-none", GROUP, iter(["the ", "answer"]))
    assert call_log.calls == []
    assert "".join(caught.value.remaining or []) == "the answer"  # nothing read, nothing lost


def test_a_card_that_cannot_be_created_hands_back_the_whole_answer(dingtalk: Dingtalk, card_client: CardClient) -> None:
    wrong_robot = CardTarget("2", GROUP.conversation_id, GROUP.user_id, robot_code="not-our-robot")
    with pytest.raises(CardUnavailable) as caught:
        CardStreamer(card_client, "tpl").stream("m-bad", wrong_robot, slow_chunks(["one ", "two ", "three"], 0.02))
    assert "".join(caught.value.remaining or []) == "one two three"  # for a markdown reply
    assert dingtalk.control.cards() == []


def test_a_failed_answer_behind_a_failed_card_still_raises_for_the_apology(
    dingtalk: Dingtalk, card_client: CardClient
) -> None:
    def failing() -> Iterator[str]:
        yield "half"
        raise SkillError("llm down", "Sorry, try later.")

    wrong_robot = CardTarget("2", GROUP.conversation_id, GROUP.user_id, robot_code="not-our-robot")
    with pytest.raises(CardUnavailable) as caught:
        CardStreamer(card_client, "tpl").stream("m-both", wrong_robot, failing())
    with pytest.raises(SkillError):
        list(caught.value.remaining or [])


def test_without_card_permission_the_caller_is_told_to_reply_in_markdown(http: httpx.Client) -> None:
    with PermissionlessCards(instance_write=False, streaming_write=False) as peer:
        client = CardClient(http, peer.url, lambda: "token")
        with pytest.raises(CardUnavailable) as caught:
            CardStreamer(client, "tpl").stream("m-perm", GROUP, iter(["x"]))
    assert caught.value.denied


def test_without_streaming_permission_the_card_is_still_finished_by_a_data_update(http: httpx.Client) -> None:
    with PermissionlessCards(instance_write=True, streaming_write=False) as peer:
        client = CardClient(http, peer.url, lambda: "token")
        result = CardStreamer(client, "tpl").stream("m-nostream", GROUP, slow_chunks(["a", "b"], 0.05))
        assert result.finalized and peer.cards[result.out_track_id] == {"flowStatus": "3", "content": "ab"}


def test_an_answer_too_long_for_the_card_keeps_the_card_at_its_limit_and_hands_back_the_rest(
    dingtalk: Dingtalk, card_client: CardClient, call_log: CallLog
) -> None:
    words = [f"word{i} " for i in range(600)]
    result = CardStreamer(card_client, "tpl").stream("m-long", GROUP, iter(words), locale="en")
    assert all(c["status"] == 200 for c in call_log.calls)  # the sandbox refuses > 1 KB
    assert all(len(u["content"].encode()) <= 1000 for u in dingtalk.streaming(result.out_track_id))
    assert result.shown.endswith("(continued in the next message)")
    shown_words = result.shown.split("\n\n…")[0]
    assert (shown_words + " " + result.overflow).split() == "".join(words).split()  # nothing lost, nothing twice


def test_throttled_updates_are_retried_with_the_same_guid_and_never_applied_twice(
    dingtalk: Dingtalk, http: httpx.Client, call_log: CallLog
) -> None:
    dingtalk.control.configure(qps_limits={"card": 4})  # no budget on our side: DingTalk's limit is hit
    qps_code = DINGTALK_CALLS.labels("card", "Forbidden.AccessDenied.QpsLimitForApi")
    before = qps_code._value.get()
    client = CardClient(http, dingtalk.url, lambda: dingtalk.token, backoff_initial=0.1, backoff_max=0.5)
    result = CardStreamer(client, "tpl").stream("m-qps", GROUP, slow_chunks([f"t{i} " for i in range(60)], 0.02))
    streaming = call_log.to(STREAMING)
    throttled = {c["body"]["guid"] for c in streaming if c["status"] == 403}
    retried = {c["body"]["guid"] for c in streaming if c["status"] == 200}
    assert client.stats.throttled > 0 and throttled
    assert all(c["code"] == "Forbidden.AccessDenied.QpsLimitForApi" for c in streaming if c["status"] == 403)
    assert throttled & retried  # the same guid came back after the 403
    # Ops see the same refusals: dtbot_dingtalk_calls_total{family="card",code=...}.
    assert qps_code._value.get() - before == len([c for c in streaming if c["status"] == 403])
    applied = [u["guid"] for u in dingtalk.streaming(result.out_track_id)]
    assert len(applied) == len(set(applied))  # never applied twice
    card = dingtalk.card(result.out_track_id)
    assert result.finalized and card["status"] == "finished" and card["streams"]["content"] == result.text.strip()


def test_with_the_shared_budget_no_call_is_throttled(
    dingtalk: Dingtalk, http: httpx.Client, redis_client: redis.Redis, redis_prefix: str
) -> None:
    dingtalk.control.configure(qps_limits={"card": 10})
    budget = RateBudget(redis_client, redis_prefix, {"card": 10})
    client = CardClient(http, dingtalk.url, lambda: dingtalk.token, budget)
    streamer = CardStreamer(client, "tpl")
    results: list[Any] = []

    def answer(i: int) -> None:
        results.append(streamer.stream(f"m-b{i}", GROUP, slow_chunks([f"w{j} " for j in range(40)], 0.02)))

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dingtalk.control.state()["throttled"] == 0
    assert len(results) == 4 and all(r.finalized for r in results)


def test_an_unreachable_redis_neither_blocks_nor_fails_the_card(dingtalk: Dingtalk, http: httpx.Client) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from testkit.services import free_port

    dead = redis.Redis(host="127.0.0.1", port=free_port(), socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    client = CardClient(http, dingtalk.url, lambda: dingtalk.token, RateBudget(dead, "x:", {"card": 5}))
    started = time.monotonic()
    result = CardStreamer(client, "tpl", cancel_check=CancelFlags(dead, "x:")).stream(
        "m-noredis", GROUP, slow_chunks(["a", "b", "c"], 0.1)
    )
    assert result.finalized and result.status == "finished" and result.shown == "abc"
    assert time.monotonic() - started < 2


def test_a_failing_token_provider_is_retried_and_the_card_still_finished(
    dingtalk: Dingtalk, http: httpx.Client
) -> None:
    failures = iter([True, False, True, False, False, False, False, False, False])

    def flaky_token() -> str:
        if next(failures, False):
            raise RuntimeError("token endpoint timed out")
        return dingtalk.token

    client = CardClient(http, dingtalk.url, flaky_token, backoff_initial=0.05, backoff_max=0.2)
    result = CardStreamer(client, "tpl").stream("m-token", GROUP, iter(["fine"]))
    assert result.finalized and dingtalk.card(result.out_track_id)["status"] == "finished"
    assert client.stats.retries >= 2
