"""Real time: the Socket.IO `/live` namespace and the coalescing leaderboard broadcaster."""
