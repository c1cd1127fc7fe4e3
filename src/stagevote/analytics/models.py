"""The analytics domain keeps no tables of its own: it counts those of attendees, votes and messages."""
