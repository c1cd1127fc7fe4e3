"""The garbage collector while the app serves: start-up objects frozen, generations sized for doors-open bursts."""

from __future__ import annotations

import gc

from asgi_lifespan import LifespanManager

from stagevote.app import GC_THRESHOLDS, create_app
from stagevote.config import Settings


async def test_the_app_serves_with_its_collector_settings_and_gives_them_back(settings: Settings) -> None:
    before = gc.get_threshold()
    assert before != GC_THRESHOLDS
    application = create_app(settings)
    async with LifespanManager(application):
        assert gc.get_threshold() == GC_THRESHOLDS
        assert gc.get_freeze_count() > 0
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
