"""HTTP endpoints besides admin: /healthz (liveness), /readyz (stores and listener), /metrics (Prometheus)."""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from webapp import health, metrics


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness only: the process answers. No store is called, so an outage of one never gets
    the web restarted (a restart cannot fix PostgreSQL); /readyz says what is missing."""
    return JsonResponse({"status": "ok"})


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    checks = health.run_checks()
    ok = all(result == "ok" for result in checks.values())
    return JsonResponse({"status": "ok" if ok else "error", "checks": checks},
                        status=200 if ok else 503)


def metrics_allowed(request: HttpRequest) -> bool:
    """/metrics answers only the scraper holding METRICS_TOKEN (Prometheus `authorization`);
    without a token configured it is open, which production mode refuses (webapp.settings)."""
    token = getattr(settings, "METRICS_TOKEN", "")
    if not token:
        return True
    sent = request.headers.get("Authorization", "")
    return hmac.compare_digest(sent.encode(), f"Bearer {token}".encode())


@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not metrics_allowed(request):
        response = HttpResponse("metrics need the scraper's bearer token\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(metrics.registry()), content_type=CONTENT_TYPE_LATEST)
