"""What every stagevote process installs on its runtime: tasks, cache invalidation, journey hooks."""

from __future__ import annotations

from stagevote.core.runtime import Runtime
from stagevote.messaging import journey, outbox, providers
from stagevote.voting import board_cache
from stagevote.voting import context as vote_context


def install_domains(runtime: Runtime) -> None:
    vote_context.install(runtime)
    outbox.install(runtime)
    journey.install(runtime)
    board_cache.install(runtime)


async def close_domains() -> None:
    """What the domains hold open beyond the runtime: the providers' HTTP connections."""
    await providers.close_http_clients()
