"""Attendees: fans who join an event by SMS or the web, and confirm their phone."""
