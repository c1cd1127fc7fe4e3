"""Names of the Socket.IO rooms of an event: the public screens, and the organizer's."""

from __future__ import annotations

NAMESPACE = "/live"


def public_room(event_id: int) -> str:
    return f"event:{event_id}"


def staff_room(event_id: int) -> str:
    """Admins' subscriptions: they also see leaderboards the public may not see yet."""
    return f"event:{event_id}:staff"
