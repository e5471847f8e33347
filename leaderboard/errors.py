"""The one error the leaderboard raises for input it cannot use."""

from __future__ import annotations


class LeaderboardError(ValueError):
    """An input folder, file or field the leaderboard cannot use; the message names it and
    says what to do."""
