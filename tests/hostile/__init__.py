"""Hostile callers: what an attacker tries, one module per kind of attack (`make proof` counts the cases)."""
