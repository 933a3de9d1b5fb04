"""The Alertmanager → DingTalk bridge: `POST /ops/alerts` takes Alertmanager's webhook payload (bearer
ALERT_WEBHOOK_TOKEN), writes it as one markdown message and posts it to the ops group's custom robot
(OPS_DINGTALK_ROBOT_WEBHOOK, signed with OPS_DINGTALK_ROBOT_SECRET as DingTalk's 加签 asks)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from typing import Any

import httpx
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from conf.settings import Settings, get_settings

log = logging.getLogger(__name__)

# One robot message stays readable (and under DingTalk's size limit): the first alerts, then a count.
MAX_ALERTS_SHOWN = 10
MAX_TEXT_CHARS = 4000
# The robot's answers that a later retry can fix (Alertmanager retries on 5xx): too fast, busy.
RETRYABLE_ERRCODES = {410100, 130101, -1}
SEVERITY_MARKS = {"critical": "🔴", "page": "🟠", "warn": "🟡"}


class RobotError(Exception):
    """The robot refused the message (`retry`: a later attempt may pass)."""

    def __init__(self, message: str, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def signed_params(secret: str, now: float) -> dict[str, str]:
    """DingTalk's 加签: timestamp in ms and base64(HMAC-SHA256(secret, "timestamp\\nsecret"))."""
    timestamp = str(int(now * 1000))
    digest = hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(), hashlib.sha256).digest()
    return {"timestamp": timestamp, "sign": base64.b64encode(digest).decode()}


def _line(alert: dict[str, Any]) -> str:
    labels = alert.get("labels") or {}
    annotations = alert.get("annotations") or {}
    resolved = alert.get("status") == "resolved"
    status = "✅ resolved" if resolved else SEVERITY_MARKS.get(str(labels.get("severity")), "⚠️")
    where = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in ("alertname", "severity"))
    summary = annotations.get("summary") or annotations.get("description") or ""
    return f"- {status} **{labels.get('alertname', '?')}** {summary}" + (f" ({where})" if where else "")


def format_message(payload: dict[str, Any]) -> tuple[str, str]:
    """(title, markdown text) of one Alertmanager notification."""
    alerts = [a for a in payload.get("alerts") or [] if isinstance(a, dict)]
    firing = sum(1 for a in alerts if a.get("status") == "firing")
    common = payload.get("commonLabels") or {}
    name = common.get("alertname") or (payload.get("groupLabels") or {}).get("alertname") or "alerts"
    state = f"FIRING:{firing}" if firing else "RESOLVED"
    title = f"[{state}] {name}"
    lines = [f"### {title}", ""] + [_line(a) for a in alerts[:MAX_ALERTS_SHOWN]]
    if len(alerts) > MAX_ALERTS_SHOWN:
        lines.append(f"- … and {len(alerts) - MAX_ALERTS_SHOWN} more")
    if payload.get("externalURL"):
        lines += ["", f"[Alertmanager]({payload['externalURL']})"]
    text = "\n".join(lines)
    return title, text if len(text) <= MAX_TEXT_CHARS else text[: MAX_TEXT_CHARS - 1] + "…"


def post_to_robot(settings: Settings, title: str, text: str, now: float | None = None) -> None:
    """One markdown message to the ops robot; RobotError when DingTalk refuses it or cannot be reached."""
    params = signed_params(settings.ops_dingtalk_robot_secret, time.time() if now is None else now) \
        if settings.ops_dingtalk_robot_secret else {}
    body = {"msgtype": "markdown", "markdown": {"title": title, "text": text}}
    try:
        # Merged into the webhook's own query (access_token): httpx's `params=` would replace it.
        url = httpx.URL(settings.ops_dingtalk_robot_webhook).copy_merge_params(params)
        response = httpx.post(url, json=body, timeout=settings.http_timeout_seconds)
    except httpx.HTTPError as exc:
        raise RobotError(f"robot unreachable: {exc!r}", retry=True) from exc
    try:
        answer = response.json()
    except ValueError:
        answer = {}
    if response.status_code >= 400 or not isinstance(answer, dict):
        raise RobotError(f"robot answered HTTP {response.status_code}", retry=response.status_code >= 500)
    errcode = answer.get("errcode", 0)
    if errcode != 0:
        raise RobotError(f"robot refused: errcode {errcode} {answer.get('errmsg', '')}",
                         retry=errcode in RETRYABLE_ERRCODES)


def _authorized(request: HttpRequest, token: str) -> bool:
    given = request.headers.get("Authorization", "")
    return bool(token) and hmac.compare_digest(given.encode(), f"Bearer {token}".encode())


@csrf_exempt
@require_POST
def alerts_view(request: HttpRequest) -> HttpResponse:
    """POST /ops/alerts: 200 when the ops group has the message; 4xx for a bad call (Alertmanager does not
    retry those), 5xx when the robot could take it later (Alertmanager retries)."""
    settings = get_settings()
    if not _authorized(request, settings.alert_webhook_token):
        return JsonResponse({"error": "alerts need Alertmanager's bearer token (ALERT_WEBHOOK_TOKEN)"}, status=401)
    if not settings.ops_dingtalk_robot_webhook:
        log.error("an alert arrived but OPS_DINGTALK_ROBOT_WEBHOOK is not set: nobody is told")
        return JsonResponse({"error": "OPS_DINGTALK_ROBOT_WEBHOOK is not set"}, status=503)
    try:
        payload = json.loads(request.body)
    except ValueError:
        return JsonResponse({"error": "the body is not JSON"}, status=400)
    if not isinstance(payload, dict) or not isinstance(payload.get("alerts"), list):
        return JsonResponse({"error": "not an Alertmanager webhook payload (no alerts list)"}, status=400)
    title, text = format_message(payload)
    try:
        post_to_robot(settings, title, text)
    except RobotError as exc:
        log.error("could not post alert %r to the ops robot: %s", title, exc)
        return JsonResponse({"error": str(exc)}, status=503 if exc.retry else 502)
    log.info("alert %r posted to the ops robot (%d alerts)", title, len(payload["alerts"]))
    return JsonResponse({"posted": title})
