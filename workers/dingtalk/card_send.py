"""Interactive cards a skill returns (Reply kind "card"): create + deliver, and remember the owner for callbacks.

`Reply.card = {"template_id": "...", "params": {"k": "string"}, "buttons": {actionId: {"action", "params"}}}`;
the template's callback buttons send `actionIds`; `buttons` says what each one means to the skill.
A card that cannot be shown (no template, no permission) goes out as markdown instead.
"""

from __future__ import annotations

import logging

from skills.api import Reply
from workers.dingtalk.api import DingTalkAPI
from workers.dingtalk.card_client import CardClient, CardTarget
from workers.dingtalk.card_streamer import out_track_id_for
from workers.dingtalk.card_text import card_value
from workers.dingtalk.ratebudget import RateBudget
from workers.errors import CardError, CardUnavailable, TransientError
from workers.payload import StagePayload
from workers.state import cards

log = logging.getLogger(__name__)


def card_client(api: DingTalkAPI, budget: RateBudget | None) -> CardClient:
    if api.tokens is None:
        raise TransientError("no access-token cache for the card API")
    return CardClient(api.http, api.endpoint, api.tokens.get, budget)


def send_card(
    api: DingTalkAPI, budget: RateBudget | None, payload: StagePayload, index: int, reply: Reply,
    robot_code: str,
) -> bool:
    """Create and deliver the card; False when no card can be shown (the caller sends markdown)."""
    card = reply.card or {}
    turn, delivery = payload.turn, payload.delivery
    out_track_id = out_track_id_for(f"{payload.msg_id}:{index}")
    # Template values are shown as given: markdown and HTML in them (a user's words, a remote's JSON) escaped.
    params = {str(k): card_value(v) for k, v in (card.get("params") or {}).items()}
    target = CardTarget(
        conversation_type=str(delivery.get("conversation_type") or turn.conversation_type or "1"),
        conversation_id=str(delivery.get("conversation_id") or ""),
        user_id=str(delivery.get("sender_staff_id") or turn.user_id or ""),
        robot_code=robot_code,
        user_nick=turn.user_nick,
        at_sender=True,
    )
    # Remembered first: a click can come back before createAndDeliver has even answered.
    cards.remember(out_track_id, cards.owner_for(turn.to_dict(), delivery, card.get("buttons")))
    try:
        card_client(api, budget).create_and_deliver(out_track_id, str(card.get("template_id") or ""),
                                                    target, params)
    except CardUnavailable as exc:
        log.warning("card %s not shown (%s); replying in markdown", out_track_id, exc)
        return False
    except CardError as exc:
        raise TransientError(f"card {out_track_id}: {exc}") from exc
    log.info("card %s delivered", out_track_id)
    return True
