"""What the bot says when it is not a skill speaking: apology, empty input, truncation notes."""

from __future__ import annotations

from skills.language import is_chinese

APOLOGY_ZH = "抱歉，处理你的消息时出了点问题，请稍后再试。"
APOLOGY_EN = "Sorry, something went wrong while handling your message. Please try again later."
EMPTY_TEXT = "请输入文字内容。Please type something."
TRUNCATED_ZH = "（你的消息太长，只处理了前 {limit} 个字符。）"
TRUNCATED_EN = "(Your message was long; only its first {limit} characters were read.)"
REPLY_CUT_ZH = "……（回复过长，已截断）"
REPLY_CUT_EN = "… (reply too long, cut here)"


def _zh(text: str, locale: str) -> bool:
    return is_chinese(text) if text.strip() else locale.lower().startswith("zh")


def apology(text: str = "", locale: str = "zh-CN") -> str:
    """The standard apology, in the user's language."""
    return APOLOGY_ZH if _zh(text, locale) else APOLOGY_EN


def truncated_note(text: str, limit: int, locale: str = "zh-CN") -> str:
    return (TRUNCATED_ZH if _zh(text, locale) else TRUNCATED_EN).format(limit=limit)


def reply_cut_note(text: str) -> str:
    return REPLY_CUT_ZH if is_chinese(text) else REPLY_CUT_EN
