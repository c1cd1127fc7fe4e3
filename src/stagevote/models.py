"""Every table of stagevote in one metadata, for migrations and tests."""

from stagevote.artists import models as artists_models
from stagevote.attendees import models as attendees_models
from stagevote.audit import models as audit_models
from stagevote.auth import models as auth_models
from stagevote.core.db import Base
from stagevote.events import models as events_models
from stagevote.messaging import models as messaging_models
from stagevote.recaps import models as recaps_models
from stagevote.sms import models as sms_models
from stagevote.voting import models as voting_models

__all__ = [
    "Base",
    "artists_models",
    "attendees_models",
    "audit_models",
    "auth_models",
    "events_models",
    "messaging_models",
    "recaps_models",
    "sms_models",
    "voting_models",
]
