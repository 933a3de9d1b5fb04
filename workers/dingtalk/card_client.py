"""DingTalk card OpenAPI calls (create+deliver, streaming, data update) within the shared rate budget."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import redis as redis_lib
from tenacity import (
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_any,
    wait_exponential_jitter,
)

from skills.api import Turn
from workers import metrics
from workers.dingtalk.ratebudget import RateBudget
from workers.errors import CardError, CardThrottled, CardTransient, CardUnavailable

log = logging.getLogger(__name__)
T = TypeVar("T")

QPS_LIMIT_CODES = ("Forbidden.AccessDenied.QpsLimitForApi",)
QPS_LIMIT_ERRCODES = (130101, 90002)
# How "this outTrackId is taken" reads (the exact DingTalk code is not documented; see protocol §9).
EXISTS_WORDS = ("已存在", "already exist")


@dataclass(frozen=True)
class CardTarget:
    """Where a card goes: a group (openConversationId) or the asker's 1:1 chat with the robot."""

    conversation_type: str  # "1" private, "2" group
    conversation_id: str
    user_id: str  # the asker's staffId
    robot_code: str
    user_nick: str = ""
    at_sender: bool = False

    @classmethod
    def from_turn(cls, turn: Turn, robot_code: str, at_sender: bool = False) -> CardTarget:
        return cls(turn.conversation_type, turn.conversation_id, turn.user_id, robot_code, turn.user_nick, at_sender)

    @property
    def is_group(self) -> bool:
        return self.conversation_type == "2"

    @property
    def open_space_id(self) -> str:
        if self.is_group:
            return f"dtv1.card//IM_GROUP.{self.conversation_id}"
        return f"dtv1.card//IM_ROBOT.{self.user_id}"

    def deliver_fields(self) -> dict[str, Any]:
        """The open-space and deliver models of createAndDeliver for this target (protocol §6.4)."""
        if self.is_group:
            deliver: dict[str, Any] = {"robotCode": self.robot_code}
            if self.at_sender and self.user_id:
                deliver["atUserIds"] = {self.user_id: self.user_nick or self.user_id}
            return {
                "openSpaceId": self.open_space_id,
                "imGroupOpenSpaceModel": {"supportForward": True},
                "imGroupOpenDeliverModel": deliver,
            }
        return {
            "openSpaceId": self.open_space_id,
            "imRobotOpenSpaceModel": {"supportForward": True},
            "imRobotOpenDeliverModel": {"spaceType": "IM_ROBOT", "robotCode": self.robot_code},
        }


@dataclass
class CardCallStats:
    """Counters of one client (shared by threads; ints under the GIL are good enough for counters)."""

    calls: int = 0
    throttled: int = 0
    retries: int = 0
    failures: int = 0
    by_path: dict[str, int] = field(default_factory=dict)


