"""The rules of integrity: which patterns of joins and votes raise a flag, at which thresholds, and why.

`GET /events/{id}/integrity` (admins) computes every flag from the database on request: one read per kind
(two for vote spikes: the counts, then the ids of the flagged votes), nothing stored, no background job. A
flag is a signal for a person to judge, never an automatic verdict: it names the attendee
(`POST /attendees/{id}/void` acts on them) and/or the votes (`POST /events/{id}/votes/{voteId}/void`).
`detectedAt` is when the pattern shows in the data (the join, the start of the minute), so the same flag
reads the same on every request. Flags come newest first. Numbers the organizer pre-registered are the
organizer's own list and raise no join or number flag; erased attendees raise none that needs their data.

Thresholds (constants below):
- `join_burst`: at least 5 walk-ins whose numbers share all but the last 2 digits (one block of 100, where
  numbers bought in a row fall) joined within 120 seconds of each other. One flag per attendee; high from 10.
- `non_mobile_number`: a number `phonenumbers` types as anything but MOBILE or FIXED_LINE_OR_MOBILE (the
  US and Canada do not tell the two apart). High: toll-free, premium-rate, shared-cost, UAN, pager,
  voicemail (no fan texts from those); medium: VoIP and personal (forwarding) numbers, cheap to get in
  bulk; low: landlines (some take texts) and numbers that match no range of their country's plan. Typing
  costs ~0.1 ms a number, so one number of each range (all but the last 4 digits, same length) is typed,
  then every number of the ranges that are not mobiles (a range mixing kinds of line would be missed).
- `shared_address`: at least 20 web joins from one address (IPv4, or an IPv6 /64, behind TRUSTED_PROXIES
  the client they name) within 10 minutes; high from 60. The web join allows 30 a minute per address, and a
  venue's Wi-Fi puts many real fans behind one address: the reason says so.
- `late_join`: an attendee who joined at most 30 seconds before a timed round's `closesAt` and voted in
  that round (low: last calls bring real fans too). It names the votes.
- `vote_spike`: a minute with at least 20 votes for one artist and more than 5 times what the artist
  usually gets (the median of its minutes with votes, at least 3 of them), where "usually" is scaled up by
  how much the other artists' votes rose in that same minute, so a surge of the whole room (a round's last
  call) flags nobody. High above 10 times. A real surge for one artist (its set just ended) can raise it.
"""

from __future__ import annotations

import datetime as dt
import functools
import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberType
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.auth.principal import Principal
from stagevote.events import service as events_service
from stagevote.integrity.repository import MINUTE, IntegrityRepository, Member
from stagevote.integrity.schemas import FlagKind, IntegrityFlag, Severity

BURST_DIGITS = 2  # a block is a number without its last two digits: 100 numbers
BURST_MIN_JOINS = 5
BURST_WINDOW_SECONDS = 120
RANGE_DIGITS = 4  # numbers that differ only in their last 4 digits are one kind of line
SHARED_ADDRESS_MIN_JOINS = 20
SHARED_ADDRESS_WINDOW_SECONDS = 600
LATE_JOIN_SECONDS = 30
SPIKE_MIN_VOTES = 20
SPIKE_FACTOR = 5.0
SPIKE_BASELINE_MINUTES = 3
VOID_ATTENDEE = "POST /attendees/{id}/void"
VOID_VOTE = "POST /events/{id}/votes/{voteId}/void"

