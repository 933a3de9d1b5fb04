"""The timeline page of the admin: find a message (msgId, user, conversation, time) and see its whole life."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from webapp import timeline
from webapp.models import MessageRecord


def _when(raw: str) -> dt.datetime | None:
    """A datetime-local field's value (in the server's time zone when it names none)."""
    value = parse_datetime(raw.strip()) if raw and raw.strip() else None
    if value is not None and timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def _context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    return {**admin.site.each_context(request), "opts": MessageRecord._meta, **extra}


def search_view(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")
    since, until = _when(request.GET.get("since", "")), _when(request.GET.get("until", ""))
    asked = bool(query or since or until)
    records = list(timeline.search(query, since, until)) if asked else []
    if len(records) == 1 and query:
        return detail_view(request, records[0].pk)
    return render(request, "admin/webapp/timeline_search.html", _context(
        request, title="Message timeline", query=query, since=request.GET.get("since", ""),
        until=request.GET.get("until", ""), asked=asked, records=records))


def detail_view(request: HttpRequest, pk: int) -> HttpResponse:
    record = get_object_or_404(MessageRecord.objects.select_related("user"), pk=pk)
    return render(request, "admin/webapp/timeline.html", _context(
        request, title=f"Timeline of {record.msg_id}", timeline=timeline.build(record),
        search_url=reverse("admin:webapp_messagerecord_timeline_search")))


def urls() -> list[URLPattern]:
    """Mounted under the message records' admin (see records.MessageRecordAdmin.get_urls)."""
    wrap = admin.site.admin_view
    return [
        path("timeline/", wrap(search_view), name="webapp_messagerecord_timeline_search"),
        path("<int:pk>/timeline/", wrap(detail_view), name="webapp_messagerecord_timeline"),
    ]
