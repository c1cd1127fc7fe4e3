"""The rules of voting: one statement decides each vote; the leaderboard is a cache of the votes table.

The vote path: the event's rules, rounds and line-up come from the in-process vote context (no
query); the attendee is one primary-key read; a single `INSERT … SELECT … ON CONFLICT DO NOTHING
RETURNING` takes the attendee's next free slot, so the database enforces the quota (one row per
attendee, event, round and slot) and the token's idempotency together. After the commit, one Redis
call moves the tally and the live screens are told; the request never waits for a broadcast.

With `allowVoteChange`, a vote past the quota replaces the attendee's oldest vote in the round
(with `votesPerRound: 1`, simply "change my vote"); without it, it is 409. The replaced token is kept
(`vote_tokens`, in the same transaction): a token once used answers 200 for ever, with the vote as
that request recorded it (its artist and time, the row's id), even after a later change; a late
retry never changes the vote back. Only the change path writes there; a new vote only checks, in
its one statement, that its token is not one of them (an index probe of an almost empty table).

On PostgreSQL a ballot vote first goes to the process's group commit (`voting/writer.py`): no
query before it (the ballot is a signed token, the event a cached copy), the attendee's right to
vote checked by the batch statement's join. Whatever the batch did not insert (a repeated token,
the quota used, an attendee who may not vote, a vote change) takes the one-by-one path above,
which decides it and gives every answer but the plain 201. An SMS vote by code takes the same group
commit (`vote_by_code_in_batch`; sms/service.py says how its reply is kept after the vote's commit).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from stagevote.attendees import service as attendees_service
from stagevote.attendees.models import Attendee
from stagevote.auth.principal import Principal
from stagevote.core.db import after_commit, unit_of_work, utcnow
from stagevote.core.errors import Conflict, Forbidden, NotFound, ProblemError, Unauthorized, Unprocessable
from stagevote.core.runtime import Runtime
from stagevote.core.tally import RECENT_SECONDS
from stagevote.events import service as events_service
from stagevote.events.models import Event, EventStatus, RoundStatus
from stagevote.events.schemas import VoteConfig
from stagevote.voting.context import VoteContext, current_vote_context, vote_context
from stagevote.voting.models import Vote
from stagevote.voting.receipts import CURRENT_VERSION, receipt_for, receipt_of_row
from stagevote.voting.repository import PendingVote, VoteRepository
from stagevote.voting.schemas import LeaderboardRead, Standing, VoteRead
from stagevote.voting.writer import VoteWriter

log = structlog.get_logger(__name__)

VOTES_CHANGED = "votes.changed"  # in-process signal: {eventId, round}
BOARD_CHANGED = "live.board"  # bus, from the live stream: {eventId, round} moved, on some instance
SETTLE_SECONDS = 0.5  # the most a leaderboard read waits for this process's answered votes to be counted


@dataclass(frozen=True)
class CastVote:
    vote: Vote
    created: bool


@dataclass(frozen=True)
class BallotVote:
    vote: VoteRead
    created: bool


def tally_key(event_id: int, round_number: int) -> str:
    return f"leaderboard:{event_id}:{round_number}"


def vote_writer(runtime: Runtime) -> VoteWriter | None:
    """This process's group commit of ballot votes: on PostgreSQL, unless `VOTE_WRITER_CONNECTIONS` is 0.

    SQLite keeps the one-by-one path: it has one writer at a time anyway, and a batch would only
    queue behind the same lock.
    """
    settings = runtime.settings
    if not settings.uses_postgresql or settings.vote_writer_connections == 0:
        return None
    return VoteWriter(
        database_url=settings.database_url.get_secret_value(),
        connections=settings.vote_writer_connections,
        max_batch=settings.vote_batch_max,
        on_commit=lambda committed: runtime.deferred.run(_after_batch(runtime, committed), name="vote-batch"),
        on_batch=runtime.metrics.observe_vote_batch,
    )


async def vote_by_ballot(
    *,
    runtime: Runtime,
    writer: VoteWriter | None,
    event_id: int,
    ballot_token: str | None,
    round_number: int,
    artist_id: int,
    token: str,
) -> BallotVote:
    """A web ballot's vote: the group commit when it can take it, else `cast_vote` in a unit of work.
    Answers as `cast_vote` does, and 401 for a missing, bad or expired ballot token."""
    if ballot_token is None:
        raise Unauthorized("Voting needs `Authorization: Bearer <ballotToken>`.")
    if writer is not None:
        batched = await _vote_in_batch(
            runtime=runtime,
            writer=writer,
            event_id=event_id,
            ballot_token=ballot_token,
            round_number=round_number,
            artist_id=artist_id,
            token=token,
        )
        if batched is not None:
            return batched
    async with unit_of_work(runtime.sessionmaker) as session:
        attendee = await attendees_service.attendee_for_ballot(
            session=session, runtime=runtime, ballot_token=ballot_token, event_id=event_id
        )
        outcome = await cast_vote(
            session=session,
            runtime=runtime,
            event_id=event_id,
            attendee=attendee,
            round_number=round_number,
            artist_id=artist_id,
            vote_code=None,
            token=token,
            channel="web",
        )
        answer = answer_of(runtime, outcome.vote)
    return BallotVote(answer, outcome.created)


async def _vote_in_batch(
    *,
    runtime: Runtime,
    writer: VoteWriter,
    event_id: int,
    ballot_token: str,
    round_number: int,
    artist_id: int,
    token: str,
) -> BallotVote | None:
    """The vote inserted by the group commit, or None when it must take the one-by-one path."""
    attendee_id = attendees_service.attendee_id_of_ballot(runtime=runtime, ballot_token=ballot_token, event_id=event_id)
    context = await current_vote_context(runtime=runtime, event_id=event_id)
    if context is None:
        return None
    answer = await _submit(
        runtime, writer, context, attendee_id, round_number, artist_id, None, token=token, channel="web"
    )
    return BallotVote(answer, created=True) if answer is not None else None


async def vote_by_code_in_batch(
    *,
    session: AsyncSession,
    runtime: Runtime,
    writer: VoteWriter,
    event_id: int,
    attendee_id: int,
    vote_code: str,
    token: str,
    channel: str,
) -> VoteRead | None:
    """A vote by artist code in the open round (an SMS) through the group commit: the vote, committed, or
    None when it must take `cast_vote`, which decides it and gives every answer but "counted".

    `session` only loads the event's copy on a miss (the caller's unit of work: no second connection)."""
    context = await vote_context(session=session, runtime=runtime, event_id=event_id)
    if context is None:
        return None
    return await _submit(runtime, writer, context, attendee_id, None, None, vote_code, token=token, channel=channel)


async def _submit(
    runtime: Runtime,
    writer: VoteWriter,
    context: VoteContext,
    attendee_id: int,
    round_number: int | None,
    artist_id: int | None,
    vote_code: str | None,
    *,
    token: str,
    channel: str,
) -> VoteRead | None:
    """Queue the vote in the group commit and wait for its commit: the vote, or None when the batch did not
    insert it or the checks `cast_vote` makes first would refuse it (that path then answers why)."""
    now = utcnow()
    try:
        number = _round_to_vote_in(context, round_number, now)
        artist = _artist_to_vote_for(context, number, artist_id, vote_code)
    except ProblemError:  # the one-by-one path answers it, after the checks that come first there
        return None
    rule = context.ballot_rule
    event_id = context.event_id
    future = writer.submit(
        PendingVote(
            attendee_id=attendee_id,
            event_id=event_id,
            artist_id=artist,
            round=number,
            token=token,
            channel=channel,
            quota=context.config.votes_per_round,
            registered_only=rule.registered_only,
            confirm_registered=rule.confirm_registered,
            confirm_walk_in=rule.confirm_walk_in,
            created_at=now,
        )
    )
    vote_id = await future if future is not None else None
    if vote_id is None:
        return None
    receipt = receipt_for(
        runtime.secret_key.get_secret_value(),
        vote_id=vote_id,
        event_id=event_id,
        round_number=number,
        attendee_id=attendee_id,
        artist_id=artist,
        token=token,
        created_at=now,
    )
    return VoteRead(
        id=vote_id, event_id=event_id, round=number, artist_id=artist, token=token, created_at=now, receipt=receipt
    )


def receipt_of(runtime: Runtime, vote: Vote) -> str:
    """The fan's receipt of a vote (voting/receipts.py): derived from the row, with the server's key."""
    return receipt_of_row(runtime.secret_key.get_secret_value(), vote)


def answer_of(runtime: Runtime, vote: Vote) -> VoteRead:
    """A vote as its caster reads it, with its receipt."""
    return VoteRead(
        id=vote.id,
        event_id=vote.event_id,
        round=vote.round,
        artist_id=vote.artist_id,
        token=vote.token,
        created_at=vote.created_at,
        receipt=receipt_of(runtime, vote),
    )


async def vote_of_token(*, session: AsyncSession, runtime: Runtime, token: str) -> Vote | None:
    """The vote a token made, as `cast_vote` answers a repeated token (a token a vote change replaced too)."""
    votes = VoteRepository(session)
    return await votes.get_by_token(token) or await _replaced(votes, token)


async def event_for_vote(*, session: AsyncSession, runtime: Runtime, event_id: int) -> tuple[Event, VoteConfig] | None:
    """The event and its rules as the vote path knows them: the in-process copy (`voting/context.py`), a
    detached snapshot to read only; loaded with `session` on a miss."""
    context = await vote_context(session=session, runtime=runtime, event_id=event_id)
    return (context.event, context.config) if context is not None else None


async def _after_batch(runtime: Runtime, committed: Sequence[tuple[PendingVote, int]]) -> None:
    """What follows a batch's commit, once for the batch and off every request's path: metrics, one
    Redis call for the tally, one signal per event and round."""
    for channel, n in Counter(vote.channel for vote, _ in committed).items():
        runtime.metrics.votes.labels(channel).inc(n)
    try:
        await runtime.tally.increment_many(
            [
                (tally_key(vote.event_id, vote.round), _marker(vote_id, vote.artist_id), {str(vote.artist_id): 1})
                for vote, vote_id in committed
            ]
        )
    except Exception:  # the votes stand; the reconciler repairs the tally once Redis answers again
        log.warning("tally_increment_failed", votes=len(committed), exc_info=True)
    for event_id, number in sorted({(vote.event_id, vote.round) for vote, _ in committed}):
        await runtime.signals.publish(VOTES_CHANGED, {"eventId": event_id, "round": number})


async def cast_vote(
    *,
    session: AsyncSession,
    runtime: Runtime,
    event_id: int,
    attendee: Attendee,
    round_number: int | None,
    artist_id: int | None,
    vote_code: str | None,
    token: str,
    channel: str,
) -> CastVote:
    """Count one vote, or answer why not: 404 no event · 403 the attendee may not vote · 409 event or
    round not open, quota used · 422 unknown round, artist not in the round. The same token again
    returns the vote it made (`created` False) and counts nothing."""
    context = await vote_context(session=session, runtime=runtime, event_id=event_id)
    if context is None or attendee.event_id != event_id:
        raise NotFound(f"No event {event_id} for this ballot.")
    now = utcnow()
    number = _round_to_vote_in(context, round_number, now)
    artist = _artist_to_vote_for(context, number, artist_id, vote_code)
    attendees_service.ensure_may_vote(attendee=attendee, event=context.event, config=context.config)
    # the copy may be a moment behind a close on another instance: the table decides, and holds the round
    held = await events_service.round_status_for_vote(session=session, event_id=event_id, number=number, now=now)
    if held is not RoundStatus.OPEN:
        raise Conflict(f"Round {number} is {held.value if held else 'gone'}, not open.", slug="round-not-open")

    votes = VoteRepository(session)
    quota = context.config.votes_per_round
    for _ in range(quota + 1):  # a retry only follows a concurrent vote taking the same slot
        vote = await votes.insert_in_free_slot(
            attendee_id=attendee.id,
            event_id=event_id,
            round_number=number,
            artist_id=artist,
            token=token,
            channel=channel,
            quota=quota,
            now=now,
        )
        if vote is not None:
            _after_vote(session, runtime, vote, {artist: 1})
            return CastVote(vote, created=True)
        existing = await votes.get_by_token(token) or await _replaced(votes, token)
        if existing is not None:
            if existing.attendee_id != attendee.id:
                raise Conflict("This vote token was already used.", slug="token-used")
            return CastVote(existing, created=False)
        if await _quota_used(votes, attendee.id, event_id, number, quota):
            break
    if not context.config.allow_vote_change:
        raise Conflict(
            f"You have used your {quota} vote{'s' if quota > 1 else ''} in round {number}.", slug="quota-used"
        )
    replaced = await votes.oldest_in_round_for_update(attendee_id=attendee.id, event_id=event_id, round_number=number)
    if replaced is None:  # the quota was used a moment ago, and is free again: the votes were erased
        raise Conflict("Your vote could not be counted; try again.", slug="quota-used")
    previous_artist = replaced.artist_id
    votes.remember_replaced_token(replaced)  # a late retry of the replaced request answers 200, changes nothing
    replaced.artist_id, replaced.token, replaced.channel, replaced.created_at = artist, token, channel, now
    # new facts, a new receipt (the round is open: nothing sealed it yet), derived as a vote cast now
    replaced.receipt, replaced.receipt_version = None, CURRENT_VERSION
    await votes.flush()
    if previous_artist != artist:
        _after_vote(session, runtime, replaced, {artist: 1, previous_artist: -1})
    return CastVote(replaced, created=True)


async def _replaced(votes: VoteRepository, token: str) -> Vote | None:
    """The vote a token made before a vote change replaced it, as that request recorded it (not added
    to the session: an answer, not a row). Its receipt, derived from those facts, is the one the first
    answer gave (no longer counted, so `GET …/receipts/{it}` answers 404; the change's receipt is)."""
    found = await votes.get_by_replaced_token(token)
    if found is None:
        return None
    history, vote = found
    return Vote(
        id=vote.id,
        attendee_id=history.attendee_id,
        event_id=vote.event_id,
        artist_id=history.artist_id,
        round=vote.round,
        slot=vote.slot,
        token=history.token,
        channel=vote.channel,
        created_at=history.created_at,
        receipt_version=vote.receipt_version,
    )


async def _quota_used(votes: VoteRepository, attendee_id: int, event_id: int, number: int, quota: int) -> bool:
    counts = await votes.count_for_attendee(attendee_id=attendee_id, event_id=event_id, round_number=number)
    return counts >= quota


def _round_to_vote_in(context: VoteContext, round_number: int | None, now: dt.datetime) -> int:
    if context.event.status != EventStatus.LIVE.value:
        raise Conflict(f"Voting is closed: the event is {context.event.status}.", slug="event-not-live")
    if round_number is None:
        open_round = context.open_round(now)
        if open_round is None:
            raise Conflict("No round is open right now.", slug="round-not-open")
        return open_round
    status = context.round_status(round_number, now)
    if status is None:
        raise Unprocessable.field("round", f"this event has no round {round_number}")
    if status is not RoundStatus.OPEN:
        raise Conflict(f"Round {round_number} is {status.value}, not open.", slug="round-not-open")
    return round_number


def _artist_to_vote_for(context: VoteContext, number: int, artist_id: int | None, vote_code: str | None) -> int:
    candidates = context.candidate_ids(number)
    if vote_code is not None:
        performer = context.by_vote_code(vote_code)
        if performer is None or performer.artist_id not in candidates:
            raise Unprocessable.field("voteCode", f"no artist with code {vote_code} in round {number}")
        return performer.artist_id
    if artist_id is None or artist_id not in candidates:
        raise Unprocessable.field("artistId", f"this artist is not in round {number}")
    return artist_id


def _marker(vote_id: int, artist_id: int) -> str:
    """What the tally remembers of a vote it counted: the row and the artist it is for now (the
    repository's `counts` writes the same in SQL)."""
    return f"{vote_id}:{artist_id}"


def _after_vote(session: AsyncSession, runtime: Runtime, vote: Vote, changes: dict[int, int]) -> None:
    event_id, number, channel = vote.event_id, vote.round, vote.channel
    marker = _marker(vote.id, vote.artist_id)

    async def publish() -> None:
        runtime.metrics.votes.labels(channel).inc()
        try:
            await runtime.tally.increment(
                tally_key(event_id, number), {str(a): d for a, d in changes.items()}, marker=marker
            )
        except Exception:  # Redis down: the vote stands, the reconciler repairs the tally once Redis is back
            log.warning("tally_increment_failed", event_id=event_id, round=number, exc_info=True)
        await runtime.signals.publish(VOTES_CHANGED, {"eventId": event_id, "round": number})

    after_commit(session, publish)


def may_see_leaderboard(context: VoteContext, number: int, principal: Principal | None, now: dt.datetime) -> bool:
    """`live`: everyone; `after_close`: everyone once the round (or the event) closed; `hidden`: admins."""
    if principal is not None and principal.is_admin:
        return True
    visibility = context.config.leaderboard_visibility
    if visibility == "live":
        return True
    if visibility == "after_close":
        event_over = context.event.status in (EventStatus.CLOSED.value, EventStatus.ARCHIVED.value)
        return event_over or context.round_status(number, now) is RoundStatus.CLOSED
    return False


async def leaderboard(
    *,
    session: AsyncSession | None,
    runtime: Runtime,
    event_id: int,
    round_number: int | None,
    principal: Principal | None,
) -> LeaderboardRead:
    """The standings of a round (the current one by default): 404 unknown or draft event, 422 unknown
    round, 403 when `leaderboardVisibility` keeps it from this caller for now. Without a session (the
    live stream) it opens a unit of work only on a miss of the event copy or of the tally."""
    context = await vote_context(session=session, runtime=runtime, event_id=event_id)
    admin = principal is not None and principal.is_admin
    if context is None or (context.event.status == EventStatus.DRAFT.value and not admin):
        raise NotFound(f"No event {event_id}.")
    now = utcnow()
    number = round_number if round_number is not None else context.current_round(now)
    if number not in context.rounds:
        raise Unprocessable.field("round", f"this event has no round {number}")
    if not may_see_leaderboard(context, number, principal, now):
        raise Forbidden("The organizer keeps this leaderboard hidden for now.", slug="leaderboard-hidden")
    return await standings(session=session, runtime=runtime, context=context, number=number)


async def settle_own_votes(runtime: Runtime) -> None:
    """Wait, briefly, for the tally updates of the votes this process already answered (they run beside
    the requests, after the group commit), so that a fan who just voted and reads the board sees the vote.

    For readers (an HTTP read of the leaderboard); the live stream never waits: it is told when votes count.
    """
    await runtime.deferred.settle(within=SETTLE_SECONDS)


async def standings(
    *, session: AsyncSession | None, runtime: Runtime, context: VoteContext, number: int
) -> LeaderboardRead:
    """The tally from the cache, seeded from the votes table when the cache does not have it (in a unit
    of work of its own when no session is given)."""
    try:
        counts = await _tally(session, runtime, context.event_id, number)
    except Exception:
        if session is None:  # the live stream answers 503 and the screen retries: no count per subscribe
            raise
        # an HTTP read with Redis down: the votes table answers (a failing database raises here again)
        log.warning("tally_read_failed", event_id=context.event_id, round=number, exc_info=True)
        counts, _ = await _count(session, context.event_id, number)
    names = {p.artist_id: p.name for p in context.performers.values()}
    rows = [(p.artist_id, p.name, counts.get(p.artist_id, 0)) for p in context.candidates(number)]
    rows.sort(key=lambda row: (-row[2], row[1].lower(), row[0]))
    ranked: list[Standing] = []
    for position, (artist_id, name, votes) in enumerate(rows, start=1):
        rank = ranked[-1].rank if ranked and ranked[-1].votes == votes else position
        ranked.append(Standing(artist_id=artist_id, name=names.get(artist_id, name), votes=votes, rank=rank))
    return LeaderboardRead(
        event_id=context.event_id,
        round=number,
        total_votes=sum(counts.values()),
        standings=ranked,
        updated_at=utcnow(),
    )


async def _tally(session: AsyncSession | None, runtime: Runtime, event_id: int, number: int) -> dict[int, int]:
    key = tally_key(event_id, number)
    cached = await runtime.tally.read(key)
    if cached is not None:
        return {int(a): c for a, c in cached.items()}
    if session is not None:
        return await _seed_tally(session, runtime, key, event_id, number)
    async with unit_of_work(runtime.sessionmaker) as own:
        return await _seed_tally(own, runtime, key, event_id, number)


async def _seed_tally(session: AsyncSession, runtime: Runtime, key: str, event_id: int, number: int) -> dict[int, int]:
    window = await runtime.tally.begin(key)  # before the count: a vote it misses is logged for the seed
    counts, markers = await _count(session, event_id, number)
    await runtime.tally.seed(window, {str(a): c for a, c in counts.items()}, counted_markers=markers)
    return counts


async def _count(session: AsyncSession, event_id: int, number: int) -> tuple[dict[int, int], list[str]]:
    """The votes per artist of a round, and the markers of those recent enough to have an increment on its way."""
    since = utcnow() - dt.timedelta(seconds=RECENT_SECONDS)
    return await VoteRepository(session).counts(event_id=event_id, round_number=number, recent_since=since)


async def reconcile_round(*, runtime: Runtime, event_id: int, number: int) -> int:
    """Compare a round's tally with the votes table and repair it: how many artists' counts were wrong.

    The count is taken inside a tally window (`core/tally.py`), so the increments landing meanwhile
    are neither lost nor counted twice: the repair never fights the live votes. The count's unit of
    work ends before the repair (on SQLite it holds the write lock). A tally that is not seeded is
    left to the next read.
    """
    key = tally_key(event_id, number)
    window = await runtime.tally.begin(key)
    async with unit_of_work(runtime.sessionmaker) as session:
        counts, markers = await _count(session, event_id, number)
    corrected = await runtime.tally.repair(window, {str(a): c for a, c in counts.items()}, counted_markers=markers)
    if corrected:
        log.warning("tally_repaired", event_id=event_id, round=number, artists=corrected)
        await runtime.signals.publish(VOTES_CHANGED, {"eventId": event_id, "round": number})
    return corrected
