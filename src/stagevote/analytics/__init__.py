"""Live analytics of an event: SQL aggregates of attendees, votes and messages, as JSON and as an SSE stream."""
