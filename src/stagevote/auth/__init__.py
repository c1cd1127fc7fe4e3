"""Accounts, roles, tokens and API keys."""
