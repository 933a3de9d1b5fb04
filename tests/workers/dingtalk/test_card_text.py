"""What a card shows: the byte limit, the overflow handed back, markdown kept whole; where it goes."""

from __future__ import annotations

import pytest

from testkit.personas import alice, bob, make_turn
from workers.dingtalk.card_client import CardTarget
from workers.dingtalk.card_streamer import fit_card, out_track_id_for


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


def test_the_card_id_is_stable_per_message_and_differs_between_messages() -> None:
    assert out_track_id_for("m1") == out_track_id_for("m1") != out_track_id_for("m2")


def test_a_card_target_comes_from_the_turn() -> None:
    group = CardTarget.from_turn(make_turn(), "robot-1", at_sender=True)
    assert group.open_space_id == "dtv1.card//IM_GROUP.cid-group-1"
    assert group.deliver_fields()["imGroupOpenDeliverModel"] == {
        "robotCode": "robot-1", "atUserIds": {alice.user_id: alice.nick}}
    private = CardTarget.from_turn(bob.turn(), "robot-1")
    assert private.open_space_id == f"dtv1.card//IM_ROBOT.{bob.staff_id}"
    assert private.deliver_fields()["imRobotOpenDeliverModel"] == {"spaceType": "IM_ROBOT", "robotCode": "robot-1"}
