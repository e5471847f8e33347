"""tts-eval: test-time scaling of language models on competition math."""

from tts_eval.policies import Policy, load_policy
from tts_eval.search import search, validate_settings
from tts_eval.types import Completion, Problem, SearchResult, Trajectory, Usage

__all__ = [
    "Completion",
    "Policy",
    "Problem",
    "SearchResult",
    "Trajectory",
    "Usage",
    "load_policy",
    "search",
    "validate_settings",
]
