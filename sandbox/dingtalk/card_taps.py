"""A tap on an interactive card's button, as the DingTalk client reports it: a card callback push.

`POST /sandbox/cards/{outTrackId}/callback {"action_ids": ["stop"], "params": {}, "user_id": "demo"}`
pushes `/v1.0/card/instances/callback` with the card's space (its private chat or group) and the
tapping user, through the same redelivery machinery as any push (the chat page's card buttons use it).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.dingtalk.context import SANDBOX_KEY, Sandbox
from sandbox.dingtalk.messages import corp_id

# The sandbox speaks DingTalk's protocol on its own (it imports none of the bot's code).
TOPIC_CARD_CALLBACK = "/v1.0/card/instances/callback"


def callback_data(sb: Sandbox, card: dict[str, Any], user_id: str, action_ids: list[str],
                  params: dict[str, Any]) -> dict[str, Any]:
    """The decoded `data` of the push DingTalk sends when `user_id` taps the card (§5)."""
    reply = next((r for r in sb.recorder.replies if r["id"] in set(card["reply_ids"])), None)
    group = bool(reply and reply.get("conversation_type") == "2")
    private = {"actionIds": list(action_ids), "params": dict(params)}
    return {
        "outTrackId": card["outTrackId"],
        "userId": user_id,
        "userIdType": 1,
        "corpId": corp_id(sb.config.client_id),
        "spaceType": "IM_GROUP" if group else "IM_ROBOT",
        "spaceId": str(reply.get("conversation_id") or "") if group and reply else user_id,
        "type": "actionCallback",
        "content": json.dumps({"cardPrivateData": private}, ensure_ascii=False),
        "extension": "{}",
    }


async def post_callback(request: web.Request) -> web.Response:
    sb = request.app[SANDBOX_KEY]
    card = sb.cards.get(request.match_info["out_track_id"])
    if card is None:
        raise web.HTTPNotFound(text='{"error": "no such card"}', content_type="application/json")
    try:
        body = await request.json() if request.can_read_body else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return web.json_response({"error": "body must be a JSON object"}, status=400)
    action_ids, params = body.get("action_ids") or [], body.get("params", {})
    user_id = body.get("user_id")
    if not isinstance(action_ids, list) or not all(isinstance(a, str) and a for a in action_ids) or not action_ids:
        return web.json_response({"error": "action_ids must be a non-empty list of strings"}, status=400)
    if not isinstance(params, dict) or not isinstance(user_id, str) or not user_id:
        return web.json_response({"error": "params must be an object and user_id a non-empty string"}, status=400)
    push = sb.gateway.push(callback_data(sb, card, user_id, action_ids, params), topic=TOPIC_CARD_CALLBACK)
    return web.json_response({"messageId": push.message_id})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/sandbox/cards/{out_track_id}/callback", post_callback)
