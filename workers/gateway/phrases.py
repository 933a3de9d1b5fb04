"""What the gateway says itself (zh/en): unreadable message types, refused files, stale buttons."""

from __future__ import annotations

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
