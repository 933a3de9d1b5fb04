"""What the bot says when no skill speaks (zh/en): apology, empty input, truncation, unreadable types, refused files."""

from __future__ import annotations

from skills.language import is_chinese

APOLOGY_ZH = "抱歉，处理你的消息时出了点问题，请稍后再试。"
APOLOGY_EN = "Sorry, something went wrong while handling your message. Please try again later."
EMPTY_TEXT = "请输入文字内容。Please type something."
TRUNCATED_ZH = "（你的消息太长，只处理了前 {limit} 个字符。）"
TRUNCATED_EN = "(Your message was long; only its first {limit} characters were read.)"
REPLY_CUT_ZH = "……（回复过长，已截断）"
REPLY_CUT_EN = "… (reply too long, cut here)"
BUSY_ZH = "排队中，前面还有 {ahead} 条，请稍候。"
BUSY_EN = "Busy right now: {ahead} ahead of you, please hold on."
SLOT_TIMEOUT_ZH = "抱歉，AI 服务太忙了，没能及时回答你的问题，请稍后再问一次。"
SLOT_TIMEOUT_EN = "Sorry, the AI service is too busy to answer in time; please ask again in a while."


def _zh(text: str, locale: str) -> bool:
    return is_chinese(text) if text.strip() else locale.lower().startswith("zh")


def apology(text: str = "", locale: str = "zh-CN") -> str:
    """The standard apology, in the user's language."""
    return APOLOGY_ZH if _zh(text, locale) else APOLOGY_EN


def truncated_note(text: str, limit: int, locale: str = "zh-CN") -> str:
    return (TRUNCATED_ZH if _zh(text, locale) else TRUNCATED_EN).format(limit=limit)


def busy_notice(text: str, locale: str, ahead: int) -> str:
    """The one "busy, N ahead of you" notice of a message that will wait for an AI answer slot."""
    return (BUSY_ZH if _zh(text, locale) else BUSY_EN).format(ahead=ahead)


def slot_timeout(text: str, locale: str) -> str:
    """What the user reads when no AI answer slot came free within LLM_SLOT_WAIT_SECONDS."""
    return SLOT_TIMEOUT_ZH if _zh(text, locale) else SLOT_TIMEOUT_EN


def reply_cut_note(text: str) -> str:
    return REPLY_CUT_ZH if is_chinese(text) else REPLY_CUT_EN


PHRASES: dict[str, tuple[str, str]] = {
    "unsupported": (
        "抱歉，我暂时还看不懂这种消息，请发文字、图片或文件。",
        "Sorry, I can't read this kind of message yet; please send text, a picture or a file.",
    ),
    "too_large": (
        "抱歉，这个文件太大了（上限 {limit}），我没法读取。",
        "Sorry, that file is too large for me to read (limit {limit}).",
    ),
    "bad_type": (
        "抱歉，我还不能读取这种文件（{content_type}）。",
        "Sorry, I can't read this type of file yet ({content_type}).",
    ),
    "unavailable": (
        "抱歉，没能从钉钉取到你发的文件，请重新发送一次。",
        "Sorry, I couldn't fetch your file from DingTalk; please send it again.",
    ),
    "skill_off": (
        "抱歉，这个功能在这里已被管理员关闭。",
        "Sorry, an administrator has turned this feature off here.",
    ),
    "oversized": (
        "抱歉，这条消息太大了（{size}，上限 {limit}），我没有读取，请分成几条发送。",
        "Sorry, that message was too large for me to read ({size}, limit {limit}); please send it in parts.",
    ),
    "prompt_refused": (
        "抱歉，这个问题我不能回答：系统设定不对外公开。",
        "Sorry, I can't answer that: my instructions are not shared.",
    ),
    "stale_card": (
        "这张卡片已过期，请重新提问。",
        "This card has expired; please ask again.",
    ),
}


def phrase(key: str, locale: str = "zh-CN", **values: object) -> str:
    """The phrase in the user's language (Chinese unless the locale says otherwise)."""
    zh, en = PHRASES[key]
    text = zh if (locale or "zh").lower().startswith("zh") else en
    return text.format(**values) if values else text


def size_text(n: int) -> str:
    """20971520 → '20 MB'."""
    for unit, size in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= size:
            return f"{n / size:.0f} {unit}"
    return f"{n} B"
