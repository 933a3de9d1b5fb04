"""Models of the webapp; each concern in its own module, re-exported here."""

from webapp.models.audit import AuditLog
from webapp.models.deadletters import DeadLetter
from webapp.models.documents import Document, DocumentCollection
from webapp.models.profiles import UserProfile
from webapp.models.records import DeliveryChannel, MessageRecord, MessageStatus
from webapp.models.reminders import Reminder, ReminderFiring
from webapp.models.routing import IntentExample, RoutedTurn, RouterModel
from webapp.models.skills import AdminSetting, RemoteSkill, SettingVersion, SkillSetting

__all__ = [
    "AdminSetting",
    "AuditLog",
    "DeadLetter",
    "DeliveryChannel",
    "Document",
    "DocumentCollection",
    "IntentExample",
    "MessageRecord",
    "MessageStatus",
    "Reminder",
    "ReminderFiring",
    "RemoteSkill",
    "RoutedTurn",
    "RouterModel",
    "SettingVersion",
    "SkillSetting",
    "UserProfile",
]
