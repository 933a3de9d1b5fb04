"""The sandbox chat page, used as a newcomer uses it: headless Chromium on the page `make run` prints,
against the roles it starts (sandbox, LLM stub, listener, pipeline and skills workers) and the sample
handbook it loads. Screenshots of every step are kept under the test's tmp dir (the path is printed)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from testkit import browser
from testkit.stack import ROOT, Stack
from tests.support.skill_stack import CARD_TEMPLATE, run_bot
from webapp.models import Reminder

pytestmark = pytest.mark.slow

pytest.importorskip("selenium")
from selenium.webdriver.common.by import By  # noqa: E402 - after the import check
from selenium.webdriver.common.keys import Keys  # noqa: E402


class Page:
    """The chat page as a person sees it: type, press Enter, read the bubbles, tap buttons."""

    def __init__(self, driver: Any, shots: Path) -> None:
        self.driver, self.shots = driver, shots
        self.step = 0

    def shot(self, name: str) -> Path:
        self.step += 1
        path = self.shots / f"{self.step:02d}-{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def wait(self, check: Callable[[], Any], what: str, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = check()
            if found:
                return found
            time.sleep(0.1)
        self.shot("timeout")
        raise TimeoutError(f"the page never showed {what}; screenshots in {self.shots}")

    def bot_bubbles(self) -> list[Any]:
        return self.driver.find_elements(By.CSS_SELECTOR, ".row.bot .bubble")

    def say(self, text: str) -> int:
        """Type a message and press Enter; returns how many bot bubbles there were before."""
        before = len(self.bot_bubbles())
        box = self.driver.find_element(By.ID, "text")
        box.send_keys(text)
        box.send_keys(Keys.ENTER)
        return before

    def answer(self, before: int, what: str, contains: str = "", timeout: float = 60) -> Any:
        def found() -> Any:
            new = self.bot_bubbles()[before:]
            return next((b for b in new if contains in b.text), None)

        return self.wait(found, what, timeout)

    def mode(self, label: str) -> None:
        self.driver.find_element(By.XPATH, f"//div[@id='mode']/button[text()='{label}']").click()


def load_sample_handbook(bot: Stack) -> str:
    """The step `make run` takes in sandbox mode (bin/run), with the same command line."""
    done = subprocess.run(
        [sys.executable, "manage.py", "ingest_documents", "sandbox/handbook", "--collection", "sample-handbook",
         "--public", "--if-missing"], cwd=ROOT, env=bot.env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_newcomer_chats_confirms_a_reminder_watches_a_card_stream_and_asks_the_handbook(
        stack: Stack, stub, pgvector_url: str, tmp_path: Path):
    stub.configure(inter_token_delay=0.05, tokens=40)
    run_bot(stack, DINGTALK_AI_CARD_TEMPLATE_ID=CARD_TEMPLATE, LLM_BASE_URL=stub.base_url, LLM_MODEL="stub-llm",
            VECTOR_DATABASE_URL=pgvector_url)
    loaded = load_sample_handbook(stack)
    assert "员工手册.md: ready" in loaded and "Employee handbook.md: ready" in loaded, loaded
    assert "exists; nothing to do" in load_sample_handbook(stack)  # the next `make run` keeps it

    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"\nchat page screenshots: {shots}")
    with browser.chromium() as driver:
        page = Page(driver, shots)
        driver.get(stack.sandbox_url + "/")
        page.wait(lambda: "bot connected" in driver.find_element(By.ID, "status").text, "the bot connected")
        page.shot("opened")

        # Private chat: help.
        help_reply = page.answer(page.say("help"), "the help reply", "What I can do")
        assert "schedule" in help_reply.text
        page.shot("help")

        # A reminder: the card's Confirm button does what DingTalk's client does (sends "确认").
        card = page.answer(page.say("明天下午三点提醒我交周报"), "the reminder card", "交周报")
        confirm = card.find_element(By.XPATH, ".//button[text()='确认']")
        assert confirm.get_attribute("data-url").startswith("dtmd://dingtalkclient/sendMessage?content=")
        page.shot("reminder-card")
        tabs = len(driver.window_handles)
        before = len(page.bot_bubbles())
        confirm.click()
        page.wait(lambda: any(r.text == "确认" for r in driver.find_elements(By.CSS_SELECTOR, ".row.me .bubble")),
                  "the tap sent as my message")
        saved = page.answer(before, "the reminder confirmed", "交周报")
        assert len(driver.window_handles) == tabs  # no new tab opened on a dtmd:// link
        page.wait(lambda: Reminder.objects.filter(title__contains="交周报").exists(), "the reminder saved")
        assert saved != card
        page.shot("reminder-confirmed")

        # An AI card streams in and finishes.
        before = page.say("tell me about streaming answers")
        streaming = page.answer(before, "the AI card", timeout=60)
        page.wait(lambda: streaming.get_attribute("data-status") == "inputting", "the card typing")
        partial = streaming.text
        page.shot("card-streaming")
        page.wait(lambda: streaming.get_attribute("data-status") == "finished", "the card done", timeout=60)
        assert "card · done" in streaming.text and len(streaming.text) > len(partial)
        assert "[stub LLM]" in streaming.text
        page.shot("card-done")

        # Its Stop button calls back: a long answer stops within a second or two.
        stub.configure(inter_token_delay=0.1, tokens=400)
        long_card = page.answer(page.say("tell me a very long story"), "the long card")
        page.wait(lambda: long_card.get_attribute("data-status") == "inputting", "the long card typing")
        long_card.find_element(By.XPATH, ".//button[text()='Stop']").click()
        page.wait(lambda: long_card.get_attribute("data-status") == "finished", "the card stopped", timeout=15)
        assert "已停止" in long_card.text
        page.shot("card-stopped")
        stub.configure(inter_token_delay=0.02, tokens=20)

        # The group chat: the handbook answers with its citation.
        page.mode("Group chat")
        handbook = page.answer(page.say("年假怎么申请？"), "the handbook answer", "员工手册", timeout=90)
        assert "年假申请流程" in handbook.text or "年假" in handbook.text
        assert "文档中没有找到相关内容" not in handbook.text
        page.shot("group-handbook")
        group_card = page.answer(page.say("hello everyone"), "a group answer", timeout=60)
        page.wait(lambda: group_card.get_attribute("data-status") == "finished", "the group card done")
        page.shot("group-card")
    assert len(list(shots.glob("*.png"))) >= 9
