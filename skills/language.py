"""Which language a text is in (Chinese vs. other), for answering in the user's language."""

from __future__ import annotations

import re

_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")


def is_chinese(text: str) -> bool:
    """True when the text contains CJK ideographs."""
    return bool(_CJK.search(text))
