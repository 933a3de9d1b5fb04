"""The card endpoints stand-in behaves like DingTalk where our code depends on it; card text fitting."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from sandbox.dingtalk_cards import CardPeer
from workers.cards import fit_card


def create(peer: CardPeer, out_track_id: str = "card-1", token: str | None = None) -> httpx.Response:
    body = {
        "cardTemplateId": "tpl", "outTrackId": out_track_id, "callbackType": "STREAM",
        "cardData": {"cardParamMap": {"flowStatus": "1", "content": ""}},
        "openSpaceId": "dtv1.card//IM_GROUP.cid-1", "imGroupOpenDeliverModel": {"robotCode": "r"},
    }
    return httpx.post(f"{peer.url}/v1.0/card/instances/createAndDeliver", json=body,
                      headers={"x-acs-dingtalk-access-token": token or peer.token})


def stream(peer: CardPeer, content: str, guid: str = "g1", **flags: Any) -> httpx.Response:
    body = {"outTrackId": "card-1", "guid": guid, "key": "content", "content": content, "isFull": True,
            "isFinalize": False, "isError": False, **flags}
    return httpx.put(f"{peer.url}/v1.0/card/streaming", json=body,
                     headers={"x-acs-dingtalk-access-token": peer.token})


def test_create_and_deliver_answers_with_the_delivery_results(card_peer: CardPeer) -> None:
    body = create(card_peer).json()
    assert body["success"] and body["result"]["outTrackId"] == "card-1"
    assert body["result"]["deliverResults"][0] == {**body["result"]["deliverResults"][0],
                                                   "spaceType": "IM_GROUP", "spaceId": "cid-1", "success": True}


def test_a_bad_token_is_refused_like_dingtalk_does(card_peer: CardPeer) -> None:
    resp = create(card_peer, token="wrong")
    assert resp.status_code == 400 and resp.json()["code"] == "InvalidAuthentication"


def test_streaming_content_over_1_kb_is_refused(card_peer: CardPeer) -> None:
    create(card_peer)
    assert stream(card_peer, "字" * 342).status_code == 400  # 1026 bytes
    assert stream(card_peer, "字" * 341).status_code == 200


def test_the_same_guid_is_applied_once(card_peer: CardPeer) -> None:
    create(card_peer)
    assert stream(card_peer, "a", guid="same").status_code == 200
    assert stream(card_peer, "a", guid="same").status_code == 200
    assert card_peer.read(lambda s: (len(s.updates), s.duplicate_guids)) == (1, 1)


def test_updates_after_the_final_one_are_refused(card_peer: CardPeer) -> None:
    create(card_peer)
    stream(card_peer, "done", guid="g1", isFinalize=True)
    assert stream(card_peer, "late", guid="g2").status_code == 400
    assert card_peer.read(lambda s: s.cards["card-1"]["status"]) == "finished"


def test_over_the_qps_limit_it_answers_403_qps_limit_for_api(card_peer: CardPeer) -> None:
    card_peer.set(qps_limit=3)
    create(card_peer)
    statuses = [stream(card_peer, "x", guid=f"g{i}").status_code for i in range(4)]
    assert statuses == [200, 200, 403, 403]
    assert card_peer.read(lambda s: s.calls[-1]["code"]) == "Forbidden.AccessDenied.QpsLimitForApi"


def test_text_that_fits_is_shown_whole() -> None:
    assert fit_card("hello", 100, tail="\n\n(stopped)") == ("hello\n\n(stopped)", "")


def test_long_text_is_cut_at_a_line_within_the_byte_limit_and_the_rest_handed_back() -> None:
    text = "\n".join(f"第{i}行内容" for i in range(200))
    shown, rest = fit_card(text, 1000, more="\n\n…more")
    assert len(shown.encode()) <= 1000 and shown.endswith("…more")
    head = shown.removesuffix("\n\n…more")
    assert head.endswith("内容") and head + "\n" + rest == text


def test_a_code_fence_open_at_the_cut_is_closed_and_reopened() -> None:
    text = "Intro\n```python\n" + "\n".join(f"x = {i}" for i in range(300)) + "\n```\nDone"
    shown, rest = fit_card(text, 500, more="\n…")
    assert shown.count("```") == 2 and len(shown.encode()) <= 500
    assert rest.startswith("```python\n") and rest.count("```") == 2


@pytest.mark.parametrize("limit", [50, 200, 1000])
def test_cutting_never_splits_a_character(limit: int) -> None:
    shown, rest = fit_card("汉" * 1000, limit)
    assert len(shown.encode()) <= limit and shown + rest == "汉" * 1000


def test_a_card_target_comes_from_the_turn() -> None:
    from tests.llm.conftest import make_turn
    from workers.card_api import CardTarget

    group = CardTarget.from_turn(make_turn(), "robot-1", at_sender=True)
    assert group.deliver_fields()["imGroupOpenDeliverModel"] == {"robotCode": "robot-1", "atUserIds": {"staff-1": "Alice"}}
    private = CardTarget.from_turn(make_turn(conversation_type="1", user_id="staff-9"), "robot-1")
    assert private.open_space_id == "dtv1.card//IM_ROBOT.staff-9"
    assert private.deliver_fields()["imRobotOpenDeliverModel"]["spaceType"] == "IM_ROBOT"
