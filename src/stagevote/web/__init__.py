"""Server-rendered pages: venue screen, fan ballot, organizer console, recap."""
