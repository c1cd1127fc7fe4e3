"""`stagevote demo`: an admin, a live event with artists, an open round and some votes, to look at the pages.

Everything is made through the domains' services with the same rules the API applies; no message is
sent (the journey hooks are not installed here, and the round opens before anyone joins).
"""

from __future__ import annotations

import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

from stagevote.artists import service as artists_service
from stagevote.artists.schemas import ArtistInvite
from stagevote.attendees import service as attendees_service
from stagevote.audit.service import Caller
from stagevote.auth import service as auth_service
from stagevote.auth.models import Role, User
from stagevote.auth.principal import Principal
from stagevote.config import Settings
from stagevote.core.db import create_engine, create_sessionmaker, unit_of_work, utcnow
from stagevote.core.errors import Conflict
from stagevote.core.runtime import Runtime
from stagevote.events import service as events_service
from stagevote.events.schemas import EventCreate, RoundConfig, VoteConfig
from stagevote.voting import context as vote_context
from stagevote.voting import service as voting_service

ARTISTS = ("The Owls", "Neon Tide", "Paper Lanterns", "Los Relámpagos")
VOTES = (9, 6, 4, 2)  # votes already cast for each artist, so the screen has something to show
FAN_NUMBER = "+1 202-555-01{:02d}"  # 555-01xx: numbers reserved for fiction


@dataclass(frozen=True)
class Demo:
    email: str
    password: str
    event_id: int
    keyword: str
    ballot_token: str
    ballot_token_es: str


async def _admin(runtime: Runtime, password: str) -> User:
    for n in range(1, 1000):
        email = "demo@example.com" if n == 1 else f"demo{n}@example.com"
        try:
            async with unit_of_work(runtime.sessionmaker) as session:
                return await auth_service.create_user(session=session, email=email, password=password, role=Role.ADMIN)
        except Conflict:
            continue
    raise RuntimeError("no free demo e-mail address")


async def _event(runtime: Runtime, principal: Principal) -> tuple[int, str]:
    now = utcnow()
    for n in range(1, 1000):
        keyword = "ROCKFEST" if n == 1 else f"ROCKFEST{n}"
        data = EventCreate(
            title="Rockfest Battle of the Bands",
            start_date=now - dt.timedelta(hours=1),
            end_date=now + dt.timedelta(hours=5),
            venue="The Demo Hall",
            access_type="hybrid",  # pre-registered fans vote at once; walk-ins confirm their phone
            keyword=keyword,
            vote_config=VoteConfig(
                rounds=[RoundConfig(number=1, name="Heats"), RoundConfig(number=2, name="Final")],
                leaderboard_visibility="live",
            ),
        )
        try:
            async with unit_of_work(runtime.sessionmaker) as session:
                event = await events_service.create_event(
                    session=session, principal=principal, caller=Caller(principal.user_id, None), data=data
                )
                return event.id, keyword
        except Conflict:
            continue
    raise RuntimeError("no free demo keyword")


async def create_demo(settings: Settings) -> Demo:
    """Make the demo in the database of `settings` (migrated already)."""
    runtime = Runtime.build(settings)
    await runtime.start()
    vote_context.install(runtime)
    try:
        password = secrets.token_urlsafe(12)
        admin = await _admin(runtime, password)
        principal = Principal(user=admin)
        caller = Caller(admin.id, None)  # the demo acts as its admin, from the command line (no address)
        event_id, keyword = await _event(runtime, principal)
        async with unit_of_work(runtime.sessionmaker) as session:
            artist_ids = []
            for name in ARTISTS:
                made = await artists_service.invite_artist(
                    session=session, runtime=runtime, event_id=event_id, data=ArtistInvite(name=name)
                )
                await artists_service.answer_invitation(
                    session=session,
                    runtime=runtime,
                    principal=principal,
                    event_id=event_id,
                    artist_id=made.artist.id,
                    accept=True,
                )
                artist_ids.append(made.artist.id)
        for action in ("publish", "start"):
            async with unit_of_work(runtime.sessionmaker) as session:
                await events_service.transition(
                    session=session, runtime=runtime, caller=caller, event_id=event_id, action=action
                )
        async with unit_of_work(runtime.sessionmaker) as session:
            await events_service.open_round(
                session=session, runtime=runtime, caller=caller, event_id=event_id, number=1
            )
        fans = []
        async with unit_of_work(runtime.sessionmaker) as session:
            for n in range(sum(VOTES) + 2):
                fans.append(
                    await attendees_service.pre_register(
                        session=session,
                        runtime=runtime,
                        principal=principal,
                        event_id=event_id,
                        phone_number=FAN_NUMBER.format(n),
                        email=None,
                    )
                )
            fans[-1].language_pref = "es"
            event = await events_service.get_event(session=session, principal=principal, event_id=event_id)
            tokens = [
                attendees_service.ballot_token_for(runtime=runtime, attendee=fan, event=event) for fan in fans[-2:]
            ]
        voters = iter(fans[:-2])
        for artist_id, count in zip(artist_ids, VOTES, strict=True):
            for _ in range(count):
                async with unit_of_work(runtime.sessionmaker) as session:
                    await voting_service.cast_vote(
                        session=session,
                        runtime=runtime,
                        event_id=event_id,
                        attendee=next(voters),
                        round_number=1,
                        artist_id=artist_id,
                        vote_code=None,
                        token=uuid.uuid4().hex,
                        channel="web",
                    )
        return Demo(admin.email, password, event_id, keyword, tokens[0], tokens[1])
    finally:
        await runtime.close()


async def has_no_event(settings: Settings) -> bool:
    """Whether the database holds no event at all (a first run: the place to suggest the demo)."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        async with unit_of_work(create_sessionmaker(engine)) as session:
            # the operator at the command line sees what an admin sees, drafts included
            operator = Principal(user=User(id=0, email="", role=Role.ADMIN.value))
            _, total = await events_service.list_events(
                session=session, principal=operator, status=None, starts_before=None, ends_after=None, limit=1, offset=0
            )
        return total == 0
    finally:
        await engine.dispose()
