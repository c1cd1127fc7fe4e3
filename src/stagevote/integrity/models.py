"""The integrity domain keeps no tables of its own: it reads attendees, votes, rounds and artists."""
