"""Artists: invitations, claims and answers."""
