"""URL routes: admin, health, metrics, the Alertmanager → DingTalk bridge."""

from django.contrib import admin
from django.urls import path

from webapp import alerting, views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("healthz", views.healthz, name="healthz"),
    path("readyz", views.readyz, name="readyz"),
    path("metrics", views.metrics_view, name="metrics"),
    path("ops/alerts", alerting.alerts_view, name="ops-alerts"),
]
