"""Card callbacks (topic /v1.0/card/instances/callback) → structured skill params, or a Stop request."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

# Action ids (case-insensitive) that stop a streaming AI card instead of reaching a skill.
STOP_ACTIONS = frozenset({"stop", "stop_generating", "stopgenerating", "cancel_stream", "stop_stream"})


class BadCallback(ValueError):
    """A card callback without an outTrackId or with unreadable content."""


@dataclass(frozen=True)
class CardCallback:
    out_track_id: str
    user_id: str
    corp_id: str
    space_type: str
    space_id: str
    action_ids: tuple[str, ...] = ()
    values: dict[str, Any] = field(default_factory=dict)


def _json_object(value: Any, what: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if value in (None, ""):
        return {}
    try:
        parsed = json.loads(value)
    except (TypeError, ValueError) as exc:
        raise BadCallback(f"{what} is not JSON: {exc}") from exc
    if not isinstance(parsed, dict):
        raise BadCallback(f"{what} is not a JSON object")
    return parsed


def parse(payload: dict[str, Any]) -> CardCallback:
    """Read the callback's `data` (§5); `content` is a JSON *string* holding cardPrivateData."""
    out_track_id = str(payload.get("outTrackId") or "")
    if not out_track_id:
        raise BadCallback("card callback without outTrackId")
    content = _json_object(payload.get("content"), "content")
    private = _json_object(content.get("cardPrivateData"), "cardPrivateData")
    action_ids = private.get("actionIds") or []
    values = private.get("params") or {}
    return CardCallback(
        out_track_id=out_track_id,
        user_id=str(payload.get("userId") or ""),
        corp_id=str(payload.get("corpId") or ""),
        space_type=str(payload.get("spaceType") or ""),
        space_id=str(payload.get("spaceId") or ""),
        action_ids=tuple(str(a) for a in action_ids) if isinstance(action_ids, list) else (str(action_ids),),
        values=values if isinstance(values, dict) else {"value": values},
    )


def refusal(callback: CardCallback, owner: dict[str, Any], stop: bool = False) -> str:
    """Why this callback may not act on the card `owner` describes ("" when it may).

    DingTalk signs nothing inside the callback's data, and an outTrackId can be guessed or copied, so
    the card's owner record decides: never from another corp; Stop (which ends someone's answer) and
    anything on a private card only from the user the card answered; on a group card, other members
    only from inside that group (spaceType IM_GROUP, spaceId = the conversation).
    """
    tenant = str(owner.get("tenant_id") or "")
    if callback.corp_id and tenant and callback.corp_id != tenant:
        return f"from corp {callback.corp_id}, the card belongs to {tenant}"
    asker = str(owner.get("user_id") or "")
    if not callback.user_id:
        return "no user in the callback"
    if callback.user_id == asker:
        return ""
    if stop:
        return "Stop from a user the card did not answer"
    if str(owner.get("conversation_type") or "") != "2":
        return "a private card tapped by another user"
    in_group = callback.space_type.upper() == "IM_GROUP" and callback.space_id == owner.get("conversation_id")
    return "" if in_group else "from outside the card's group"


def wants_stop(callback: CardCallback) -> bool:
    """The Stop button of a streaming AI card."""
    asked = [a.lower() for a in callback.action_ids]
    action = str(callback.values.get("action") or "").lower()
    return any(a in STOP_ACTIONS for a in asked) or action in STOP_ACTIONS


def skill_params(callback: CardCallback, owner: dict[str, Any]) -> dict[str, Any]:
    """A registered button → {"type": "button", ...}; submitted values → {"type": "form_data", ...}."""
    registered = owner.get("buttons") or {}
    for action_id in callback.action_ids:
        button = registered.get(action_id)
        if isinstance(button, dict):
            params = dict(button.get("params") or {})
            return {"type": "button", "action": str(button.get("action") or action_id), "params": params,
                    "values": dict(callback.values), "out_track_id": callback.out_track_id}
    if callback.values:
        return {"type": "form_data", "fields": dict(callback.values),
                "action": callback.action_ids[0] if callback.action_ids else "",
                "out_track_id": callback.out_track_id}
    return {"type": "button", "action": callback.action_ids[0] if callback.action_ids else "",
            "params": {}, "values": {}, "out_track_id": callback.out_track_id}


def form_text(params: dict[str, Any]) -> str:
    """What a form says as plain text (e.g. its `query` field), so text-reading skills still work."""
    if params.get("type") != "form_data":
        return ""
    fields = params.get("fields") or {}
    for name in ("query", "text", "question", "content", "input"):
        if isinstance(fields.get(name), str) and fields[name].strip():
            return fields[name].strip()
    return ""
