"""The audit domain: an append-only record of every admin action (who, when, from where, what changed)."""
