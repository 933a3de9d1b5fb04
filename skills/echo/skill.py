"""EchoSkill: answers `You said: <text>` (or `你说：<text>` for Chinese input)."""

from __future__ import annotations

from skills.api import AISkillPlugin, Reply, Turn
from skills.echo.examples import EXAMPLES
from skills.language import is_chinese


class EchoSkill(AISkillPlugin):
    """Echo: repeats your message back to you. 复读：原样回复你说的话。"""

    name = "echo"
    intents = ("echo",)
    examples = EXAMPLES
    label = {"zh": "复读", "en": "Echo"}
    timeout_seconds = 5.0
    kind = "io"  # answers at once: it should not queue behind embeddings

    def execute(self, turn: Turn) -> Reply:
        if is_chinese(turn.text):
            return Reply(text=f"你说：{turn.text}")
        return Reply(text=f"You said: {turn.text}")
