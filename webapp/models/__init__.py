"""Models of the webapp; each concern in its own module, re-exported here."""

from webapp.models.audit import AuditLog
from webapp.models.deadletters import DeadLetter
from webapp.models.documents import Document, DocumentCollection
from webapp.models.profiles import UserProfile
from webapp.models.records import DeliveryChannel, MessageRecord, MessageStatus
from webapp.models.reminders import Reminder, ReminderFiring

__all__ = [
    "AuditLog",
    "DeadLetter",
    "DeliveryChannel",
    "Document",
    "DocumentCollection",
    "MessageRecord",
    "MessageStatus",
    "Reminder",
    "ReminderFiring",
    "UserProfile",
]