# what each kind of line that is not a mobile is, how much it matters, and why
NOT_MOBILE: dict[int, tuple[Severity, str, str]] = {
    PhoneNumberType.TOLL_FREE: ("high", "toll-free", "no fan texts from a freephone line"),
    PhoneNumberType.PREMIUM_RATE: ("high", "premium-rate", "no fan texts from a premium-rate line"),
    PhoneNumberType.SHARED_COST: ("high", "shared-cost", "a business line, not a fan's phone"),
    PhoneNumberType.UAN: ("high", "universal access (UAN)", "a business line, not a fan's phone"),
    PhoneNumberType.PAGER: ("high", "pager", "a pager cannot vote"),
    PhoneNumberType.VOICEMAIL: ("high", "voicemail", "a voicemail box cannot vote"),
    PhoneNumberType.VOIP: ("medium", "VoIP", "virtual numbers are bought online by the dozen"),
    PhoneNumberType.PERSONAL_NUMBER: ("medium", "personal (forwarding)", "it forwards to some other line"),
    PhoneNumberType.FIXED_LINE: ("low", "landline", "landlines seldom text, though some do"),
    PhoneNumberType.UNKNOWN: ("low", "unknown", "it matches no range of its country's numbering plan"),
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Cluster:
    """Members of one group (sorted by join) that joined close together, at least the minimum of them."""

    members: Sequence[Member]

    @property
    def seconds(self) -> int:
        return int((self.members[-1].joined_at - self.members[0].joined_at).total_seconds())

    @property
    def span(self) -> str:
        return f"{_clock(self.members[0].joined_at)}–{_clock(self.members[-1].joined_at)} UTC"


def _clock(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%H:%M:%S")


def clusters(members: Sequence[Member], *, window_seconds: int, min_size: int) -> list[Cluster]:
    """The runs of `members` (sorted by key, then join) where each member is in some window of `window_seconds`
    holding at least `min_size` members of its key: a sliding window, in one pass."""
    found: list[Cluster] = []
    start = 0
    while start < len(members):  # one key at a time
        end = start
        while end < len(members) and members[end].key == members[start].key:
            end += 1
        group = members[start:end]
        marked = [False] * len(group)
        low = 0
        for high, member in enumerate(group):
            while (member.joined_at - group[low].joined_at).total_seconds() > window_seconds:
                low += 1
            if high - low + 1 >= min_size:
                marked[low : high + 1] = [True] * (high - low + 1)
        run: list[Member] = []
        for member, flagged in zip(group, marked, strict=True):
            gap = bool(run) and (member.joined_at - run[-1].joined_at).total_seconds() > window_seconds
            if run and (not flagged or gap):
                found.append(Cluster(run))
                run = []
            if flagged:
                run.append(member)
        if run:
            found.append(Cluster(run))
        start = end
    return found


def _flag(
    kind: FlagKind,
    severity: Severity,
    reason: str,
    at: dt.datetime,
    *,
    attendee_id: int | None = None,
    vote_ids: list[int] | None = None,
) -> IntegrityFlag:
    return IntegrityFlag(
        kind=kind, severity=severity, reason=reason, attendee_id=attendee_id, vote_ids=vote_ids, detected_at=at
    )


async def join_bursts(repository: IntegrityRepository, event_id: int) -> list[IntegrityFlag]:
    members = await repository.members_of_busy_blocks(event_id, digits=BURST_DIGITS, min_size=BURST_MIN_JOINS)
    flags: list[IntegrityFlag] = []
    for cluster in clusters(members, window_seconds=BURST_WINDOW_SECONDS, min_size=BURST_MIN_JOINS):
        n = len(cluster.members)
        severity: Severity = "high" if n >= 2 * BURST_MIN_JOINS else "medium"
        block = cluster.members[0].key + "x" * BURST_DIGITS
        for member in cluster.members:
            reason = (
                f"One of {n} numbers of the block {block} that joined within {cluster.seconds} s "
                f"({cluster.span}): numbers bought in a row look like one person holding many ballots. "
                f"If they are not real fans, void the attendee ({VOID_ATTENDEE})."
            )
            flags.append(_flag("join_burst", severity, reason, member.joined_at, attendee_id=member.attendee_id))
    return flags


@functools.lru_cache(maxsize=50_000)  # a number's kind of line does not change: asking again costs nothing
def line_type(phone_number: str) -> int:
    """What kind of line an E.164 number is (`phonenumbers.PhoneNumberType`); UNKNOWN when it cannot be parsed."""
    try:
        return int(phonenumbers.number_type(phonenumbers.parse(phone_number, None)))
    except phonenumbers.NumberParseException:
        return int(PhoneNumberType.UNKNOWN)


async def non_mobile_numbers(repository: IntegrityRepository, event_id: int) -> list[IntegrityFlag]:
    # phonenumbers takes ~0.1 ms a number: one number of each range is typed, then each number of a range
    # that is not mobile (so the reason is exact for every number flagged)
    ranges = await repository.number_ranges(event_id, digits=RANGE_DIGITS)
    suspect = [sample for sample, _ in ranges if line_type(sample) in NOT_MOBILE]
    flags: list[IntegrityFlag] = []
    for number in await repository.numbers_in_ranges(event_id, suspect, digits=RANGE_DIGITS):
        found = NOT_MOBILE.get(line_type(number.phone_number))
        if found is None:
            continue
        severity, label, why = found
        reason = (
            f"{number.phone_number} is a {label} number, not a mobile: {why}. "
            f"If it is not a real fan, void the attendee ({VOID_ATTENDEE})."
        )
        flags.append(_flag("non_mobile_number", severity, reason, number.joined_at, attendee_id=number.attendee_id))
    return flags


async def shared_addresses(repository: IntegrityRepository, event_id: int) -> list[IntegrityFlag]:
    members = await repository.members_of_busy_addresses(event_id, min_size=SHARED_ADDRESS_MIN_JOINS)
    flags: list[IntegrityFlag] = []
    found = clusters(members, window_seconds=SHARED_ADDRESS_WINDOW_SECONDS, min_size=SHARED_ADDRESS_MIN_JOINS)
    for cluster in found:
        n = len(cluster.members)
        severity: Severity = "high" if n >= 3 * SHARED_ADDRESS_MIN_JOINS else "medium"
        address = cluster.members[0].key
        for member in cluster.members:
            reason = (
                f"One of {n} web joins from {address} within {cluster.seconds} s ({cluster.span}). Expected if "
                f"that is the venue's Wi-Fi; otherwise one machine is joining many numbers: void the attendee "
                f"({VOID_ATTENDEE})."
            )
            flags.append(_flag("shared_address", severity, reason, member.joined_at, attendee_id=member.attendee_id))
    return flags


async def late_joins(repository: IntegrityRepository, event_id: int) -> list[IntegrityFlag]:
    late = await repository.late_votes(event_id, seconds=LATE_JOIN_SECONDS)
    votes: dict[tuple[int, int], list[int]] = defaultdict(list)
    for row in late:
        votes[(row.attendee_id, row.round)].append(row.vote_id)
    flags: list[IntegrityFlag] = []
    seen: set[tuple[int, int]] = set()
    for row in late:
        key = (row.attendee_id, row.round)
        if key in seen:
            continue
        seen.add(key)
        before = int((row.closes_at - row.joined_at).total_seconds())
        reason = (
            f"Joined {before} s before round {row.round} closed ({_clock(row.closes_at)} UTC) and voted in it. "
            f"A last call brings real fans too; if these votes are not real, void them ({VOID_VOTE}) or the "
            f"attendee ({VOID_ATTENDEE})."
        )
        flags.append(_flag("late_join", "low", reason, row.joined_at, attendee_id=row.attendee_id, vote_ids=votes[key]))
    return flags


@dataclass(frozen=True)
class Spike:
    artist_id: int
    name: str
    minute: int
    votes: int
    usual: float  # the artist's median votes a minute
    expected: float  # the usual, scaled by how much the other artists rose that minute


def spikes(rows: Sequence[tuple[int, str, int, int]]) -> list[Spike]:
    """The (artist, minute) counts that are spikes: see the module docstring. Rows: (artist, name, minute, votes)."""
    per_artist: dict[int, dict[int, int]] = defaultdict(dict)
    names: dict[int, str] = {}
    totals: dict[int, int] = defaultdict(int)
    for artist, name, minute, votes in rows:
        per_artist[artist][minute] = votes
        names[artist] = name
        totals[minute] += votes
    found: list[Spike] = []
    for artist, minutes in per_artist.items():
        if len(minutes) < SPIKE_BASELINE_MINUTES:
            continue
        usual = statistics.median(minutes.values())
        others = {m: total - minutes.get(m, 0) for m, total in totals.items()}
        others_usual = statistics.median([n for n in others.values() if n > 0] or [0])
        for minute, votes in minutes.items():
            if votes < SPIKE_MIN_VOTES:
                continue
            room = others[minute] / others_usual if others_usual > 0 else 1.0
            expected = usual * max(1.0, room)
            if votes > SPIKE_FACTOR * expected:
                found.append(Spike(artist, names[artist], minute, votes, usual, expected))
    return found


async def vote_spikes(repository: IntegrityRepository, event_id: int) -> list[IntegrityFlag]:
    rows = await repository.votes_per_artist_minute(event_id)
    found = spikes([(r.artist_id, r.name, r.minute, r.votes) for r in rows])
    ids = await repository.vote_ids_in_minutes(event_id, [(s.artist_id, s.minute) for s in found])
    flags: list[IntegrityFlag] = []
    for spike in found:
        start = _EPOCH + dt.timedelta(seconds=spike.minute * MINUTE)
        times = spike.votes / spike.usual
        severity: Severity = "high" if spike.votes > 2 * SPIKE_FACTOR * spike.expected else "medium"
        room = "" if spike.expected == spike.usual else f", {spike.expected:g} with the room's rise that minute"
        reason = (
            f"{spike.votes} votes for {spike.name} in the minute from {start:%H:%M} UTC: {times:.0f} times its "
            f"usual {spike.usual:g} a minute{room}. A set that just ended can do this; bought or scripted votes "
            f"do too: void the ones that are not real ({VOID_VOTE})."
        )
        vote_ids = ids.get((spike.artist_id, spike.minute), [])
        flags.append(_flag("vote_spike", severity, reason, start, vote_ids=vote_ids))
    return flags


async def flags_of_event(*, session: AsyncSession, principal: Principal, event_id: int) -> list[IntegrityFlag]:
    """Every flag of the event, newest first. 404 unknown event."""
    event = await events_service.get_event(session=session, principal=principal, event_id=event_id)
    repository = IntegrityRepository(session)
    flags: list[IntegrityFlag] = []
    for kind in (join_bursts, non_mobile_numbers, shared_addresses, late_joins, vote_spikes):
        flags.extend(await kind(repository, event.id))
    flags.sort(key=lambda f: (-f.detected_at.timestamp(), f.kind, f.attendee_id or 0))
    return flags
