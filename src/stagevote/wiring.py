"""What every stagevote process installs on its runtime: tasks, cache invalidation, journey hooks."""

from __future__ import annotations

from stagevote.analytics import service as analytics_service
from stagevote.core.runtime import Runtime
from stagevote.messaging import journey, outbox, providers
from stagevote.recaps import service as recaps_service
from stagevote.sms import service as sms_service
from stagevote.voting import board_cache
from stagevote.voting import context as vote_context
from stagevote.voting import seals as vote_seals


def install_domains(runtime: Runtime) -> None:
    vote_context.install(runtime)
    outbox.install(runtime)
    journey.install(runtime)
    sms_service.install(runtime)
    analytics_service.install(runtime)
    recaps_service.install(runtime)
    board_cache.install(runtime)
    vote_seals.install(runtime)


async def close_domains(runtime: Runtime | None = None) -> None:
    """What the domains hold open beyond the runtime: the providers' HTTP connections, analytics' relays."""
    await providers.close_http_clients()
    if runtime is not None:
        await analytics_service.close(runtime)
