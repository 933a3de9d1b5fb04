"""What the chat skill tells users when the AI service cannot answer, in Chinese and English."""

from __future__ import annotations

PHRASES: dict[str, dict[str, str]] = {
    "not_configured": {
        "zh": "AI 对话功能还没有配置（管理员需要设置 LLM_BASE_URL）。其他功能照常可用，发送“帮助”查看。",
        "en": "AI chat is not set up yet (an administrator needs to set LLM_BASE_URL). "
        "Other skills still work: send \"help\" to see them.",
    },
    "empty": {
        "zh": "请直接输入你想问的问题。",
        "en": "Please type your question.",
    },
    "timeout": {
        "zh": "抱歉，AI 服务响应超时了，请稍后再试。",
        "en": "Sorry, the AI service took too long to answer. Please try again in a moment.",
    },
    "unavailable": {
        "zh": "抱歉，AI 服务暂时不可用，请稍后再试。",
        "en": "Sorry, the AI service is unavailable right now. Please try again in a moment.",
    },
    "busy": {
        "zh": "抱歉，AI 服务当前太忙，请稍后再试。",
        "en": "Sorry, the AI service is busy right now. Please try again in a moment.",
    },
    "auth": {
        "zh": "抱歉，AI 服务拒绝了本机器人的凭据，请联系管理员检查 LLM_API_KEY。",
        "en": "Sorry, the AI service refused this bot's credentials. Please ask an administrator to check LLM_API_KEY.",
    },
    "rejected": {
        "zh": "抱歉，AI 服务无法处理这个请求，请换个更短的问法再试。",
        "en": "Sorry, the AI service could not handle this request. Please try a shorter question.",
    },
    "interrupted": {
        "zh": "抱歉，回答到一半时与 AI 服务的连接中断了，请再试一次。",
        "en": "Sorry, the connection to the AI service dropped in the middle of the answer. Please try again.",
    },
    "truncated": {
        "zh": "\n\n…（回答达到长度上限，已截断）",
        "en": "\n\n…(the answer reached the length limit and was cut)",
    },
}


def phrase(key: str, locale: str) -> str:
    """The phrase in the user's language (Chinese for zh-*, English otherwise)."""
    lang = "zh" if locale.lower().startswith("zh") else "en"
    return PHRASES[key][lang]
