"""Messaging: the outbox of SMS and e-mail, broadcasts and delivery history."""
