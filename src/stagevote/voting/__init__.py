"""Voting: ballots, votes and the leaderboard."""
