"""DingTalk HTTP calls of the workers: sessionWebhook replies, access token, robot sends."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from skills.api import Reply
from workers import metrics
from workers.dingtalk.outbound import openapi_message, webhook_body
from workers.dingtalk.token import TokenCache
from workers.errors import DeliveryUnknown, PoisonMessage, Throttled, TransientError, WebhookExpired

__all__ = ["DingTalkAPI", "openapi_message", "webhook_body"]

log = logging.getLogger(__name__)

ERRCODE_SESSION_GONE = 300001
# Webhook errcodes meaning "too fast, try later" (130101 send too fast, 90002 API QPS, 90018).
RATE_LIMIT_ERRCODES = {130101, 90002, 90018}
TOKEN_HEADER = "x-acs-dingtalk-access-token"


def _post(http: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
          ) -> httpx.Response:
    """POST with the client's timeouts; network trouble is transient. Every call is counted by its
    API family and answer code (workers.metrics)."""
    family = _family(url)
    try:
        response = http.post(url, json=body, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        metrics.dingtalk_call(family, "network")
        # The request never left: retrying cannot double-send.
        raise TransientError(f"could not reach {_path(url)}: {exc!r}") from exc
    except httpx.TransportError as exc:
        metrics.dingtalk_call(family, "network")
        # Read/write timeouts and dropped connections happen after the request may have been
        # processed; resending could answer twice, so the outcome is recorded as unknown.
        raise DeliveryUnknown(f"no answer from {_path(url)}: {exc!r}") from exc
    errcode = _json(response).get("errcode") if response.status_code < 400 else None
    metrics.dingtalk_call(family, errcode if errcode else response.status_code)
    return response


def _family(url: str) -> str:
    """A bounded label for the URL: its API family, never its parameters."""
    path = httpx.URL(url).path
    for marker, family in (("oauth2", "token"), ("messageFiles", "files"), ("oToMessages", "robot_send"),
                           ("groupMessages", "robot_send")):
        if marker in path:
            return family
    return "openapi" if path.startswith("/v1.0/") else "webhook"


def _path(url: str) -> str:
    # Never log the webhook's session parameter or tokens.
    return httpx.URL(url).path


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def _raise_for_http(response: httpx.Response, what: str) -> None:
    """Map HTTP-level failures: 5xx/429/QPS-403 transient, other 4xx poison."""
    status = response.status_code
    if status < 400:
        return
    data = _json(response)
    code = str(data.get("code") or "")
    detail = f"{what}: HTTP {status} {code} {str(data.get('message') or '')[:200]}".strip()
    retry_after = response.headers.get("Retry-After")
    wait = float(retry_after) if retry_after and retry_after.replace(".", "", 1).isdigit() else None
    if status == 429 or "QpsLimit" in code or "Throttl" in code:
        raise Throttled(detail, retry_after=wait)
    if status >= 500:
        raise TransientError(detail, retry_after=wait)
    raise PoisonMessage(detail)


class DingTalkAPI:
    """One app's DingTalk calls over a shared pooled client; the token lives in Redis."""

    def __init__(
        self, http: httpx.Client, endpoint: str, client_id: str, client_secret: str,
        tokens: TokenCache | None = None,
    ) -> None:
        self.http = http
        self.endpoint = endpoint.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens = tokens

    # --- sessionWebhook -------------------------------------------------------------------
    def send_webhook(self, url: str, body: dict[str, Any]) -> None:
        """POST to the message's sessionWebhook; success is errcode 0, not HTTP 200."""
        response = _post(self.http, url, body)
        data = _json(response)
        errcode = data.get("errcode")
        if errcode == ERRCODE_SESSION_GONE:
            raise WebhookExpired(str(data.get("errmsg") or "session gone"))
        _raise_for_http(response, "sessionWebhook")
        if errcode in RATE_LIMIT_ERRCODES:
            raise Throttled(f"sessionWebhook throttled: errcode {errcode}")
        if errcode != 0:
            raise PoisonMessage(f"sessionWebhook refused: errcode {errcode} {data.get('errmsg')}")

    # --- access token ---------------------------------------------------------------------
    def fetch_token(self) -> tuple[str, int]:
        """POST /v1.0/oauth2/accessToken → (token, lifetime s); bad credentials are poison."""
        url = f"{self.endpoint}/v1.0/oauth2/accessToken"
        response = _post(
            self.http, url, {"appKey": self.client_id, "appSecret": self.client_secret}
        )
        if response.status_code in (400, 401, 403) and "QpsLimit" not in response.text:
            raise PoisonMessage(
                f"access token refused (HTTP {response.status_code} "
                f"{_json(response).get('code')}): check DINGTALK_CLIENT_ID / DINGTALK_CLIENT_SECRET"
            )
        _raise_for_http(response, "accessToken")
        data = _json(response)
        return str(data.get("accessToken") or ""), int(data.get("expireIn") or 0)

    def _openapi(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST an OpenAPI call with the cached token; one refresh when the token is refused."""
        if self.tokens is None:
            raise PoisonMessage("no token cache configured for the DingTalk OpenAPI")
        url = f"{self.endpoint}{path}"
        for attempt in (1, 2):
            token = self.tokens.get()
            response = _post(self.http, url, body, headers={TOKEN_HEADER: token})
            code = str(_json(response).get("code") or "")
            if response.status_code in (400, 401) and code == "InvalidAuthentication":
                log.warning("access token refused by %s (attempt %d), refreshing", path, attempt)
                self.tokens.invalidate(token)
                continue
            _raise_for_http(response, path)
            return _json(response)
        raise TransientError(f"{path}: access token refused twice")

    def send_private(self, robot_code: str, staff_id: str, reply: Reply) -> None:
        """1:1 chat: POST /v1.0/robot/oToMessages/batchSend to one user."""
        msg_key, msg_param = openapi_message(reply)
        data = self._openapi(
            "/v1.0/robot/oToMessages/batchSend",
            {"robotCode": robot_code, "userIds": [staff_id], "msgKey": msg_key,
             "msgParam": msg_param},
        )
        if staff_id in (data.get("flowControlledStaffIdList") or []):
            raise TransientError("batchSend: the user is flow-controlled")
        if staff_id in (data.get("invalidStaffIdList") or []):
            raise PoisonMessage(f"batchSend: invalid staff id {staff_id!r}")

    def send_group(self, robot_code: str, open_conversation_id: str, reply: Reply) -> None:
        """Group chat: POST /v1.0/robot/groupMessages/send."""
        msg_key, msg_param = openapi_message(reply)
        self._openapi(
            "/v1.0/robot/groupMessages/send",
            {"robotCode": robot_code, "openConversationId": open_conversation_id,
             "msgKey": msg_key, "msgParam": msg_param},
        )

    # --- files users sent --------------------------------------------------------------------
    def download_url(self, robot_code: str, download_code: str) -> str:
        """POST /v1.0/robot/messageFiles/download → the temporary URL of a file a user sent."""
        data = self._openapi(
            "/v1.0/robot/messageFiles/download",
            {"downloadCode": download_code, "robotCode": robot_code},
        )
        url = str(data.get("downloadUrl") or "")
        if not url:
            raise PoisonMessage("messageFiles/download answered without a downloadUrl")
        return url
