"""Reports of an event as CSV or XLSX downloads: rows for the organizer, aggregates for its sponsors."""
