"""The LLM chat skill against the real stub server: streaming, history, settings sent, polite faults."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from sandbox.llm import STUB_MARK, StubLLMServer
from skills.api import Reply, SkillError
from skills.llm_chat import LLMChatConfig, LLMChatSkill
from skills.llm_chat.history import estimate_tokens
from skills.llm_chat.skill import ChatStream
from testkit.clock import ManualClock
from testkit.personas import make_turn
from testkit.services import free_port
from testkit.streams import stream_of
from testkit.waits import wait_for


def skill_for(stub: StubLLMServer, clock: Callable[[], float] = time.monotonic, **config: Any) -> LLMChatSkill:
    return LLMChatSkill(LLMChatConfig(**{"base_url": stub.base_url, "api_key": "", "model": "", **config}),
                        clock=clock)


def answer(skill: LLMChatSkill, text: str = "hello there", **turn: Any) -> str:
    result = skill.execute(make_turn(text, **turn))
    assert not isinstance(result, Reply)
    return "".join(result)


def test_it_streams_the_answer_in_several_chunks(stub: StubLLMServer) -> None:
    result = skill_for(stub).execute(make_turn("What does the stub say?"))
    chunks = list(result)  # type: ignore[arg-type]
    assert len(chunks) > 5
    assert "What does the stub say?" in "".join(chunks)


def test_the_stream_keeps_the_servers_token_counts_for_the_metrics(stub: StubLLMServer) -> None:
    stream = skill_for(stub).execute(make_turn("What does the stub say?"))
    assert isinstance(stream, ChatStream)
    chunks = list(stream)
    # The stub sends its usage chunk only when asked with stream_options.include_usage, as OpenAI does.
    assert stream.usage["prompt_tokens"] > 5 and stream.usage["completion_tokens"] == len(chunks)


def test_the_reply_says_clearly_that_the_stub_answered(stub: StubLLMServer) -> None:
    assert answer(skill_for(stub)).startswith(STUB_MARK)
    assert "测试桩" in answer(skill_for(stub), "明天天气怎么样？", locale="zh-CN")


def test_it_sends_the_system_prompt_temperature_max_tokens_and_model(stub: StubLLMServer) -> None:
    skill = LLMChatSkill(LLMChatConfig(base_url=stub.base_url, system_prompt="You are Bob.", temperature=0.15,
                                       max_tokens=321, model="my-model"))
    answer(skill)
    [request] = stub.requests()
    assert request["messages"][0] == {"role": "system", "content": "You are Bob."}
    assert request["temperature"] == 0.15 and request["max_tokens"] == 321 and request["model"] == "my-model"
    assert request["stream"] is True


def test_without_a_model_setting_it_uses_the_first_model_the_server_lists(stub: StubLLMServer) -> None:
    answer(skill_for(stub))
    assert stub.requests()[0]["model"] == "stub-llm"


def test_it_sends_the_conversation_history_before_the_question(stub: StubLLMServer) -> None:
    history = [{"role": "user", "content": "My name is Alice."}, {"role": "assistant", "content": "Hi Alice!"}]
    answer(skill_for(stub), "What is my name?", history=history)
    messages = stub.requests()[0]["messages"]
    assert messages[1:] == [*history, {"role": "user", "content": "What is my name?"}]


def test_history_is_trimmed_to_the_token_budget_keeping_the_newest_turns(stub: StubLLMServer) -> None:
    history = []
    for i in range(40):
        history += [{"role": "user", "content": f"问题{i}：" + "长" * 50},
                    {"role": "assistant", "content": f"回答{i}：" + "长" * 50}]
    answer(skill_for(stub, history_token_budget=300), "最后一个问题", history=history)
    sent = stub.requests()[0]["messages"]
    earlier = sent[1:-1]
    assert 0 < len(earlier) < len(history)
    assert sum(estimate_tokens(m["content"]) + 4 for m in earlier) <= 300
    assert earlier[-1] == history[-1] and earlier[0]["role"] == "user"
    assert sent[-1] == {"role": "user", "content": "最后一个问题"}


def test_it_sends_the_key_as_a_bearer_token(stub: StubLLMServer) -> None:
    stub.configure(api_key="k-123")
    assert answer(LLMChatSkill(LLMChatConfig(base_url=stub.base_url, api_key="k-123"))).startswith(STUB_MARK)
    with pytest.raises(SkillError) as caught:
        answer(LLMChatSkill(LLMChatConfig(base_url=stub.base_url, api_key="wrong", model="m")))
    assert "LLM_API_KEY" in caught.value.user_message


def test_it_says_politely_when_no_llm_is_configured() -> None:
    reply = LLMChatSkill(LLMChatConfig(base_url="")).execute(make_turn())
    assert isinstance(reply, Reply) and "not set up" in reply.text
    zh = LLMChatSkill(LLMChatConfig(base_url="")).execute(make_turn(locale="zh-CN"))
    assert isinstance(zh, Reply) and "还没有配置" in zh.text


def test_it_notes_an_answer_cut_at_the_length_limit(stub: StubLLMServer) -> None:
    stub.configure(tokens=50)
    assert answer(skill_for(stub, max_tokens=10)).endswith("(the answer reached the length limit and was cut)")


def expect_polite_failure(skill: LLMChatSkill, phrase: str) -> SkillError:
    with pytest.raises(SkillError) as caught:
        answer(skill)
    assert phrase in caught.value.user_message and "Traceback" not in caught.value.user_message
    return caught.value


@pytest.mark.parametrize(
    ("fault", "phrase"),
    [
        ({"error_status": 500}, "unavailable"),
        ({"error_status": 503}, "unavailable"),
        ({"error_status": 429}, "busy"),
    ],
)
def test_an_http_error_becomes_a_polite_message(stub: StubLLMServer, fault: dict[str, Any], phrase: str) -> None:
    stub.configure(**fault)
    expect_polite_failure(skill_for(stub, model="m"), phrase=phrase)
    # Asked once: no client-side retries with back-off (the pipeline decides about retrying).
    assert [r["outcome"] for r in stub.requests()] == [f"error:{fault['error_status']}"]


def test_a_refused_connection_becomes_a_polite_message() -> None:
    skill = LLMChatSkill(LLMChatConfig(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m"))
    expect_polite_failure(skill, phrase="unavailable")


# The faults below last far longer than the read timeout (30 s, or for ever): a skill that did not
# give up on its own would still be waiting. The stub's record shows whether the client hung up.
@pytest.mark.parametrize(("fault", "outcome", "tokens"), [
    ({"first_token_delay": 30}, "client_gone", 0),   # headers, then no token
    ({"hang": True}, "hang", 0),                     # not even headers (the stub waits for ever)
    ({"stall_after": 4}, "client_gone", 4),          # four tokens, then silence
])
def test_a_server_that_goes_silent_times_out_politely(stub: StubLLMServer, fault: dict[str, Any],
                                                      outcome: str, tokens: int) -> None:
    stub.configure(**fault)
    expect_polite_failure(skill_for(stub, model="m", read_timeout_seconds=0.5), phrase="took too long")
    wait_for(lambda: stub.requests()[0]["outcome"] == outcome)
    assert [r["tokens_sent"] for r in stub.requests()] == [tokens]


def test_a_slow_trickle_is_stopped_at_the_total_deadline(stub: StubLLMServer) -> None:
    clock = ManualClock()
    stub.configure(tokens=500, inter_token_delay=0.05)  # 25 s of answer: still sending when we hang up
    stream = stream_of(skill_for(stub, model="m", total_timeout_seconds=10.0, clock=clock).execute(make_turn()))
    got = [next(stream) for _ in range(3)]
    clock.advance(9.0)
    got.append(next(stream))  # still within the 10 s
    clock.advance(1.5)
    with pytest.raises(SkillError) as caught:
        next(stream)
    assert len(got) == 4 and "took too long" in caught.value.user_message
    wait_for(lambda: stub.requests()[0]["outcome"] == "client_gone")


def test_a_stream_cut_in_the_middle_becomes_a_polite_message_after_the_partial_answer(stub: StubLLMServer) -> None:
    stub.configure(cut_after=5)
    stream = stream_of(skill_for(stub, model="m").execute(make_turn()))
    got: list[str] = []
    with pytest.raises(SkillError) as caught:
        for chunk in stream:
            got.append(chunk)
    assert len(got) == 5 and "dropped" in caught.value.user_message


def test_closing_the_stream_stops_generation_quietly(stub: StubLLMServer) -> None:
    stub.configure(tokens=500, inter_token_delay=0.02)
    stream = stream_of(skill_for(stub, model="m").execute(make_turn()))
    first = next(stream)
    assert isinstance(stream, ChatStream)
    stream.close()
    assert first and list(stream) == []
    wait_for(lambda: stub.requests()[-1]["outcome"] == "client_gone")


def test_config_rejects_values_that_cannot_work() -> None:
    with pytest.raises(ValueError):
        LLMChatConfig(temperature=3.0)
    with pytest.raises(ValueError):
        LLMChatConfig(read_timeout_seconds=0)
    assert LLMChatConfig().max_tokens == 2048  # LLM_MAX_TOKENS default


def test_the_help_text_is_the_docstring_in_both_languages() -> None:
    text = LLMChatSkill.help_text()
    assert "AI" in text and "对话" in text and LLMChatSkill.intents == ("chat",)