class CardClient:
    """The card endpoints over a pooled httpx.Client, an access-token callable and the rate budget.

    Every attempt first takes a token of the `card` family (so all workers together stay under
    DingTalk's QPS); a throttled or transient attempt is retried with the SAME body — for
    streaming the same guid, which DingTalk uses for idempotency — so nothing is lost or doubled.
    """

    def __init__(
        self,
        http: httpx.Client,
        base_url: str,
        token_provider: Callable[[], str],
        budget: RateBudget | None = None,
        *,
        family: str = "card",
        max_attempts: int = 6,
        backoff_initial: float = 0.2,
        backoff_max: float = 2.0,
        penalty_seconds: float = 1.0,
    ) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.token_provider = token_provider
        self.budget = budget
        self.family = family
        self.max_attempts = max_attempts
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.penalty_seconds = penalty_seconds
        self.stats = CardCallStats()

    # -- budget -------------------------------------------------------------------------------
    # The budget fails open: with Redis unreachable a card must still be finished, and DingTalk's
    # own 403s (retried below) still keep us in line.

    def take_budget(self) -> float:
        """Try to take one token now: 0.0 when taken, else seconds until one may be free."""
        return self._budget(lambda b: b.try_acquire(self.family), 0.0)

    def reserve_budget(self, max_wait: float) -> tuple[bool, float]:
        """Take a token now or book one within `max_wait` s: (booked, seconds until it is ours)."""
        return self._budget(lambda b: b.reserve(self.family, max_wait), (True, 0.0))

    def wait_budget(self, timeout: float) -> bool:
        """Block until one token is ours (True) or `timeout` s pass (False)."""
        return self._budget(lambda b: b.acquire(self.family, timeout), True)

    def _budget(self, use: Callable[[RateBudget], T], open_value: T) -> T:
        if self.budget is None:
            return open_value
        try:
            return use(self.budget)
        except redis_lib.RedisError as exc:
            log.warning("rate budget unavailable, going ahead without it: %r", exc)
            return open_value

    # -- calls --------------------------------------------------------------------------------

    def create_and_deliver(
        self,
        out_track_id: str,
        template_id: str,
        target: CardTarget,
        card_params: dict[str, str],
        *,
        budget_taken: bool = False,
    ) -> dict[str, Any]:
        """POST /v1.0/card/instances/createAndDeliver; CardUnavailable when no card can be shown."""
        if not template_id:
            raise CardUnavailable("no AI card template configured (DINGTALK_AI_CARD_TEMPLATE_ID)")
        body = {
            "cardTemplateId": template_id,
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": card_params},
            "callbackType": "STREAM",
            "userIdType": 1,
            **target.deliver_fields(),
        }
        try:
            answer = self.call("POST", "/v1.0/card/instances/createAndDeliver", body, budget_taken=budget_taken)
        except CardError as exc:
            if exc.status == 400 and any(word in str(exc) for word in EXISTS_WORDS):
                # A retried message: its card was created (and delivered) by the earlier attempt.
                log.info("card %s exists already; streaming into it again", out_track_id)
                return {"success": True, "result": {"outTrackId": out_track_id, "deliverResults": []}}
            raise CardUnavailable(f"card creation failed: {exc}", exc.status, exc.code) from exc
        results = (answer.get("result") or {}).get("deliverResults") or []
        failed = [r for r in results if isinstance(r, dict) and r.get("success") is False]
        if failed:
            raise CardUnavailable(f"card not delivered: {failed[0].get('errorMsg') or failed}")
        return answer

    def stream(
        self,
        out_track_id: str,
        key: str,
        content: str,
        *,
        finalize: bool = False,
        error: bool = False,
        budget_taken: bool = False,
        budget_timeout: float = 10.0,
        deadline: float = 30.0,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """PUT /v1.0/card/streaming with the full markdown (isFull) and one guid for all retries."""
        body = {
            "outTrackId": out_track_id,
            "guid": uuid.uuid4().hex,
            "key": key,
            "content": content,
            "isFull": True,
            "isFinalize": finalize,
            "isError": error,
        }
        return self.call(
            "PUT", "/v1.0/card/streaming", body, budget_taken=budget_taken,
            budget_timeout=budget_timeout, deadline=deadline, timeout=timeout,
        )

    def update(self, out_track_id: str, card_params: dict[str, str], **kwargs: Any) -> dict[str, Any]:
        """PUT /v1.0/card/instances: merge these template variables (e.g. flowStatus) into the card."""
        body = {
            "outTrackId": out_track_id,
            "cardData": {"cardParamMap": card_params},
            "cardUpdateOptions": {"updateCardDataByKey": True},
        }
        return self.call("PUT", "/v1.0/card/instances", body, **kwargs)

    def call(
        self,
        method: str,
        path: str,
        body: dict[str, Any],
        *,
        budget_taken: bool = False,
        budget_timeout: float = 10.0,
        deadline: float = 30.0,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """One logical call: budget, send, retry throttled/transient attempts with backoff, same body."""
        attempts = 0
        result: dict[str, Any] = {}
        retrying = Retrying(
            retry=retry_if_exception_type((CardThrottled, CardTransient)),
            stop=stop_any(stop_after_attempt(self.max_attempts), stop_after_delay(deadline)),
            wait=wait_exponential_jitter(
                multiplier=self.backoff_initial, max=self.backoff_max, jitter=self.backoff_initial
            ),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    if attempts:
                        self.stats.retries += 1
                    if attempts or not budget_taken:
                        self._take(budget_timeout)
                    attempts += 1
                    result = self._send(method, path, body, timeout)
        except CardError:
            self.stats.failures += 1
            raise
        return result

    def _take(self, budget_timeout: float) -> None:
        if not self.wait_budget(budget_timeout):
            # Not a CardThrottled: waiting longer for our own budget will not help within this call.
            raise CardError(f"no {self.family} rate budget within {budget_timeout}s")

    def _send(self, method: str, path: str, body: dict[str, Any], timeout: float | None) -> dict[str, Any]:
        self.stats.calls += 1
        self.stats.by_path[path] = self.stats.by_path.get(path, 0) + 1
        try:
            token = self.token_provider()
        except Exception as exc:  # the provider is the caller's code; no token now is a retryable miss
            raise CardTransient(f"no access token for {method} {path}: {exc!r}") from exc
        headers = {"x-acs-dingtalk-access-token": token}
        try:
            resp = self.http.request(method, self.base_url + path, json=body, headers=headers,
                                     timeout=httpx.USE_CLIENT_DEFAULT if timeout is None else timeout)
        except httpx.TransportError as exc:
            metrics.dingtalk_call(self.family, "network")
            raise CardTransient(f"{method} {path}: {exc!r}") from exc
        try:
            data = resp.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        code = str(data.get("code") or "")
        metrics.dingtalk_call(self.family, code or data.get("errcode") or resp.status_code)
        if code in QPS_LIMIT_CODES or data.get("errcode") in QPS_LIMIT_ERRCODES:
            self.stats.throttled += 1
            # Everyone backs off, not only this worker: the limit is per app.
            self._budget(lambda b: b.penalize(self.family, self.penalty_seconds), None)
            log.info("card call throttled path=%s out_track_id=%s", path, body.get("outTrackId"))
            raise CardThrottled(f"{method} {path}: {code or data.get('errcode')}", resp.status_code, code)
        if resp.status_code >= 500:
            raise CardTransient(f"{method} {path}: HTTP {resp.status_code} {code}", resp.status_code, code)
        if resp.status_code >= 400 or data.get("success") is False:
            message = data.get("message") or resp.text[:200]
            raise CardError(f"{method} {path}: HTTP {resp.status_code} {code} {message}", resp.status_code, code)
        return data
