"""The environment a `stagevote` process started by a test runs with: the test's settings as STAGEVOTE_ variables."""

from __future__ import annotations

import json
import os

from pydantic import SecretStr

from stagevote.config import Settings


def environment(settings: Settings, *, leave_out: tuple[str, ...] = ()) -> dict[str, str]:
    """This process's environment less its STAGEVOTE_ variables, plus `settings` (dicts and lists as JSON,
    as pydantic-settings reads them back; secrets as their values, which a JSON dump masks)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAGEVOTE_")}
    fields = dict(settings)
    for key, dumped in settings.model_dump(mode="json").items():
        value = fields[key].get_secret_value() if isinstance(fields[key], SecretStr) else dumped
        if value is not None and key not in leave_out:
            env[f"STAGEVOTE_{key.upper()}"] = json.dumps(value) if isinstance(value, dict | list) else str(value)
    return env
