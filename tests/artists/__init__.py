"""Artists: invitations, claims, answers."""
