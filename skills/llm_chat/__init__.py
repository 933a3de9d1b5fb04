"""LLM chat skill: answers from any OpenAI-compatible server, streamed as text chunks."""

from skills.llm_chat.skill import ChatStream, LLMChatConfig, LLMChatSkill

__all__ = ["ChatStream", "LLMChatConfig", "LLMChatSkill"]
