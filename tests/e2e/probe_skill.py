"""ProbeSkill (end-to-end tests only): answers with what it received, as JSON after "PROBE ".

The report holds the turn's text, type, user, conversation, params, attachments (re-hashed from
the media store, proving the skill can read them) and the user texts of its session history.
`sleep=N` in the text makes it take N ms (to shuffle timing); "card please" answers with an
interactive card whose callbacks come back to this skill.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from pathlib import Path

from skills.api import AISkillPlugin, Reply, Turn

CARD_TEMPLATE = "tpl.probe-form"


def _attachment(ref: dict) -> dict:
    path = Path(str(ref.get("path") or ""))
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""
    return {"kind": ref.get("kind"), "name": ref.get("name"), "size": ref.get("size"),
            "content_type": ref.get("content_type"), "readable": digest == ref.get("sha256")}


class ProbeSkill(AISkillPlugin):
    """Probe: reports what the gateway handed it."""

    name = "probe"
    intents = ("probe",)
    timeout_seconds = 30.0

    def execute(self, turn: Turn) -> Reply:
        pause = re.search(r"sleep=(\d+)", turn.text)
        if pause:
            time.sleep(int(pause.group(1)) / 1000)
        if turn.text == "card please":
            return Reply(text="**form** (fallback)", kind="card", card={
                "template_id": CARD_TEMPLATE, "params": {"title": "Ask the probe"},
                "buttons": {"go": {"action": "probe.go", "params": {"x": "1"}}}})
        report = {
            "text": turn.text,
            "msgtype": turn.msgtype,
            "user": turn.user_id,
            "conversation": turn.conversation_id,
            "params": turn.params,
            "attachments": [_attachment(a) for a in turn.attachments],
            "history": [h.get("text", "") for h in turn.history if h.get("role") == "user"],
        }
        return Reply(text="PROBE " + json.dumps(report, ensure_ascii=False, sort_keys=True))
