"""Models of the webapp; each concern in its own module, re-exported here."""

from webapp.models.deadletters import DeadLetter
from webapp.models.profiles import UserProfile
from webapp.models.records import DeliveryChannel, MessageRecord, MessageStatus

__all__ = ["DeadLetter", "DeliveryChannel", "MessageRecord", "MessageStatus", "UserProfile"]
