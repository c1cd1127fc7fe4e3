"""Quiet hours: a marketing SMS waits while it is night where the recipient's number is.

The recipient's time zones come from the number (`phonenumbers.timezone.time_zones_for_number`). A number
with several (a US number of an area code that spans two zones, or one phonenumbers only knows by country)
is treated conservatively: the message goes only when it is outside quiet hours in every one of them, i.e.
after the latest of their mornings and before the earliest of their evenings. When those days never overlap
(zones more than 13 hours apart, with the default hours), the first zone phonenumbers lists is taken.
A number whose zone is unknown is taken to be in UTC. Quiet hours are `QUIET_HOURS_START` to
`QUIET_HOURS_END` local time (default 21:00 to 08:00; equal times: no quiet hours).
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as phone_timezones

from stagevote.config import Settings

UTC_ZONE = ZoneInfo("UTC")
# messages that wait for quiet hours to end and count against the daily cap; the others are transactional
MARKETING_TYPES = frozenset({"NUDGE", "CUSTOM", "RECAP", "RESULTS"})


@functools.lru_cache(maxsize=65_536)
def zones_of(phone_number: str) -> tuple[ZoneInfo, ...]:
    """The time zones of an E.164 number as phonenumbers knows them; UTC when it knows none."""
    try:
        names = phone_timezones.time_zones_for_number(phonenumbers.parse(phone_number, None))
    except phonenumbers.NumberParseException:
        names = ()
    zones = []
    for name in names:
        try:
            zones.append(ZoneInfo(name))
        except (ZoneInfoNotFoundError, ValueError):  # "Etc/Unknown", or a zone this system lacks
            continue
    return tuple(zones) or (UTC_ZONE,)


def _wakes_at(zone: ZoneInfo, moment: dt.datetime, start: dt.time, end: dt.time) -> dt.datetime | None:
    """When quiet hours in `zone` that hold at `moment` end (UTC); None when it is not quiet there then."""
    local = moment.astimezone(zone)
    now = local.time().replace(tzinfo=None)
    if start == end:
        return None
    if start < end:
        quiet, day = start <= now < end, local.date()
    else:  # across midnight, as 21:00–08:00
        quiet = now >= start or now < end
        day = local.date() + dt.timedelta(days=1) if now >= start else local.date()
    if not quiet:
        return None
    return dt.datetime.combine(day, end, tzinfo=zone).astimezone(dt.UTC)


def quiet_until(zones: tuple[ZoneInfo, ...], now: dt.datetime, start: dt.time, end: dt.time) -> dt.datetime | None:
    """The first moment from `now` that is outside quiet hours in every zone (None: `now` is), by the rules
    of the module docstring."""
    moment = now
    for _ in range(2 * len(zones) + 2):
        later = [w for w in (_wakes_at(z, moment, start, end) for z in zones) if w is not None]
        if not later:
            return None if moment == now else moment
        moment = max(later)
    return _wakes_at(zones[0], now, start, end)  # no common daytime: the first zone listed decides


def release_at(settings: Settings, phone_number: str, now: dt.datetime) -> dt.datetime | None:
    """When a marketing SMS to `phone_number` may go, if not `now` (None: it may go now)."""
    start, end = settings.quiet_hours_start, settings.quiet_hours_end
    if start == end:
        return None
    return quiet_until(zones_of(phone_number), now, start, end)
