"""The reports domain keeps no tables of its own: it reads those of votes, attendees and artists."""
