"""Events: lifecycle, vote configuration, rounds and sponsors."""
