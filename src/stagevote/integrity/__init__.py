"""Fraud signals of an event: flags computed from SQL aggregates on request, for an admin to judge and act on."""
