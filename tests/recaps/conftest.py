"""Recap tests share the reports' set-up: the signed SMS webhook, a second server on a loopback port."""

from __future__ import annotations

from tests.reports.conftest import served, settings

__all__ = ["served", "settings"]
