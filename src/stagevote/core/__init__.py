"""Cross-cutting pieces with no domain knowledge: db, cache, security, errors, metrics, logging."""
