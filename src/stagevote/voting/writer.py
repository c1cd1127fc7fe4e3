"""Group commit of ballot votes (PostgreSQL): many requests' votes in one statement, one commit, one WAL flush.

A writer per process owns a few asyncpg connections of its own, each with the batch insert
prepared once. Whenever a connection is free, it takes every pending vote (up to `max_batch`, at
most one per attendee: a second vote of the same attendee waits for the next batch, so the next
free slot is read after the first one committed) and inserts them in one statement. There is no
timer: at low load a vote is written at once, under load the batches grow by themselves.

Each request awaits its own future, resolved once the statement has committed (the connection is
in autocommit and `synchronous_commit` is left on, so a resolved id is a durable row). A vote the
statement did not insert resolves to None, and so does every vote of a batch that failed: the
caller then takes the one-by-one path, which decides and answers it.

What must follow a commit (the tally, the screens, the metrics) is handed to `on_commit` once for
the whole batch, which must not block: it starts that work beside the requests and the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import asyncpg
import structlog
from sqlalchemy.engine import make_url

from stagevote.voting.repository import PendingVote, VoteBatchStatement

log = structlog.get_logger(__name__)

OnCommit = Callable[[Sequence[tuple[PendingVote, int]]], None]
OnBatch = Callable[[int, float], None]  # (votes in the batch, seconds its statement took)
_RECONNECT_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)


class _Queued:
    __slots__ = ("future", "vote")

    def __init__(self, vote: PendingVote, future: asyncio.Future[int | None]) -> None:
        self.vote = vote
        self.future = future


def asyncpg_dsn(database_url: str) -> str:
    """The plain `postgresql://` DSN asyncpg takes, from a configured URL (`postgresql+asyncpg://`…)."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(hide_password=False)


class VoteWriter:
    def __init__(
        self,
        *,
        database_url: str,
        connections: int,
        max_batch: int,
        on_commit: OnCommit,
        on_batch: OnBatch | None = None,
    ) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._connections = connections
        self._max_batch = max_batch
        self._on_commit = on_commit
        self._on_batch = on_batch
        self._pending: deque[_Queued] = deque()
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._live = 0
        self._writing = 0
        self._up = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None  # the one `start` ran on

    @property
    def pending(self) -> int:
        """Votes waiting for a free connection."""
        return len(self._pending)

    @property
    def writing(self) -> int:
        """Votes in statements under way."""
        return self._writing

    @property
    def ready(self) -> bool:
        """Whether at least one connection is up (otherwise `submit` declines at once)."""
        return self._live > 0 and not self._stopping

    async def start(self, *, wait_seconds: float = 2.0) -> None:
        """Connect in the background, waiting up to `wait_seconds` for the first connection; until one is
        up (a database that is down at start-up, say), votes take the one-by-one path."""
        if self._workers:
            return
        self._stopping = False
        self._loop = asyncio.get_running_loop()
        self._workers = [
            asyncio.create_task(self._run(), name=f"stagevote-vote-writer-{n}") for n in range(self._connections)
        ]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), timeout=wait_seconds)

    def submit(self, vote: PendingVote) -> asyncio.Future[int | None] | None:
        """Queue a vote: a future of its new id (None: not inserted), or None when the writer is not up."""
        if not self.ready or self._loop is None:
            return None
        queued = _Queued(vote, self._loop.create_future())
        self._pending.append(queued)
        self._wake.set()
        return queued.future

    async def stop(self) -> None:
        """Close the connections; votes still queued go back to their callers (None) for the one-by-one path."""
        self._stopping = True
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        while self._pending:
            _resolve(self._pending.popleft(), None)

    def _take(self) -> list[_Queued]:
        """The next batch: pending votes in order, one per attendee, up to `max_batch`."""
        batch: list[_Queued] = []
        later: list[_Queued] = []
        attendees: set[int] = set()
        looked = 0
        while self._pending and len(batch) < self._max_batch and looked < 2 * self._max_batch:
            queued = self._pending.popleft()
            looked += 1
            if queued.future.done():  # its request went away
                continue
            if queued.vote.attendee_id in attendees:
                later.append(queued)
            else:
                attendees.add(queued.vote.attendee_id)
                batch.append(queued)
        self._pending.extendleft(reversed(later))
        return batch

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping:
            try:
                connection = await asyncpg.connect(
                    self._dsn, server_settings={"application_name": "stagevote-vote-writer"}
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                delay = _RECONNECT_SECONDS[min(attempt, len(_RECONNECT_SECONDS) - 1)]
                attempt += 1
                log.warning("vote_writer_connect_failed", error=str(exc) or type(exc).__name__, retry_in=delay)
                await asyncio.sleep(delay)
                continue
            attempt = 0
            self._live += 1
            self._up.set()
            try:
                statement = VoteBatchStatement(connection)
                await statement.prepare()
                await self._serve(statement)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("vote_writer_connection_lost", error=str(exc) or type(exc).__name__)
            finally:
                self._live -= 1
                with contextlib.suppress(Exception):
                    connection.terminate()

    async def _serve(self, statement: VoteBatchStatement) -> None:
        """Write batches on one connection until it fails (raises) or the writer stops (cancelled)."""
        while True:
            batch = self._take()
            if not batch:
                self._wake.clear()
                await self._wake.wait()
                continue
            # one lock order for every batch, so that two processes' batches do not deadlock often
            batch.sort(key=lambda q: q.vote.attendee_id)
            started = time.perf_counter()
            self._writing += len(batch)
            try:
                inserted = await statement.insert([q.vote for q in batch])
            except asyncpg.PostgresError as exc:
                # a deadlock with another process, a constraint we did not foresee: the batch is
                # rolled back as a whole, and each vote goes its own way
                for queued in batch:
                    _resolve(queued, None)
                if isinstance(exc, asyncpg.PostgresConnectionError | asyncpg.AdminShutdownError):
                    raise
                log.warning("vote_batch_failed", error=str(exc), size=len(batch))
                continue
            except BaseException:
                for queued in batch:
                    _resolve(queued, None)
                raise
            finally:
                self._writing -= len(batch)
            if self._on_batch is not None:
                self._on_batch(len(batch), time.perf_counter() - started)
            committed: list[tuple[PendingVote, int]] = []
            for queued in batch:
                vote_id = inserted.get((queued.vote.token, queued.vote.attendee_id))
                if vote_id is not None:
                    committed.append((queued.vote, vote_id))
                _resolve(queued, vote_id)
            if committed:
                self._on_commit(committed)


def _resolve(queued: _Queued, value: Any) -> None:
    if not queued.future.done():
        queued.future.set_result(value)
