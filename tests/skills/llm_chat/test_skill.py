"""The chat skill (thin checks here; tests/skills/llm_chat covers streaming and faults against the stub LLM)."""

from __future__ import annotations

from skills.api import Reply, Turn
from skills.llm_chat import LLMChatConfig, LLMChatSkill
from testkit.personas import alice


def turn(text: str, locale: str = "zh-CN") -> Turn:
    return alice.turn(text, locale=locale)


def test_without_an_llm_it_says_so_instead_of_failing():
    reply = LLMChatSkill(LLMChatConfig(base_url="")).execute(turn("你好"))
    assert isinstance(reply, Reply) and reply.meta == {"llm": "not_configured"}


def test_its_config_takes_the_audited_prompt_and_temperature():
    cfg = LLMChatConfig.from_dict({"system_prompt": "你是公司助手。", "temperature": 0.1})
    assert LLMChatSkill(cfg).cfg.system_prompt == "你是公司助手。" and cfg.temperature == 0.1
