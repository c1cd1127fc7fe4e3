"""Names of the Socket.IO rooms of an event, one per topic (the leaderboard has a public and a staff room)."""

from __future__ import annotations

from typing import Literal

NAMESPACE = "/live"

Topic = Literal["leaderboard", "round", "event"]
TOPICS: tuple[Topic, ...] = ("leaderboard", "round", "event")


def public_room(event_id: int) -> str:
    """Leaderboards the public may see."""
    return f"event:{event_id}"


def staff_room(event_id: int) -> str:
    """Admins' leaderboard subscriptions: they also see leaderboards the public may not see yet."""
    return f"event:{event_id}:staff"


def round_room(event_id: int) -> str:
    """Rounds opening and closing: what a fan's ballot needs, and no vote touches."""
    return f"event:{event_id}:round"


def event_room(event_id: int) -> str:
    """The event's status (live, closed…)."""
    return f"event:{event_id}:event"
