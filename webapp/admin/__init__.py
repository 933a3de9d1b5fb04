"""Django admin: one module per concern; importing this package registers every ModelAdmin."""

from webapp.admin import site

site.install()

from webapp.admin import audit, documents, operators, records, reminders, routing, skills, timeline  # noqa: E402

__all__ = ["audit", "documents", "operators", "records", "reminders", "routing", "skills", "timeline"]
