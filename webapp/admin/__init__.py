"""Django admin: one module per concern; importing this package registers every ModelAdmin."""

from webapp.admin import audit, documents, records, reminders, routing, skills, timeline

__all__ = ["audit", "documents", "records", "reminders", "routing", "skills", "timeline"]
