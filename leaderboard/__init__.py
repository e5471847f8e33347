"""The leaderboard: lm-eval output folders in, tables and plots out.

``build_leaderboard(run_dirs, out)`` reads any number of ``lm_eval --output_path`` folders
(runs of the ``tts`` model or of any lm-eval model on MATH-500 / AIME24 tasks), derives
accuracy at smaller budgets from the candidates Best-of-N, majority and DVTS runs stored,
adds the published figures of ``reference.yaml``, and writes ``leaderboard.md``,
``leaderboard.json``, ``leaderboard.html`` and PNG/SVG plots to ``out``.
"""

from leaderboard.build import Leaderboard, build_leaderboard, collect, write_leaderboard
from leaderboard.errors import LeaderboardError

__all__ = ["Leaderboard", "LeaderboardError", "build_leaderboard", "collect", "write_leaderboard"]
